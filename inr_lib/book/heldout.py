"""The held-out-band experiment: how well is a band predicted that never entered the loss?

A model trained on some bands only (``TrainConfig.wavelengths``, e.g. the 16 even bands
400, 420, ..., 700 nm) is asked for the others (the 15 odd bands). A model that is continuous
in wavelength (``spectral="continuous"``) answers with its own function; the baselines fill
the held-out bands by interpolating the *same* model's predictions at the bands it kept
(linear, cubic spline), which isolates what the learned function adds between the bands.

:func:`band_errors` scores one model on full images: per-band RMSE of its own output and of
each interpolation fill. :func:`summarise` and :func:`compare` turn those curves (one per seed)
into a table's numbers and a verdict held against the seed spread. Per-band RMSE is computed
exactly as :func:`inr_lib.evaluation.evaluate` does (clamped prediction, mean over scenes of
each scene's per-band RMSE), so a model's own row equals its card's ``per_band["rmse"]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..data.scene import scene_rgb
from ..evaluation import metrics as M
from ..evaluation import reconstruct
from ..model.basis import band_indices, interpolate_bands
from ..spectral import WAVELENGTHS

__all__ = ["EVEN", "ODD", "FILLS", "band_errors", "Summary", "summarise", "compare", "psnr",
           "headline", "table_rows", "TABLE_HEADER"]

EVEN = [float(w) for w in WAVELENGTHS[0::2]]   # 400, 420, ..., 700 nm: the 16 kept bands
ODD = [float(w) for w in WAVELENGTHS[1::2]]    # 410, 430, ..., 690 nm: the 15 held out
FILLS = ("linear", "cubic")


def _fill(pred: torch.Tensor, kept: Sequence[float], held: Sequence[float], kind: str) -> torch.Tensor:
    """``pred (1, 31, H, W)`` with the ``held`` bands replaced by ``kind`` interpolation of
    the ``kept`` bands, clamped to [0, 1] (the protocol's clamp)."""
    ki, hi = band_indices(kept), band_indices(held)
    out = pred.clone()
    out[0, hi] = torch.from_numpy(interpolate_bands(pred[0, ki], kept, held, kind)).to(out.dtype)
    return out.clamp(0.0, 1.0)


@torch.no_grad()
def band_errors(model: nn.Module, scenes: Sequence, kept: Sequence[float] = EVEN,
                held: Sequence[float] = ODD, fills: Sequence[str] = FILLS, mode: str = "tiled",
                tile: int = 64, overlap: int = 16, device: torch.device | str | None = None,
                per_scene: bool = False) -> dict[str, np.ndarray]:
    """Per-band RMSE of a model and of interpolation fills of its kept bands, on full images.

    Args:
        model: any module ``(B, 3, H, W) -> (B, 31, H, W)`` (the INR model, a baseline).
        scenes: scenes with ``.hsi (31, H, W)`` in [0, 1] and their RGB (``scene_rgb``).
        kept: band centres (nm) whose predictions the fills interpolate (the trained ones).
        held: band centres (nm) the fills replace; inside ``[min(kept), max(kept)]``.
        fills: interpolation kinds, ``"linear"`` and/or ``"cubic"``
            (:func:`inr_lib.model.basis.interpolate_bands`).
        mode, tile, overlap, device: inference as :func:`inr_lib.evaluation.reconstruct`.
        per_scene: return each scene's curve instead of their mean.

    Returns:
        ``{"model": (31,), "linear": (31,), ...}`` float64: for each, the mean over the scenes
        of each scene's per-band RMSE (the model's own output, and the output with the
        ``held`` bands filled); with ``per_scene``, ``(len(scenes), 31)`` in the scenes' order.
        Only the ``held`` entries of a fill differ from ``"model"``.
    """
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("model", *fills)}
    for scene in scenes:
        rgb = torch.from_numpy(scene_rgb(scene))[None]
        gt = torch.from_numpy(np.ascontiguousarray(scene.hsi))[None]
        pred = reconstruct(model, rgb, mode=mode, tile=tile, overlap=overlap, device=device).cpu()
        rows["model"].append(M.rmse_per_band(pred, gt)[0].numpy())
        for kind in fills:
            rows[kind].append(M.rmse_per_band(_fill(pred, kept, held, kind), gt)[0].numpy())
    curves = {k: np.stack(v) for k, v in rows.items()}
    return curves if per_scene else {k: c.mean(axis=0) for k, c in curves.items()}


def psnr(rmse: float) -> float:
    """PSNR in dB of an RMSE on the [0, 1] scale (peak 1)."""
    return float(20 * np.log10(1.0 / rmse))


@dataclass(frozen=True)
class Summary:
    """One method's row of the held-out-band table (RMSE on the [0, 1] scale).

    ``held``: mean over seeds of the mean RMSE over the held-out bands; ``per_seed``: that
    mean for each seed; ``kept``: the same over the kept bands; ``spread``: the largest
    difference between two seeds on ``held`` (None with one seed)."""
    held: float
    per_seed: tuple[float, ...]
    kept: float
    spread: float | None

    @property
    def held_psnr(self) -> float:
        return psnr(self.held)


def summarise(curves: Sequence[np.ndarray], held: Sequence[float] = ODD) -> Summary:
    """Summarise per-band RMSE curves ``(31,)``, one per seed, over the held-out bands."""
    hi = band_indices(held)
    ki = [i for i in range(len(WAVELENGTHS)) if i not in hi]
    per_seed = tuple(float(np.mean(np.asarray(c)[hi])) for c in curves)
    kept = float(np.mean([np.mean(np.asarray(c)[ki]) for c in curves]))
    spread = float(max(per_seed) - min(per_seed)) if len(per_seed) > 1 else None
    return Summary(float(np.mean(per_seed)), per_seed, kept, spread)


def _noise(*summaries: Summary) -> float | None:
    spreads = [s.spread for s in summaries if s.spread is not None]
    return max(spreads) if spreads else None


def compare(method: Summary, baseline: Summary, noise: float | None = None) -> str:
    """Verdict of ``method`` against ``baseline`` on the held-out RMSE: ``"better than"``,
    ``"worse than"`` or ``"no different from (within the seed spread)"``.

    ``noise`` is the difference two seeds of one method can show; by default the larger
    seed spread of the two summaries. Without any (one seed each) the verdict says so."""
    if noise is None:
        noise = _noise(method, baseline)
    gap = baseline.held - method.held
    if noise is None:
        return ("better than" if gap > 0 else "worse than") + " (one seed: no seed spread to hold it against)"
    if gap > noise:
        return "better than"
    if gap < -noise:
        return "worse than"
    return "no different from (within the seed spread)"


def headline(method: Summary, baselines: dict[str, Summary]) -> dict:
    """The experiment's answer: ``method`` against the best (lowest held-out RMSE) of
    ``baselines``.

    Returns:
        ``{"best": name, "method": rmse, "baseline": rmse, "gap": baseline - method (positive:
        the method is better), "noise": seed spread or None, "verdict": compare(...)}``.
    """
    best = min(baselines, key=lambda k: baselines[k].held)
    noise = _noise(method, baselines[best])
    return {"best": best, "method": method.held, "baseline": baselines[best].held,
            "gap": baselines[best].held - method.held, "noise": noise,
            "verdict": compare(method, baselines[best], noise)}


TABLE_HEADER = ("method", "RMSE at the held-out bands", "per seed", "PSNR held-out bands (dB)",
                "RMSE at the kept bands")


def table_rows(summaries: dict[str, Summary], labels: dict[str, str],
               sources: dict[str, str] | None = None) -> list[tuple[str, ...]]:
    """Rows for :data:`TABLE_HEADER`, one per key of ``labels`` (in its order) found in
    ``summaries``; RMSE with 5 decimals, the per-seed cell empty for one seed. With
    ``sources`` (``{key: where the model comes from}``), a last cell says where each row's model
    comes from (header: ``TABLE_HEADER + ("from",)``)."""
    rows: list[tuple[str, ...]] = []
    for key, label in labels.items():
        if key not in summaries:
            continue
        s = summaries[key]
        seeds = " / ".join(f"{v:.5f}" for v in s.per_seed) if len(s.per_seed) > 1 else ""
        row = (label, f"{s.held:.5f}", seeds, f"{s.held_psnr:.2f}", f"{s.kept:.5f}")
        rows.append(row + ((sources.get(key, ""),) if sources is not None else ()))
    return rows
