"""Non-INR baselines for RGB -> 31-band spectral reconstruction, on the same protocol.

Every baseline is a ``torch.nn.Module`` mapping ``(B, 3, H, W)`` RGB in [0, 1] to
``(B, 31, H, W)`` spectra (400, 410, ..., 700 nm) in [0, 1], exactly like the INR model,
so the same evaluation code runs all of them, and ``state_dict()`` saves them.

* :class:`RidgeBaseline` ("ridge"): per-pixel ridge regression from (polynomial) RGB
  features to the 31 bands, fitted in closed form on training pixels.
* :class:`PhysicsUpsampling` ("physics"): Mallett & Yuksel (2019) spectral upsampling
  from colour-science, no training except an optional single gain.
* :class:`SmallResCNN` ("cnn"): a small HSCNN-R-like residual CNN, trained by the
  project's training loop like the main model.

``build_baseline(name, **kw)`` builds one by name from :data:`BASELINES`. The transformer
baseline MST++ ("mstpp", :mod:`inr_lib.model.mstpp`) is trained like the CNN; training and
checkpoints build both through :mod:`inr_lib.model.registry`.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "WAVELENGTHS", "polynomial_features", "fit_linear_map",
    "RidgeBaseline", "PhysicsUpsampling", "SmallResCNN", "SmallResCNNConfig",
    "BASELINES", "build_baseline",
]

WAVELENGTHS = np.arange(400, 701, 10, dtype=np.float64)
"""The 31 band centres in nm (400, 410, ..., 700)."""
N_BANDS = len(WAVELENGTHS)


# --------------------------------------------------------------------------- helpers
def _check_chw(x, channels: int, what: str) -> tuple[int, int]:
    """``(H, W)`` of one ``(channels, H, W)`` image (numpy or torch), or a clear error."""
    shape = tuple(x.shape) if hasattr(x, "shape") else tuple(np.shape(x))
    if len(shape) != 3 or shape[0] != channels:
        raise ValueError(
            f"expected each {what} image of shape ({channels}, H, W) (channels first), found "
            f"{shape}. Transpose (H, W, C) arrays with x.transpose(2, 0, 1)."
        )
    return shape[1], shape[2]


def _as_chw(x, channels: int, what: str) -> torch.Tensor:
    """One image as a float64 CPU tensor (channels, H, W); accepts numpy or torch."""
    _check_chw(x, channels, what)
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.detach().to("cpu", torch.float64)


def _training_pixels(rgb_list, hsi_list, max_pixels: Optional[int], seed: int):
    """The pixels of paired images as ``(N, 3)`` RGB and ``(N, 31)`` spectra (float64).

    All pixels, image after image; or, if ``max_pixels`` is given and smaller than the total,
    a uniform random subset of that many: ``torch.randperm(total)`` drawn with ``seed``, its
    first ``max_pixels`` entries indexing the pixels of all images stacked in order. The
    selected rows are gathered one image at a time, so memory stays at one image plus the
    result (the same rows, in the same order, as stacking everything first).
    """
    rgb_list, hsi_list = list(rgb_list), list(hsi_list)
    if len(rgb_list) != len(hsi_list) or not rgb_list:
        raise ValueError(
            f"fit needs equally long, non-empty lists of RGB and HSI images, found "
            f"{len(rgb_list)} RGB and {len(hsi_list)} HSI images."
        )
    sizes = []
    for i, (rgb, hsi) in enumerate(zip(rgb_list, hsi_list)):
        hw_rgb, hw_hsi = _check_chw(rgb, 3, "RGB"), _check_chw(hsi, N_BANDS, "HSI")
        if hw_rgb != hw_hsi:
            raise ValueError(
                f"image pair {i}: RGB is {hw_rgb} pixels but HSI is {hw_hsi}; the pairs must be "
                f"pixel-aligned."
            )
        sizes.append(hw_rgb[0] * hw_rgb[1])
    total = sum(sizes)
    pick = None
    if max_pixels is not None and total > max_pixels:
        g = torch.Generator().manual_seed(int(seed))
        pick = torch.randperm(total, generator=g)[: int(max_pixels)]
    n = total if pick is None else pick.numel()
    x = torch.empty(n, 3, dtype=torch.float64)
    y = torch.empty(n, N_BANDS, dtype=torch.float64)
    start = 0
    for rgb, hsi, size in zip(rgb_list, hsi_list, sizes):
        px = _as_chw(rgb, 3, "RGB").reshape(3, -1).T
        py = _as_chw(hsi, N_BANDS, "HSI").reshape(N_BANDS, -1).T
        if pick is None:
            x[start:start + size], y[start:start + size] = px, py
        else:
            rows = ((pick >= start) & (pick < start + size)).nonzero().squeeze(1)
            local = pick[rows] - start
            x[rows], y[rows] = px[local], py[local]
        start += size
    return x, y


def _monomial_exponents(degree: int) -> list[tuple[int, int, int]]:
    """Exponents (a, b, c) of r^a g^b b^c for all monomials of total degree 1..degree."""
    if degree not in (1, 2, 3):
        raise ValueError(f"polynomial degree must be 1, 2 or 3, found {degree}.")
    exps: list[tuple[int, int, int]] = []
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(3), d):
            exps.append((combo.count(0), combo.count(1), combo.count(2)))
    return exps


def polynomial_features(rgb: torch.Tensor, degree: int = 1) -> torch.Tensor:
    """RGB monomials of degree 1..``degree`` plus a constant, along dim 1.

    ``(B, 3, H, W)`` or ``(N, 3)`` -> ``(B, F, H, W)`` or ``(N, F)`` with F = 4, 10, 20 for
    degree 1, 2, 3. Order: r, g, b, [r^2, rg, rb, g^2, gb, b^2, [cubic...]], 1.
    """
    feats = []
    for exps in _monomial_exponents(degree):
        term: torch.Tensor | None = None
        for ch, e in enumerate(exps):
            if e:
                factor = rgb[:, ch] if e == 1 else rgb[:, ch] ** e
                term = factor if term is None else term * factor
        assert term is not None       # every monomial has degree >= 1
        feats.append(term)
    feats.append(torch.ones_like(rgb[:, 0]))
    return torch.stack(feats, dim=1)


def _ridge_solve(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Closed-form ridge: argmin_W mean|x W - y|^2 + alpha |W_no_bias|^2 -> (F, 31).

    The penalty is scaled by the mean (not the sum) over pixels, so ``alpha`` does not
    depend on how many pixels are used; the bias (last feature) is not penalised.
    Solved as a least-squares problem on the augmented system (robust also for alpha=0).
    """
    n, f = x.shape
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, found {alpha}.")
    if alpha > 0:
        reg = torch.eye(f, dtype=x.dtype) * (alpha * n) ** 0.5
        reg = reg[:-1]  # no penalty on the bias
        x = torch.cat([x, reg])
        y = torch.cat([y, torch.zeros(f - 1, y.shape[1], dtype=y.dtype)])
    return torch.linalg.lstsq(x, y, driver="gelsd").solution


def fit_linear_map(rgb_list: Sequence[np.ndarray | torch.Tensor],
                   hsi_list: Sequence[np.ndarray | torch.Tensor], alpha: float = 1e-6,
                   max_pixels: Optional[int] = 200_000, seed: int = 0) -> torch.Tensor:
    """Fit an affine map RGB -> spectrum by ridge regression on training pixels.

    Args:
        rgb_list: sequence of ``(3, H, W)`` arrays/tensors in [0, 1].
        hsi_list: sequence of matching ``(31, H, W)`` arrays/tensors in [0, 1].
        alpha: ridge penalty (per pixel; see :class:`RidgeBaseline`).
        max_pixels, seed: random pixel subset size (None = all) and its seed.
    Returns:
        ``(31, 4)`` float32 tensor M such that ``spectrum ~= M @ [r, g, b, 1]``.
    """
    x, y = _training_pixels(rgb_list, hsi_list, max_pixels, seed)
    w = _ridge_solve(polynomial_features(x, 1), y, alpha)  # (4, 31)
    return w.T.to(torch.float32).contiguous()


# --------------------------------------------------------------------------- ridge
class RidgeBaseline(nn.Module):
    """Per-pixel ridge regression from RGB (polynomial) features to 31 bands.

    ``spectrum = W @ phi(rgb)`` with ``phi`` = RGB monomials up to ``degree`` (1: r, g, b;
    2: + the 6 quadratic terms; 3: + the 10 cubic terms) plus a bias, and W fitted in
    closed form by :meth:`fit`. It sees a single pixel, so it measures how much of the
    spectrum is predictable from colour alone (no spatial context).

    Args:
        degree: polynomial degree 1..3 (default 1 = affine map).
        clamp: clip the output to [0, 1] (default True, like the evaluation protocol).
    Buffers (saved in ``state_dict``): ``weight`` ``(31, F)``, ``fitted`` (bool scalar).
    Shapes: ``forward((B, 3, H, W)) -> (B, 31, H, W)``.
    """

    weight: torch.Tensor      # buffers (register_buffer), declared for the type checker
    fitted: torch.Tensor

    def __init__(self, degree: int = 1, clamp: bool = True):
        super().__init__()
        self.degree = int(degree)
        self.clamp = bool(clamp)
        n_feat = len(_monomial_exponents(self.degree)) + 1
        self.register_buffer("weight", torch.zeros(N_BANDS, n_feat))
        self.register_buffer("fitted", torch.tensor(False))

    def fit(self, rgb_list: Sequence[np.ndarray | torch.Tensor],
            hsi_list: Sequence[np.ndarray | torch.Tensor], alpha: float = 1e-6,
            max_pixels: Optional[int] = 200_000, seed: int = 0) -> "RidgeBaseline":
        """Fit the weights on paired training images (closed form, float64 on CPU).

        Args:
            rgb_list: sequence of ``(3, H, W)`` arrays/tensors in [0, 1].
            hsi_list: sequence of matching ``(31, H, W)`` arrays/tensors in [0, 1].
            alpha: ridge penalty on the non-bias weights, relative to the *mean* squared
                error over pixels (so independent of the pixel count).
            max_pixels: fit on a random subset of this many pixels (None = all pixels).
            seed: seed of that random subset.
        Returns:
            self (fitted), for chaining.
        """
        x, y = _training_pixels(rgb_list, hsi_list, max_pixels, seed)
        w = _ridge_solve(polynomial_features(x, self.degree), y, alpha)  # (F, 31)
        self.weight.copy_(w.T.to(self.weight.dtype))
        self.fitted.fill_(True)
        return self

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 31, H, W)`` spectra."""
        _check_rgb(rgb, "RidgeBaseline")
        if not bool(self.fitted):
            raise RuntimeError(
                "RidgeBaseline is not fitted: call .fit(rgb_list, hsi_list) on training "
                "images first, or load a fitted state_dict."
            )
        feats = polynomial_features(rgb, self.degree)  # (B, F, H, W)
        out = torch.einsum("cf,bfhw->bchw", self.weight.to(feats.dtype), feats)
        return out.clamp(0.0, 1.0) if self.clamp else out

    def extra_repr(self) -> str:
        return f"degree={self.degree}, clamp={self.clamp}, fitted={bool(self.fitted)}"


def _check_rgb(rgb, who: str) -> None:
    if not isinstance(rgb, torch.Tensor) or rgb.ndim != 4 or rgb.shape[1] != 3:
        found = tuple(rgb.shape) if hasattr(rgb, "shape") else type(rgb).__name__
        raise ValueError(
            f"{who}: expected an RGB tensor of shape (B, 3, H, W) in [0, 1], found {found}. "
            f"Use x[None] for a single image and channels-first layout."
        )


# --------------------------------------------------------------------------- physics
def mallett2019_basis(wavelengths: ArrayLike = WAVELENGTHS) -> np.ndarray:
    """Mallett & Yuksel (2019) sRGB basis spectra at ``wavelengths`` -> ``(len, 3)``.

    colour-science tabulates the basis at 380..780 nm in 5 nm steps, so 400..700 / 10 nm
    is an exact subsample; other wavelengths are interpolated linearly.
    """
    from colour.recovery import MSDS_BASIS_FUNCTIONS_sRGB_MALLETT2019 as basis

    wl = np.asarray(wavelengths, dtype=np.float64)
    return np.stack(
        [np.interp(wl, basis.wavelengths, basis.values[:, k]) for k in range(3)], axis=1
    )


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Inverse sRGB transfer function (IEC 61966-2-1), elementwise on [0, 1] values."""
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0) + 0.055) / 1.055) ** 2.4)


class PhysicsUpsampling(nn.Module):
    """Spectral upsampling of Mallett & Yuksel (2019), "Spectral Primary Decomposition".

    Each pixel's reflectance is ``r * B_red + g * B_green + b * B_blue`` where the three
    basis spectra (``colour.recovery.MSDS_BASIS_FUNCTIONS_sRGB_MALLETT2019``, sampled at
    400..700 nm / 10 nm) are non-negative, sum to 1 at every wavelength and were
    optimised to be smooth and to reproduce their sRGB primary under illuminant D65
    (CIE 1931 2 degree observer). Consequences: it is a fixed linear map (fast, fully
    vectorised), any RGB in [0, 1]^3 gives a reflectance in [0, 1], and a grey (g, g, g)
    gives the flat spectrum g.

    What it assumes: the input is **linear** sRGB (BT.709 primaries, D65 white) of a
    reflective surface lit by D65, with white (1, 1, 1) = 100 % reflectance. A camera's
    or the dataset's RGB breaks these assumptions to some degree (other primaries, other
    illuminant, unknown exposure):

    * ``rgb_encoding="srgb"`` undoes the sRGB gamma first, for gamma-encoded images such
      as CAVE's ``*_RGB.bmp``; use ``"linear"`` (default) for RGB projected from the
      spectra with a CIE/camera response (linear in the spectrum).
    * :meth:`fit` fits one scalar ``gain`` by least squares on training pixels, so the
      absolute level matches the dataset (e.g. CAVE's reflectance normalisation).

    Shapes: ``forward((B, 3, H, W)) -> (B, 31, H, W)``, clipped to [0, 1].
    Buffers: ``basis`` ``(31, 3)``, ``gain`` (scalar).
    """

    basis: torch.Tensor       # buffers (register_buffer), declared for the type checker
    gain: torch.Tensor

    def __init__(self, rgb_encoding: str = "linear", gain: float = 1.0):
        super().__init__()
        if rgb_encoding not in ("linear", "srgb"):
            raise ValueError(f"rgb_encoding must be 'linear' or 'srgb', found {rgb_encoding!r}.")
        self.rgb_encoding = rgb_encoding
        self.register_buffer("basis", torch.as_tensor(mallett2019_basis(), dtype=torch.float32))
        self.register_buffer("gain", torch.tensor(float(gain)))

    def _reflectance(self, rgb: torch.Tensor) -> torch.Tensor:
        """Un-gained, unclipped reflectance ``(B, 31, H, W)``."""
        lin = rgb.clamp(0.0, 1.0)
        if self.rgb_encoding == "srgb":
            lin = srgb_to_linear(lin)
        return torch.einsum("ck,bkhw->bchw", self.basis.to(lin.dtype), lin)

    def fit(self, rgb_list: Sequence[np.ndarray | torch.Tensor],
            hsi_list: Sequence[np.ndarray | torch.Tensor], max_pixels: Optional[int] = 200_000,
            seed: int = 0) -> "PhysicsUpsampling":
        """Fit the scalar ``gain`` = argmin_g sum (g * s - y)^2 = <s, y> / <s, s>.

        Args:
            rgb_list, hsi_list: paired ``(3, H, W)`` / ``(31, H, W)`` training images.
            max_pixels, seed: random pixel subset (None = all pixels) and its seed.
        Returns:
            self, for chaining.
        """
        x, y = _training_pixels(rgb_list, hsi_list, max_pixels, seed)
        s = self._reflectance(x.T[None, :, :, None].to(self.basis.device))  # (1, 31, N, 1)
        s = s[0, :, :, 0].T.cpu().to(torch.float64)  # (N, 31)
        denom = float((s * s).sum())
        if denom == 0.0:
            raise ValueError("PhysicsUpsampling.fit: all training RGB pixels are black; "
                             "cannot fit a gain.")
        self.gain.fill_(float((s * y).sum()) / denom)
        return self

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 31, H, W)`` reflectance in [0, 1]."""
        _check_rgb(rgb, "PhysicsUpsampling")
        out = self._reflectance(rgb) * self.gain.to(rgb.dtype)
        return out.clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"rgb_encoding={self.rgb_encoding!r}, gain={float(self.gain):.4g}"


# --------------------------------------------------------------------------- CNN
@dataclass
class SmallResCNNConfig:
    """Architecture of :class:`SmallResCNN` (saved with checkpoints)."""

    in_channels: int = 3
    out_channels: int = N_BANDS
    channels: int = 64
    num_blocks: int = 6
    seed: int = 0  # seed of the weight initialisation

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _ResBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3, plus the identity skip. ``(B, C, H, W)`` -> same."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class SmallResCNN(nn.Module):
    """A small HSCNN-R-like residual CNN: RGB -> 31 bands, with spatial context.

    conv3x3 3->C, ``num_blocks`` residual blocks (conv3x3-ReLU-conv3x3 + skip),
    conv3x3 C->31, all with bias and zero "same" padding, so any H, W works. Like the
    INR model it takes RGB in [0, 1], works internally on [-1, 1]
    (``x -> 2x - 1``) and maps its output back with ``y -> (y + 1) / 2``: train it with
    targets in [0, 1] (equivalently an L1 loss on the [-1, 1] scale, up to a factor 2).
    The output is not clipped (clip for evaluation if the protocol does).

    Parameters with the default C = 64, 6 blocks: 462,815
    (head 1,792 + 6 x 73,856 + tail 17,887); receptive field 29 x 29 pixels.

    Args:
        config: a :class:`SmallResCNNConfig` (default: the defaults above).
        **overrides: fields of the config to change, e.g. ``channels=32, seed=1``.
    Initialisation is PyTorch's default for ``nn.Conv2d``, drawn from a private RNG
    seeded with ``config.seed`` (the global RNG is left untouched), so two models built
    with the same seed are identical.
    Shapes: ``forward((B, 3, H, W)) -> (B, 31, H, W)``.
    """

    def __init__(self, config: Optional[SmallResCNNConfig] = None, **overrides: Any):
        super().__init__()
        config = config if config is not None else SmallResCNNConfig()
        unknown = set(overrides) - {f.name for f in dataclasses.fields(SmallResCNNConfig)}
        if unknown:
            raise TypeError(
                f"SmallResCNN: unknown option(s) {sorted(unknown)}; valid: "
                f"{[f.name for f in dataclasses.fields(SmallResCNNConfig)]}."
            )
        self.config = dataclasses.replace(config, **overrides)
        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            self.head = nn.Conv2d(c.in_channels, c.channels, 3, padding=1)
            self.blocks = nn.Sequential(*[_ResBlock(c.channels) for _ in range(c.num_blocks)])
            self.tail = nn.Conv2d(c.channels, c.out_channels, 3, padding=1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, 31, H, W)`` (about [0, 1] once trained)."""
        if rgb.ndim != 4 or rgb.shape[1] != self.config.in_channels:
            raise ValueError(
                f"SmallResCNN: expected input of shape (B, {self.config.in_channels}, H, W) "
                f"in [0, 1], found {tuple(rgb.shape)}. Use x[None] for a single image."
            )
        y = self.tail(self.blocks(self.head(rgb * 2.0 - 1.0)))
        return (y + 1.0) * 0.5


# --------------------------------------------------------------------------- registry
BASELINES = {
    "ridge": RidgeBaseline,
    "physics": PhysicsUpsampling,
    "cnn": SmallResCNN,
}
"""Baseline name -> class. Ridge and physics need ``.fit(...)`` (physics optionally);
the CNN is trained like the main model."""


def build_baseline(name: str, **kwargs: Any) -> nn.Module:
    """Build a baseline by name ("ridge", "physics", "cnn") with constructor options.

    Example: ``build_baseline("ridge", degree=2).fit(rgbs, hsis)``,
    ``build_baseline("cnn", channels=32, num_blocks=4, seed=1)``.
    """
    try:
        cls = BASELINES[name]
    except KeyError:
        raise ValueError(
            f"unknown baseline {name!r}; available: {sorted(BASELINES)}."
        ) from None
    return cls(**kwargs)
