"""Periodic positional encodings of pixel coordinates.

The per-pixel MLP of INR-HSISR receives, besides the pixel's RGB value, a periodic
(cos/sin) encoding of where the pixel is. Three variants are offered:

``"global"``  what the released code computes: with ``x = col / W`` and ``y = row / H``
              (so x, y lie in [0, 1) across the *whole input image*), for each period
              ``f`` in ``(4, 2)`` the channels ``cos(2 pi x / f), sin(2 pi x / f),
              cos(2 pi y / f), sin(2 pi y / f)``. Because x and y are divided by the image
              size, the encoding of a pixel depends on the size of the image it sits in,
              and it changes only slowly across a 4x4 tile.
``"tile"``    ASAPNet's intended form: the same formula with ``x = col`` and ``y = row``
              in *pixels*, so the periods are 4 and 2 pixels. The encoding repeats in
              every 4x4 tile and tells a pixel where it sits inside its tile.
``"none"``    no encoding (0 channels).

Coordinates are continuous: ``row`` and ``col`` may be fractional (pixel centres sit at
integer positions), which is what :meth:`inr_lib.model.INRHSISR.render` uses to evaluate
the per-tile functions between pixels.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

ENCODINGS = ("global", "tile", "none")
DEFAULT_PERIODS = (4.0, 2.0)


def check_encoding(kind: str) -> str:
    """Return ``kind`` if it names an encoding, else raise a ValueError saying what is allowed."""
    if kind not in ENCODINGS:
        raise ValueError(f"unknown encoding {kind!r}: expected one of {ENCODINGS}")
    return kind


def encoding_channels(kind: str, periods: Sequence[float] = DEFAULT_PERIODS) -> int:
    """Number of channels the encoding adds: 4 per period (cos/sin of x and y), 0 for "none"."""
    check_encoding(kind)
    return 0 if kind == "none" else 4 * len(periods)


def encode(kind: str, rows: torch.Tensor, cols: torch.Tensor, height: int, width: int,
           periods: Sequence[float] = DEFAULT_PERIODS) -> torch.Tensor:
    """Encode continuous pixel coordinates.

    Args:
        kind: "global", "tile" or "none".
        rows, cols: tensors of the same shape ``S`` holding pixel coordinates (pixel
            centres at integers ``0 .. H-1`` / ``0 .. W-1``; fractional values allowed).
        height, width: size ``H, W`` of the image the coordinates refer to ("global" divides
            by it; the other encodings ignore it).
        periods: the periods ``f`` (in units of the normalised image for "global", in pixels
            for "tile").

    Returns:
        Tensor of shape ``S + (encoding_channels(kind),)``, channel order
        ``[cos x/f1, sin x/f1, cos y/f1, sin y/f1, cos x/f2, ...]`` with the 2 pi folded in.
    """
    check_encoding(kind)
    if kind == "none":
        return rows.new_zeros(rows.shape + (0,))
    if kind == "global":
        x, y = cols / width, rows / height
    else:  # "tile": coordinates in pixels
        x, y = cols, rows
    chans = []
    for f in periods:
        wx, wy = 2 * math.pi * x / f, 2 * math.pi * y / f
        chans += [torch.cos(wx), torch.sin(wx), torch.cos(wy), torch.sin(wy)]
    return torch.stack(chans, dim=-1)


def encoding_grid(kind: str, height: int, width: int, *, ref_size: tuple[int, int] | None = None,
                  periods: Sequence[float] = DEFAULT_PERIODS,
                  device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The encoding at every pixel of an ``height x width`` grid.

    Args:
        ref_size: ``(H, W)`` used to normalise "global" coordinates; defaults to
            ``(height, width)``. The model passes the unpadded image size here so that
            padding an image to a multiple of the tile size does not change the encoding
            of its real pixels.

    Returns:
        Tensor ``(C_enc, height, width)`` with ``C_enc = encoding_channels(kind)``.
    """
    ref_h, ref_w = ref_size if ref_size is not None else (height, width)
    rows = torch.arange(height, device=device, dtype=torch.float64)
    cols = torch.arange(width, device=device, dtype=torch.float64)
    rr, cc = torch.meshgrid(rows, cols, indexing="ij")
    # computed in float64 then cast, so the grid is identical on every device and dtype
    enc = encode(kind, rr, cc, ref_h, ref_w, periods)
    return enc.permute(2, 0, 1).to(dtype)
