"""Training: :func:`train` (the loop, :mod:`.loop`) configured by a :class:`TrainConfig`
(:mod:`.config`), writing into a run folder it has claimed (:mod:`.rundir`);
:func:`train_step` is one optimiser step, shared with the book, the benchmarks and the tests."""
from .config import TrainConfig, list_presets
from .loop import NonFiniteLossError, TrainResult, amp_dtype_for, build_for_config, grad_scaler, train, train_step
from .rundir import OutputDirError, RunLockedError

__all__ = ["TrainConfig", "TrainResult", "train", "train_step", "build_for_config", "amp_dtype_for",
           "grad_scaler", "list_presets", "NonFiniteLossError", "OutputDirError", "RunLockedError"]
