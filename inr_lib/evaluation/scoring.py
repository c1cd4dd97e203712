"""Evaluation on full images with a recorded protocol.

:func:`evaluate` reconstructs every scene from its RGB (whole image at once, or tiled at
the training crop size with blended overlaps, optionally with the 8-fold flip/transpose
self-ensemble), clamps the prediction to [0, 1], optionally crops a border, and scores it
with :mod:`inr_lib.evaluation.metrics` (PSNR, SSIM, SAM, RMSE, MRAE). It returns per-scene values,
their means, per-band PSNR/RMSE curves, and a ``protocol`` dict saying exactly how the
numbers were obtained (so tables from different runs can be compared honestly).
:func:`write_results` saves the dict as JSON (atomically).

It works for any model mapping ``(B, 3, H, W)`` to ``(B, 31, H, W)`` in [0, 1]: the INR
model (its own :meth:`~inr_lib.model.INRHSISR.predict` does the tiling) and the baselines
(:func:`inr_lib.model.tiling.tiled_apply` with the same window layout).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._version import __version__
from ..data.scene import scene_rgb
from ..files.atomic import atomic_write, sha256_file
from ..model.tiling import predict_image
from . import metrics as M

__all__ = ["evaluate", "write_results", "reconstruct"]

MODES = ("tiled", "whole")


def reconstruct(model: nn.Module, rgb: torch.Tensor, mode: str = "tiled", tile: int = 64,
                overlap: int = 16, self_ensemble: bool = False, batch_size: int = 16,
                device: torch.device | str | None = None) -> torch.Tensor:
    """Full-image prediction ``(B, 3, H, W)`` -> ``(B, 31, H, W)`` clamped to [0, 1]:
    :func:`inr_lib.model.tiling.predict_image` (same arguments) followed by the clamp."""
    return predict_image(model, rgb, mode=mode, tile=tile, overlap=overlap, batch_size=batch_size,
                         device=device, self_ensemble=self_ensemble).clamp(0.0, 1.0)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def evaluate(model: nn.Module, scenes: Sequence, mode: str = "tiled", tile: int = 64,
             overlap: int = 16, border: int = 0, self_ensemble: bool = False,
             rgb_source: str = "dataset",
             device: torch.device | str | None = None, progress: bool = True, *,
             batch_size: int = 16, dataset: str | None = None, split: str | None = None,
             checkpoint: str | os.PathLike | None = None, profile: str | None = None) -> dict:
    """Score a model on full images of ``scenes``.

    Args:
        model: INR model or any module ``(B, 3, H, W) -> (B, 31, H, W)``.
        scenes: :class:`~inr_lib.data.Scene` objects (``hsi`` (31, H, W) in [0, 1]).
        mode: ``"tiled"`` (windows of ``tile`` px with ``overlap``, blended; the training
            condition) or ``"whole"`` (one pass on the whole image).
        tile, overlap: window size and overlap for ``"tiled"``.
        border: pixels cropped from every side before scoring (0 = score everything).
        self_ensemble: average the 8 flips/transposes of the input.
        rgb_source: ``"dataset"`` (the scenes' RGB) or a response name (``"cie1964"``).
        device: where the model runs (default: where its parameters are; CPU for a model
            without parameters). The model is moved there (``model.to(device)``). On a
            CUDA device the images are scored there too (no copy back per scene).
        progress: tqdm bar over scenes.
        batch_size: windows per forward pass.
        dataset, split: recorded in the protocol (e.g. ``"cave"``, ``"test"``).
        checkpoint: checkpoint file to record (path and sha256); default: the model's
            ``checkpoint_info`` set by :func:`inr_lib.files.checkpoints.load_model`, if any.
        profile: recorded in the protocol (default: ``INR_PROFILE`` or None).

    Returns:
        ``{"protocol": {...}, "mean": {metric: value}, "per_scene": [{"scene", metric...,
        "psnr_per_band", "rmse_per_band"}], "per_band": {"wavelengths", "psnr", "rmse"}
        (means over scenes), "seconds": float}``. Metrics follow :mod:`inr_lib.evaluation.metrics`
        (PSNR in dB with peak 1, SAM in degrees); a value that is undefined for a scene
        (e.g. PSNR of a perfect prediction = inf) is left out of the mean.
    """
    scenes = _checked(scenes, mode, border)
    device = _model_device(model, device)
    model = model.to(device)
    score_on = device if device.type == "cuda" else torch.device("cpu")
    t0 = time.perf_counter()
    per_scene = [_score_scene(model, scene, mode, tile, overlap, border, self_ensemble,
                              rgb_source, batch_size, device, score_on)
                 for scene in tqdm(scenes, desc="evaluate", unit="scene", disable=not progress)]
    mean = {k: _mean([s[k] for s in per_scene]) for k in M.METRICS}
    bp = torch.tensor([s["psnr_per_band"] for s in per_scene])
    per_band = {
        "wavelengths": [float(w) for w in getattr(scenes[0], "wavelengths", np.arange(400, 701, 10))],
        "psnr": torch.where(torch.isfinite(bp), bp, torch.nan).nanmean(0).tolist(),
        "rmse": torch.tensor([s["rmse_per_band"] for s in per_scene]).mean(0).tolist(),
    }
    protocol = _protocol(model, scenes, mode, tile, overlap, border, self_ensemble, rgb_source,
                         dataset, split, checkpoint, profile, device)
    return {"protocol": protocol, "mean": mean, "per_scene": per_scene, "per_band": per_band,
            "seconds": round(time.perf_counter() - t0, 3)}


def _checked(scenes: Sequence, mode: str, border: int) -> list:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    scenes = list(scenes)
    if not scenes:
        raise ValueError("evaluate needs at least one scene, got none; check the data and split")
    return scenes


def _model_device(model: nn.Module, device) -> torch.device:
    """``device``, or where the model's parameters are (CPU for a model without any)."""
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    return torch.device(device)


def _score_scene(model, scene, mode, tile, overlap, border, self_ensemble, rgb_source,
                 batch_size, device, score_on) -> dict:
    """Reconstruct one scene and score it on ``score_on``: ``{"scene", metric..., per band}``."""
    rgb = torch.from_numpy(scene_rgb(scene, rgb_source))[None].to(score_on)   # (1, 3, H, W)
    target = torch.from_numpy(np.asarray(scene.hsi, dtype=np.float32))[None].to(score_on)
    pred = reconstruct(model, rgb, mode, tile, overlap, self_ensemble, batch_size, device)
    if pred.shape != target.shape:
        raise ValueError(f"scene {scene.name!r}: the model returned {tuple(pred.shape)}, "
                         f"expected {tuple(target.shape)}")
    if border:
        H, W = target.shape[-2:]
        if 2 * border >= min(H, W):
            raise ValueError(f"border {border} leaves nothing of scene {scene.name!r} ({H}x{W})")
        pred = pred[..., border:H - border, border:W - border]
        target = target[..., border:H - border, border:W - border]
    scores = {k: float(v[0]) for k, v in M.compute_all(pred, target).items()}
    return {"scene": scene.name, **scores,
            "psnr_per_band": M.psnr_per_band(pred, target)[0].tolist(),
            "rmse_per_band": M.rmse_per_band(pred, target)[0].tolist()}


def _protocol(model, scenes, mode, tile, overlap, border, self_ensemble, rgb_source, dataset,
              split, checkpoint, profile, device) -> dict:
    info = getattr(model, "checkpoint_info", None) or {}
    if checkpoint is not None:
        info = {"path": str(checkpoint), "sha256": sha256_file(checkpoint)}
    if rgb_source == "dataset":
        rgb_desc = {"source": "dataset", "response": None,
                    "note": "the dataset's own RGB images (e.g. CAVE *_RGB.bmp)"}
    else:
        rgb_desc = {"source": "projected", "response": rgb_source,
                    "note": "inr_lib.spectral.project(hsi, response) (columns normalised to sum 1)"}
    config: Any = getattr(model, "config", None)
    return {
        "dataset": dataset,
        "split": split,
        "scenes": [s.name for s in scenes],
        "image_sizes": [list(np.shape(s.hsi)[-2:]) for s in scenes],
        "rgb": rgb_desc,
        "value_scale": "[0, 1]; predictions clamped to [0, 1] before scoring",
        "border": border,
        "inference": {"mode": mode, "tile": tile if mode == "tiled" else None,
                      "overlap": overlap if mode == "tiled" else None,
                      "self_ensemble": bool(self_ensemble)},
        "metrics": {"psnr": "dB, peak 1, MSE over all bands and pixels",
                    "ssim": "Gaussian 11x11 sigma 1.5, per band, averaged",
                    "sam": "degrees, mean over pixels with non-zero spectra",
                    "rmse": "over all values", "mrae": "mean |pred-gt|/gt over gt > 0",
                    "mean": "mean over scenes of per-scene values"},
        "model": type(model).__name__,
        "model_config": config.to_dict() if hasattr(config, "to_dict") else None,
        "checkpoint": info.get("path"),
        "checkpoint_sha256": info.get("sha256"),
        "profile": profile if profile is not None else os.environ.get("INR_PROFILE"),
        "device": str(device),
        "inr_lib_version": __version__,
        "torch_version": torch.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _jsonable(x):
    """Replace non-finite floats (not valid JSON) by None, recursively; numpy -> python."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_results(results: dict, path: str | os.PathLike) -> Path:
    """Write ``results`` as indented JSON, atomically; non-finite numbers become ``null``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))
