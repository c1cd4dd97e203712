"""The wavelength as an input coordinate: ``spectral="coordinate"``.

NeSR (Xu et al., "Continuous spectral reconstruction from RGB images via implicit neural
representation", ECCV Workshops 2022) makes a spectrum continuous by giving the wavelength to the
implicit function as one more input coordinate: the function returns **one** intensity for a
(pixel, wavelength) pair, and a spectrum at any set of wavelengths is the function evaluated at
each of them. This module brings that idea to this project's network (NeSR's own backbone and
its attention modules are not reproduced): the per-tile MLP whose weights the hypernetwork
predicts takes

    [scaled RGB (3), position encoding (8), wavelength encoding e(l) (E = 7)]  ->  1 value

so with the ``small`` widths it is 18 -> 32 -> 32 -> 1, and ``model(rgb)`` runs it at every pixel
for each of the 31 band centres (the other continuous options, :mod:`inr_lib.model.basis`, run it
once per pixel and expand ``K`` outputs in a fixed basis instead).

The wavelength encoding (:func:`wavelength_encoding`), with ``u = 2 (l - 400) / 300 - 1`` in
[-1, 1] over the trained range 400..700 nm:

    e(l) = [u, cos(pi u), sin(pi u), cos(2 pi u), sin(2 pi u), cos(4 pi u), sin(4 pi u)]

Why these channels: ``u`` itself is a monotone coordinate (the periodic channels alone do not
tell 400 nm from 700 nm: cos(pi u) is symmetric about 550 nm); the cos/sin pairs at frequencies
1, 2, 4 have periods of 300, 150 and 75 nm. The B-spline study (``benchmarks/spectral_basis.py``)
found a knot every 30 nm the best detail for CAVE spectra, a resolution of features some 60 nm
wide; 75 nm is that scale, and the MLP's nonlinearities combine the channels into finer detail
as a spline combines its pieces. No channel varies faster than the 20 nm spacing of the even
bands can sample (period 40 nm at its Nyquist limit), so when a model is trained on the even
bands only, no input channel alone can pass through the training bands by oscillating between
them; higher frequencies (as positional encodings of images use) would allow exactly that at
the held-out odd bands.

Cost: the MLP runs ``N`` times per pixel for ``N`` wavelengths. The first layer is linear, so
``W [x; e(l)] + b = (W_x x + b) + W_l e(l)``: :func:`apply_coordinate_tiles` (the fast path)
computes ``W_x x + b`` once per pixel and ``W_l e(l)`` once per tile and wavelength, adds them,
and runs the remaining layers as batched products over (pixels x wavelengths) of each tile. The
readable path (:func:`apply_coordinate_readable`) builds the full input ``[x; e(l)]`` and
evaluates the whole MLP once per wavelength. ``tests/test_coordinate.py`` checks they agree.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .basis import SPECTRAL_RANGE
from .pixelwise import apply_mlp_per_pixel, from_tiles, mlp_param_count, to_tiles

__all__ = ["WAVELENGTH_FREQUENCIES", "WAVELENGTH_CHANNELS", "wavelength_encoding",
           "wavelength_codes", "apply_coordinate_tiles", "apply_coordinate_fast",
           "apply_coordinate_readable", "apply_coordinate_per_pixel", "COORDINATE_PIXELWISE"]

#: frequencies (times pi, of ``u`` in [-1, 1]) of the cos/sin channels: periods 300, 150, 75 nm
WAVELENGTH_FREQUENCIES = (1.0, 2.0, 4.0)
#: ``E``, channels of the wavelength encoding: ``u`` plus a cos/sin pair per frequency
WAVELENGTH_CHANNELS = 1 + 2 * len(WAVELENGTH_FREQUENCIES)

# hidden activations (numbers) per group of tiles in the fast path. On a CPU, groups of 1 M
# numbers (4 MiB per activation) are reused by the allocator: forward and backward of the small
# MLP on a training batch (16 crops of 64x64, 4,096 tiles, 31 wavelengths) took 0.8 s of CPU time
# in groups, 1.7 s in one group (260 MB per activation; more than half of it in the kernel, as
# glibc maps blocks above 32 MiB afresh on every allocation). CUDA caches its memory: larger
# groups there.
_GROUP_NUMBERS = {"cpu": 2**20}
_GROUP_NUMBERS_OTHER = 64 * 2**20


def wavelength_encoding(wavelengths: Sequence[float] | np.ndarray) -> np.ndarray:
    """``(N,)`` wavelengths in nm -> ``(N, E)`` float64 encoding (see the module docstring).

    Outside 400..700 nm ``u`` leaves [-1, 1] and the channels continue (``spectra(...,
    extrapolate=True)``); nothing was trained there.
    """
    lo, hi = SPECTRAL_RANGE
    u = 2 * (np.asarray(wavelengths, dtype=np.float64).reshape(-1) - lo) / (hi - lo) - 1
    chans = [u]
    for f in WAVELENGTH_FREQUENCIES:
        chans += [np.cos(np.pi * f * u), np.sin(np.pi * f * u)]
    return np.stack(chans, axis=1)


def wavelength_codes(wavelengths: Sequence[float] | np.ndarray, dtype: torch.dtype,
                     device: torch.device | str | None) -> torch.Tensor:
    """:func:`wavelength_encoding` as a ``(N, E)`` tensor (computed in float64, then cast, so
    the codes are the same on every device)."""
    return torch.tensor(wavelength_encoding(wavelengths), dtype=torch.float64,
                        device=device).to(dtype)


def apply_coordinate_tiles(tile_params: torch.Tensor, xt: torch.Tensor, codes: torch.Tensor,
                           widths: Sequence[int], negative_slope: float = 0.1) -> torch.Tensor:
    """The fast path's core: each tile's MLP at each of its pixels and each wavelength.

    Args:
        tile_params: ``(n, P)``, one parameter vector per tile (tile-major rows).
        xt: ``(n, t*t, C_x)``, each tile's pixels' inputs without the wavelength (RGB and
            position, ``C_x = widths[0] - E``).
        codes: ``(N, E)``, the wavelength encodings (:func:`wavelength_codes`).
        widths: ``(C_x + E, hidden..., 1)``.

    Returns:
        ``(n, t*t, N)``: the MLP's one output at every (pixel, wavelength).

    The tiles are processed in groups of at most 1 M hidden activations on a CPU (64 M
    elsewhere); this also bounds the memory of ``spectra`` at many wavelengths.
    """
    n, tt, _ = xt.shape
    budget = _GROUP_NUMBERS.get(xt.device.type, _GROUP_NUMBERS_OTHER)
    group = max(1, budget // max(1, tt * codes.shape[0] * max(widths[1:])))
    if group >= n:
        return _coordinate_group(tile_params, xt, codes, widths, negative_slope)
    # torch.split: the backward is one concatenation, not one zero-filled copy per group
    return torch.cat([_coordinate_group(p, x, codes, widths, negative_slope)
                      for p, x in zip(torch.split(tile_params, group), torch.split(xt, group))])


def _coordinate_group(tile_params: torch.Tensor, xt: torch.Tensor, codes: torch.Tensor,
                      widths: Sequence[int], negative_slope: float) -> torch.Tensor:
    """:func:`apply_coordinate_tiles` on one group of tiles, all wavelengths at once."""
    n, tt, cx = xt.shape
    (n_wl, e), h1 = codes.shape, widths[1]
    layers = list(zip(widths[:-1], widths[1:]))
    sizes = [s for cin, cout in layers for s in (cin * cout, cout)]
    pieces = torch.split(tile_params, sizes, dim=1)
    w0 = pieces[0].reshape(n, h1, widths[0])
    # the first layer split: W_x x + b once per pixel, W_l e(l) once per tile and wavelength
    per_pixel = torch.baddbmm(pieces[1].reshape(n, 1, h1), xt, w0[:, :, :cx].transpose(1, 2))
    per_wl = (w0[:, :, cx:].reshape(n * h1, e) @ codes.T).view(n, h1, n_wl).transpose(1, 2)
    y = (per_pixel.unsqueeze(2) + per_wl.unsqueeze(1)).reshape(n, tt * n_wl, h1)
    for i, (cin, cout) in enumerate(layers[1:], start=1):
        y = F.leaky_relu(y, negative_slope)
        weight = pieces[2 * i].reshape(n, cout, cin)
        y = torch.baddbmm(pieces[2 * i + 1].reshape(n, 1, cout), y, weight.transpose(1, 2))
    return y.reshape(n, tt, n_wl)                                # widths[-1] == 1


def _check_coordinate(params: torch.Tensor, x: torch.Tensor, codes: torch.Tensor,
                      widths: Sequence[int], tile: int) -> None:
    if params.dim() != 4 or x.dim() != 4 or codes.dim() != 2:
        raise ValueError(f"expected params (B, P, h, w), x (B, C_x, H, W) and codes (N, E), got "
                         f"{tuple(params.shape)}, {tuple(x.shape)} and {tuple(codes.shape)}")
    B, P, h, w = params.shape
    if widths[-1] != 1 or P != mlp_param_count(widths) or x.shape[1] + codes.shape[1] != widths[0]:
        raise ValueError(f"a coordinate MLP {tuple(widths)} needs {mlp_param_count(widths)} "
                         f"parameters, {widths[0]} input channels (x and codes) and 1 output; got "
                         f"P={P}, x {tuple(x.shape)} and codes {tuple(codes.shape)}")
    if x.shape[0] != B or x.shape[2:] != (h * tile, w * tile):
        raise ValueError(f"x must be (B={B}, C_x, {h * tile}, {w * tile}) to match params "
                         f"{tuple(params.shape)} with tile {tile}; got {tuple(x.shape)}")


def apply_coordinate_fast(params: torch.Tensor, x: torch.Tensor, codes: torch.Tensor,
                          widths: Sequence[int], tile: int = 4,
                          negative_slope: float = 0.1) -> torch.Tensor:
    """Fast path: per-tile MLPs ``params (B, P, h, w)`` on ``x (B, C_x, h*t, w*t)`` at the
    wavelengths of ``codes (N, E)`` -> ``(B, N, h*t, w*t)``."""
    _check_coordinate(params, x, codes, widths, tile)
    B, P, h, w = params.shape
    pt = params.permute(0, 2, 3, 1).reshape(B * h * w, P)
    y = apply_coordinate_tiles(pt, to_tiles(x, tile), codes.to(x.dtype), widths, negative_slope)
    return from_tiles(y, B, h, w, tile)


def apply_coordinate_per_pixel(pixel_params: torch.Tensor, x: torch.Tensor, codes: torch.Tensor,
                               widths: Sequence[int], negative_slope: float = 0.1) -> torch.Tensor:
    """Every pixel's own MLP (``pixel_params (B, P, H, W)``) on its input ``x (B, C_x, H, W)``
    joined with each wavelength's code, the whole MLP once per wavelength -> ``(B, N, H, W)``."""
    if pixel_params.shape[1] != mlp_param_count(widths) or x.shape[1] + codes.shape[1] != widths[0]:
        raise ValueError(f"a coordinate MLP {tuple(widths)} needs {mlp_param_count(widths)} "
                         f"parameters and {widths[0]} input channels; got "
                         f"{pixel_params.shape[1]}, x {tuple(x.shape)} and codes {tuple(codes.shape)}")
    B, _, H, W = x.shape
    outs = []
    for code in codes.to(x.dtype):                               # one wavelength at a time
        inp = torch.cat([x, code.view(1, -1, 1, 1).expand(B, -1, H, W)], dim=1)
        outs.append(apply_mlp_per_pixel(pixel_params, inp, widths, negative_slope))
    return torch.cat(outs, dim=1)


def apply_coordinate_readable(params: torch.Tensor, x: torch.Tensor, codes: torch.Tensor,
                              widths: Sequence[int], tile: int = 4,
                              negative_slope: float = 0.1) -> torch.Tensor:
    """Readable path: every pixel gets its tile's parameters, then the full MLP runs on
    ``[x; e(l)]`` once per wavelength. Same arguments and result as
    :func:`apply_coordinate_fast`."""
    _check_coordinate(params, x, codes, widths, tile)
    pixel_params = params.repeat_interleave(tile, dim=2).repeat_interleave(tile, dim=3)
    return apply_coordinate_per_pixel(pixel_params, x, codes, widths, negative_slope)


COORDINATE_PIXELWISE = {"readable": apply_coordinate_readable, "fast": apply_coordinate_fast}
