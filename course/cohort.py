"""A cohort's variant of the graded assignment, derived from the lecturer's cohort seed.

The graded task (part A) is ``apply_tile_mlps(params, x, widths, tile, negative_slope=0.1)``:
read one flat vector per tile as the weights and biases of a small MLP and run every pixel of
the tile through it. What changes from one cohort to the next is **how the flat vector is laid
out** (and the model variant the written part B2 asks about). :func:`variant` turns the seed
(any string; use a secret pass phrase, not a year) into a :class:`Variant`:

* ``layout``: one of :data:`LAYOUTS`, 14 ways of storing the same numbers: layers in forward or
  reversed order; per layer bias first or weights first, or all weights of all layers then all
  biases (or the other way round); the weight matrix stored ``(c_in, c_out)`` or
  ``(c_out, c_in)`` row by row. ``inr_lib``'s own layout and the released INR-HSISR code's
  layout (the one earlier editions of the book graded) are never drawn;
* ``tile``, ``periods`` (the "global" encoding's frequencies) and ``hidden`` (MLP widths): the
  model variant of task B2, whose MLP the hidden tests also run.

This module only **writes** parameters into a layout (:func:`pack`, from explicit weight
matrices) and evaluates an MLP from explicit weight matrices (:func:`mlp_from_weights`, a plain
loop over tiles): that is how the hidden tests make their expected values. It has no function
that reads a flat vector, the student's task; the reference solution is written into the
teacher's kit only (``course/build.py``).
"""
from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

#: ("interleaved", "bias-first"), ... : where the biases go relative to the weights
ORDERS = ("bias-first", "weight-first", "biases-block-first", "weights-block-first")
#: how one weight matrix is stored: "in-out": W[i, o] at offset i * c_out + o; "out-in": W[o, i] at o * c_in + i
STORAGES = ("in-out", "out-in")
#: the order of the layers in the vector
LAYER_ORDERS = ("forward", "reversed")


@dataclass(frozen=True)
class Layout:
    order: str
    storage: str
    layers: str

    def describe(self) -> str:
        """The specification in words, as the student notebook states it."""
        layer_words = ("the layers in order, first layer first" if self.layers == "forward" else
                       "the layers in **reverse** order: the last layer's numbers come first, the "
                       "first layer's last")
        w = ("its weight matrix of shape `(c_in, c_out)` stored row by row (element `W[i, o]` at "
             "offset `i * c_out + o` of the block; one layer computes `y = v @ W + b` for a "
             "pixel's row vector `v`)" if self.storage == "in-out" else
             "its weight matrix of shape `(c_out, c_in)` stored row by row (element `W[o, i]` at "
             "offset `o * c_in + i` of the block; one layer computes `y = W v + b` for a pixel's "
             "column vector `v`)")
        if self.order == "bias-first":
            where = f"For each layer ({layer_words}): first its bias `(c_out,)`, then {w}."
        elif self.order == "weight-first":
            where = f"For each layer ({layer_words}): first {w}, then its bias `(c_out,)`."
        elif self.order == "biases-block-first":
            where = (f"First the biases of all layers ({layer_words}), one `(c_out,)` block each; "
                     f"then the weights of all layers (same layer order), each layer's block being {w}.")
        else:
            where = (f"First the weights of all layers ({layer_words}), each layer's block being {w}; "
                     f"then the biases of all layers (same layer order), one `(c_out,)` block each.")
        return where


#: inr_lib's layout (chapters 4-5) and the released code's (earlier editions of chapter 12)
LIBRARY_LAYOUT = Layout("weight-first", "out-in", "forward")
RELEASED_LAYOUT = Layout("bias-first", "in-out", "forward")
LAYOUTS = tuple(Layout(o, s, lo) for o, s, lo in itertools.product(ORDERS, STORAGES, LAYER_ORDERS)
                if Layout(o, s, lo) not in (LIBRARY_LAYOUT, RELEASED_LAYOUT))
assert len(LAYOUTS) == 14

TILES = (2, 8)
PERIOD_SETS = ((8.0, 4.0, 2.0), (8.0, 2.0), (16.0, 8.0, 4.0, 2.0), (4.0, 2.0, 1.0), (16.0, 4.0))
HIDDEN_WIDTHS = (24, 32, 40, 48, 56)


@dataclass(frozen=True)
class Variant:
    seed: str
    layout: Layout
    tile: int
    periods: tuple
    hidden: tuple

    @property
    def widths(self) -> tuple:
        """The variant's MLP: 3 colour channels + 4 per period ("global" encoding), hidden, 31."""
        return (3 + 4 * len(self.periods), *self.hidden, 31)

    def fingerprint(self) -> str:
        """A short public id of the variant (safe to print: it does not reveal the seed)."""
        return hashlib.sha256(repr((self.layout, self.tile, self.periods, self.hidden)).encode()).hexdigest()[:10]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("seed")
        d["widths"] = list(self.widths)
        d["fingerprint"] = self.fingerprint()
        return d


def variant(seed: str | int) -> Variant:
    """The cohort's variant; the same seed always gives the same variant."""
    seed = str(seed)
    if not seed.strip():
        raise ValueError("COHORT_SEED is empty: choose one (a private pass phrase) per cohort")
    rng = random.Random(int.from_bytes(hashlib.sha256(f"inr-course:{seed}".encode()).digest(), "big"))
    layout = rng.choice(LAYOUTS)
    tile = rng.choice(TILES)
    periods = rng.choice(PERIOD_SETS)
    hidden = (rng.choice(HIDDEN_WIDTHS),) * rng.choice((2, 3))
    return Variant(seed, layout, tile, periods, hidden)


def param_count(widths: Sequence[int]) -> int:
    return sum(cin * cout + cout for cin, cout in zip(widths[:-1], widths[1:]))


# --------------------------------------------------------------------------- writing a layout
def pack(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], layout: Layout) -> torch.Tensor:
    """Write per-tile MLPs into flat vectors of ``layout``.

    Args:
        weights: per layer ``(..., c_out, c_in)`` (``y = W v + b``), any leading dims.
        biases: per layer ``(..., c_out)``.

    Returns:
        ``(..., P)``. Differentiable (gradients of the weights map to the same positions).
    """
    lead = biases[0].shape[:-1]
    wblocks, bblocks = [], []
    for W, b in zip(weights, biases):
        W = W if layout.storage == "out-in" else W.transpose(-1, -2)
        wblocks.append(W.reshape(*lead, -1))
        bblocks.append(b)
    if layout.layers == "reversed":
        wblocks, bblocks = wblocks[::-1], bblocks[::-1]
    if layout.order == "bias-first":
        parts = [t for pair in zip(bblocks, wblocks) for t in pair]
    elif layout.order == "weight-first":
        parts = [t for pair in zip(wblocks, bblocks) for t in pair]
    elif layout.order == "biases-block-first":
        parts = bblocks + wblocks
    else:
        parts = wblocks + bblocks
    return torch.cat(parts, dim=-1)


def random_mlps(batch: int, h: int, w: int, widths: Sequence[int], seed: int, dtype=torch.float64):
    """Random per-tile weights ``(B, h, w, c_out, c_in)`` and biases ``(B, h, w, c_out)`` of a
    realistic scale (weights ~ 1/sqrt(c_in))."""
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(batch, h, w, cout, cin, generator=g, dtype=dtype) / cin ** 0.5
               for cin, cout in zip(widths[:-1], widths[1:])]
    biases = [0.5 * torch.randn(batch, h, w, cout, generator=g, dtype=dtype)
              for cout in widths[1:]]
    return weights, biases


def as_params(weights, biases, layout: Layout) -> torch.Tensor:
    """``(B, P, h, w)``: the network's output layout (one vector per tile along the channels)."""
    return pack(weights, biases, layout).permute(0, 3, 1, 2)


def mlp_from_weights(weights, biases, x: torch.Tensor, tile: int, negative_slope: float = 0.1) -> torch.Tensor:
    """The expected result, the plain way: a Python loop over images and tiles, one matrix
    product per layer, from the explicit weight matrices (no flat vector involved)."""
    B, h, w = biases[0].shape[:3]
    rows = []
    for b in range(B):
        row_tiles = []
        for i in range(h):
            cols = []
            for j in range(w):
                v = x[b, :, i * tile:(i + 1) * tile, j * tile:(j + 1) * tile]   # (C, t, t)
                v = v.reshape(v.shape[0], -1)                                 # (C, t*t)
                for k, (W, bias) in enumerate(zip(weights, biases)):
                    v = W[b, i, j] @ v + bias[b, i, j][:, None]
                    if k < len(weights) - 1:
                        v = F.leaky_relu(v, negative_slope)
                cols.append(v.reshape(-1, tile, tile))
            row_tiles.append(torch.cat(cols, dim=2))
        rows.append(torch.cat(row_tiles, dim=1))
    return torch.stack(rows)


# --------------------------------------------------------------------------- part B2's answers
def b2_answers(v: Variant) -> dict:
    """The numbers B2 expects for the cohort's model variant, checked against ``inr_lib``."""
    from inr_lib.model import INRHSISR, ModelConfig

    cfg = ModelConfig(tile=v.tile, periods=v.periods, mlp_hidden=v.hidden)
    widths = tuple(cfg.mlp_widths)
    assert widths == v.widths, (widths, v.widths)
    P = param_count(widths)
    assert P == cfg.mlp_params
    with torch.device("meta"):                        # count without allocating the weights
        model = INRHSISR(cfg)
    head = sum(p.numel() for p in model.hypernet.head.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert head == 1024 * P + P
    terms = " + ".join(f"({a}*{b} + {b})" for a, b in zip(widths[:-1], widths[1:]))
    return {"tile": v.tile, "periods": list(v.periods), "hidden": list(v.hidden),
            "mlp_widths": list(widths), "P": P, "P_derivation": f"{terms} = {P}",
            "head_params": head, "head_derivation": f"1024*{P} + {P} = {head}",
            "total_params": total, "head_share_percent": round(100 * head / total, 2)}
