"""inr_lib: implicit neural representations for hyperspectral image super-resolution.

Recover a 31-band spectral image (400, 410, ..., 700 nm) from an RGB image with the
INR-HSISR model: a convolutional hypernetwork predicts, for every 4x4 tile of the RGB
image, the weights of a small per-pixel MLP that maps (RGB, periodic encoding of the
pixel position) to a spectrum.

Public entry points::

    from inr_lib import build_model                      # the model ("paper", "small", ...)
    from inr_lib import TrainConfig, load_model
    from inr_lib.train import train, train_step
    from inr_lib.evaluation import evaluate, metrics
    from inr_lib.model.tiling import predict_image       # whole / tiled / self-ensemble
    from inr_lib import data, pretrained, spectral
    data.load_data("synthetic", need=("train", "test"))  # what --data / --split load

The packages, bottom up (a package imports only from packages below it; tests/test_architecture.py
checks it): spectral, runtime -> files (atomic writes, readers, images) -> data, model ->
files.checkpoints -> evaluation -> train -> pretrained -> book -> cli.
"""
from __future__ import annotations

import importlib

from ._version import __version__
from .model import INRHSISR, PRESETS, ModelConfig, build_model

# imported on first use, so that `import inr_lib` stays light
_LAZY = {
    "TrainConfig": ("train", "TrainConfig"),
    "load_model": ("files.checkpoints", "load_model"),
}
_SUBMODULES = ("data", "model", "train", "evaluation", "files", "pretrained", "book", "spectral",
               "runtime", "cli")
# names of modules before the packages (0.x); kept working for one release
_MOVED = {"metrics": "evaluation.metrics", "evaluate": "evaluation.scoring",
          "baselines": "model.baselines", "encoding": "model.encoding", "hypernet": "model.hypernet",
          "pixelwise": "model.pixelwise", "tiling": "model.tiling", "spectral_basis": "model.basis",
          "archs": "model.registry", "checkpoint": "files.checkpoints", "io": "files.images",
          "outputs": "files.outputs", "figures": "book.figures", "zoo": "book.zoo",
          "heldout": "book.heldout"}

__all__ = ["INRHSISR", "ModelConfig", "PRESETS", "build_model", "__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name):
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    if name in _SUBMODULES or name in _MOVED:
        return importlib.import_module(f".{_MOVED.get(name, name)}", __name__)
    raise AttributeError(f"module 'inr_lib' has no attribute {name!r}")
