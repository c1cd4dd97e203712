"""The NUS hyperspectral dataset (Nguyen, Prasad, Brown, ECCV 2014).

Copies of the NUS MAT files differ: the cube may be called ``tensor`` (``H x W x bands``, the
common case, next to an ``illumination`` vector) or otherwise, the bands may cover 400-720
or 420-720 nm, and a wavelength vector may or may not be stored. :func:`load_nus` handles
this as follows (every choice is recorded in ``Scene.meta``):

* **Format**: MATLAB v5 (scipy) or v7.3 (HDF5, h5py); both are read in MATLAB axis order.
* **Cube**: the first of ``keys`` present in the file (default :data:`NUS_CUBE_KEYS`); its
  band axis is the one whose length matches the wavelength vector, else the last
  (MATLAB ``H x W x bands``).
* **Wavelengths**: the ``wavelengths=`` argument, else the first of ``wavelength_keys``
  present in the file (default :data:`NUS_WAVELENGTH_KEYS`), else **assumed** to start at
  400 nm in 10 nm steps (``400 + 10 k``; an assumption, pass ``wavelengths=`` if your copy
  differs).
* **Resampling** to 400, 410, ..., 700 nm: bands at those wavelengths are copied exactly;
  others are interpolated linearly between the two neighbouring bands.
* **Coverage**: if the file does not reach 400 or 700 nm (e.g. 420-720 nm), it is an error
  unless ``extrapolate=True``, which holds the nearest measured band constant over the
  missing wavelengths (an invented value; the wavelengths concerned are listed in
  ``meta["extrapolated_nm"]``).
* **Normalisation** to [0, 1]: divide by the maximum of the resampled 400..700 nm cube
  (default; the scene's brightest sample becomes 1, so absolute radiance is not kept), or by
  ``white_level=`` when given (values above it are an error). Negative values are an error
  unless ``clip_negative=True`` (sets them to 0).
* **RGB**: NUS ships no RGB rendering in this format, so ``rgb`` is ``None`` unless
  ``rgb_path=`` is given.
* The ``illumination`` vector, when present, is resampled the same way and stored in
  ``meta["illumination"]`` (numpy ``(31,)``, not normalised).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np

from ..files.readers import (
    DataFormatError,
    MatData,
    PathLike,
    read_mat,
    read_paired_rgb,
)
from ..spectral import WAVELENGTHS
from .scene import Scene

__all__ = ["NUS_CUBE_KEYS", "NUS_WAVELENGTH_KEYS", "load_nus", "resample_bands"]

#: Variable names tried, in order, for the spectral cube.
NUS_CUBE_KEYS = ("tensor", "hsi", "cube", "rad", "hyperimg", "img", "data")
#: Variable names tried, in order, for the wavelength vector (nm).
NUS_WAVELENGTH_KEYS = ("bands", "wavelengths", "wavelength", "wl", "lambda")
_TOL = 1e-6


def resample_bands(
    cube: np.ndarray,
    wavelengths: Union[np.ndarray, Sequence[float]],
    target: Union[np.ndarray, Sequence[float]] = WAVELENGTHS,
    extrapolate: bool = False,
    name: str = "cube",
) -> tuple[np.ndarray, list[float]]:
    """Resample ``cube`` ``(B, ...)`` given at ``wavelengths`` ``(B,)`` to ``target`` nm.

    Linear interpolation between neighbouring bands; a target that coincides with a band is
    an exact copy. Outside the measured range: an error, or (``extrapolate=True``) the
    nearest edge band repeated.

    Returns:
        ``(out, extrapolated)``: ``out`` float32 ``(len(target), ...)`` and the list of
        target wavelengths that were extrapolated.
    """
    w = np.asarray(wavelengths, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=np.float64)
    if w.size != cube.shape[0]:
        raise DataFormatError(f"{name}: {w.size} wavelengths for {cube.shape[0]} bands")
    if not np.isfinite(w).all():
        raise DataFormatError(f"{name}: wavelength vector holds NaN/inf: {w}")
    order = np.argsort(w, kind="stable")
    w, cube = w[order], cube[order]
    if np.any(np.diff(w) <= 0):
        raise DataFormatError(f"{name}: wavelengths must be distinct, found {w}")
    outside = target[(target < w[0] - _TOL) | (target > w[-1] + _TOL)]
    if outside.size and not extrapolate:
        raise DataFormatError(
            f"{name}: the data cover {w[0]:g}-{w[-1]:g} nm, which does not include "
            f"{target[0]:g}..{target[-1]:g} nm (missing: {[float(x) for x in outside]} nm). "
            "Nothing is measured there. Pass extrapolate=True to repeat the nearest measured "
            "band over the missing wavelengths (recorded in meta['extrapolated_nm']), or use "
            "data that cover the range"
        )
    pos = np.interp(target, w, np.arange(w.size))  # fractional band index, clamped at the ends
    for j, t in enumerate(target):  # snap exact matches so they are copied bit for bit
        hit = np.flatnonzero(np.abs(w - t) <= _TOL)
        if hit.size:
            pos[j] = hit[0]
    out = np.empty((target.size,) + cube.shape[1:], dtype=np.float32)
    for j, p in enumerate(pos):
        i0 = int(np.floor(p))
        f = p - i0
        if f == 0.0 or i0 + 1 >= w.size:
            out[j] = cube[min(i0, w.size - 1)]
        else:
            out[j] = (1.0 - f) * cube[i0].astype(np.float64) + f * cube[i0 + 1].astype(np.float64)
    return out, [float(x) for x in outside]


def _band_axis(shape, n_wavelengths) -> int:
    if n_wavelengths is None or shape[-1] == n_wavelengths:
        return len(shape) - 1
    axes = [i for i, s in enumerate(shape) if s == n_wavelengths]
    if len(axes) == 1:
        return axes[0]
    raise DataFormatError(
        f"cannot tell the band axis of a cube of shape {shape} (MATLAB order) from "
        f"{n_wavelengths} wavelengths"
    )


def _nus_cube(path: Path, mat: MatData, keys: list) -> tuple[str, np.ndarray]:
    """``(name, cube)``: the first of ``keys`` in the file, checked to be 3-D, no empty axis."""
    cube_key = next((k for k in keys if k in mat.arrays), None)
    if cube_key is None:
        raise DataFormatError(
            f"{path}: none of the cube variables {keys} is in the file; it has {mat.keys}. "
            "Pass keys=[<name of the spectral cube>]"
        )
    cube = mat.arrays[cube_key]
    if cube.ndim != 3 or 0 in cube.shape:
        raise DataFormatError(
            f"{path}: {cube_key!r} has shape {cube.shape}, expected H x W x bands (3-D, "
            "no empty axis)"
        )
    return cube_key, cube


def _nus_wavelengths(mat: MatData, wavelength_keys: list,
                     wavelengths: Union[np.ndarray, Sequence[float], None]
                     ) -> tuple[np.ndarray | None, str | None]:
    """``(wavelengths (bands,) nm or None, where they came from)``: the argument, else the
    first of ``wavelength_keys`` in the file, else ``(None, None)``."""
    if wavelengths is not None:
        return np.asarray(wavelengths, dtype=np.float64).ravel(), "argument"
    w_key = next((k for k in wavelength_keys if k in mat.arrays), None)
    if w_key is None:
        return None, None
    return np.asarray(mat.arrays[w_key], dtype=np.float64).ravel(), f"file variable {w_key!r}"


def _nus_bands(path: Path, mat: MatData, cube_key: str, cube: np.ndarray,
               wavelength_keys: list, wavelengths: Union[np.ndarray, Sequence[float], None],
               extrapolate: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """``(bands (B, H, W), wavelengths (B,) nm, their source)``, with the band axis found from
    the wavelength vector (assumed ``400 + 10 k`` nm when there is none); finite values only."""
    w, w_source = _nus_wavelengths(mat, wavelength_keys, wavelengths)
    axis = _band_axis(cube.shape, None if w is None else w.size)
    bands = np.moveaxis(cube, axis, 0)  # (B, H, W)
    if w is None:
        w = 400.0 + 10.0 * np.arange(bands.shape[0])
        w_source = "assumed 400 + 10 k nm (no wavelength vector in the file)"
        if w[-1] < 700 - _TOL and not extrapolate:
            raise DataFormatError(
                f"{path}: {cube_key!r} has shape {cube.shape} (MATLAB order) and the file has no "
                f"wavelength vector, so its last axis ({bands.shape[0]} values) was taken as bands "
                f"at 400, 410, ... nm, ending at {w[-1]:g} nm, short of 700 nm. If the bands lie "
                f"on another axis (a cube stored bands-first), pass wavelengths= (a vector of the "
                f"band centres in nm; the axis of that length is used)")
    if w.size != bands.shape[0]:
        raise DataFormatError(
            f"{path}: {w.size} wavelengths ({w_source}) for a cube with {bands.shape[0]} bands"
        )
    if bands.dtype.kind == "f" and not np.isfinite(bands).all():
        raise DataFormatError(
            f"{path}: {cube_key!r} holds {int((~np.isfinite(bands)).sum())} NaN/inf values"
        )
    assert w_source is not None          # set with w, by the file or the assumption above
    return bands, w, w_source


def _check_float32_range(path: Path, cube_key: str, cube: np.ndarray) -> None:
    """One line (not 31 overflow warnings) for values no radiance has: beyond float32."""
    if cube.size and cube.dtype.kind == "f":
        with np.errstate(all="ignore"):
            peak = float(np.nanmax(np.abs(cube)))
        if np.isfinite(peak) and peak > float(np.finfo(np.float32).max):   # NaN/Inf: refused later
            raise DataFormatError(f"{path}: {cube_key!r} has values up to {peak:.3g}, beyond the "
                                  f"float32 range (3.4e38) the cube is kept in; the file is "
                                  f"damaged or does not hold radiance")


def _normalise(hsi: np.ndarray, path: Path, cube_key: str, white_level: float | None,
               clip_negative: bool) -> tuple[float, str]:
    """Scale ``hsi`` (31, H, W) in place to [0, 1] (by its maximum or ``white_level``), after
    refusing (or, with ``clip_negative``, zeroing) negative values. Returns ``(scale, rule)``."""
    lo = float(hsi.min())
    if lo < 0:
        if not clip_negative:
            raise DataFormatError(
                f"{path}: {cube_key!r} has negative values (min {lo:.4g}); expected radiance "
                ">= 0. Pass clip_negative=True to set them to 0"
            )
        np.maximum(hsi, 0, out=hsi)
    if white_level is None:
        scale, norm = float(hsi.max()), "divided by the maximum of the 400..700 nm cube"
        if scale <= 0:
            raise DataFormatError(f"{path}: the cube is all zeros; cannot normalise")
    else:
        scale, norm = float(white_level), f"divided by white_level={white_level:g}"
        if float(hsi.max()) > scale:
            raise DataFormatError(
                f"{path}: values reach {float(hsi.max()):g}, above white_level={scale:g}; "
                "pass a larger white_level or None (divide by the maximum)"
            )
    hsi /= np.float32(scale)
    np.clip(hsi, 0.0, 1.0, out=hsi)  # float32 rounding of max/max can exceed 1 by an ulp
    return scale, norm


def _illumination(mat: MatData, w: np.ndarray) -> dict:
    """Meta entries for the file's ``illumination`` vector: resampled to 400..700 nm
    (``"illumination"``, ``(31,)``) when it has one value per band, else kept raw."""
    illum = mat.arrays.get("illumination")
    if illum is None:
        return {}
    illum = np.asarray(illum, dtype=np.float64).ravel()
    if illum.size == w.size:
        return {"illumination": resample_bands(illum.reshape(-1, 1), w, extrapolate=True)[0][:, 0]}
    return {"illumination_raw": illum}


def load_nus(
    mat_path: PathLike,
    keys: Sequence[str] = NUS_CUBE_KEYS,
    wavelength_keys: Sequence[str] = NUS_WAVELENGTH_KEYS,
    wavelengths: Union[np.ndarray, Sequence[float], None] = None,
    white_level: float | None = None,
    extrapolate: bool = False,
    clip_negative: bool = False,
    rgb_path: PathLike | None = None,
) -> Scene:
    """Load one NUS scene, resampled to 400..700 nm and normalised to [0, 1].

    See the module docstring for every rule and assumption.

    Args:
        mat_path: ``.mat`` file (v5 or v7.3).
        keys: cube variable names to try, in order.
        wavelength_keys: wavelength variable names to try, in order.
        wavelengths: ``(bands,)`` nm, overrides the file (use when the file has none and does
            not start at 400 nm).
        white_level: divide by this instead of the cube's maximum.
        extrapolate: allow repeating the edge band where the data do not reach 400/700 nm.
        clip_negative: set negative values to 0 instead of raising.
        rgb_path: optional RGB image of the same size.

    Returns:
        :class:`Scene`: ``hsi`` float32 ``(31, H, W)`` in [0, 1], ``rgb`` as given or None.
    """
    path = Path(mat_path)
    keys, wavelength_keys = list(keys), list(wavelength_keys)
    mat = read_mat(path, keys + wavelength_keys + ["illumination"])
    cube_key, cube = _nus_cube(path, mat, keys)
    _check_float32_range(path, cube_key, cube)
    bands, w, w_source = _nus_bands(path, mat, cube_key, cube, wavelength_keys, wavelengths,
                                    extrapolate)
    hsi, extrapolated = resample_bands(bands, w, extrapolate=extrapolate, name=str(path))
    scale, norm = _normalise(hsi, path, cube_key, white_level, clip_negative)
    meta = {
        "dataset": "nus",
        "path": str(path),
        "mat_format": mat.format,
        "key": cube_key,
        "source_wavelengths": w.tolist(),
        "wavelength_source": w_source,
        "extrapolated_nm": extrapolated,
        "normalisation": norm,
        "scale": scale,
        "rgb_path": None if rgb_path is None else str(rgb_path),
        **_illumination(mat, w),
    }
    rgb = read_paired_rgb(rgb_path, hsi)
    return Scene(name=path.stem, hsi=hsi, rgb=rgb, wavelengths=WAVELENGTHS.astype(np.float64),
                 meta=meta)
