"""Smooth functions of wavelength: the bases of the continuous spectral output, and band subsets.

A model built with ``spectral="continuous"`` (see :class:`inr_lib.model.ModelConfig`) does not
output 31 band values per pixel but ``K`` coefficients ``c_k`` of a smooth basis over the
trained range 400..700 nm; its spectrum at any wavelength ``l`` (nm) is

    s(l) = sum_k c_k B_k(l)

and the 31 bands are that function evaluated at :data:`~inr_lib.spectral.WAVELENGTHS`.

Two families are offered (``spectral`` names, parsed by :func:`parse_spectral`):

``"bsplineK"``
    clamped cubic B-splines with ``K`` functions on uniform knots over 400..700 nm
    (``K - 4`` interior knots). Each ``B_k >= 0``, they sum to 1 everywhere, and at most 4 are
    non-zero at any wavelength, so ``s(l)`` lies between the smallest and largest of the 4
    coefficients active there: the curve cannot ring beyond its own local coefficients.
``"cosineK"``
    the cosine series ``B_k(l) = cos(k pi (l - 400) / 300)``, ``k = 0..K-1`` (global support).

``"continuous"`` is :data:`DEFAULT_CONTINUOUS`, the form chosen by measurement on real CAVE
spectra (``benchmarks/spectral_basis.py``, table in ``benchmarks/results/spectral_basis.txt``):
fitted by least squares to the 16 even bands of 20,000 pixels of the dev18 training scenes,
cubic B-splines with 13 functions (a knot every 30 nm) predicted the 15 odd bands with the
lowest RMSE of all bases tried (B-splines with 8..16 functions, cosine series with 8..16
terms): 0.0082, against 0.0090 for linear and 0.0077 for cubic-spline interpolation of the
even bands. More functions fit better when all 31 bands are targets (RMSE 0.0054 with 13,
0.0042 with 16) but, fitted to 16 samples, 15 and 16 functions oscillate between them (RMSE
0.013 and 0.030 at the odd bands); 13 is the best compromise for a model that must also
learn from a subset of the bands.

Cost per pixel (paper widths: last hidden layer 64, FLOPs counting a multiply-add as 2): the
MLP's last layer costs ``2 * 64 * K + K`` = 1,677 for K = 13 instead of 3,999 for 31 bands;
evaluating the basis costs ``2 * K`` per wavelength (806 at the 31 band centres, done as a
dense product; a cubic B-spline has only 4 non-zero functions, 8 per wavelength if done
sparsely). The hypernetwork predicts fewer numbers per tile (P = 14,093 instead of 15,263), so
its 1x1 head saves ``2 * 1024 * 18 * 65 / 16`` = 149,760 FLOPs per pixel, and the model has
1,199,250 fewer parameters (62,346,189; ``small-paper``: 602,413 instead of 679,039;
``small``: 601,901 instead of 678,527).

``"coordinate"`` is the other way to be continuous in wavelength (NeSR, Xu et al. 2022): no
basis, the wavelength is an input of the MLP (:mod:`inr_lib.model.coordinate`).

Training on a subset of bands: :func:`band_indices` checks a list of wavelengths against the 31
band centres and :func:`target_bands` selects them from prediction and target before the loss.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..spectral import WAVELENGTHS

if TYPE_CHECKING:
    import torch
    from numpy.typing import ArrayLike

__all__ = ["SPECTRAL_RANGE", "DEFAULT_CONTINUOUS", "parse_spectral", "check_spectral",
           "bspline_basis", "cosine_basis", "basis_matrix", "as_wavelengths", "band_indices",
           "target_wavelengths", "target_bands", "interpolate_bands"]

#: The trained wavelength range in nm (both ends included).
SPECTRAL_RANGE = (400.0, 700.0)

#: What ``spectral="continuous"`` means (chosen by ``benchmarks/spectral_basis.py``).
DEFAULT_CONTINUOUS = "bspline13"

_FAMILIES = ("bspline", "cosine")
_MIN_TERMS = {"bspline": 4, "cosine": 1}
_MAX_TERMS = 31


def parse_spectral(name: str) -> tuple[str, int] | None:
    """``"bands"`` -> None; ``"continuous"`` / ``"bsplineK"`` / ``"cosineK"`` -> ``(family, K)``;
    ``"coordinate"`` -> ``("coordinate", 1)`` (the wavelength is an input of the MLP, which
    outputs one value: :mod:`inr_lib.model.coordinate`). ``K`` is the MLP's output width.

    Raises:
        ValueError: any other name, or ``K`` outside 4..31 (B-splines) / 1..31 (cosines).
    """
    if name == "bands":
        return None
    if name == "coordinate":
        return "coordinate", 1
    key = DEFAULT_CONTINUOUS if name == "continuous" else str(name)
    m = re.fullmatch(r"(bspline|cosine)(\d+)", key)
    if m is None:
        raise ValueError(f"unknown spectral {name!r}: expected 'bands', 'continuous' "
                         f"(= {DEFAULT_CONTINUOUS!r}), 'bsplineK', 'cosineK' (e.g. 'bspline12') "
                         f"or 'coordinate' (the wavelength as an MLP input)")
    family, k = m.group(1), int(m.group(2))
    if not _MIN_TERMS[family] <= k <= _MAX_TERMS:
        raise ValueError(f"spectral {name!r}: {family} needs {_MIN_TERMS[family]} to "
                         f"{_MAX_TERMS} terms, got {k}")
    return family, k


def check_spectral(name: str) -> None:
    """Raise ValueError if ``name`` is not a valid ``spectral`` option."""
    parse_spectral(name)


def as_wavelengths(wavelengths: ArrayLike | torch.Tensor, extrapolate: bool = False) -> np.ndarray:
    """Wavelengths in nm (list, numpy array or tensor, any shape with ``N`` values) as a
    ``(N,)`` float64 array, checked to be finite and (unless ``extrapolate``) inside
    :data:`SPECTRAL_RANGE`.

    Raises:
        ValueError: empty, not finite, or outside 400..700 nm.
    """
    if hasattr(wavelengths, "detach"):
        wavelengths = wavelengths.detach().cpu().numpy()
    wl = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    if wl.size == 0:
        raise ValueError("expected at least one wavelength in nm, got none")
    if not np.isfinite(wl).all():
        raise ValueError("wavelengths must be finite numbers in nm (found NaN or inf)")
    lo, hi = SPECTRAL_RANGE
    if not extrapolate and (wl.min() < lo or wl.max() > hi):
        bad = wl[(wl < lo) | (wl > hi)]
        raise ValueError(f"wavelengths must lie inside the trained range {lo:g}..{hi:g} nm, "
                         f"found {bad[:5].tolist()}; the model knows nothing outside it "
                         f"(pass extrapolate=True to evaluate the basis there anyway)")
    return wl


def bspline_basis(wavelengths: ArrayLike, k: int, degree: int = 3) -> np.ndarray:
    """Clamped B-splines of ``degree`` with ``k`` functions on uniform knots over 400..700 nm.

    Args:
        wavelengths: ``(N,)`` nm. Outside the range the end polynomial pieces are continued.
        k: number of basis functions (``>= degree + 1``).

    Returns:
        ``(N, k)`` float64; rows sum to 1 (partition of unity), entries >= 0 inside the range.
    """
    x = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    lo, hi = SPECTRAL_RANGE
    inner = np.linspace(lo, hi, k - degree + 1)                  # knot breakpoints
    t = np.concatenate([[lo] * degree, inner, [hi] * degree])    # k + degree + 1 knots
    # degree 0: indicator of the (non-degenerate) knot span holding x, ends clamped
    span = np.clip(np.searchsorted(inner, x, side="right") - 1, 0, len(inner) - 2) + degree
    basis = np.zeros((x.size, len(t) - 1))
    basis[np.arange(x.size), span] = 1.0
    for d in range(1, degree + 1):                               # Cox-de Boor recursion
        nxt = np.zeros((x.size, len(t) - 1 - d))
        for i in range(len(t) - 1 - d):
            left, right = t[i + d] - t[i], t[i + d + 1] - t[i + 1]
            if left > 0:
                nxt[:, i] += (x - t[i]) / left * basis[:, i]
            if right > 0:
                nxt[:, i] += (t[i + d + 1] - x) / right * basis[:, i + 1]
        basis = nxt
    return basis


def cosine_basis(wavelengths: ArrayLike, k: int) -> np.ndarray:
    """``cos(j pi (l - 400) / 300)`` for ``j = 0..k-1``: ``(N,)`` nm -> ``(N, k)`` float64."""
    x = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    lo, hi = SPECTRAL_RANGE
    u = (x - lo) / (hi - lo)
    return np.cos(np.pi * np.outer(u, np.arange(k)))


def basis_matrix(spectral: str, wavelengths: ArrayLike | torch.Tensor) -> np.ndarray:
    """``(N, K)`` float64: row ``n`` holds every basis function at ``wavelengths[n]`` (nm), so
    spectra at those wavelengths are ``coefficients @ basis_matrix(...).T``."""
    parsed = parse_spectral(spectral)
    if parsed is None:
        raise ValueError("spectral='bands' has no basis: its outputs are the 31 band values")
    family, k = parsed
    if family == "coordinate":
        raise ValueError("spectral='coordinate' has no basis: its MLP takes the wavelength as "
                         "an input (inr_lib.model.coordinate)")
    return bspline_basis(wavelengths, k) if family == "bspline" else cosine_basis(wavelengths, k)


def band_indices(wavelengths: Sequence[float] | None) -> list[int]:
    """Indices into the 31 bands of a list of band centres in nm (None: all 31).

    Raises:
        ValueError: a wavelength that is not one of 400, 410, ..., 700 nm, a repeated one,
            or an empty list.
    """
    if wavelengths is None:
        return list(range(len(WAVELENGTHS)))
    wl = np.asarray(list(wavelengths), dtype=np.float64).reshape(-1)
    if wl.size == 0:
        raise ValueError("wavelengths: expected a non-empty list of band centres in nm "
                         "(or None for all 31)")
    idx = []
    for w in wl:
        hit = np.flatnonzero(np.abs(WAVELENGTHS - w) < 1e-6)
        if hit.size == 0:
            raise ValueError(f"wavelengths: {w:g} nm is not a band centre; choose among "
                             f"400, 410, ..., 700 nm")
        idx.append(int(hit[0]))
    if len(set(idx)) != len(idx):
        raise ValueError(f"wavelengths: each band may appear once, got {wl.tolist()}")
    return sorted(idx)


def target_wavelengths(wavelengths: Sequence[float] | None) -> list[float] | None:
    """Validate a training config's target bands: None (all 31) or the sorted list of band
    centres in nm, as floats (e.g. ``[400.0, 420.0, ..., 700.0]``).

    Raises:
        ValueError: not a list of band centres (see :func:`band_indices`).
    """
    if wavelengths is None:
        return None
    if isinstance(wavelengths, (str, bytes)) or not hasattr(wavelengths, "__iter__"):
        raise ValueError(f"wavelengths: expected a list of band centres in nm (or None for "
                         f"all 31), got {wavelengths!r}")
    try:
        return [float(WAVELENGTHS[i]) for i in band_indices(wavelengths)]
    except TypeError:
        raise ValueError(f"wavelengths: expected numbers in nm, got {wavelengths!r}") from None


def target_bands(pred: torch.Tensor, hsi: torch.Tensor, wavelengths: Sequence[float] | None,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep only the target bands of prediction and target before the loss.

    Args:
        pred: ``(B, 31, H, W)`` model output, or ``(B, len(wavelengths), H, W)``: the model
            evaluated at the target bands already (a coordinate model in training).
        hsi: ``(B, 31, H, W)`` ground truth.
        wavelengths: band centres in nm to train on (a subset of 400, 410, ..., 700), or
            None for all 31 (then both are returned unchanged).

    Returns:
        ``(pred_sel, hsi_sel)``, each ``(B, len(wavelengths), H, W)``: the other bands never
        reach the loss, so neither they nor their gradients affect training.
    """
    if wavelengths is None:
        return pred, hsi
    idx = band_indices(wavelengths)
    return (pred[:, idx] if pred.shape[1] == len(WAVELENGTHS) else pred), hsi[:, idx]


def interpolate_bands(cube: ArrayLike | torch.Tensor, from_wavelengths: Sequence[float],
                      to_wavelengths: Sequence[float], kind: str = "linear") -> np.ndarray:
    """Interpolate spectra sampled at some bands to other wavelengths, along the band axis.

    The baselines of the held-out-band experiment (chapter "Continuous in wavelength"): a
    model that predicts only the even bands, interpolated to the odd ones.

    Args:
        cube: ``(..., N, H, W)`` array or tensor, the N bands at ``from_wavelengths``.
        from_wavelengths: the N wavelengths of ``cube`` in nm, increasing.
        to_wavelengths: M wavelengths in nm inside ``[from[0], from[-1]]``.
        kind: ``"linear"`` (straight lines between neighbouring bands) or ``"cubic"``
            (a not-a-knot cubic spline through all N bands, ``scipy.interpolate.CubicSpline``).

    Returns:
        ``(..., M, H, W)`` float64 numpy array.

    Raises:
        ValueError: unknown ``kind``, wavelengths out of range or not increasing, or a band
            count that does not match ``cube``.
    """
    from scipy.interpolate import CubicSpline

    x = np.asarray(cube.detach().cpu() if hasattr(cube, "detach") else cube, dtype=np.float64)
    src = np.asarray(list(from_wavelengths), dtype=np.float64)
    dst = np.asarray(list(to_wavelengths), dtype=np.float64)
    if kind not in ("linear", "cubic"):
        raise ValueError(f"kind must be 'linear' or 'cubic', got {kind!r}")
    if x.ndim < 3 or x.shape[-3] != src.size:
        raise ValueError(f"cube has shape {x.shape}; expected (..., {src.size}, H, W) for "
                         f"{src.size} source wavelengths")
    if np.any(np.diff(src) <= 0) or dst.min() < src[0] or dst.max() > src[-1]:
        raise ValueError(f"from_wavelengths must increase and cover to_wavelengths "
                         f"({dst.min():g}..{dst.max():g} nm inside {src[0]:g}..{src[-1]:g} nm)")
    if kind == "cubic":
        return CubicSpline(src, x, axis=-3)(dst)
    hi = np.clip(np.searchsorted(src, dst, side="right"), 1, src.size - 1)
    t = ((dst - src[hi - 1]) / (src[hi] - src[hi - 1]))[:, None, None]
    return (1 - t) * x[..., hi - 1, :, :] + t * x[..., hi, :, :]
