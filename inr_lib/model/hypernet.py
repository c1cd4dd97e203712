"""The convolutional hypernetwork: RGB image -> per-tile MLP parameters.

For the paper's configuration (``width=64, deep_width=1024, blocks=5, tile=4``)::

    conv3x3  3  -> 64                      \
    conv3x3  64 -> 64,   stride 2           |  every conv: no bias,
    conv3x3  64 -> 64                       |  then norm (InstanceNorm2d, affine)
    conv3x3  64 -> 64                       |  then ReLU
    conv3x3  64 -> 1024, stride 2           |
    5 x conv3x3 1024 -> 1024               /
    conv1x1  1024 -> P  (with bias)         P = parameters of one per-pixel MLP

so a ``(B, 3, H, W)`` image becomes a ``(B, P, H/4, W/4)`` grid: one parameter vector per
4x4 tile. Other tile sizes ``2**k`` repeat the stride-2 stage; tile 1 has none.

``norm`` selects what follows each conv:

``"instance"``  the paper's InstanceNorm2d(affine=True). It normalises with statistics of
                the *whole input image*, so a pixel's output depends on the size and
                content of the image it is processed in (a model trained on 64x64 crops
                sees different statistics on a whole 512x512 image).
``"batch"``     BatchNorm2d: batch statistics while training, running averages at
                inference, so inference output is independent of image size.
``"none"``      no normalisation (the convs then get a bias); size-independent.
"""
from __future__ import annotations

import torch
from torch import nn

NORMS = ("instance", "batch", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: expected one of {NORMS}")


def conv_block(cin: int, cout: int, stride: int, norm: str) -> nn.Sequential:
    """conv3x3 (padding 1, bias only when there is no norm) -> norm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=(norm == "none")),
        _norm(norm, cout),
        nn.ReLU(inplace=True),
    )


class HyperNetwork(nn.Module):
    """Predict one MLP parameter vector per ``tile x tile`` block of the input.

    Args:
        out_channels: ``P``, the number of parameters of one per-pixel MLP.
        in_channels: channels of the input image (3 for RGB).
        width: channels of the full- and half-resolution convs (64 in the paper).
        deep_width: channels of the tile-resolution blocks (1024 in the paper).
        blocks: number of ``deep_width -> deep_width`` blocks (5 in the paper).
        tile: tile size, a power of two (4 in the paper).
        norm: "instance" (paper), "batch" or "none".

    Shapes: ``(B, in_channels, H, W) -> (B, P, H / tile, W / tile)``; H and W must be
    multiples of ``tile`` (the model pads for you).
    """

    def __init__(self, out_channels: int, in_channels: int = 3, width: int = 64,
                 deep_width: int = 1024, blocks: int = 5, tile: int = 4, norm: str = "instance"):
        super().__init__()
        if tile < 1 or tile & (tile - 1):
            raise ValueError(f"tile must be a power of two (1, 2, 4, 8, ...), got {tile}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}: expected one of {NORMS}")
        self.tile = tile
        n_down = tile.bit_length() - 1
        layers = [conv_block(in_channels, width, 1, norm)]
        # all but the last downsampling: stride-2 conv followed by two convs at that scale
        for _ in range(max(n_down - 1, 0)):
            layers += [conv_block(width, width, 2, norm), conv_block(width, width, 1, norm),
                       conv_block(width, width, 1, norm)]
        # the last downsampling goes straight to the deep width
        layers.append(conv_block(width, deep_width, 2 if n_down > 0 else 1, norm))
        layers += [conv_block(deep_width, deep_width, 1, norm) for _ in range(blocks)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(deep_width, out_channels, 1, bias=True)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` scaled to [-1, 1] -> ``(B, P, H/tile, W/tile)``."""
        return self.head(self.features(rgb))
