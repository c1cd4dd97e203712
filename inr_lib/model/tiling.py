"""Model-agnostic full-image inference: whole, tiled, and with a self-ensemble.

:func:`predict_image` is the one inference entry point: it runs any model mapping
``(B, 3, H, W)`` to ``(B, C, H, W)`` on a full image, optionally averaged over the 8
flips/transposes (``self_ensemble=True``). :func:`inr_lib.evaluation.reconstruct` (what the
command line and :func:`~inr_lib.evaluation.evaluate` call) is it plus a clamp to [0, 1].
For the INR model it calls :meth:`inr_lib.model.INRHSISR.predict` (so the numbers are
exactly the model's own); for anything else (baselines) :func:`tiled_apply` uses the same
window layout and linear blending: windows of ``tile x tile`` starting every
``tile - overlap`` pixels (the last one flush with the border), weights ramping linearly over
the overlap.

:func:`self_ensemble` averages the predictions of the 8 flips/transposes of the input,
each mapped back.
"""
from __future__ import annotations

from numbers import Integral
from typing import Callable

import torch
from torch import nn

__all__ = ["check_image_batch", "check_image_values", "check_device", "window_starts", "blend_ramp", "tiled_apply",
           "predict_image", "self_ensemble", "DIHEDRAL", "apply_symmetry", "undo_symmetry"]


#: Input values above this are refused as "not in [0, 1]" (an 8-bit image not divided by
#: 255); a little above 1 (resampling overshoot) is accepted as it is.
MAX_INPUT = 1.5


def check_image_batch(rgb: object, channels: int = 3) -> None:
    """Raise a one-line error unless ``rgb`` is a floating point tensor ``(B, channels, H, W)``
    with ``B, H, W >= 1``; a numpy array or an ``(H, W, 3)`` image gets the conversion to use."""
    if not torch.is_tensor(rgb):
        shape = getattr(rgb, "shape", None)
        if shape is not None and len(shape) == 3 and shape[-1] in (3, 4):
            raise TypeError(f"expected a torch tensor (B, {channels}, H, W) in [0, 1], got a "
                            f"{type(rgb).__name__} of shape {tuple(shape)} (H, W, channels); "
                            f"convert it with torch.from_numpy(img[..., :3]).permute(2, 0, 1)[None]"
                            f".float() / 255 (8 bit; / 65535 for 16 bit)")
        raise TypeError(f"expected a torch tensor (B, {channels}, H, W) in [0, 1], got a "
                        f"{type(rgb).__name__}{'' if shape is None else ' of shape ' + str(tuple(shape))}; "
                        f"convert it with torch.as_tensor(x).float()")
    if rgb.dim() == 3 and rgb.shape[-1] in (3, 4) and rgb.shape[0] != channels:
        raise ValueError(f"expected an image batch (B, {channels}, H, W), got {tuple(rgb.shape)}, "
                         f"which looks like one (H, W, channels) image; use "
                         f"rgb[..., :3].permute(2, 0, 1)[None]")
    if rgb.dim() != 4 or rgb.shape[1] != channels:
        raise ValueError(f"expected an image batch of shape (B, {channels}, H, W) with values in "
                         f"[0, 1], got {tuple(rgb.shape)}; add a batch dimension with rgb[None] "
                         f"and drop alpha channels (rgb[:, :3])")
    if not rgb.is_floating_point():
        raise TypeError(f"expected a floating point tensor in [0, 1], got {rgb.dtype}; convert "
                        f"integer images with rgb.float() / 255 (8 bit) or / 65535 (16 bit)")
    if rgb.shape[0] < 1 or rgb.shape[2] < 1 or rgb.shape[3] < 1:
        raise ValueError(f"expected a non-empty image batch (B, H, W >= 1), got {tuple(rgb.shape)}")


def check_image_values(rgb: torch.Tensor) -> None:
    """Refuse (ValueError, one line) inputs the models cannot give a meaning to: NaN/Inf
    values (they spread to every pixel of their window, and with instance norm to the whole
    image), and values far outside [0, 1] (above :data:`MAX_INPUT`, or below
    ``-(MAX_INPUT - 1)``: an 8-bit image not divided by 255 gives outputs of 1e8)."""
    bad = int((~torch.isfinite(rgb)).sum())
    if bad:
        raise ValueError(f"the input holds {bad} NaN/Inf values ({bad / rgb.numel():.2%} of them); "
                         f"the outputs near them would all be NaN: replace them first (e.g. "
                         f"torch.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0))")
    lo, hi = float(rgb.min()), float(rgb.max())
    if hi > MAX_INPUT or lo < 1 - MAX_INPUT:
        raise ValueError(f"input values range from {lo:g} to {hi:g}, expected [0, 1]; divide "
                         f"8-bit images by 255 and 16-bit ones by 65535 first")


def check_device(device: torch.device | str | None) -> torch.device | None:
    """``torch.device(device)``, or a one-line RuntimeError when it names a CUDA device this
    machine does not have (instead of torch's AssertionError deep inside the call)."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device {device!r} is not a device name ({e}); use 'cpu', 'cuda' or "
                         f"'cuda:N'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(device)!r} was asked for, but this machine has no usable "
                           f"CUDA GPU (torch {torch.__version__}); use device='cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {str(device)!r} was asked for, but only "
                           f"{torch.cuda.device_count()} CUDA device(s) exist")
    return dev


def _check_window(tile, overlap) -> None:
    """``tile`` a positive integer or None, ``overlap`` a non-negative integer."""
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, Integral) or tile < 1):
        raise ValueError(f"tile must be a positive integer number of pixels (or None for the "
                         f"whole image), got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, Integral) or overlap < 0:
        raise ValueError(f"overlap must be a non-negative integer number of pixels, got {overlap!r}")


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
    _check_window(tile, overlap)
    dev = check_device(device) or rgb.device
    B, _, H, W = rgb.shape
    if tile is None or (tile >= H and tile >= W):
        return fn(rgb.to(dev)).float().to(rgb.device)
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must satisfy 0 <= overlap < tile, got overlap={overlap}, tile={tile}; "
                         f"use a smaller overlap or a larger tile (--overlap, --tile on the command line)")
    th, tw = min(tile, H), min(tile, W)
    weight = blend_ramp(th, overlap, rgb.device)[:, None] * blend_ramp(tw, overlap, rgb.device)[None]
    boxes = [(y, x) for y in window_starts(H, tile, overlap) for x in window_starts(W, tile, overlap)]
    out: torch.Tensor | None = None
    norm = torch.zeros(H, W, device=rgb.device)
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
    assert out is not None        # at least one window
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

    Raises:
        ValueError, TypeError, RuntimeError: one line for a wrong input (:func:`check_image_batch`,
            :func:`check_image_values`: NaN/Inf or values far outside [0, 1] are refused, not
            guessed), a non-integer ``tile``/``overlap``, or a CUDA device this machine lacks.
    """
    if mode not in ("tiled", "whole"):
        raise ValueError(f"mode must be 'tiled' or 'whole', got {mode!r}")
    check_image_batch(rgb, rgb.shape[1] if torch.is_tensor(rgb) and rgb.dim() == 4 else 3)
    check_image_values(rgb)
    _check_window(tile if mode == "tiled" else None, overlap)
    check_device(device)
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
    total: torch.Tensor | None = None
    for fv, fh, tr in DIHEDRAL:
        y = undo_symmetry(predict(apply_symmetry(rgb, fv, fh, tr)), fv, fh, tr)
        total = y if total is None else total + y
    assert total is not None
    return total / len(DIHEDRAL)


_self_ensemble = self_ensemble   # predict_image's argument of the same name hides it there
