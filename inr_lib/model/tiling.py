"""Model-agnostic full-image inference: whole, tiled, and with a self-ensemble.

:func:`predict_image` is the one inference entry point: it runs any model mapping
``(B, 3, H, W)`` to ``(B, C, H, W)`` on a full image, optionally averaged over the 8
flips/transposes (``self_ensemble=True``). :func:`inr_lib.evaluation.reconstruct` (what the
command line and :func:`~inr_lib.evaluation.evaluate` call) is it plus a clamp to [0, 1]. For the INR model it calls :meth:`inr_lib.model.INRHSISR.predict` (so the
numbers are exactly the model's own); for anything else (baselines) :func:`tiled_apply`
uses the same window layout and linear blending: windows of ``tile x tile`` starting
every ``tile - overlap`` pixels (the last one flush with the border), weights ramping
linearly over the overlap.

:func:`self_ensemble` averages the predictions of the 8 flips/transposes of the input,
each mapped back.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["window_starts", "blend_ramp", "tiled_apply", "predict_image", "self_ensemble",
           "DIHEDRAL", "apply_symmetry", "undo_symmetry"]


def window_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of the windows along one axis (the last window is flush with the end)."""
    if tile >= length:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return starts + [length - tile]


def blend_ramp(n: int, overlap: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(n,)`` blending weights: linear ramps of ``overlap + 1`` steps at both ends, 1 inside."""
    i = torch.arange(n, device=device, dtype=torch.float32)
    return torch.minimum((i + 1) / (overlap + 1), (n - i) / (overlap + 1)).clamp(max=1.0)


@torch.no_grad()
def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], rgb: torch.Tensor, tile: int | None,
                overlap: int = 16, batch_size: int = 16, device: torch.device | str | None = None) -> torch.Tensor:
    """Apply ``fn`` to overlapping windows of ``rgb`` and blend the results.

    Args:
        fn: maps ``(N, 3, h, w)`` to ``(N, C, h, w)``.
        rgb: ``(B, 3, H, W)``.
        tile: window side, or None (or >= the image) for one call on the whole image.
        overlap: pixels shared by neighbouring windows, ``0 <= overlap < tile``.
        batch_size: windows per call of ``fn``.
        device: where ``fn`` runs (default: where ``rgb`` is); the result is on
            ``rgb``'s device, float32.

    Returns:
        ``(B, C, H, W)``.

    Memory: besides the input and the output, only ``batch_size`` windows and an
    ``(H, W)`` weight map are held at a time (``tests/test_reliability.py`` measures it).
    """
    dev = torch.device(device) if device is not None else rgb.device
    B, _, H, W = rgb.shape
    if tile is not None and tile < 1:
        raise ValueError(f"tile must be a positive number of pixels (or None for the whole "
                         f"image), got {tile}")
    if tile is None or (tile >= H and tile >= W):
        return fn(rgb.to(dev)).float().to(rgb.device)
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must satisfy 0 <= overlap < tile, got overlap={overlap}, tile={tile}; "
                         f"use a smaller overlap or a larger tile (--overlap, --tile on the command line)")
    th, tw = min(tile, H), min(tile, W)
    weight = blend_ramp(th, overlap, rgb.device)[:, None] * blend_ramp(tw, overlap, rgb.device)[None]
    boxes = [(y, x) for y in window_starts(H, tile, overlap) for x in window_starts(W, tile, overlap)]
    out, norm = None, torch.zeros(H, W, device=rgb.device)
    for y, x in boxes:
        norm[y:y + th, x:x + tw] += weight
    for b in range(B):
        for k in range(0, len(boxes), batch_size):
            chunk = boxes[k:k + batch_size]
            crops = torch.stack([rgb[b, :, y:y + th, x:x + tw] for y, x in chunk]).to(dev)
            pred = fn(crops).float().to(rgb.device)
            if out is None:
                out = torch.zeros(B, pred.shape[1], H, W, device=rgb.device)
            for (y, x), p in zip(chunk, pred):
                out[b, :, y:y + th, x:x + tw] += p * weight
    return out.div_(norm)  # in place: the peak memory stays at one output image


@torch.no_grad()
def predict_image(model: nn.Module, rgb: torch.Tensor, mode: str = "tiled", tile: int = 64,
                  overlap: int = 16, batch_size: int = 16, device: torch.device | str | None = None,
                  self_ensemble: bool = False) -> torch.Tensor:
    """Full-image prediction with any model, in eval mode (restored afterwards).

    Args:
        model: the INR model (its ``predict`` is used) or any module ``(B, 3, H, W) ->
            (B, C, H, W)``.
        rgb: ``(B, 3, H, W)`` in [0, 1].
        mode: ``"tiled"`` (windows of ``tile`` with ``overlap``, as trained) or ``"whole"``
            (one forward pass on the full image).
        tile, overlap, batch_size, device: see :func:`tiled_apply`.
        self_ensemble: average the 8 flips/transposes of the input (each mapped back).

    Returns:
        ``(B, C, H, W)`` float32 on ``rgb``'s device, unclamped.
    """
    if mode not in ("tiled", "whole"):
        raise ValueError(f"mode must be 'tiled' or 'whole', got {mode!r}")
    if self_ensemble:
        return _self_ensemble(
            lambda x: predict_image(model, x, mode, tile, overlap, batch_size, device), rgb)
    t = tile if mode == "tiled" else None
    if hasattr(model, "predict") and callable(model.predict) and hasattr(model, "render"):
        return model.predict(rgb, tile=t, overlap=overlap, batch_size=batch_size,
                             device=device).float()
    was_training = model.training
    model.eval()
    try:
        return tiled_apply(model, rgb, t, overlap, batch_size, device)
    finally:
        model.train(was_training)


#: the 8 symmetries of the square as (flip rows, flip columns, transpose)
DIHEDRAL = [(fv, fh, tr) for tr in (False, True) for fv in (False, True) for fh in (False, True)]


def apply_symmetry(x: torch.Tensor, flip_v: bool, flip_h: bool, transpose: bool) -> torch.Tensor:
    """Apply flips, then a transpose, to the last two axes of ``x`` ``(..., H, W)``."""
    dims = [d for d, on in ((-2, flip_v), (-1, flip_h)) if on]
    x = torch.flip(x, dims) if dims else x
    return x.transpose(-2, -1) if transpose else x


def undo_symmetry(x: torch.Tensor, flip_v: bool, flip_h: bool, transpose: bool) -> torch.Tensor:
    """The inverse of :func:`apply_symmetry` with the same arguments."""
    x = x.transpose(-2, -1) if transpose else x
    dims = [d for d, on in ((-2, flip_v), (-1, flip_h)) if on]
    return torch.flip(x, dims) if dims else x


@torch.no_grad()
def self_ensemble(predict: Callable[[torch.Tensor], torch.Tensor], rgb: torch.Tensor) -> torch.Tensor:
    """Mean of ``inverse_T(predict(T(rgb)))`` over the 8 flips/transposes ``T``.

    ``predict`` maps ``(B, 3, H, W)`` to ``(B, C, H, W)`` (transposed inputs are
    ``(B, 3, W, H)``). Returns ``(B, C, H, W)``.
    """
    total = None
    for fv, fh, tr in DIHEDRAL:
        y = undo_symmetry(predict(apply_symmetry(rgb, fv, fh, tr)), fv, fh, tr)
        total = y if total is None else total + y
    return total / len(DIHEDRAL)


_self_ensemble = self_ensemble   # predict_image's argument of the same name hides it there
