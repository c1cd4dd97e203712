"""Assignment: evaluate a different small MLP in every tile of an image.

This is the heart of the INR-HSISR model: the hypernetwork predicts, for every
``tile x tile`` block of pixels, one flat vector of ``P`` numbers. Your job is to read that
vector as the weights and biases of a small MLP and to run every pixel of the block through
it. Fill in :func:`apply_tile_mlps` below, then check it with::

    python check_assignment.py pixelwise_assignment.py

Rules
-----
* Use PyTorch only (``torch``, ``torch.nn.functional``). Do **not** import ``inr_lib`` (the
  checker refuses files that import it).
* The parameter layout is the one of the **released INR-HSISR code**, not ``inr_lib``'s (see
  the docstring below): code copied from ``inr_lib`` or from the book's chapters 4-5 computes
  a different function and fails the checks.
* Your function must be differentiable (no ``.detach()``, ``.numpy()``, ``.item()`` on the
  data path, no in-place changes of the inputs), because the model is trained through it.
* Any correct implementation earns the automatic points. Loops over layers are fine; a Python
  loop over tiles or pixels is correct too, only slow (the written part asks you to compare).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def apply_tile_mlps(params: torch.Tensor, x: torch.Tensor, widths: Sequence[int], tile: int,
                    negative_slope: float = 0.1) -> torch.Tensor:
    """Run every pixel through the MLP of the tile it belongs to.

    Args:
        params: ``(B, P, h, w)``: one flat parameter vector per tile. Tile ``(i, j)`` covers
            pixel rows ``i*tile ... i*tile + tile - 1`` and columns ``j*tile ... j*tile + tile - 1``.
        x: ``(B, C_in, h * tile, w * tile)``: the input vector of every pixel.
        widths: layer widths ``(C_in, h_1, ..., C_out)``, e.g. ``(11, 64, 64, 64, 64, 31)``.
        tile: side of the square tile (4 in the paper).
        negative_slope: slope of the LeakyReLU applied after every layer except the last.

    Layout of one flat vector (the released INR-HSISR code's): for each layer in order,
    first its bias of shape ``(c_out,)``, then its weight matrix of shape ``(c_in, c_out)``
    stored row by row (element ``W[i, o]`` at offset ``i * c_out + o`` of the block). So
    ``P = sum(c_out + c_in * c_out)`` over the layers, and one layer computes
    ``y = v @ W + b`` for a pixel's row vector ``v`` of length ``c_in``. (``inr_lib`` stores
    each layer the other way round: the weight as ``(c_out, c_in)`` first, then the bias.)

    Returns:
        ``(B, C_out, h * tile, w * tile)``, same dtype and device as ``x``.

    Raises:
        ValueError: if ``P`` does not match ``widths`` or the shapes of ``params`` and ``x``
            do not fit together.
    """
    # YOUR CODE HERE
    raise NotImplementedError("fill in apply_tile_mlps")
