"""PyTorch Hub entry points: the trained models shipped with ``inr_lib``.

::

    import torch
    model = torch.hub.load("inr-hsisr/inr-hsisr-book", "small")           # from GitHub
    model = torch.hub.load("path/to/checkout", "small", source="local")   # from a clone
    model.card["evaluation"]["whole"]["mean"]["psnr"]                      # its model card
    torch.hub.list("inr-hsisr/inr-hsisr-book")                            # the entry points

Each entry point is a shipped model (``inr_lib.pretrained.available()``; a ``-`` in its name
is ``_`` here, e.g. ``small_paper``) and returns ``inr_lib.pretrained.load(name)``: eval mode,
float32, on the CPU (``map_location=`` another device), its weights checked against the card's
SHA-256, with the card as ``model.card``. ``card(name)`` returns a card alone. To reconstruct
as the card's numbers were computed: ``inr_lib.pretrained.reconstruct(name, rgb, model=model)``.
"""
from __future__ import annotations

from typing import Any, Callable

from inr_lib import pretrained

dependencies = ["torch", "numpy", "safetensors"]


def card(name: str = "small") -> dict[str, Any]:
    """The model card of the shipped model ``name`` (provenance, training command, test scores)."""
    return pretrained.card(name)


def _entry(name: str) -> Callable[..., Any]:
    def load(map_location: Any = None) -> Any:
        model = pretrained.load(name, map_location=map_location)
        model.card = pretrained.card(name)
        return model

    load.__name__ = name.replace("-", "_")
    load.__doc__ = f"{pretrained.label(name)}\n\nReturns the model (eval mode) with ``model.card``."
    return load


for _name in pretrained.available():
    globals()[_name.replace("-", "_")] = _entry(_name)
