"""MST++, the project's transformer baseline: a multi-stage spectral-wise transformer.

Written for this project from the description in Cai et al., "MST++: Multi-stage
Spectral-wise Transformer for Efficient Spectral Reconstruction" (CVPR Workshops 2022, first
in the NTIRE 2022 spectral-reconstruction challenge), whose attention is the spectral-wise
multi-head self-attention (S-MSA) of MST (Cai et al., "Mask-guided Spectral-wise Transformer
for Efficient Hyperspectral Image Reconstruction", CVPR 2022).

Data flow of ``MSTPlusPlus(config)(rgb)``, ``(B, 3, H, W)`` in [0, 1] -> ``(B, 31, H, W)``:

1. the RGB is padded at the bottom and the right by **edge replication** to a multiple of
   ``2 ** levels`` (4: every stage halves the image twice); replication works for any size
   down to 1 x 1, where mirroring would not;
2. a 3x3 conv lifts it to 31 feature channels, ``f``;
3. ``stages`` (3) single-stage spectral transformers (:class:`SpectralUNet`) refine the
   features one after the other, each adding its result to its own input (coarse to fine);
4. a 3x3 conv maps them to the 31 bands, ``f`` is added (the long residual) and the padding
   is cropped off.

One stage is a U: a 3x3 conv; per level attention blocks then a 4x4 stride-2 conv (half the
size, twice the channels: 31, 62, 124); blocks at the bottom; on the way up a 2x2 stride-2
transposed conv (twice the size, half the channels), a 1x1 conv fusing it with the encoder's
features of that level (concatenated), blocks; a 3x3 conv, plus the stage's input.

A block (:class:`SpectralAttentionBlock`) is ``x + S-MSA(LN(x))`` then ``x + FFN(LN(x))``.
S-MSA (:class:`SpectralSelfAttention`) takes the **channels as tokens**: Q, K, V are linear
maps of each pixel's channels, split into heads of ``d_h`` = 31 channels (1, 2, 4 heads at
the three levels); each channel's Q and K maps over all pixels are L2-normalised, so their
dot products are cosines, and per head a learnable temperature scales them before the softmax
(:class:`SpectralAttentionMap`). The map is ``d_h x d_h`` whatever the image size, so the
cost grows linearly with the number of pixels. Each output channel is a mixture of the value
channels, linearly projected (with bias), plus a positional branch on V (depthwise 3x3 conv,
GELU, depthwise 3x3 conv). The FFN is 1x1 conv (x4 channels), GELU, depthwise 3x3 conv, GELU,
1x1 conv. Convolutions have no bias except the transposed ones.

Parameters at the default (the paper's) configuration: 1,621,485 (the paper: 1.62 M).

Where it differs from the papers:

* no rescaling: RGB in [0, 1] goes in and the output is the spectrum in [0, 1] units, as in
  the paper (the project's INR and CNN work on [-1, 1] inside); it is not clamped;
* the padding above is this project's choice;
* initialisation: PyTorch's defaults, drawn from a private RNG seeded with ``config.seed``
  (the global RNG is left untouched), as for the project's CNN baseline;
* training: this project's loop (L1 loss on [-1, 1]-scaled output and target, Adam, step
  schedule, CAVE crops; ``inr_lib/pretrained/configs/mstpp.yaml``), not the paper's recipe on
  the NTIRE 2022 data (MRAE loss, Adam from 4e-4 with cosine annealing).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .tiling import check_image_batch

__all__ = ["MSTPlusPlusConfig", "MSTPlusPlus", "SpectralUNet", "SpectralAttentionBlock",
           "SpectralSelfAttention", "SpectralAttentionMap", "FeedForward"]


@dataclass(frozen=True)
class MSTPlusPlusConfig:
    """Architecture of :class:`MSTPlusPlus` (saved with checkpoints); the defaults are the
    paper's. The features are ``out_channels`` wide at full resolution (31, as in the paper:
    the long residual adds them to the output), doubling at each level.

    Attributes:
        in_channels, out_channels: RGB in, bands out.
        head_dim: channels per attention head, ``d_h`` (it divides ``out_channels``).
        stages: single-stage transformers in series.
        levels: halvings of the image inside each stage.
        blocks: attention blocks at level 0, 1, ..., ``levels`` (the bottom); the decoder
            mirrors the encoder.
        ffn_expansion: channel factor inside the feed-forward networks.
        seed: seed of the weight initialisation.
    """

    in_channels: int = 3
    out_channels: int = 31
    head_dim: int = 31
    stages: int = 3
    levels: int = 2
    blocks: tuple = (1, 1, 1)
    ffn_expansion: int = 4
    seed: int = 0

    def __post_init__(self):
        """Store ``blocks`` as a tuple (a list from YAML or JSON then compares equal) and
        raise one ValueError naming every invalid field."""
        if isinstance(self.blocks, (list, tuple)):
            object.__setattr__(self, "blocks", tuple(self.blocks))
        problems = [f"{name} must be an integer >= {low}, got {getattr(self, name)!r}"
                    for name, low in (("in_channels", 1), ("out_channels", 1), ("head_dim", 1),
                                      ("stages", 1), ("levels", 0), ("ffn_expansion", 1), ("seed", 0))
                    if not _is_int(getattr(self, name), low)]
        if not problems and self.out_channels % self.head_dim:
            problems.append(f"head_dim ({self.head_dim}) must divide out_channels "
                            f"({self.out_channels})")
        if not problems and (not isinstance(self.blocks, tuple) or len(self.blocks) != self.levels + 1
                             or not all(_is_int(n, 0) for n in self.blocks)):
            problems.append(f"blocks must list {self.levels + 1} integers >= 0 (levels 0..{self.levels}, "
                            f"the last one the bottom), got {self.blocks!r}")
        if problems:
            raise ValueError("invalid MST++ configuration: " + "; ".join(problems))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["blocks"] = list(self.blocks)     # JSON-friendly; __post_init__ turns it back
        return d


def _is_int(x: Any, low: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= low


class MSTPlusPlus(nn.Module):
    """MST++ (see the module docstring for the data flow): RGB -> 31 bands.

    Args:
        config: a :class:`MSTPlusPlusConfig` (default: the paper's configuration).
        **overrides: fields of the config to change, e.g. ``stages=1, seed=1``.

    Two models built with the same seed are identical. Parameters at the default
    configuration: 1,621,485.
    Shapes: ``forward((B, 3, H, W)) -> (B, 31, H, W)``, any ``B, H, W >= 1``.
    """

    def __init__(self, config: MSTPlusPlusConfig | None = None, **overrides: Any):
        super().__init__()
        config = config if config is not None else MSTPlusPlusConfig()
        names = [f.name for f in dataclasses.fields(MSTPlusPlusConfig)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"MSTPlusPlus: unknown option(s) {unknown}; valid: {names}.")
        self.config = dataclasses.replace(config, **overrides)
        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            self.head = nn.Conv2d(c.in_channels, c.out_channels, 3, padding=1, bias=False)
            self.stages = nn.Sequential(*[SpectralUNet(c) for _ in range(c.stages)])
            self.tail = nn.Conv2d(c.out_channels, c.out_channels, 3, padding=1, bias=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, 31, H, W)``, nominally in [0, 1] (not clamped)."""
        check_image_batch(rgb, self.config.in_channels)
        H, W = rgb.shape[-2:]
        # a float64 image into a float32 model is computed in float32 (autocast applies as usual)
        f = self.head(self._pad(rgb.to(self.head.weight.dtype)))
        out = self.tail(self.stages(f)) + f
        return out[..., :H, :W]

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Edge-replicate the bottom and right to a multiple of ``2 ** levels``."""
        m = 2 ** self.config.levels
        ph, pw = (-x.shape[-2]) % m, (-x.shape[-1]) % m
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class SpectralUNet(nn.Module):
    """One stage, the paper's single-stage spectral-wise transformer: a U over ``levels``
    halvings plus its input. ``(B, C, H, W) -> (B, C, H, W)``, H and W multiples of
    ``2 ** levels``, C = ``config.out_channels``."""

    def __init__(self, c: MSTPlusPlusConfig):
        super().__init__()
        widths = [c.out_channels * 2 ** level for level in range(c.levels + 1)]

        def blocks(level: int) -> nn.Sequential:
            return nn.Sequential(*[SpectralAttentionBlock(widths[level], c.head_dim, c.ffn_expansion)
                                   for _ in range(c.blocks[level])])

        self.embed = nn.Conv2d(widths[0], widths[0], 3, padding=1, bias=False)
        self.encoder = nn.ModuleList(blocks(level) for level in range(c.levels))
        self.down = nn.ModuleList(nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False)
                                  for w in widths[:-1])
        self.bottom = blocks(c.levels)
        # the decoder goes back up: level levels-1, ..., 0
        self.up = nn.ModuleList(nn.ConvTranspose2d(2 * w, w, 2, stride=2) for w in widths[-2::-1])
        self.fuse = nn.ModuleList(nn.Conv2d(2 * w, w, 1, bias=False) for w in widths[-2::-1])
        self.decoder = nn.ModuleList(blocks(level) for level in reversed(range(c.levels)))
        self.out = nn.Conv2d(widths[0], widths[0], 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        skips = []
        for blocks, down in zip(self.encoder, self.down):
            h = blocks(h)
            skips.append(h)
            h = down(h)
        h = self.bottom(h)
        for up, fuse, blocks in zip(self.up, self.fuse, self.decoder):
            h = blocks(fuse(torch.cat([up(h), skips.pop()], dim=1)))
        return self.out(h) + x


class SpectralAttentionBlock(nn.Module):
    """``x + S-MSA(LN(x))``, then ``x + FFN(LN(x))`` (the paper's two layer norms, over the
    channels of each pixel). ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int, head_dim: int, expansion: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(channels)
        self.attention = SpectralSelfAttention(channels, head_dim)
        self.norm2 = nn.LayerNorm(channels)
        self.ffn = FeedForward(channels, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.permute(0, 2, 3, 1)           # channels last: LayerNorm and Q, K, V act on C
        t = t + self.attention(self.norm1(t))
        t = t + self.ffn(self.norm2(t))
        return t.permute(0, 3, 1, 2)


class SpectralSelfAttention(nn.Module):
    """S-MSA: self-attention whose tokens are the channels. ``(B, H, W, C) -> (B, H, W, C)``.

    Per head the attention map is ``d_h x d_h`` (:class:`SpectralAttentionMap`); each
    output channel is a mixture of that head's value channels, then all heads are projected
    (linear, with bias) and the positional branch on V is added.
    """

    def __init__(self, channels: int, head_dim: int):
        super().__init__()
        self.heads = channels // head_dim
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.to_k = nn.Linear(channels, channels, bias=False)
        self.to_v = nn.Linear(channels, channels, bias=False)
        self.scores = SpectralAttentionMap(self.heads)
        self.proj = nn.Linear(channels, channels)
        # where the channels-as-tokens attention has no notion of position, V's local
        # neighbourhood gives one
        self.position = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        B, H, W, C = t.shape
        tokens = t.reshape(B, H * W, C)
        q, k, v = (self._split(f(tokens)) for f in (self.to_q, self.to_k, self.to_v))
        mixed = self.scores(q, k) @ v                           # (B, heads, d_h, H*W)
        out = self.proj(mixed.reshape(B, C, H * W).transpose(1, 2)).reshape(B, H, W, C)
        v_image = v.reshape(B, C, H, W)                         # the heads side by side again
        return out + self.position(v_image).permute(0, 2, 3, 1)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, C)`` -> ``(B, heads, d_h, N)``: per head, one row of N pixels per channel."""
        B, N, C = x.shape
        return x.transpose(1, 2).reshape(B, self.heads, C // self.heads, N)


class SpectralAttentionMap(nn.Module):
    """The attention map of S-MSA: ``softmax_j(temperature * cos(q_i, k_j))`` over the key
    channels j, with one learnable temperature per head (initialised to 1).
    ``q, k`` ``(B, heads, d_h, N)`` -> ``(B, heads, d_h, d_h)``."""

    def __init__(self, heads: int):
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        # unit-length channel maps: the scores are cosines in [-1, 1] for any number of pixels
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        return torch.softmax(self.temperature * (q @ k.transpose(-2, -1)), dim=-1)


class FeedForward(nn.Module):
    """1x1 conv (C -> e C), GELU, depthwise 3x3 conv, GELU, 1x1 conv (e C -> C), no biases.
    ``(B, H, W, C) -> (B, H, W, C)``."""

    def __init__(self, channels: int, expansion: int):
        super().__init__()
        hidden = channels * expansion
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
            nn.GELU(),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net(t.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
