"""Image-quality metrics for spectral reconstruction: PSNR, SSIM, SAM, RMSE, MRAE.

Every metric takes ``pred`` and ``target`` as torch tensors of shape ``(B, C, H, W)``
(C = 31 bands for hyperspectral images, any C works) with values in [0, 1], on any
device, float32 or float64, and returns **one value per image**: a float64 tensor of
shape ``(B,)`` on the inputs' device. Internally everything is computed in float64 so
that a metric does not depend on the dtype the model happened to run in (on consumer
GPUs float64 is slow; evaluation is a small cost next to inference). Averaging over
a test set (mean of per-image values) is left to the caller.

The ``*_per_band`` variants return ``(B, C)`` (one value per image and band) for plots
of error against wavelength. :func:`compute_all` evaluates all metrics at once,
:data:`METRICS` maps names to functions and :data:`HIGHER_IS_BETTER` says which way is
better.

Conventions (the details are in each function's docstring):

* PSNR: peak 1, from the MSE over all bands and pixels of an image; identical images
  give ``+inf``.
* SSIM: Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1, computed
  per band and averaged over bands. Equal to scikit-image's ``structural_similarity``
  with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=1.0`` (and ``channel_axis`` for the band axis): only the SSIM map of
  pixels at least 5 pixels from the border is averaged.
* SAM: spectral angle in degrees per pixel, averaged over the pixels where both spectra
  are non-zero.
* RMSE: over all values of an image.
* MRAE: mean of ``|pred - gt| / gt`` over the values where ``gt > 0``.

Values are not clipped: pass predictions clipped to [0, 1] if that is the protocol
(the released INR-HSISR evaluation clamps predictions to [0, 1] before scoring).
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, Optional

import numpy as np
import torch

__all__ = [
    "psnr", "ssim", "sam", "rmse", "mrae",
    "psnr_per_band", "ssim_per_band", "rmse_per_band", "mrae_per_band",
    "compute_all", "METRICS", "PER_BAND_METRICS", "HIGHER_IS_BETTER", "UNITS",
    "SSIM_WIN_SIZE", "SSIM_SIGMA", "SSIM_K1", "SSIM_K2",
]

# SSIM constants (Wang et al. 2004; scikit-image with gaussian_weights=True).
SSIM_SIGMA = 1.5
SSIM_WIN_SIZE = 11  # = 2 * int(3.5 * sigma + 0.5) + 1, scikit-image's truncate = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_SSIM_CHUNK_ELEMENTS = 1 << 18  # pixels per SSIM chunk (one 512 x 512 band)
_SSIM_BLOCK = 16  # output rows (columns) per banded matrix product of the SSIM filter


# --------------------------------------------------------------------------- checks
def _check(pred, target, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a (pred, target) pair and return both as float64 tensors.

    numpy arrays are accepted for convenience and converted with ``torch.as_tensor``.
    """
    if isinstance(pred, np.ndarray):
        pred = torch.as_tensor(pred)
    if isinstance(target, np.ndarray):
        target = torch.as_tensor(target)
    for label, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"{name}: expected {label} to be a torch.Tensor of shape (B, C, H, W), "
                f"found {type(x).__name__}. Convert it with torch.as_tensor(...)."
            )
        if x.ndim != 4:
            raise ValueError(
                f"{name}: expected {label} of shape (B, C, H, W) (4 dims), found shape "
                f"{tuple(x.shape)} ({x.ndim} dims). For a single image (C, H, W) use "
                f"x[None]; channels must come first."
            )
        if not x.is_floating_point():
            raise TypeError(
                f"{name}: expected a floating-point {label} with values in [0, 1], found "
                f"dtype {x.dtype}. Convert integer images first, e.g. x.float() / 65535 "
                f"for 16-bit data."
            )
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: pred and target must have the same shape, found pred "
            f"{tuple(pred.shape)} and target {tuple(target.shape)}. Crop or resize the "
            f"prediction to the ground truth's size."
        )
    if pred.device != target.device:
        raise ValueError(
            f"{name}: pred is on {pred.device} but target is on {target.device}; move "
            f"both to the same device."
        )
    pred = pred.to(torch.float64)
    target = target.to(torch.float64)
    for label, x in (("pred", pred), ("target", target)):
        if x.numel() and not _all_finite(x):
            n_bad = int((~torch.isfinite(x)).sum())
            raise ValueError(
                f"{name}: {label} contains {n_bad} non-finite values (NaN or inf). "
                f"Expected finite values in [0, 1]; check the model output or data loading."
            )
    return pred, target


def _all_finite(x: torch.Tensor) -> bool:
    """Whether a non-empty tensor has no NaN or inf (one min/max pass: both propagate NaN)."""
    lo, hi = torch.aminmax(x)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


# --------------------------------------------------------------------------- PSNR / RMSE
def _mse_per_band(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((pred - target) ** 2).mean(dim=(2, 3))  # (B, C)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB with peak value 1: ``10 log10(1 / MSE)``.

    The MSE is taken over all bands and pixels of each image (not the mean of per-band
    PSNRs). Identical images give ``+inf`` (as ``skimage.metrics.peak_signal_noise_ratio``
    does); exclude or cap such images before averaging if needed.

    Args:
        pred, target: ``(B, C, H, W)`` in [0, 1].
    Returns:
        ``(B,)`` float64.
    """
    pred, target = _check(pred, target, "psnr")
    mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(1.0 / mse)


def psnr_per_band(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR (peak 1) of each band separately. ``(B, C, H, W)`` -> ``(B, C)`` float64."""
    pred, target = _check(pred, target, "psnr_per_band")
    return 10.0 * torch.log10(1.0 / _mse_per_band(pred, target))


def rmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Root mean squared error over all values (bands and pixels) of each image.

    Args:
        pred, target: ``(B, C, H, W)`` in [0, 1].
    Returns:
        ``(B,)`` float64, in the units of the data (fraction of the [0, 1] range).
    """
    pred, target = _check(pred, target, "rmse")
    return ((pred - target) ** 2).mean(dim=(1, 2, 3)).sqrt()


def rmse_per_band(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RMSE of each band over its pixels. ``(B, C, H, W)`` -> ``(B, C)`` float64."""
    pred, target = _check(pred, target, "rmse_per_band")
    return _mse_per_band(pred, target).sqrt()


# --------------------------------------------------------------------------- MRAE
def _mrae_sums(pred, target, dims):
    valid = target > 0
    rel = torch.where(valid, (pred - target).abs() / torch.where(valid, target, 1.0), 0.0)
    count = valid.sum(dim=dims).to(torch.float64)
    # An image (or band) without any positive ground-truth value has no defined MRAE.
    return rel.sum(dim=dims) / count  # 0 / 0 -> NaN where count == 0


def mrae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean relative absolute error: mean of ``|pred - gt| / gt`` over values with gt > 0.

    Rule: the mean runs over every (band, pixel) value of the image whose ground truth
    is strictly positive; values with ``gt == 0`` are left out (their relative error is
    undefined). An image with no positive ground-truth value gives NaN.

    Why: NTIRE 2018 (and the later NTIRE spectral-reconstruction challenges) defined
    MRAE as ``mean(|gt - rec| / gt)`` over *all* values, with no epsilon, on radiance
    data where exact zeros are rare. Normalised 16-bit reflectance such as CAVE does
    contain exact zeros (dark, saturated-black pixels), where that formula gives inf or
    NaN; adding an epsilon instead would make the score depend on the epsilon. Leaving
    them out keeps the NTIRE formula wherever it is defined. Note that MRAE remains very
    sensitive to dark pixels (tiny gt), which is a property of the metric.

    Args:
        pred, target: ``(B, C, H, W)`` in [0, 1].
    Returns:
        ``(B,)`` float64.
    """
    pred, target = _check(pred, target, "mrae")
    return _mrae_sums(pred, target, dims=(1, 2, 3))


def mrae_per_band(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MRAE of each band (same gt > 0 rule as :func:`mrae`). -> ``(B, C)`` float64."""
    pred, target = _check(pred, target, "mrae_per_band")
    return _mrae_sums(pred, target, dims=(2, 3))


# --------------------------------------------------------------------------- SAM
def sam(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Spectral angle mapper in degrees, averaged over pixels.

    For each pixel the angle between the predicted spectrum p and the true spectrum t
    (vectors over the C bands) is ``arccos(<p, t> / (|p| |t|))``. It is computed with
    the numerically stable form ``2 atan2(|p^ - t^|, |p^ + t^|)`` (p^, t^ the unit
    vectors), which equals the arccos formula but gives exactly 0 for identical spectra.

    Zero spectra: pixels where either ``|p| == 0`` or ``|t| == 0`` have no defined angle
    and are **excluded** from the average; an image where every pixel is excluded gives
    NaN. This is what the released INR-HSISR code effectively does: its ``sam`` divides
    by ``sqrt(|p|^2 |t|^2)`` without an epsilon, turns the resulting NaNs into 0 and
    divides the angle sum by the number of pixels with a non-zero norm product. (Its
    arccos is not clamped, so a round-off cosine above 1 also gives NaN -> 0 there; our
    stable form has no such issue.) Many other codes add an epsilon to the denominator
    instead, which gives a zero-norm pixel an angle of 90 degrees and so depends on how
    many black pixels an image has. The NTIRE 2018/2020 spectral challenges ranked by
    MRAE and RMSE and, as far as we know, published no official SAM definition.

    Args:
        pred, target: ``(B, C, H, W)``; the angle is scale-invariant, so any range works.
    Returns:
        ``(B,)`` float64, degrees in [0, 180].
    """
    pred, target = _check(pred, target, "sam")
    norm_p = pred.norm(dim=1, keepdim=True)
    norm_t = target.norm(dim=1, keepdim=True)
    valid = (norm_p > 0) & (norm_t > 0)  # (B, 1, H, W)
    u = pred / torch.where(valid, norm_p, 1.0)
    v = target / torch.where(valid, norm_t, 1.0)
    angle = 2.0 * torch.atan2((u - v).norm(dim=1, keepdim=True), (u + v).norm(dim=1, keepdim=True))
    angle = torch.where(valid, angle, 0.0)
    count = valid.sum(dim=(1, 2, 3)).to(torch.float64)
    return torch.rad2deg(angle.sum(dim=(1, 2, 3)) / count)


# --------------------------------------------------------------------------- SSIM
def _gaussian_kernel_1d(device: torch.device) -> torch.Tensor:
    """The 11-tap Gaussian (sigma 1.5) of ``scipy.ndimage.gaussian_filter`` (truncate 3.5)."""
    r = SSIM_WIN_SIZE // 2
    x = torch.arange(-r, r + 1, dtype=torch.float64, device=device)
    k = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return k / k.sum()


def _band_matrix(k: torch.Tensor, rows: int) -> torch.Tensor:
    """``(rows, rows + K - 1)`` matrix whose row i holds the kernel ``k`` at columns i..i+K-1.

    ``T @ A`` filters the ``rows + K - 1`` rows of ``A`` along dim 0 ("valid": ``rows``
    outputs), as one dense matrix product.
    """
    n = k.numel()
    t = k.new_zeros(rows, rows + n - 1)
    i = torch.arange(rows, device=k.device)[:, None]
    t[i, i + torch.arange(n, device=k.device)] = k
    return t


def _filter_rows(a: torch.Tensor, t: torch.Tensor, out: Optional[torch.Tensor]) -> torch.Tensor:
    """"Valid" filtering of a matrix along its rows, ``(L, M)`` -> ``(L - K + 1, M)``.

    ``t`` is a ``(b, b + K - 1)`` band matrix (:func:`_band_matrix`, ``b <= L - K + 1``):
    each block of ``b`` output rows is one matrix product of ``t`` with ``b + K - 1``
    consecutive input rows, so BLAS does the work (``a`` may be a transposed view). The
    last block is shifted back to end at the last output row. The result is written into
    ``out`` (the last block then rewrites a few rows of the previous one), or, with
    ``out=None`` (differentiable), concatenated from the blocks without the repeated rows.
    """
    b = t.shape[0]
    n_out = a.shape[0] - (t.shape[1] - b)
    starts = list(range(0, n_out - b + 1, b))
    if starts[-1] != n_out - b:
        starts.append(n_out - b)
    if out is not None:
        for s in starts:
            torch.mm(t, a[s : s + t.shape[1]], out=out[s : s + b])
        return out
    parts = [torch.mm(t, a[s : s + t.shape[1]]) for s in starts]
    if len(starts) > 1:
        parts[-1] = parts[-1][starts[-2] + b - starts[-1] :]
    return torch.cat(parts)


def ssim_per_band(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity of each band. ``(B, C, H, W)`` -> ``(B, C)`` float64.

    Wang et al. (2004) SSIM with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
    K2 = 0.03, data range 1 (C1 = 1e-4, C2 = 9e-4) and population (not sample)
    covariances. Border handling follows scikit-image: the local statistics are only
    evaluated where the whole window fits in the image (a "valid" filter), i.e. the SSIM
    map is averaged over ``(H - 10) x (W - 10)`` pixels. This is identical (to float64
    round-off) to ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1.0)``, which filters with
    reflect padding and then crops a border of ``(win_size - 1) // 2 = 5`` pixels: the
    cropped region never sees the padding. (The released INR-HSISR code instead
    zero-pads and averages the whole map, which lowers SSIM near the borders slightly.)

    Computation: float64 on the inputs' device. The separable Gaussian filter of the four
    local moments x, y, x^2 + y^2 and xy runs as banded matrix products (blocks of 16
    rows, then of 16 columns), in chunks of about one 512 x 512 band that reuse one set
    of buffers. ``benchmarks/ssim.py`` compares the speed with scikit-image; the tests
    check agreement with it to 1e-6 (observed: about 1e-15).

    Requires H >= 11 and W >= 11.
    """
    pred, target = _check(pred, target, "ssim")
    b, c, h, w = pred.shape
    if h < SSIM_WIN_SIZE or w < SSIM_WIN_SIZE:
        raise ValueError(
            f"ssim: images must be at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE} pixels for the "
            f"11x11 Gaussian window, found {h}x{w}. Evaluate on larger crops."
        )
    x_all, y_all = pred.reshape(b * c, h, w), target.reshape(b * c, h, w)
    chunk = min(b * c, max(1, _SSIM_CHUNK_ELEMENTS // (h * w)))
    grad = torch.is_grad_enabled() and (pred.requires_grad or target.requires_grad)
    work = _SSIMWork(chunk, h, w, pred.device, buffers=not grad)
    out = [work.mean_ssim(x_all[i : i + chunk], y_all[i : i + chunk]) for i in range(0, b * c, chunk)]
    return torch.cat(out).reshape(b, c)


class _SSIMWork:
    """Buffers and band matrices for the SSIM of up to ``n`` single-band ``(H, W)`` images.

    The buffers (about 14 float64 copies of a chunk) are allocated once per
    :func:`ssim_per_band` call and reused for every chunk. With ``buffers=False`` every
    step allocates its result instead, so that autograd can differentiate the SSIM (used
    when an input requires grad).
    """

    def __init__(self, n: int, h: int, w: int, device: torch.device, buffers: bool = True) -> None:
        k = _gaussian_kernel_1d(device)
        self.hv, self.wv = h - k.numel() + 1, w - k.numel() + 1
        self.t_rows = _band_matrix(k, min(_SSIM_BLOCK, self.hv))
        self.t_cols = _band_matrix(k, min(_SSIM_BLOCK, self.wv))
        self.buffers = buffers
        if not buffers:
            return
        self.moments = torch.empty(h * 4 * n * w, dtype=torch.float64, device=device)
        self.rows = torch.empty(self.hv * 4 * n * w, dtype=torch.float64, device=device)
        self.cols = torch.empty(self.wv * self.hv * 4 * n, dtype=torch.float64, device=device)
        self.tmp = [torch.empty(self.wv * self.hv * n, dtype=torch.float64, device=device) for _ in range(4)]

    def mean_ssim(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean SSIM map of each of N single-band images ``(N, H, W)`` -> ``(N,)``."""
        n, h, w = x.shape
        hv, wv = self.hv, self.wv
        # The four moments side by side, (H, 4, N, W), filtered along H as an (H, 4 N W) matrix.
        xt, yt = x.transpose(0, 1), y.transpose(0, 1)  # (H, N, W) views
        if self.buffers:
            m = self.moments[: h * 4 * n * w].view(h, 4, n, w)
            m[:, 0] = xt
            m[:, 1] = yt
            torch.mul(xt, xt, out=m[:, 2]).addcmul_(yt, yt)
            torch.mul(xt, yt, out=m[:, 3])
            v_out = self.rows[: hv * 4 * n * w].view(hv, -1)
            f_out = self.cols[: wv * hv * 4 * n].view(wv, -1)
            t0, t1, t2, t3 = (t[: wv * hv * n].view(wv, hv, n) for t in self.tmp)
        else:
            m = torch.stack([xt, yt, xt * xt + yt * yt, xt * yt], dim=1)
            v_out = f_out = t0 = t1 = t2 = t3 = None  # type: ignore[assignment]  # allocated per call
        v = _filter_rows(m.view(h, -1), self.t_rows, v_out)  # (H - 10, 4 N W)
        # Along W: the transposed view (W, (H - 10) 4 N) of the result needs no copy.
        f = _filter_rows(v.view(-1, w).t(), self.t_cols, f_out)  # (W - 10, (H - 10) 4 N)
        ux, uy, uq, uxy = f.view(wv, hv, 4, n).unbind(2)  # (W - 10, H - 10, N) each
        c1 = (SSIM_K1 * 1.0) ** 2
        c2 = (SSIM_K2 * 1.0) ** 2
        uxuy = torch.mul(ux, uy, out=t0)
        m2 = torch.mul(ux, ux, out=t1).addcmul_(uy, uy)  # mu_x^2 + mu_y^2
        num = torch.sub(uxy, uxuy, out=t2).mul_(2.0).add_(c2)  # 2 cov_xy + C2
        num.mul_(uxuy.mul_(2.0).add_(c1))  # (2 mu_x mu_y + C1)(2 cov_xy + C2)
        den = torch.sub(uq, m2, out=t3).add_(c2)  # var_x + var_y + C2
        den.mul_(m2.add_(c1))  # (mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2)
        return num.div_(den).mean(dim=(0, 1))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM averaged over bands (see :func:`ssim_per_band` for the definition).

    Args:
        pred, target: ``(B, C, H, W)`` in [0, 1], H and W at least 11.
    Returns:
        ``(B,)`` float64; equals scikit-image's ``structural_similarity`` with
        ``channel_axis`` on the band axis and the settings above.
    """
    return ssim_per_band(pred, target).mean(dim=1)


# --------------------------------------------------------------------------- registry
METRICS: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "psnr": psnr,
    "ssim": ssim,
    "sam": sam,
    "rmse": rmse,
    "mrae": mrae,
}
"""Metric name -> function ``(pred, target) -> (B,)``."""

PER_BAND_METRICS: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "psnr": psnr_per_band,
    "ssim": ssim_per_band,
    "rmse": rmse_per_band,
    "mrae": mrae_per_band,
}
"""Metric name -> per-band function ``(pred, target) -> (B, C)`` (SAM has none)."""

HIGHER_IS_BETTER: Dict[str, bool] = {
    "psnr": True,
    "ssim": True,
    "sam": False,
    "rmse": False,
    "mrae": False,
}
"""Whether a larger value of the metric means a better reconstruction."""

UNITS: Dict[str, str] = {"psnr": "dB", "ssim": "", "sam": "deg", "rmse": "", "mrae": ""}
"""Units for axis labels and tables."""


def compute_all(
    pred: torch.Tensor, target: torch.Tensor, names: Optional[Iterable[str]] = None
) -> Dict[str, torch.Tensor]:
    """Evaluate several metrics at once.

    Args:
        pred, target: ``(B, C, H, W)`` in [0, 1].
        names: metric names to compute (default: all of :data:`METRICS`).
    Returns:
        ``{name: (B,) float64 tensor}`` in the order of ``names``.
    """
    names = list(METRICS) if names is None else list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise KeyError(f"compute_all: unknown metric(s) {unknown}; available: {list(METRICS)}.")
    with torch.no_grad():
        return {n: METRICS[n](pred, target) for n in names}
