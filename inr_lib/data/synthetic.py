"""A synthetic CAVE-layout dataset (no download needed) and where-is-my-data helpers.

:func:`make_synthetic_cave` writes scenes that :func:`inr_lib.data.load_cave_scene` reads
like real CAVE ones (``<name>_ms/<name>_ms/<name>_ms_01..31.png`` as 16-bit greyscale,
``<name>_RGB.bmp`` as 8-bit RGB). It is deterministic: the same arguments give the same
bytes. How a scene is made (``rng`` seeded with ``(seed, scene index)``):

1. **Spatial structure** from a real photograph shipped with scikit-image
   (:data:`PHOTOS`; ``skimage.data``, no network): a random square crop, resized to
   ``size x size``, converted from sRGB to linear RGB.
2. **Regions**: SLIC superpixels of the photo (40-90 per scene).
3. **Spectra** from measured reflectances that colour-science ships (:func:`reflectance_library`:
   BabelColor and Ohta ColorChecker patches, CIE test colour samples, NIST CQS samples and
   the PMC memory colours). Each region gets 3 of them whose colours (under the illuminant,
   CIE 1931 -> linear sRGB) lie closest to the region's mean colour; every pixel is the
   non-negative mix of those 3 that reproduces the pixel's own linear colour. This carries
   the photo's shading and texture into the spectra.
4. **Metamers**: each region adds a random multiple of a smooth *metameric black* (a spectrum
   whose projection through the scene's response is exactly zero under the illuminant), so
   regions of the same RGB have different spectra and RGB -> spectrum is not a lookup.
5. **Light**: reflectance times a standard illuminant (``"D65"`` by default, from
   ``colour.SDS_ILLUMINANTS``), a light optical blur (Gaussian, sigma 0.7 px) which also
   mixes spectra across region edges; exposure scaled so the brightest 0.5 % of pixels
   saturate (clipped at 1, as a sensor would), quantised to 16 bits.
6. **RGB**: the quantised cube through a camera pipeline, rounded to 8 bits. The default,
   ``"cave-rgb"`` (:func:`inr_lib.spectral.get_pipeline`), is fitted to how CAVE's own
   ``*_RGB.bmp`` images relate to their bands (a linear response, then a tone curve), so a
   model trained on CAVE sees the kind of RGB it was trained on. ``response`` may also name a
   plain response (e.g. ``"cie1964"``: the linear sum-normalised projection of version 1).
   The metameric blacks of step 4 are invisible to the pipeline's linear response, hence to
   the RGB. What was used is written to ``synthetic.json`` in each scene folder and to
   ``SYNTHETIC.json`` at the root.

Where the data live (real CAVE if present, else this dataset made on demand) is
:mod:`inr_lib.data.roots`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..files.ownership import require_owned, write_manifest
from ..spectral import WAVELENGTHS, CameraPipeline, get_pipeline, get_response, list_pipelines, normalise_response

__all__ = [
    "PHOTOS",
    "reflectance_library",
    "make_synthetic_cave",
    "ensure_synthetic_cave",
    "SYNTHETIC_MANIFEST",
    "is_synthetic_complete",
]

#: scikit-image sample photographs used for spatial structure (all ship with the wheel).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "immunohistochemistry",
          "colorwheel")
# 2: RGB through the fitted "cave-rgb" camera pipeline (1: linear CIE 1964 projection)
_VERSION = 2
_MANIFEST = SYNTHETIC_MANIFEST = "SYNTHETIC.json"
_SRGB_TO_Y = np.array([0.2126, 0.7152, 0.0722])


# --------------------------------------------------------------------------------------------
# ingredients


def _photo(name: str) -> np.ndarray:
    """(H, W, 3) float64 sRGB in [0, 1]."""
    import skimage.data

    img = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    return img[:, :, :3].astype(np.float64) / 255.0


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


@cache
def reflectance_library() -> tuple:
    """Measured reflectances from colour-science at :data:`WAVELENGTHS`.

    Returns:
        ``(names, spectra)``: a tuple of ``"<set>/<sample>"`` names and a read-only float64
        array ``(N, 31)`` in [0, 1] (linear interpolation of each table to 400..700 nm).
    """
    import colour.quality  # binds colour too

    sets = {
        "BabelColor": colour.SDS_COLOURCHECKERS["BabelColor Average"],
        "Ohta": colour.SDS_COLOURCHECKERS["ColorChecker N Ohta"],
        "PMC": colour.SDS_COLOURCHECKERS["PMC"],
        "TCS": colour.quality.SDS_TCS["CIE 1995"],
        "CQS": colour.quality.SDS_VS["NIST CQS 9.0"],
    }
    names, spectra = [], []
    for set_name, sds in sets.items():
        for sample, sd in sds.items():
            names.append(f"{set_name}/{sample}")
            spectra.append(np.interp(WAVELENGTHS, sd.wavelengths, sd.values))
    arr = np.clip(np.array(spectra), 0.0, 1.0)
    arr.flags.writeable = False
    return tuple(names), arr


@cache
def _illuminant(name: str) -> np.ndarray:
    import colour

    if name not in colour.SDS_ILLUMINANTS:
        raise KeyError(f"unknown illuminant {name!r}; try 'D65', 'A', 'D50', 'E', 'FL2', ...")
    sd = colour.SDS_ILLUMINANTS[name]
    e = np.interp(WAVELENGTHS, sd.wavelengths, sd.values)
    return e / e.max()


@cache
def _linear_srgb_matrix() -> np.ndarray:
    """(31, 3): spectrum (radiance) -> linear sRGB, scaled so a flat unit spectrum has Y = 1."""
    import colour

    cmf = get_response("cie1931")
    m = np.asarray(colour.models.RGB_COLOURSPACE_sRGB.matrix_XYZ_to_RGB)
    return (cmf / cmf[:, 1].sum()) @ m.T


def _metameric_blacks(illum: np.ndarray, response: np.ndarray, n: int = 6) -> np.ndarray:
    """(n, 31) smooth reflectance changes invisible to ``response`` under ``illum``."""
    p = illum[:, None] * response  # (31, 3): reflectance -> response
    x = np.linspace(0.0, np.pi, WAVELENGTHS.size)
    basis = np.stack([np.cos(k * x) for k in range(1, n + 1)], axis=0)  # smooth, (n, 31)
    q, _ = np.linalg.qr(p)
    blacks = basis - (basis @ q) @ q.T
    return blacks / np.abs(blacks).max(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# one scene


def _crop_resize(photo: np.ndarray, size: int, rng) -> np.ndarray:
    from skimage.transform import resize

    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.55, 1.0))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = photo[y0:y0 + side, x0:x0 + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.clip(resize(crop, (size, size), order=1, anti_aliasing=True), 0.0, 1.0)


def _endmembers(target: np.ndarray, lib_rgb: np.ndarray, rng) -> np.ndarray:
    """Indices of 3 library spectra whose colours span the region's colour well."""
    chroma = lib_rgb / np.maximum(lib_rgb.sum(axis=1, keepdims=True), 1e-9)
    t = target / max(target.sum(), 1e-9)
    order = np.argsort(np.linalg.norm(chroma - t, axis=1), kind="stable")
    first = order[int(rng.integers(0, 3))]
    best, best_cond = None, np.inf
    for _ in range(8):
        others = rng.choice(order[:16], size=2, replace=False)
        idx = np.array([first, *others])
        if len(set(idx.tolist())) < 3:
            continue
        cond = np.linalg.cond(lib_rgb[idx].T)
        if cond < best_cond:
            best, best_cond = idx, cond
        if cond < 50:
            break
    if best is None:   # 8 draws without 3 distinct spectra: only for a library of < 3 colours
        raise ValueError("the reflectance library has fewer than 3 distinct spectra near this colour")
    return best


def _camera(response: str) -> CameraPipeline:
    """A named camera pipeline, or a plain response as its sum-normalised linear projection."""
    if response in list_pipelines():
        return get_pipeline(response)
    return CameraPipeline(response, normalise_response(response, "sum"), np.ones(3), {})


def _scene_cube(photo: np.ndarray, size: int, rng, illum, camera, lib, blacks) -> tuple:
    from scipy.ndimage import gaussian_filter
    from skimage.segmentation import slic

    img = _crop_resize(photo, size, rng)
    lin = _srgb_to_linear(img).reshape(-1, 3)  # (P, 3)
    n_seg = int(rng.integers(40, 91))
    labels = slic(img, n_segments=n_seg, compactness=10, start_label=0, channel_axis=-1).ravel()
    to_rgb = _linear_srgb_matrix()
    lib_rgb = (lib * illum) @ to_rgb  # (N, 3) colour of each reflectance under the light

    refl = np.zeros((lin.shape[0], WAVELENGTHS.size))
    n_regions = int(labels.max()) + 1
    for r in range(n_regions):
        mask = labels == r
        if not mask.any():
            continue
        idx = _endmembers(lin[mask].mean(axis=0) + 1e-6, lib_rgb, rng)
        amounts = np.linalg.solve(lib_rgb[idx].T, lin[mask].T).T  # (p, 3) mix reproducing colour
        amounts = np.clip(amounts, 0.0, None)
        spectra = lib[idx]  # (3, 31)
        # metameric black: keep every mix non-negative (bound from the smallest endmember value)
        black = blacks[int(rng.integers(0, blacks.shape[0]))] * (1 if rng.random() < 0.5 else -1)
        floor = spectra.min(axis=0)
        neg = black < 0
        alpha = rng.uniform(0.3, 0.9) * (np.min(floor[neg] / -black[neg]) if neg.any() else 0.2)
        shading = amounts.sum(axis=1, keepdims=True)  # (p, 1)
        refl[mask] = amounts @ spectra + shading * (alpha * black)
    cube = np.clip(refl, 0.0, None) * illum  # radiance (P, 31)
    cube = cube.T.reshape(WAVELENGTHS.size, size, size)
    cube = gaussian_filter(cube, sigma=(0, 0.7, 0.7), mode="reflect")
    # exposure: the brightest 0.5 % of pixels saturate (clip at 1), like a real sensor
    cube = np.clip(cube / max(float(np.percentile(cube.max(axis=0), 99.5)), 1e-12), 0.0, 1.0)
    q = np.round(cube * 65535.0).astype(np.uint16)
    hsi = q.astype(np.float32) / np.float32(65535)  # what load_cave_scene will return
    rgb = camera(hsi)
    rgb8 = np.round(rgb * 255.0).astype(np.uint8).transpose(1, 2, 0)
    return q, rgb8, n_regions


def _write_png16(path: Path, band: np.ndarray) -> None:
    Image.fromarray(band).save(path, format="PNG", compress_level=6)


def make_synthetic_cave(root: str | os.PathLike, n_scenes: int = 8, size: int = 128, seed: int = 0,
                        response: str = "cave-rgb", illuminant: str = "D65") -> list:
    """Write ``n_scenes`` synthetic scenes in the CAVE nested layout under ``root``.

    Args:
        root: output folder (created; existing scenes of the same names are overwritten).
        n_scenes: how many scenes; photos are reused cyclically (:data:`PHOTOS`) with
            different crops.
        size: height = width of every scene, pixels.
        seed: the only source of randomness; same arguments -> identical bytes.
        response: how the RGB image is made: a camera pipeline name
            (:func:`inr_lib.spectral.list_pipelines`; default ``"cave-rgb"``) or a response
            name (:func:`inr_lib.spectral.get_response`; its linear projection).
        illuminant: a key of ``colour.SDS_ILLUMINANTS`` (``"D65"``, ``"A"``, ...).

    Returns:
        ``list[Path]`` of the scene folders (``root/<name>_ms/<name>_ms``), each holding
        31 band PNGs, ``<name>_RGB.bmp`` and ``synthetic.json``. Names are
        ``synth<index>_<photo>``, e.g. ``synth00_astronaut``.
    """
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    illum = _illuminant(illuminant)
    camera = _camera(response)
    names, lib = reflectance_library()
    blacks = _metameric_blacks(illum, camera.response)
    photos = {}
    params = {"generator": "inr_lib.data.synthetic", "version": _VERSION, "seed": seed,
              "size": size, "n_scenes": n_scenes, "response": response,
              "rgb": ("clip(hsi @ pipeline response, 0, 1) ** (1 / gamma), rounded to 8 bits"
                      if response in list_pipelines() else
                      "project(hsi, response, normalise='sum'), clipped, rounded to 8 bits, no gamma"),
              "illuminant": illuminant,
              "hsi": "radiance / 99.5th percentile of per-pixel max, clipped to [0, 1], rounded to 16 bits",
              "reflectances": len(names)}
    out = []
    for i in range(n_scenes):
        photo_name = PHOTOS[i % len(PHOTOS)]
        if photo_name not in photos:
            photos[photo_name] = _photo(photo_name)
        rng = np.random.default_rng([seed, i])
        q, rgb8, n_regions = _scene_cube(photos[photo_name], size, rng, illum, camera, lib, blacks)
        name = f"synth{i:02d}_{photo_name}"
        folder = root / f"{name}_ms" / f"{name}_ms"
        folder.mkdir(parents=True, exist_ok=True)
        for b in range(WAVELENGTHS.size):
            _write_png16(folder / f"{name}_ms_{b + 1:02d}.png", q[b])
        Image.fromarray(rgb8).save(folder / f"{name}_RGB.bmp", format="BMP")
        info = dict(params, name=name, index=i, photo=f"skimage.data.{photo_name}",
                    regions=n_regions)
        (folder / "synthetic.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        out.append(folder)
    scenes = [p.parent.name[:-3] for p in out]
    # the manifest lists every entry written, so the dataset can be proven ours before deletion
    write_manifest(root, _MANIFEST, dict(params, scenes=scenes),
                   entries=[e for s in scenes for e in _scene_entries(s)])
    return out


def _scene_entries(name: str) -> list[str]:
    """The entries (relative paths) :func:`make_synthetic_cave` writes for scene ``name``."""
    inner = f"{name}_ms/{name}_ms"
    return [f"{name}_ms", inner, f"{inner}/{name}_RGB.bmp", f"{inner}/synthetic.json",
            *(f"{inner}/{name}_ms_{b:02d}.png" for b in range(1, WAVELENGTHS.size + 1))]


def _ours(manifest: dict) -> bool:
    return manifest.get("generator") == "inr_lib.data.synthetic"


def _complete(root: Path, want: dict) -> list | None:
    try:
        manifest = json.loads((root / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not _ours(manifest) or not isinstance(
            manifest.get("scenes"), list):
        return None
    if any(manifest.get(k) != v for k, v in want.items()):
        return None
    dirs = []
    for name in manifest.get("scenes", []):
        folder = root / f"{name}_ms" / f"{name}_ms"
        if not all((folder / f"{name}_ms_{b:02d}.png").is_file() for b in range(1, 32)):
            return None
        dirs.append(folder)
    return dirs


def _refuse_foreign_folder(root: Path) -> None:
    """Raise FileExistsError unless ``root`` is absent, empty, or provably a synthetic dataset
    this library wrote: its manifest lists every entry and nothing else is inside (the user's
    notes or runs saved in it make it theirs). Nothing else is ever deleted."""
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise FileExistsError(f"{root} exists and is not a folder; choose another folder for the "
                              f"synthetic dataset (synthetic:DIR)")
    if not root.is_dir() or not any(root.iterdir()):
        return
    require_owned(root, _MANIFEST, "a synthetic dataset it wrote",
                  "Choose a new or empty folder for synthetic:DIR (or move your files out and "
                  "delete the folder yourself)", entries=_listed_entries(root), is_ours=_ours)


def _listed_entries(root: Path) -> list | None:
    """The entries the manifest lists; for manifests written before it listed them, the
    entries its scenes imply (None: the manifest's own ``entries``, or none to read)."""
    try:
        manifest = json.loads((root / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or "entries" in manifest or not isinstance(
            manifest.get("scenes"), list):
        return None
    return [e for s in manifest["scenes"] if isinstance(s, str) for e in _scene_entries(s)]


def ensure_synthetic_cave(root: str | os.PathLike, n_scenes: int = 8, size: int = 128, seed: int = 0,
                          response: str = "cave-rgb", illuminant: str = "D65") -> list:
    """Reuse the synthetic dataset at ``root`` if it was made with these arguments, else make it.

    Creation happens in a temporary sibling folder that is renamed to ``root`` at the end,
    so an interrupted run or a concurrent process never sees half a dataset. A synthetic
    dataset made with other arguments is replaced; an empty folder is filled; any other
    existing folder is refused (FileExistsError naming what is in the way), never deleted:
    a dataset is replaced only when its manifest lists every entry inside it (user files
    saved in it, or a manifest that is not ours, make it not ours). Returns the scene folders
    (``list[Path]``).
    """
    root = Path(root).expanduser()
    want = {"version": _VERSION, "seed": seed, "size": size, "n_scenes": n_scenes,
            "response": response, "illuminant": illuminant}
    dirs = _complete(root, want)
    if dirs is not None:
        return dirs
    _refuse_foreign_folder(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        make_synthetic_cave(tmp, n_scenes=n_scenes, size=size, seed=seed, response=response,
                            illuminant=illuminant)
        if root.exists() and _complete(root, want) is None:
            _refuse_foreign_folder(root)   # checked again: it may have changed meanwhile
            if any(root.iterdir()):
                shutil.rmtree(root)        # proven: a synthetic dataset this library wrote
            else:
                root.rmdir()               # empty
        try:
            os.replace(tmp, root)
        except OSError:
            if _complete(root, want) is None:  # not made by a concurrent process either
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    dirs = _complete(root, want)
    if dirs is None:
        raise OSError(f"{root}: the synthetic dataset was written but is not complete; delete the "
                      f"folder and call again")
    return dirs


def is_synthetic_complete(root: str | os.PathLike) -> bool:
    """True if ``root`` holds a complete synthetic dataset (of any arguments)."""
    return _complete(Path(root), {}) is not None
