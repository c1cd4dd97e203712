"""Probing a trained model where a reconstruction looks wrong (chapter 9).

Two measurements that separate "the model reacts to this colour" from "the model reacts to
something nearby":

* ``colour_sweep(model, start, end, nm)``: the model's output at ``nm`` on images of one
  uniform colour, for colours on the straight line from ``start`` to ``end`` (RGB in [0, 1]).
  A uniform image has no context, so the curve is the model's colour-to-band response alone;
  a curve that turns down while the measured band rises is a fold in the learned function.
* ``occlusion_effect(model, rgb, block, nm, fill)``: how much the mean output inside ``block``
  changes when each square of the input around it is painted over with ``fill``. Small
  effects everywhere mean that no single nearby feature (a highlight, an edge) causes what
  is seen in the block.

Both run the model on the whole input at once (``model(rgb)``), in eval mode, without
gradients.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .figures import _band_index

__all__ = ["colour_sweep", "occlusion_effect"]


@torch.no_grad()
def colour_sweep(model: nn.Module, start: np.ndarray, end: np.ndarray, nm: float,
                 steps: int = 11, size: int = 32) -> np.ndarray:
    """Output at ``nm`` (mean over the central half of a ``size x size`` uniform image) for
    ``steps`` colours from ``start`` to ``end``, ``(steps,)``."""
    band = _band_index(nm)
    mix = np.linspace(0.0, 1.0, steps)[:, None]
    colours = (1 - mix) * np.asarray(start, np.float32) + mix * np.asarray(end, np.float32)
    images = torch.from_numpy(colours.astype(np.float32))[:, :, None, None].expand(-1, -1, size, size)
    p = next(model.parameters())
    out = model.eval()(images.to(p.device, p.dtype))[:, band]
    q = size // 4                                    # away from the zero-padded border
    return out[:, q:size - q, q:size - q].mean(dim=(1, 2)).double().cpu().numpy()


@torch.no_grad()
def occlusion_effect(model: nn.Module, rgb: np.ndarray, block: tuple[slice, slice], nm: float,
                     fill: np.ndarray, square: int = 16) -> np.ndarray:
    """Change of the mean output at ``nm`` inside ``block`` when each ``square x square`` cell
    of ``rgb`` (``(3, H, W)`` in [0, 1]) is painted with ``fill``; ``(H // square, W // square)``,
    positive where painting the cell raises the block's output."""
    band = _band_index(nm)
    p = next(model.parameters())
    x = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).to(p.device, p.dtype)
    model.eval()
    base = model(x[None])[0, band][block].mean()
    rows, cols = x.shape[1] // square, x.shape[2] // square
    colour = torch.as_tensor(np.asarray(fill, np.float32), device=p.device, dtype=p.dtype)[:, None, None]
    effect = np.zeros((rows, cols))
    for i in range(rows):                            # one batch per row of cells
        batch = x[None].repeat(cols, 1, 1, 1)
        for j in range(cols):
            batch[j, :, i * square:(i + 1) * square, j * square:(j + 1) * square] = colour
        effect[i] = (model(batch)[:, band][:, block[0], block[1]].mean(dim=(1, 2)) - base).cpu().numpy()
    return effect

