"""Applying predicted per-tile MLPs to every pixel.

The hypernetwork predicts, for each ``t x t`` tile, one flat vector of ``P`` numbers. This
module reads that vector as the weights and biases of a small MLP with layer widths
``widths = (C_in, h_1, ..., C_out)`` and evaluates it on every pixel of the tile.

Layout of the flat vector (for each layer in order): the weight matrix ``(c_out, c_in)``
row-major, then the bias ``(c_out,)``. So ``P = sum(c_in * c_out + c_out)``, e.g.
``11*64+64 + 3*(64*64+64) + 64*31+31 = 15,263`` for the paper's MLP.

Two implementations compute the same function:

* :func:`apply_mlp_readable` copies the tile's parameters to each of its pixels and does
  the matrix-vector products pixel by pixel with broadcasting. Easy to follow, but it
  materialises ``P`` numbers per *pixel* (16x the memory of the parameters).
* :func:`apply_mlp_fast` groups the pixels by tile and runs one batched matrix product per
  layer (``torch.baddbmm``): each tile's ``t*t`` pixels are a small matrix multiplied by
  that tile's weight matrix. No parameter is copied per pixel and there is no Python
  loop over tiles.

``tests/test_pixelwise.py`` checks that they agree, forward and backward.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def mlp_param_count(widths: Sequence[int]) -> int:
    """``P``: weights plus biases of an MLP with layer widths ``widths``."""
    return sum(cin * cout + cout for cin, cout in zip(widths[:-1], widths[1:]))


def mlp_param_slices(widths: Sequence[int]) -> list[tuple[slice, slice, int, int]]:
    """Where each layer's weight and bias sit in the flat parameter vector.

    Returns one ``(weight_slice, bias_slice, c_in, c_out)`` per layer.
    """
    out, offset = [], 0
    for cin, cout in zip(widths[:-1], widths[1:]):
        w = slice(offset, offset + cin * cout)
        offset += cin * cout
        b = slice(offset, offset + cout)
        offset += cout
        out.append((w, b, cin, cout))
    return out


def _check(params: torch.Tensor, x: torch.Tensor, widths: Sequence[int], tile: int) -> None:
    if params.dim() != 4 or x.dim() != 4:
        raise ValueError(f"expected params (B, P, h, w) and x (B, C, H, W), got "
                         f"{tuple(params.shape)} and {tuple(x.shape)}")
    B, P, h, w = params.shape
    if P != mlp_param_count(widths):
        raise ValueError(f"params has {P} channels but an MLP with widths {tuple(widths)} "
                         f"needs {mlp_param_count(widths)}")
    if x.shape[0] != B or x.shape[1] != widths[0] or x.shape[2:] != (h * tile, w * tile):
        raise ValueError(f"x must be (B={B}, C={widths[0]}, {h * tile}, {w * tile}) to match "
                         f"params {tuple(params.shape)} with tile {tile}; got {tuple(x.shape)}")


def apply_mlp_per_pixel(pixel_params: torch.Tensor, x: torch.Tensor, widths: Sequence[int],
                        negative_slope: float = 0.1) -> torch.Tensor:
    """Evaluate a different MLP at every pixel.

    Args:
        pixel_params: ``(B, P, H, W)``: the full parameter vector of each pixel's MLP.
        x: ``(B, C_in, H, W)``: each pixel's input vector.
        widths: layer widths ``(C_in, ..., C_out)``.
        negative_slope: LeakyReLU slope between layers (none after the last layer).

    Returns:
        ``(B, C_out, H, W)``.
    """
    B, _, H, W = x.shape
    layers = mlp_param_slices(widths)
    h = x
    for i, (w_sl, b_sl, cin, cout) in enumerate(layers):
        weight = pixel_params[:, w_sl].reshape(B, cout, cin, H, W)  # W[o, i] at every pixel
        bias = pixel_params[:, b_sl]                                # b[o] at every pixel
        # y[o] = sum_i W[o, i] * h[i] + b[o], independently at every pixel
        h = (weight * h.unsqueeze(1)).sum(dim=2) + bias
        if i < len(layers) - 1:
            h = F.leaky_relu(h, negative_slope)
    return h


def apply_mlp_readable(params: torch.Tensor, x: torch.Tensor, widths: Sequence[int],
                       tile: int = 4, negative_slope: float = 0.1) -> torch.Tensor:
    """Readable path: give every pixel its tile's parameters, then evaluate pixel by pixel.

    Args:
        params: ``(B, P, h, w)``, one parameter vector per tile.
        x: ``(B, C_in, h * tile, w * tile)``, the per-pixel MLP inputs.

    Returns:
        ``(B, C_out, h * tile, w * tile)``.
    """
    _check(params, x, widths, tile)
    # 1. every pixel of a tile gets that tile's parameter vector (nearest-neighbour upsampling)
    pixel_params = params.repeat_interleave(tile, dim=2).repeat_interleave(tile, dim=3)
    # 2. run each pixel's own MLP on its own input
    return apply_mlp_per_pixel(pixel_params, x, widths, negative_slope)


def to_tiles(x: torch.Tensor, tile: int) -> torch.Tensor:
    """``(B, C, h*t, w*t) -> (B*h*w, t*t, C)``: the pixels of each tile as the rows of a matrix."""
    B, C, H, W = x.shape
    h, w, t = H // tile, W // tile, tile
    return x.reshape(B, C, h, t, w, t).permute(0, 2, 4, 3, 5, 1).reshape(B * h * w, t * t, C)


def from_tiles(y: torch.Tensor, batch: int, h: int, w: int, tile: int) -> torch.Tensor:
    """Inverse of :func:`to_tiles`: ``(B*h*w, t*t, C) -> (B, C, h*t, w*t)``."""
    t, C = tile, y.shape[-1]
    return y.reshape(batch, h, w, t, t, C).permute(0, 5, 1, 3, 2, 4).reshape(batch, C, h * t, w * t)


def apply_mlp_tiles(tile_params: torch.Tensor, xt: torch.Tensor, widths: Sequence[int],
                    negative_slope: float = 0.1) -> torch.Tensor:
    """The core of the fast path: every tile's MLP on that tile's pixels, batched.

    Args:
        tile_params: ``(N, P)``, one parameter vector per tile (tile-major, contiguous rows).
        xt: ``(N, t*t, C_in)``, the inputs of each tile's pixels.

    Returns:
        ``(N, t*t, C_out)``.
    """
    n = tile_params.shape[0]
    sizes = [s for cin, cout in zip(widths[:-1], widths[1:]) for s in (cin * cout, cout)]
    # one split (its backward is a single concatenation, unlike repeated slicing)
    pieces = torch.split(tile_params, sizes, dim=1)
    y = xt
    n_layers = len(widths) - 1
    for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
        weight = pieces[2 * i].reshape(n, cout, cin)
        bias = pieces[2 * i + 1].reshape(n, 1, cout)
        y = torch.baddbmm(bias, y, weight.transpose(1, 2))       # (N, t*t, cout)
        if i < n_layers - 1:
            y = F.leaky_relu(y, negative_slope)
    return y


def apply_mlp_fast(params: torch.Tensor, x: torch.Tensor, widths: Sequence[int],
                   tile: int = 4, negative_slope: float = 0.1) -> torch.Tensor:
    """Fast path: one batched matrix product per layer over all tiles.

    Same arguments, shapes and result as :func:`apply_mlp_readable`.
    """
    _check(params, x, widths, tile)
    B, P, h, w = params.shape
    pt = params.permute(0, 2, 3, 1).reshape(B * h * w, P)        # (tiles, P)
    y = apply_mlp_tiles(pt, to_tiles(x, tile), widths, negative_slope)
    return from_tiles(y, B, h, w, tile)


PIXELWISE = {"readable": apply_mlp_readable, "fast": apply_mlp_fast}
