"""Figures drawn by code that more than one chapter shows (chapters 4 and 5).

``architecture_diagram(presets, size)`` draws the INR-HSISR network for each preset: the
hypernetwork's convolutions with their output shapes, the per-tile parameters
``(B, P, H/4, W/4)``, the positional encoding and the per-pixel MLP that maps
``(B, 11, H, W)`` to the 31 bands. Every shape is read from a model built by ``inr_lib`` (on
PyTorch's "meta" device, so no weights are allocated), not typed in.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from typing import TYPE_CHECKING, Sequence

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

import inr_lib
from inr_lib.model import INRHSISR, PRESETS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def hypernet_stages(cfg: "inr_lib.ModelConfig", size: tuple[int, int]) -> list[dict]:
    """Consecutive convolutions of the hypernetwork grouped by (c_in, c_out, stride), with the
    output grid of each group, for an input of ``size = (H, W)`` pixels."""
    with torch.device("meta"):
        model = INRHSISR(cfg)
    h, w = size
    stages = []
    for m in model.hypernet.features.modules():
        if isinstance(m, torch.nn.Conv2d):
            h = (h + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
            w = (w + 2 * m.padding[1] - m.kernel_size[1]) // m.stride[1] + 1
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
            label = f"{rep}3x3 conv\n{s['cin']} -> {s['cout']}{stride}\n+ IN + ReLU\n(B, {s['cout']}, {s['grid'][0]}, {s['grid'][1]})"
        _arrow(ax, (x - gap, 1.6 + bh / 2), (x, 1.6 + bh / 2))
        _box(ax, x, 1.6, bw, bh, label, "#cfe2f3")
        x += bw + gap
    theta = (1, P, H // t, W // t)
    _arrow(ax, (x - gap, 1.6 + bh / 2), (x, 1.6 + bh / 2))
    _box(ax, x, 1.6, bw, bh, f"per-tile MLP\nparameters Θ\n(B, {P:,}, {H // t}, {W // t})", "#fce5cd")
    x_theta = x
    # bottom row: encoding + RGB -> per-pixel MLP -> 31 bands
    _box(ax, 0, 0.2, bw, bh, f"positional encoding\n\"{cfg.encoding}\", periods\n{', '.join(f'{p:g}' for p in cfg.periods)}\n({n_enc}, {H}, {W})", "#d9ead3")
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
