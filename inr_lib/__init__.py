"""inr_lib: implicit neural representations for hyperspectral image super-resolution.

Recover a 31-band spectral image (400, 410, ..., 700 nm) from an RGB image with the
INR-HSISR model: a convolutional hypernetwork predicts, for every 4x4 tile of the RGB
image, the weights of a small per-pixel MLP that maps (RGB, periodic encoding of the
pixel position) to a spectrum.

Public entry points::

    from inr_lib import build_model                      # the model ("paper", "small", ...)
    from inr_lib import TrainConfig, load_model
    from inr_lib.train import train, train_step          # (train and evaluate are also
    from inr_lib.evaluate import evaluate                #  module names, hence the long form)
    from inr_lib.tiling import predict_image             # whole / tiled / self-ensemble
    from inr_lib import data, metrics, spectral, baselines
    data.load_data("synthetic", need=("train", "test"))  # what --data / --split load

The layers, bottom up (a module imports only from layers below it): building blocks
(encoding, hypernet, pixelwise, tiling, spectral, metrics, runtime) -> data -> model,
baselines, io -> archs, outputs -> checkpoint, evaluate -> train -> cli.
"""
from __future__ import annotations

import importlib

from ._version import __version__
from .model import INRHSISR, PRESETS, ModelConfig, build_model

# imported on first use, so that `import inr_lib` stays light
_LAZY = {
    "TrainConfig": ("train", "TrainConfig"),
    "load_model": ("checkpoint", "load_model"),
}
_SUBMODULES = ("data", "metrics", "spectral", "baselines", "checkpoint", "encoding", "hypernet",
               "pixelwise", "runtime", "tiling", "cli", "train", "evaluate", "io", "archs", "outputs")

__all__ = ["INRHSISR", "ModelConfig", "PRESETS", "build_model", "__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name):
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'inr_lib' has no attribute {name!r}")
