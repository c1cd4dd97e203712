"""Figures drawn by code that the chapters show.

``architecture_diagram(presets, size)`` (chapters 4 and 5) draws the INR-HSISR network for each
preset: the hypernetwork's convolutions with their output shapes, the per-tile parameters
``(B, P, H/4, W/4)``, the positional encoding and the per-pixel MLP that maps
``(B, 11, H, W)`` to the 31 bands. Every shape is read from a model built by ``inr_lib`` (on
PyTorch's "meta" device, so no weights are allocated), not typed in.

Reconstructions against ground truth (chapter 9), each for one scene: ``gt`` is its measured
cube ``(31, H, W)`` in [0, 1] and ``preds`` maps a method's name to its prediction of the same
shape (numpy or torch), drawn in the order given:

* ``band_comparison``: chosen bands (e.g. 450, 550, 650 nm), ground truth and each method on
  one grey scale per band;
* ``srgb_comparison``: sRGB renderings of the spectra (:func:`inr_lib.spectral.srgb_preview`);
* ``spectra_at_pixels``: predicted and measured spectra at a few pixels (``distinct_pixels``
  picks pixels whose spectra differ most);
* ``error_map_figure``: per-pixel RMSE and spectral angle (``error_maps``), one colour scale
  per metric for all methods.

Each returns ``(fig, info)``: ``info`` holds the values drawn (for assertions and captions).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

import inr_lib

from ..model import INRHSISR, PRESETS
from ..spectral import WAVELENGTHS, srgb_preview

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def hypernet_stages(cfg: "inr_lib.ModelConfig", size: tuple[int, int]) -> list[dict]:
    """Consecutive convolutions of the hypernetwork grouped by (c_in, c_out, stride), with the
    output grid of each group, for an input of ``size = (H, W)`` pixels."""
    with torch.device("meta"):
        model = INRHSISR(cfg)
    h, w = size
    stages: list[dict[str, Any]] = []
    for m in model.hypernet.features.modules():
        if isinstance(m, torch.nn.Conv2d):
            h = (h + 2 * int(m.padding[0]) - m.kernel_size[0]) // m.stride[0] + 1
            w = (w + 2 * int(m.padding[1]) - m.kernel_size[1]) // m.stride[1] + 1
            key = (m.in_channels, m.out_channels, m.stride[0])
            if stages and stages[-1]["key"] == key and m.stride[0] == 1:
                stages[-1]["n"] += 1
            else:
                stages.append({"key": key, "n": 1, "cin": m.in_channels, "cout": m.out_channels,
                               "stride": m.stride[0], "grid": (h, w)})
    head = model.hypernet.head
    stages.append({"key": "head", "n": 1, "cin": head.in_channels, "cout": head.out_channels,
                   "stride": 1, "grid": (h, w), "head": True})
    return stages


def _box(ax, x, y, w, h, label, color):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=color, ec="k", lw=0.8))
    ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=7.5)


def _arrow(ax, a, b, color="k"):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=10, lw=1, color=color))


def draw_architecture(ax: Axes, preset: str = "paper", size: tuple[int, int] = (64, 64)) -> dict:
    """Draw one preset's network on ``ax``; returns the shapes it drew (for assertions)."""
    cfg = inr_lib.ModelConfig(**PRESETS[preset])
    H, W = size
    stages = hypernet_stages(cfg, size)
    P, t, widths = cfg.mlp_params, cfg.tile, cfg.mlp_widths
    n_enc = widths[0] - cfg.in_channels
    bw, bh, gap = 1.55, 0.9, 0.35
    ax.set(xlim=(-0.2, (len(stages) + 2) * (bw + gap)), ylim=(-0.3, 2.75))
    ax.axis("off")
    # top row: RGB -> hypernetwork stages -> per-tile parameters
    _box(ax, 0, 1.6, bw, bh, f"RGB in [-1, 1]\n(B, 3, {H}, {W})", "#f2f2f2")
    x = bw + gap
    for s in stages:
        if s.get("head"):
            label = f"head: 1x1 conv\n{s['cin']} -> P = {s['cout']:,}\n(with bias)"
        else:
            rep = f"{s['n']} x " if s["n"] > 1 else ""
            stride = ", stride 2" if s["stride"] == 2 else ""
            label = (f"{rep}3x3 conv\n{s['cin']} -> {s['cout']}{stride}\n+ IN + ReLU\n"
                     f"(B, {s['cout']}, {s['grid'][0]}, {s['grid'][1]})")
        _arrow(ax, (x - gap, 1.6 + bh / 2), (x, 1.6 + bh / 2))
        _box(ax, x, 1.6, bw, bh, label, "#cfe2f3")
        x += bw + gap
    theta = (1, P, H // t, W // t)
    _arrow(ax, (x - gap, 1.6 + bh / 2), (x, 1.6 + bh / 2))
    _box(ax, x, 1.6, bw, bh, f"per-tile MLP\nparameters Θ\n(B, {P:,}, {H // t}, {W // t})", "#fce5cd")
    x_theta = x
    # bottom row: encoding + RGB -> per-pixel MLP -> 31 bands
    periods = ", ".join(f"{p:g}" for p in cfg.periods)
    _box(ax, 0, 0.2, bw, bh, f"positional encoding\n\"{cfg.encoding}\", periods\n{periods}\n({n_enc}, {H}, {W})",
         "#d9ead3")
    _box(ax, bw + gap, 0.2, bw, bh, f"concatenate with RGB\n(B, {widths[0]}, {H}, {W})", "#f2f2f2")
    _arrow(ax, (bw, 0.2 + bh / 2), (bw + gap, 0.2 + bh / 2))
    _arrow(ax, (bw / 2, 1.6), (bw + gap + 0.3, 0.2 + bh), color="0.5")
    mlp_x, mlp_w = 2 * (bw + gap), x_theta - 2 * (bw + gap) - gap
    arrows = " -> ".join(str(c) for c in widths)
    _box(ax, mlp_x, 0.2, mlp_w, bh, f"per-pixel MLP, weights of the pixel's {t}x{t} tile from Θ\n"
         f"{arrows}, LeakyReLU({cfg.negative_slope:g}) between layers\n"
         f"{P:,} numbers per tile: {(H // t) * (W // t)} tiles", "#fff2cc")
    _arrow(ax, (mlp_x - gap, 0.2 + bh / 2), (mlp_x, 0.2 + bh / 2))
    _arrow(ax, (x_theta + bw / 2, 1.6), (mlp_x + mlp_w - 0.3, 0.2 + bh), color="C1")
    _box(ax, x_theta, 0.2, bw, bh, f"{widths[-1]} bands\n(B, {widths[-1]}, {H}, {W})\nback to [0, 1]", "#ead1dc")
    _arrow(ax, (mlp_x + mlp_w, 0.2 + bh / 2), (x_theta, 0.2 + bh / 2))
    n_params = sum(p.numel() for p in _meta_model(cfg).parameters())
    ax.set_title(f"\"{preset}\" preset: {n_params:,} parameters, for a {H}x{W} input "
                 f"(shapes read from inr_lib)", fontsize=10, loc="left")
    return {"stages": stages, "theta": theta, "widths": widths, "params": n_params}


def _meta_model(cfg):
    with torch.device("meta"):
        return INRHSISR(cfg)


def architecture_diagram(presets: Sequence[str] = ("paper", "small"), size: tuple[int, int] = (64, 64),
                         ) -> tuple[Figure, dict[str, dict]]:
    """One row per preset; returns ``(fig, {preset: shapes drawn})``."""
    fig, axes = plt.subplots(len(presets), 1, figsize=(15, 3.3 * len(presets)), layout="constrained")
    axes = [axes] if len(presets) == 1 else list(axes)
    drawn = {p: draw_architecture(ax, p, size) for ax, p in zip(axes, presets)}
    return fig, drawn



# ----------------------------------------------------------------------------- reconstructions

def _cube(x: object, what: str) -> np.ndarray:
    """``x`` as a float64 numpy ``(31, H, W)`` (torch is detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3 or a.shape[0] != WAVELENGTHS.size:
        raise ValueError(f"{what}: expected a cube (31, H, W), got shape {a.shape}")
    return a


def _cubes(gt: object, preds: Mapping[str, object]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Checked numpy cubes: ground truth and each prediction, all of ground truth's shape."""
    g = _cube(gt, "ground truth")
    if not preds:
        raise ValueError("preds is empty: give at least one {name: prediction (31, H, W)}")
    out = {name: _cube(p, f"prediction {name!r}") for name, p in preds.items()}
    bad = {n: p.shape for n, p in out.items() if p.shape != g.shape}
    if bad:
        raise ValueError(f"predictions {bad} differ in shape from the ground truth {g.shape}")
    return g, out


def error_maps(pred: object, gt: object) -> dict[str, np.ndarray]:
    """Per-pixel errors of a predicted cube against the measured one.

    Args:
        pred, gt: ``(31, H, W)`` (or ``(1, 31, H, W)``) in [0, 1], numpy or torch.

    Returns:
        ``{"rmse": (H, W), "sam": (H, W)}`` float64: the RMSE over the bands (value units), and
        the spectral angle in degrees as :func:`inr_lib.evaluation.metrics.sam` defines it (NaN where
        either spectrum is zero; the mean of the finite values is that metric's value).
    """
    p, t = _cube(pred, "prediction"), _cube(gt, "ground truth")
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {t.shape} differ in shape")
    rmse = np.sqrt(((p - t) ** 2).mean(axis=0))
    n_p, n_t = np.linalg.norm(p, axis=0), np.linalg.norm(t, axis=0)
    valid = (n_p > 0) & (n_t > 0)
    u, v = p / np.where(valid, n_p, 1.0), t / np.where(valid, n_t, 1.0)
    angle = 2.0 * np.arctan2(np.linalg.norm(u - v, axis=0), np.linalg.norm(u + v, axis=0))
    return {"rmse": rmse, "sam": np.where(valid, np.degrees(angle), np.nan)}


def _band_index(nm: float) -> int:
    i = int(np.argmin(np.abs(WAVELENGTHS - nm)))
    if abs(WAVELENGTHS[i] - nm) > 0:
        raise ValueError(f"{nm} nm is not one of the bands 400, 410, ..., 700 nm")
    return i


def _grid(rows: int, cols: int, size: float, title: str, images: bool = True
          ) -> tuple[Figure, np.ndarray]:
    """A figure of ``rows x cols`` panels of ``size`` inches (image panels without ticks)."""
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + 0.4),
                             layout="constrained", squeeze=False)
    for ax in axes.flat if images else ():
        ax.set(xticks=[], yticks=[])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, axes


def band_comparison(gt: object, preds: Mapping[str, object],
                    wavelengths: Sequence[float] = (450, 550, 650), title: str = "",
                    size: float = 2.6) -> tuple[Figure, dict]:
    """One row per band, one column each for the ground truth and every method.

    All panels of a row share one grey scale, from 0 to the 99.5th percentile of the measured
    band, so a brighter panel is a brighter prediction. Returns ``(fig, info)`` with
    ``info["bands"]`` (band indices), ``info["columns"]`` (names, ground truth first) and
    ``info["vmax"]`` (the scale of each row).
    """
    g, p = _cubes(gt, preds)
    bands = [_band_index(w) for w in wavelengths]
    columns = {"ground truth": g, **p}
    fig, axes = _grid(len(bands), len(columns), size, title)
    vmax = []
    for r, b in enumerate(bands):
        top = float(np.percentile(g[b], 99.5)) or 1.0
        vmax.append(top)
        for c, (name, cube) in enumerate(columns.items()):
            axes[r, c].imshow(cube[b], cmap="gray", vmin=0.0, vmax=top, interpolation="nearest")
            if r == 0:
                axes[r, c].set_title(name, fontsize=9)
        axes[r, 0].set_ylabel(f"{WAVELENGTHS[b]} nm")
    return fig, {"bands": bands, "columns": list(columns), "vmax": vmax}


def srgb_comparison(gt: object, preds: Mapping[str, object], title: str = "",
                    size: float = 3.0) -> tuple[Figure, dict]:
    """sRGB renderings (:func:`inr_lib.spectral.srgb_preview`) of the measured spectra and of
    each prediction, side by side. Returns ``(fig, {"columns": names, "images": (H, W, 3)
    arrays})``."""
    g, p = _cubes(gt, preds)
    columns = {"ground truth": g, **p}
    fig, axes = _grid(1, len(columns), size, title)
    images = []
    for ax, (name, cube) in zip(axes[0], columns.items()):
        img = srgb_preview(cube)
        images.append(img)
        ax.imshow(img, interpolation="nearest")
        ax.set_title(name, fontsize=9)
    return fig, {"columns": list(columns), "images": images}


def distinct_pixels(gt: object, n: int = 4, stride: int = 8, min_brightness: float = 0.2,
                    margin: int = 16, min_distance: int = 64) -> list[tuple[int, int]]:
    """``n`` pixels ``(row, column)`` whose spectra differ most in shape, for plots of spectra.

    Candidates: every ``stride``-th pixel at least ``margin`` pixels from the border whose
    spectrum's norm is at least ``min_brightness`` times the 99th percentile of the norms
    (so no noise-dominated dark pixel). The first is the brightest; each next one is the
    candidate with the largest spectral angle to all pixels chosen so far (farthest-point
    sampling on unit spectra) among those at least ``min_distance`` pixels (Chebyshev distance)
    from every chosen pixel, so the markers do not overlap. Deterministic.
    """
    g = _cube(gt, "ground truth")
    _, h, w = g.shape
    rows = np.arange(min(margin, h // 2), max(h - margin, h // 2 + 1), stride)
    cols = np.arange(min(margin, w // 2), max(w - margin, w // 2 + 1), stride)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    spectra = g[:, rr.ravel(), cc.ravel()].T                          # (N, 31)
    norms = np.linalg.norm(spectra, axis=1)
    keep = norms >= min_brightness * np.percentile(norms, 99)
    keep &= norms > 0
    if keep.sum() < n:
        raise ValueError(f"only {int(keep.sum())} candidate pixels are bright enough; lower "
                         f"min_brightness or stride")
    idx = np.flatnonzero(keep)
    unit = spectra[idx] / norms[idx, None]
    pos = np.stack([rr.ravel()[idx], cc.ravel()[idx]], axis=1)
    chosen = [int(np.argmax(norms[idx]))]
    cos_max = unit @ unit[chosen[0]]
    for _ in range(n - 1):
        near = np.abs(pos[:, None, :] - pos[chosen][None]).max(axis=2).min(axis=1) < min_distance
        score = np.where(near, np.inf, cos_max)
        if np.isinf(score).all():
            raise ValueError(f"no {n} candidate pixels are {min_distance} pixels apart; lower "
                             f"min_distance")
        nxt = int(np.argmin(score))
        chosen.append(nxt)
        cos_max = np.maximum(cos_max, unit @ unit[nxt])
    return [(int(pos[k, 0]), int(pos[k, 1])) for k in chosen]


def spectra_at_pixels(gt: object, preds: Mapping[str, object], pixels: Sequence[tuple[int, int]],
                      title: str = "", size: float = 3.0) -> tuple[Figure, dict]:
    """The scene's sRGB rendering with the pixels marked, then one panel per pixel with the
    measured spectrum (black) and each method's prediction against wavelength (nm).

    Returns ``(fig, info)``: ``info["pixels"]`` and ``info["curves"]``, ``{name: (n, 31)}``
    with the values plotted (ground truth under ``"ground truth"``).
    """
    g, p = _cubes(gt, preds)
    _, h, w = g.shape
    bad = [(r, c) for r, c in pixels if not (0 <= r < h and 0 <= c < w)]
    if bad or not pixels:
        raise ValueError(f"pixels {bad or pixels} are not inside the {h}x{w} image")
    fig, axes = _grid(1, len(pixels) + 1, size, title, images=False)
    axes[0, 0].set(xticks=[], yticks=[])
    axes[0, 0].imshow(srgb_preview(g), interpolation="nearest")
    axes[0, 0].set_title("measured (sRGB)", fontsize=9)
    curves = {name: np.stack([cube[:, r, c] for r, c in pixels])
              for name, cube in {"ground truth": g, **p}.items()}
    for k, (r, c) in enumerate(pixels):
        outline = [patheffects.withStroke(linewidth=2.5, foreground="k")]
        axes[0, 0].plot(c, r, "o", ms=9, mfc="none", mec="w", mew=2, path_effects=outline)
        axes[0, 0].text(c + 12, r, str(k + 1), color="w", fontsize=10, weight="bold", va="center",
                        path_effects=outline)
        ax = axes[0, k + 1]
        for i, (name, vals) in enumerate(curves.items()):
            style = dict(color="k", lw=2) if i == 0 else dict(color=f"C{i - 1}", lw=1.3, ls="--")
            ax.plot(WAVELENGTHS, vals[k], label=name, **style)
        ax.set(xticks=[400, 500, 600, 700], ylim=(0, None))
        ax.set_title(f"pixel {k + 1} (row {r}, col {c})", fontsize=9)
        ax.set_xlabel("wavelength (nm)")
    axes[0, 1].set_ylabel("value (1 = white level)")
    axes[0, 1].legend(fontsize=7, loc="best")
    return fig, {"pixels": [tuple(px) for px in pixels], "curves": curves}


def error_map_figure(gt: object, preds: Mapping[str, object], title: str = "",
                     size: float = 3.0, percentile: float = 99.0) -> tuple[Figure, dict]:
    """Per-pixel RMSE and spectral angle (:func:`error_maps`) of every method: one row per
    metric, one column per method. A metric's colour scale, from 0 to the ``percentile`` of
    all methods' values, is shared by its row, so the panels compare directly.

    Returns ``(fig, info)``: ``info["mean"]``, ``{metric: {name: mean of the map}}`` (RMSE: the
    mean of the per-pixel RMSE; SAM: :func:`inr_lib.evaluation.metrics.sam`'s value), and ``info["vmax"]``.
    """
    g, p = _cubes(gt, preds)
    maps = {name: error_maps(cube, g) for name, cube in p.items()}
    units = {"rmse": ("RMSE", "", "{:.4f}"), "sam": ("SAM", " deg", "{:.2f}")}
    fig, axes = _grid(2, len(p), size, title)
    info: dict = {"mean": {}, "vmax": {}}
    for r, (key, (label, unit, fmt)) in enumerate(units.items()):
        top = float(np.nanpercentile(np.stack([m[key] for m in maps.values()]), percentile)) or 1.0
        info["vmax"][key], info["mean"][key] = top, {}
        for c, (name, m) in enumerate(maps.items()):
            mean = float(np.nanmean(m[key]))
            info["mean"][key][name] = mean
            im = axes[r, c].imshow(m[key], cmap="inferno", vmin=0.0, vmax=top, interpolation="nearest")
            axes[r, c].set_title(f"{name}\n{label} mean {fmt.format(mean)}{unit}", fontsize=9)
        fig.colorbar(im, ax=axes[r, :].tolist(), shrink=0.85, label=f"per-pixel {label}{unit}")
    return fig, info
