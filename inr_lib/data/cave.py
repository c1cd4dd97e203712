"""The CAVE multispectral database: find scenes, load them, fixed train/test splits.

CAVE (Yasuma, Mitsunaga, Iso, Nayar, IEEE TIP 2010) has 32 scenes of 512 x 512 pixels, each
stored as 31 band images ``<scene>_ms_01.png`` (400 nm) ... ``<scene>_ms_31.png`` (700 nm)
plus an 8-bit sRGB rendering ``<scene>_RGB.bmp``. Get it with
:func:`inr_lib.data.download_cave`.

Layouts found by :func:`list_cave_scenes`:

* nested, as in the official ``complete_ms_data.zip``: ``root/<scene>_ms/<scene>_ms/*.png``
* flattened: ``root/<scene>_ms/*.png`` (or ``root/<scene>/*.png``)
* either of them inside one wrapper folder (``root/complete_ms_data/...``), or ``root``
  being a single scene folder itself.

Stray files (``Thumbs.db``, ``.DS_Store``, archives) and hidden folders are ignored.

Band files: the database is not uniform. Bands are read exactly at the file's own bit depth
(16-bit ``v / 65535``, 8-bit ``v / 255``, any other depth ``v / (2**depth - 1)``) and may be
greyscale, grey + alpha, RGB or RGBA as long as the colour channels are equal (alpha is
ignored). Anything that cannot be a band is refused with a :class:`DataFormatError`.

The fixed train/test splits are in :mod:`inr_lib.data.cave_splits`.
"""
from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence, Union

import numpy as np

from ..files.readers import DataFormatError, PathLike, read_paired_rgb, read_png
from ..spectral import WAVELENGTHS
from .cave_splits import (
    CAVE_SCENES,
    _scene_names,
    cave_split,
    hold_out,
    list_cave_splits,
    split_available,
)
from .scene import Scene

__all__ = [
    "CAVE_SCENES",
    "SceneDir",
    "list_cave_scenes",
    "load_cave_scene",
    "load_cave",
    "iter_cave",
    "cave_split",
    "list_cave_splits",
    "split_available",
    "hold_out",
]

N_BANDS = WAVELENGTHS.size
_BAND_RE = re.compile(r"^(?P<prefix>.+)_(?P<num>\d+)\.png$", re.IGNORECASE)
_RGB_RE = re.compile(r"^(?P<prefix>.+)_rgb\.bmp$", re.IGNORECASE)
_GET_DATA = (
    "Get the data with inr_lib.data.download_cave(dest) (the official complete_ms_data.zip), "
    "or set INR_DATA to a folder that holds it; inr_lib.data.resolve_cave_root() falls back "
    "to the synthetic CAVE-layout dataset when no real copy is found."
)


def _not_a_folder(path: Path, what: str) -> DataFormatError:
    """The error for a ``path`` that exists but is a file (e.g. the downloaded zip itself)."""
    if zipfile.is_zipfile(path):
        todo = (f"it is a zip archive: unpack it with inr_lib.data.download_cave(FOLDER, "
                f"url={path.resolve().as_uri()!r}) (checks the archive, then extracts it into "
                "FOLDER) and pass FOLDER")
    else:
        todo = "pass the folder that holds the scene folders <scene>_ms/"
    return DataFormatError(f"{what} {path} is a file, not a folder; {todo}")


class SceneDir(NamedTuple):
    """A scene found by :func:`list_cave_scenes`: its name (``"balloons"``) and the folder
    that directly holds its band PNGs."""

    name: str
    path: Path


# --------------------------------------------------------------------------------------------
# finding scenes


def _is_stray(p: Path) -> bool:
    return p.name.startswith((".", "__MACOSX"))


def _band_files(folder: Path) -> dict:
    """``{band number: [paths]}`` of the ``*_NN.png`` files directly in ``folder``."""
    bands: dict = {}
    for f in folder.iterdir():
        m = _BAND_RE.match(f.name)
        if m and f.is_file() and not _is_stray(f):
            bands.setdefault(int(m.group("num")), []).append(f)
    return bands


def _strip_ms(name: str) -> str:
    return name[:-3] if name.lower().endswith("_ms") else name


def _group(pattern: re.Pattern[str], name: str, group: str) -> str:
    """``group`` of a file ``name`` already selected by ``pattern``."""
    match = pattern.match(name)
    if match is None:
        raise ValueError(f"{name} does not match {pattern.pattern}")
    return match.group(group)


def _scene_name(folder: Path) -> str:
    """The band files' common prefix without ``_ms`` (as :func:`load_cave_scene` names the
    scene), else the folder name without ``_ms``."""
    prefixes = {_group(_BAND_RE, f.name, "prefix") for fs in _band_files(folder).values() for f in fs}
    return _strip_ms(prefixes.pop() if len(prefixes) == 1 else folder.name)


def _subdirs(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _is_stray(p))


def _find_scene_dirs(root: Path) -> list:
    found = []
    for child in _subdirs(root):
        if _band_files(child):
            found.append(child)  # flattened layout
            continue
        found.extend(g for g in _subdirs(child) if _band_files(g))  # nested layout
    return found


def list_cave_scenes(root: Union[PathLike, Sequence[PathLike]]) -> list:
    """Find the CAVE scenes under ``root``, a folder or a list of folders.

    Args:
        root: a CAVE folder, or a sequence of them (e.g. the development scenes in one place
            and more scenes in another); the scenes of all of them are listed together.

    Returns:
        ``list[SceneDir]`` sorted by name; ``SceneDir.path`` is the folder that directly holds
        the band PNGs (the inner ``<scene>_ms`` of the nested layout). Pass it, or the outer
        folder, to :func:`load_cave_scene`.

    Raises:
        FileNotFoundError: ``root`` does not exist (the message says how to get the data).
        DataFormatError: ``root`` is a file (e.g. the zip: the message says how to unpack
            it), holds no scene, or two folders claim the same scene name (within one root
            or across roots; the message names both paths).
    """
    if isinstance(root, (list, tuple)):
        return _list_many(root)
    root = Path(root).expanduser()  # type: ignore[arg-type]  # one folder (str or a path)
    if root.is_file():
        raise _not_a_folder(root, "CAVE folder")
    if not root.is_dir():
        raise FileNotFoundError(
            f"CAVE folder not found: {root}. {_GET_DATA} Here: "
            f"inr_lib.data.download_cave({str(root)!r})."
        )
    dirs = [root] if _band_files(root) else _find_scene_dirs(root)  # root may be one scene
    if not dirs:
        wrappers = _subdirs(root)
        if len(wrappers) == 1:  # e.g. root/complete_ms_data/<scene>_ms/...
            dirs = _find_scene_dirs(wrappers[0])
    if not dirs:
        content = sorted(p.name for p in root.iterdir())[:10]
        raise DataFormatError(
            f"no CAVE scenes in {root}: expected folders like <scene>_ms/<scene>_ms/"
            f"<scene>_ms_01.png (or <scene>_ms/<scene>_ms_01.png), found {content or 'an empty folder'}. "
            f"{_GET_DATA}"
        )
    scenes: dict = {}
    for d in dirs:
        name = _scene_name(d)
        if name in scenes:
            raise DataFormatError(
                f"scene {name!r} found twice under {root}: {scenes[name]} and {d}; remove one copy"
            )
        scenes[name] = d
    return [SceneDir(n, scenes[n]) for n in sorted(scenes)]


def _list_many(roots) -> list:
    """:func:`list_cave_scenes` over several folders; a scene name found twice is an error."""
    if not roots:
        raise ValueError("expected at least one CAVE folder, got an empty list")
    seen: list = []
    for r in roots:
        twice = [p for p in seen if Path(p).expanduser().resolve() == Path(r).expanduser().resolve()]
        if twice:
            spelled = f" (as {twice[0]} and {r})" if str(twice[0]) != str(r) else ""
            raise ValueError(f"the CAVE folder {r} is given twice{spelled}; give each folder once")
        seen.append(r)
    scenes: dict = {}
    for r in roots:
        for s in list_cave_scenes(r):
            if s.name in scenes:
                raise DataFormatError(
                    f"scene {s.name!r} is in two CAVE folders: {scenes[s.name].path} and {s.path}; "
                    f"remove one copy or leave one folder out"
                )
            scenes[s.name] = s
    return [scenes[n] for n in sorted(scenes)]


# --------------------------------------------------------------------------------------------
# loading one scene


def _band_to_grey(values: np.ndarray, path: Path) -> np.ndarray:
    """(H, W, C) samples -> (H, W); refuses colour channels that differ."""
    c = values.shape[2]
    if c in (1, 2):  # grey, grey + alpha
        return values[:, :, 0]
    r, g, b = values[:, :, 0], values[:, :, 1], values[:, :, 2]
    differ = (r != g) | (g != b)
    if differ.any():
        n = int(differ.sum())
        y, x = map(int, np.argwhere(differ)[0])
        raise DataFormatError(
            f"{path}: a band must be a grey image, but its colour channels differ at {n} "
            f"pixels (first at row {y}, col {x}: RGB = {tuple(int(v) for v in values[y, x, :3])}). "
            "This is not a CAVE band image; replace the file with the original from "
            "complete_ms_data.zip"
        )
    return r


def _resolve_scene_folder(folder: Path) -> tuple:
    bands = _band_files(folder)
    if not bands:
        inner = [d for d in _subdirs(folder) if _band_files(d)]
        if len(inner) == 1:
            folder, bands = inner[0], _band_files(inner[0])
        elif len(inner) > 1:
            raise DataFormatError(
                f"{folder} holds several scenes ({[d.name for d in inner]}); pass one scene "
                "folder, or use list_cave_scenes / load_cave for many"
            )
    if not bands:
        content = sorted(p.name for p in folder.iterdir())[:10]
        raise DataFormatError(
            f"no band images in {folder}: expected 31 files <scene>_ms_01.png ... "
            f"<scene>_ms_31.png, found {content or 'an empty folder'}"
        )
    return folder, bands


def _check_band_numbers(folder: Path, bands: dict) -> str:
    prefixes = sorted({_group(_BAND_RE, f.name, "prefix") for fs in bands.values() for f in fs})
    if len(prefixes) > 1:
        raise DataFormatError(
            f"{folder}: band files of several scenes are mixed ({prefixes}); keep one scene per folder"
        )
    dup = {n: sorted(f.name for f in fs) for n, fs in bands.items() if len(fs) > 1}
    if dup:
        raise DataFormatError(
            f"{folder}: duplicate band numbers {dup}; expected exactly one file per band 01..31. "
            "Remove the extra copies"
        )
    expected = set(range(1, N_BANDS + 1))
    missing, extra = sorted(expected - set(bands)), sorted(set(bands) - expected)
    if missing or extra:
        raise DataFormatError(
            f"{folder}: expected bands 01..{N_BANDS} (400..700 nm), "
            + (f"missing band(s) {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unexpected band number(s) {extra}" if extra else "")
            + ". Re-extract the scene from complete_ms_data.zip"
        )
    return prefixes[0]


def _find_rgb(folder: Path, prefix: str, name: str):
    cands = [f for f in folder.iterdir() if _RGB_RE.match(f.name) and f.is_file() and not _is_stray(f)]
    for want in (prefix, name):
        exact = [f for f in cands if _group(_RGB_RE, f.name, "prefix").lower() == want.lower()]
        if exact:
            return exact[0]
    if len(cands) == 1:
        return cands[0]
    if len(cands) > 1:
        raise DataFormatError(
            f"{folder}: several RGB images {sorted(f.name for f in cands)} and none is named "
            f"{name}_RGB.bmp; keep one"
        )
    return None


def _read_bands(bands: dict) -> tuple[np.ndarray, set, set]:
    """Read bands 01..31 (``{number: [path]}``) into float32 ``(31, H, W)`` in [0, 1], each
    divided by its own file's ``2**bitdepth - 1``; also the bit depths and channel counts
    found. All bands must have one size."""
    hsi = None
    depths, channels = set(), set()
    for k in range(1, N_BANDS + 1):
        path = bands[k][0]
        values, depth = read_png(path)
        grey = _band_to_grey(values, path)
        if hsi is None:
            hsi = np.empty((N_BANDS,) + grey.shape, dtype=np.float32)
        elif grey.shape != hsi.shape[1:]:
            raise DataFormatError(
                f"{path}: band {k:02d} is {grey.shape[1]}x{grey.shape[0]} (WxH) but band 01 is "
                f"{hsi.shape[2]}x{hsi.shape[1]}; all bands of a scene must have one size"
            )
        np.divide(grey, np.float32(2**depth - 1), out=hsi[k - 1], dtype=np.float32)
        depths.add(depth)
        channels.add(values.shape[2])
    assert hsi is not None        # the loop ran N_BANDS times
    return hsi, depths, channels


def load_cave_scene(scene_dir: PathLike) -> Scene:
    """Load one CAVE scene.

    Args:
        scene_dir: the folder holding ``<scene>_ms_01.png`` ... ``_31.png`` and
            ``<scene>_RGB.bmp``, or its parent ``<scene>_ms`` of the nested layout.

    Returns:
        :class:`Scene` with ``hsi`` float32 ``(31, H, W)`` (band 01 = 400 nm ... band 31 =
        700 nm), each band divided by its own file's ``2**bitdepth - 1``; ``rgb`` float32
        ``(3, H, W)`` from ``<scene>_RGB.bmp`` divided by 255, or ``None`` when the folder has
        no RGB image (``meta["rgb_path"]`` is then ``None``). ``meta`` records the folder,
        the band bit depths and channel counts found.

    Raises:
        FileNotFoundError: the folder does not exist.
        DataFormatError: missing / duplicate / extra band numbers, a band whose colour
            channels differ, bands of different sizes, an RGB image of another size, a
            truncated or corrupt file.
    """
    folder = Path(scene_dir).expanduser()
    if folder.is_file():
        raise _not_a_folder(folder, "CAVE scene folder")
    if not folder.is_dir():
        raise FileNotFoundError(f"CAVE scene folder not found: {folder}. {_GET_DATA}")
    folder, bands = _resolve_scene_folder(folder)
    prefix = _check_band_numbers(folder, bands)
    name = _strip_ms(prefix)

    hsi, depths, channels = _read_bands(bands)
    rgb_path = _find_rgb(folder, prefix, name)
    rgb = read_paired_rgb(rgb_path, hsi, "the bands", ". Replace it with the original, or "
                          "delete it to load the scene without RGB")
    meta = {
        "dataset": "cave",
        "path": str(folder),
        "band_bitdepths": sorted(depths),
        "band_channels": sorted(channels),
        "rgb_path": None if rgb_path is None else str(rgb_path),
    }
    return Scene(name=name, hsi=hsi, rgb=rgb, wavelengths=WAVELENGTHS.astype(np.float64), meta=meta)


def _requested(scenes, split: str) -> list | None:
    if scenes is None or scenes == "all":
        return None
    if isinstance(scenes, str):
        if scenes in ("train", "test"):
            return cave_split(split)[scenes]
        return [scenes]
    return _scene_names(scenes)


def _select(root, scenes, split: str, strict: bool) -> list:
    found = {s.name: s for s in list_cave_scenes(root)}
    wanted = _requested(scenes, split)
    if wanted is None:
        return list(found.values())
    missing = [n for n in wanted if n not in found]
    present = [found[n] for n in wanted if n in found]
    if missing:
        msg = (
            f"{len(missing)} of {len(wanted)} requested CAVE scenes are not in {root}: "
            f"{missing}. Present: {sorted(found)}."
        )
        if strict or not present:
            raise FileNotFoundError(f"{msg} {_GET_DATA}")
        warnings.warn(f"{msg} Loading the {len(present)} present ones.", stacklevel=3)
    return present


def iter_cave(
    root: Union[PathLike, Sequence[PathLike]],
    scenes: Union[None, str, Sequence[str]] = None,
    split: str = "default",
    strict: bool = False,
) -> Iterator[Scene]:
    """Like :func:`load_cave`, but yields one scene at a time (one scene in memory)."""
    for s in _select(root, scenes, split, strict):
        yield load_cave_scene(s.path)


def load_cave(
    root: Union[PathLike, Sequence[PathLike]],
    scenes: Union[None, str, Sequence[str]] = None,
    split: str = "default",
    strict: bool = False,
) -> list:
    """Load several CAVE scenes.

    Args:
        root: the CAVE folder (any layout :func:`list_cave_scenes` accepts), or a list of
            folders whose scenes are taken together.
        scenes: ``None`` or ``"all"`` (every scene found), ``"train"`` / ``"test"`` (that part
            of ``split``), one scene name, or a list of names.
        split: split name used for ``"train"`` / ``"test"`` (see :func:`cave_split`).
        strict: raise when a requested scene is missing, instead of warning.

    Returns:
        ``list[Scene]`` in the requested order (sorted by name for ``None``). Requested
        scenes that are not present are named in a ``UserWarning``; if none is present, a
        ``FileNotFoundError`` says which and how to get them. Each scene is about 33 MB in
        memory; use :func:`iter_cave` to stream.
    """
    return list(iter_cave(root, scenes, split, strict))
