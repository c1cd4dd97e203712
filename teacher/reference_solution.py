"""Reference solution of the pixelwise assignment (teacher's edition; not part of the book).

The graded task asks for the parameter layout of the released INR-HSISR code, which differs
from ``inr_lib``'s: for each layer in order, first the bias ``(c_out,)``, then the weight
matrix stored as ``(c_in, c_out)`` row by row, and one layer computes ``y = v @ W + b`` for a
pixel's row vector ``v``. The pixels of each tile are gathered into a small matrix and every
layer is one ``einsum`` over all tiles at once.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def apply_tile_mlps(params: torch.Tensor, x: torch.Tensor, widths: Sequence[int], tile: int,
                    negative_slope: float = 0.1) -> torch.Tensor:
    """Run every pixel through the MLP of its tile (see ``book/assignment/pixelwise_assignment.py``).

    Args:
        params: ``(B, P, h, w)``, one flat vector per tile in the released layout.
        x: ``(B, C_in, h * tile, w * tile)``.

    Returns:
        ``(B, C_out, h * tile, w * tile)``.
    """
    widths = [int(c) for c in widths]
    if params.dim() != 4 or x.dim() != 4:
        raise ValueError(f"expected params (B, P, h, w) and x (B, C, H, W), got "
                         f"{tuple(params.shape)} and {tuple(x.shape)}")
    B, P, h, w = params.shape
    t = int(tile)
    need = sum(cin * cout + cout for cin, cout in zip(widths[:-1], widths[1:]))
    if P != need:
        raise ValueError(f"params has {P} channels, an MLP with widths {widths} needs {need}")
    if tuple(x.shape) != (B, widths[0], h * t, w * t):
        raise ValueError(f"x must have shape {(B, widths[0], h * t, w * t)}, got {tuple(x.shape)}")

    # (B, C, h*t, w*t) -> (B, h, w, t*t, C): the t*t pixels of each tile as rows of a matrix
    y = x.reshape(B, widths[0], h, t, w, t).permute(0, 2, 4, 3, 5, 1).reshape(B, h, w, t * t, widths[0])
    p = params.permute(0, 2, 3, 1)                                   # (B, h, w, P)
    offset, n_layers = 0, len(widths) - 1
    for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
        bias = p[..., offset:offset + cout]                          # (B, h, w, cout): bias first
        offset += cout
        weight = p[..., offset:offset + cin * cout].reshape(B, h, w, cin, cout)
        offset += cin * cout
        # every tile's pixels (rows) times that tile's (c_in, c_out) matrix: y = v @ W + b
        y = torch.einsum("bhwpc,bhwco->bhwpo", y, weight) + bias[..., None, :]
        if i < n_layers - 1:
            y = F.leaky_relu(y, negative_slope)
    c_out = widths[-1]
    # (B, h, w, t*t, C_out) -> (B, C_out, h*t, w*t)
    return y.reshape(B, h, w, t, t, c_out).permute(0, 5, 1, 3, 2, 4).reshape(B, c_out, h * t, w * t)
