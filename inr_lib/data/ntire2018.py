"""The NTIRE 2018 spectral reconstruction challenge data (BGU/ICVL hyperspectral scenes).

Spectral files are MATLAB v7.3 (HDF5). The variable ``rad`` holds an ``H x W x 31`` cube of
12-bit values (0..4095); because MATLAB is column-major, h5py shows it as ``(31, W, H)``.
A ``bands`` variable with the wavelengths (400..700 nm, step 10) may be present. MATLAB v5
files with the same variable names are accepted too (scipy reads them directly as
``H x W x 31``).

Pairing with RGB, when ``rgb_path`` is not given, looks next to the MAT file for

* ``<name>_clean.png`` (the "Clean" track: noise-free 8-bit PNG), then
* ``<name>_camera.jpg`` (the "RealWorld" track: JPEG from an unknown camera response),

where ``<name>`` is the MAT file's stem (``BGU_HS_00001.mat`` -> ``BGU_HS_00001_clean.png``).
``track="clean"`` or ``"realworld"`` restricts the search to one of them. If the challenge's
RGB files live in another folder, pass ``rgb_path``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..files.readers import (
    DataFormatError,
    MatData,
    PathLike,
    check_rgb_size,
    read_mat,
    read_rgb_image,
)
from ..spectral import WAVELENGTHS
from .scene import Scene

__all__ = ["NTIRE2018_WHITE_LEVEL", "load_ntire2018", "find_ntire2018_rgb"]

#: 12-bit data: the spectra are divided by 4095 to give [0, 1].
NTIRE2018_WHITE_LEVEL = 4095
_RGB_SUFFIXES = {"clean": ("_clean.png",), "realworld": ("_camera.jpg",)}


def find_ntire2018_rgb(mat_path: PathLike, track: str | None = None) -> Path | None:
    """The RGB file paired with ``mat_path`` by the naming rule above, or ``None``."""
    mat_path = Path(mat_path)
    if track is not None and track not in _RGB_SUFFIXES:
        raise ValueError(f"track must be None, 'clean' or 'realworld', found {track!r}")
    tracks = [track] if track else ["clean", "realworld"]
    for t in tracks:
        for suffix in _RGB_SUFFIXES[t]:
            cand = mat_path.with_name(mat_path.stem + suffix)
            if cand.is_file():
                return cand
    return None


def _check_wavelengths(bands, path: Path) -> None:
    w = np.asarray(bands, dtype=np.float64).ravel()
    if w.shape != WAVELENGTHS.shape or not np.allclose(w, WAVELENGTHS, atol=0.5):
        shown = f"{w[0]:g}..{w[-1]:g} nm ({w.size} values)" if w.size else "an empty vector"
        raise DataFormatError(
            f"{path}: 'bands' gives {shown}, expected 400..700 nm in 10 nm steps (31 values). "
            "For other spectral grids use inr_lib.data.load_nus, which resamples"
        )


def _scale_rule(cube, path: Path, key: str, white_level: float, hi: float):
    """``(white_level to use, rule as text)``: a float cube already within [0, 1] (with
    fractional values) is not divided by 4095 again (with a warning); otherwise the given
    ``white_level``."""
    if white_level == NTIRE2018_WHITE_LEVEL and cube.dtype.kind == "f" and hi <= 1.0 and \
            np.any(cube != np.round(cube)):
        warnings.warn(f"{path}: {key!r} already lies in [0, 1] (max {hi:g}), so it is taken as "
                      f"normalised and not divided by {NTIRE2018_WHITE_LEVEL}; pass white_level= "
                      f"to choose the scale yourself", stacklevel=2)
        return 1.0, "float data within [0, 1]: taken as already normalised (not divided by 4095)"
    return white_level, f"divided by white_level {white_level:g}"


def _orient_like_rgb(hsi, rgb, path: Path, rgb_path):
    """Transpose ``hsi`` (31, H, W) when the RGB image shows it is stored transposed (its
    shape is H/W swapped, or, for a square scene, its brightness pattern matches the
    transposed cube far better), with a warning. Returns ``(hsi, rule as text)``."""
    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        d = float(np.sqrt((a * a).sum() * (b * b).sum()))
        return float((a * b).sum()) / d if d > 0 else 0.0

    H, W = hsi.shape[1:]
    swapped = rgb.shape[1:] == (W, H) and H != W
    if H == W and H > 1:
        grey, lum = hsi.mean(0), rgb.mean(0)
        c_as, c_t = corr(grey, lum), corr(grey.T, lum)
        swapped = c_t > 0.5 and c_t > c_as + 0.2
    if not swapped:
        return hsi, "as stored (checked against the RGB image)"
    warnings.warn(f"{path}: the spectral cube is stored transposed relative to {rgb_path}; "
                  f"it was transposed to match the RGB image (meta['orientation'] says so)", stacklevel=2)
    return np.ascontiguousarray(hsi.transpose(0, 2, 1)), \
        "transposed to match the RGB image (the file stores it the other way round)"


def _ntire_cube(path: Path, mat: MatData, key: str) -> np.ndarray:
    """The cube ``key`` (MATLAB order ``H x W x 31``), checked: present, 31 bands, finite, and
    ``bands`` (when stored) 400..700 nm."""
    if key not in mat.arrays:
        raise DataFormatError(
            f"{path}: no variable {key!r}; the file has {mat.keys}. Pass key=<name of the "
            "31-band cube>"
        )
    cube = mat.arrays[key]  # MATLAB order: H x W x 31
    if cube.ndim != 3 or cube.shape[2] != WAVELENGTHS.size or 0 in cube.shape:
        raise DataFormatError(
            f"{path}: variable {key!r} has shape {cube.shape} (MATLAB order), expected "
            f"H x W x {WAVELENGTHS.size} with H, W >= 1"
        )
    if "bands" in mat.arrays:
        _check_wavelengths(mat.arrays["bands"], path)
    if cube.dtype.kind == "f" and not np.isfinite(cube).all():
        raise DataFormatError(
            f"{path}: {key!r} holds {int((~np.isfinite(cube)).sum())} NaN/inf values; "
            "expected finite 12-bit data"
        )
    return cube


def _to_unit_range(cube: np.ndarray, path: Path, key: str,
                   white_level: float) -> tuple[np.ndarray, float, str]:
    """``(hsi float32 (31, H, W) = cube / white_level, white_level used, rule as text)``;
    values outside ``[0, white_level]`` are an error."""
    lo, hi = float(cube.min()), float(cube.max())
    white_level, scale_rule = _scale_rule(cube, path, key, white_level, hi)
    if lo < 0 or hi > white_level:
        raise DataFormatError(
            f"{path}: {key!r} ranges over [{lo:g}, {hi:g}], expected [0, {white_level:g}]. "
            "Pass white_level= if the data use another scale"
        )
    hsi = np.ascontiguousarray(cube.transpose(2, 0, 1), dtype=np.float32)
    hsi /= np.float32(white_level)
    return hsi, white_level, scale_rule


def load_ntire2018(mat_path: PathLike, rgb_path: PathLike | None = None, key: str = "rad",
                   track: str | None = None,
                   white_level: float = NTIRE2018_WHITE_LEVEL) -> Scene:
    """Load one NTIRE 2018 scene.

    Args:
        mat_path: the spectral ``.mat`` (v7.3/HDF5 or v5).
        rgb_path: the RGB image; ``None`` to look next to the MAT file (module docstring).
        key: variable holding the cube (``"rad"`` in the challenge files).
        track: ``None`` (Clean first, then RealWorld), ``"clean"`` or ``"realworld"``; only
            used when ``rgb_path`` is None.
        white_level: divisor giving [0, 1]; 4095 for the 12-bit challenge data. With the
            default, a float cube already within [0, 1] is taken as normalised (warning;
            ``meta["scale_rule"]`` records which rule was used).

    Returns:
        :class:`Scene` with ``hsi`` float32 ``(31, H, W)`` = ``rad / white_level`` in the
        image's own orientation (row = y; a cube stored transposed relative to the RGB
        image is transposed back, with a warning and ``meta["orientation"]``), ``rgb``
        float32 ``(3, H, W)`` (8-bit / 255) or ``None`` when no RGB file was found
        (``meta["rgb_path"]`` is then ``None``).

    Raises:
        DataFormatError: ``key`` missing (the message lists the file's variables), not
            31 bands, NaN/inf, values below 0 or above ``white_level``, ``bands`` not
            400..700 nm, or an RGB image of another size.
    """
    path = Path(mat_path)
    mat = read_mat(path, [key, "bands"])
    cube = _ntire_cube(path, mat, key)
    hsi, white_level, scale_rule = _to_unit_range(cube, path, key, white_level)
    if rgb_path is None:
        rgb_path = find_ntire2018_rgb(path, track)
    rgb = None
    if rgb_path is not None:
        rgb = read_rgb_image(rgb_path)
        hsi, orientation = _orient_like_rgb(hsi, rgb, path, rgb_path)
        check_rgb_size(rgb, hsi, rgb_path, advice=" (wrong pairing?)")
    else:
        orientation = "as stored (not checked: no RGB image to compare with)"
    meta = {
        "dataset": "ntire2018",
        "path": str(path),
        "mat_format": mat.format,
        "key": key,
        "white_level": white_level,
        "scale_rule": scale_rule,
        "orientation": orientation,
        "rgb_path": None if rgb_path is None else str(rgb_path),
    }
    return Scene(name=path.stem, hsi=hsi, rgb=rgb, wavelengths=WAVELENGTHS.astype(np.float64),
                 meta=meta)
