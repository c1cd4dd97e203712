"""Training: :func:`train` (the loop, :mod:`.loop`) configured by a :class:`TrainConfig`;
:func:`train_step` is one optimiser step, shared with the book, the benchmarks and the tests."""
from .loop import TrainConfig, TrainResult, train, train_step

__all__ = ["TrainConfig", "TrainResult", "train", "train_step"]
