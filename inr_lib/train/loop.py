"""Training: the configuration (:class:`TrainConfig`) and the loop (:func:`train`).

The loop implements the paper's recipe (preset ``"paper"``): Adam (lr 1e-4), L1 loss on
[-1, 1]-scaled prediction and target (``|(2 p - 1) - (2 t - 1)|``), MultiStepLR halving the
rate at epochs 200/400/600/800 of 1000, batches of 56 random 64x64 crops with flips and
transposes, 56 crops per training scene per epoch. Other presets (``configs/*.yaml``):
``"colab"`` (the paper model on a ~1 h T4 schedule), ``"quick"`` (the small model, minutes on
a CPU) and ``"tiny"`` (tests).

What one call of :func:`train` does:

* checks the output folder (writable, enough free space for the checkpoints);
* builds the model (``arch="inr"``: :func:`inr_lib.build_model`; ``arch="cnn"``: the
  :class:`~inr_lib.model.baselines.SmallResCNN` baseline, trained by the same loop);
* per epoch: crops from :class:`~inr_lib.data.patches.PatchDataset` (a pure function of
  seed, epoch and index) in the order of a seeded ``DistributedSampler``; a tqdm bar with
  loss and samples/s; one JSON line in ``log.jsonl``; validation every ``val_every`` epochs
  on the **full** held-out images (tiled at the crop size), or on random crops, or both;
  ``last.pt`` and, when the validation PSNR improves, ``best.pt`` (atomic writes, see
  :mod:`inr_lib.files.checkpoints`);
* ``resume=True`` continues from ``last.pt`` exactly (same final weights on the CPU as an
  uninterrupted run);
* a non-finite loss raises :class:`NonFiniteLossError` before anything is written, so the
  last good checkpoint stays as it was;
* a hard kill at any moment (even inside a checkpoint write) loses at most the epoch in
  progress: ``resume=True`` then gives the same final weights as an uninterrupted run
  (``tests/test_kill_resume.py``); a failed write (disk full) raises :class:`OutputDirError`
  naming the checkpoint that is still intact.

On CUDA it uses mixed precision chosen by the GPU (bf16 on Ampere and newer, fp16 with a
gradient scaler otherwise, e.g. the Colab T4), pinned memory and DataLoader workers.

Multi-GPU: run the same entry point under ``torchrun --nproc_per_node=N`` (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` are read from the environment): the model is wrapped in
DistributedDataParallel (backend nccl on CUDA, gloo on CPU), every rank reads its share of
each global batch (``batch_size / N`` crops), and only rank 0 validates and writes logs and
checkpoints. Why this matches one process with the whole batch: the sampler gives rank
``r`` the items ``perm[r::N]`` of the same seeded permutation, so the N per-rank batches of a
step together hold exactly the items of the single-process batch; the model normalises per
sample (instance norm) and the loss is a per-rank mean, and DDP averages the gradients over
ranks, which equals the gradient of the mean over the whole batch (up to float summation
order). ``tests/test_ddp.py`` checks it on CPU with gloo.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ..data.patches import PatchDataset
from ..files import checkpoints as ckpt_lib
from ..files.atomic import atomic_write, remove_stale_temp_files
from ..files.outputs import RUN_CONFIG_MARKER, check_run_folder, free_space_problem
from ..model import registry as archs
from ..model.basis import target_bands, target_wavelengths

__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "OutputDirError", "train",
           "train_step", "list_presets", "build_for_config", "amp_dtype_for", "grad_scaler",
           "check_run_dir", "check_output_dir", "run_lock", "RunLockedError", "data_identity",
           "check_same_data", "record_data", "DATA_RECORD"]

CONFIG_DIR = Path(__file__).parent / "configs"
VAL_MODES = ("full", "crops", "both")
AMP_MODES = ("auto", "bf16", "fp16", "off")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint was kept."""


class OutputDirError(OSError):
    """The output folder cannot be used (not writable, or not enough free space)."""


# ====================================================================== configuration
#: (fields, type, valid range, how the message states it) of the numeric config fields
_NUMBER_RULES = (
    (("epochs", "batch_size", "crop_size", "crops_per_scene", "checkpoint_every"), int,
     lambda x: x >= 1, "an integer >= 1"),
    (("lr",), float, lambda x: 0 < x <= 1, "a number in (0, 1]"),
    (("gamma",), float, lambda x: 0 < x <= 1,
     "a number in (0, 1] (the factor applied to lr at each milestone)"),
    (("weight_decay",), float, lambda x: x >= 0, "a number >= 0"),
    (("val_every", "val_overlap", "seed"), int, lambda x: x >= 0, "an integer >= 0"),
    (("val_crops",), int, lambda x: x >= 1, "an integer >= 1"),
    (("num_workers",), int, lambda x: x >= 0, "an integer >= 0 or null"),
)
_OPTIONAL = ("val_crops", "num_workers")


def _number(name: str, v, kind: type, ok: Callable, expect: str, problems: list):
    """``v`` as ``kind`` if it is one (no bools, no strings for ints) within ``ok``; else None,
    with a message naming ``name`` appended to ``problems``."""
    try:
        if isinstance(v, (bool, str)) and not (kind is float and isinstance(v, str)):
            raise TypeError
        x = kind(v)
        if kind is int and float(v) != x:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        problems.append(f"{name} must be {expect}, got {v!r}")
        return None
    if not (math.isfinite(x) and ok(x)):
        problems.append(f"{name} must be {expect}, got {v!r}")
        return None
    return x


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in checkpoints and ``config.yaml``).

    The defaults are the paper's recipe (the one place it is defined: the ``paper`` preset
    only names it). Load presets with :meth:`preset` or YAML files
    with :meth:`from_yaml`; change fields with :meth:`replace` or :meth:`with_overrides`.

    Attributes:
        name: a label for the run.
        arch: ``"inr"`` (the INR-HSISR model) or ``"cnn"`` (the SmallResCNN baseline).
        model_preset: preset of :func:`inr_lib.build_model` (``arch="inr"`` only).
        model: options passed on to the model: for ``"inr"`` any
            :class:`~inr_lib.model.ModelConfig` field (``encoding``, ``norm``,
            ``linear_prior``, ``tile``, ``hyper``, ...); for ``"cnn"`` the
            :class:`~inr_lib.model.baselines.SmallResCNNConfig` fields (``channels``, ``num_blocks``).
        epochs: epochs to train (1000).
        batch_size: crops per optimiser step, over all processes (56).
        crop_size: side of the square training crops (64).
        crops_per_scene: crops per training scene per epoch (56).
        augment: random flips and transposes of the crops.
        rgb_source: ``"dataset"`` (the scenes' own RGB) or a response name (``"cie1964"``).
        lr, betas, weight_decay: Adam settings (1e-4, (0.9, 0.999), 0).
        milestones, gamma: MultiStepLR: multiply the rate by ``gamma`` after these epochs.
        val_every: validate every this many epochs (and after the last one; 0 = never).
        val_mode: ``"full"`` (whole held-out images, tiled at ``crop_size`` with
            ``val_overlap``), ``"crops"`` (``val_crops`` random crops per scene, as the
            released code validated) or ``"both"``.
        val_overlap, val_crops: see ``val_mode``.
        seed: seeds the weights, the crops and their order.
        amp: ``"auto"`` (CUDA: bf16 where supported natively, else fp16; CPU: off),
            ``"bf16"``, ``"fp16"`` or ``"off"``.
        num_workers: DataLoader workers (None: 0 on CPU, up to 4 per process on CUDA).
        checkpoint_every: write ``last.pt`` every this many epochs (and after the last).
        wavelengths: the target bands in nm (a subset of 400, 410, ..., 700), or None for
            all 31. The model still predicts all 31 bands; only these enter the loss (e.g.
            the 16 even bands, to hold out the odd ones). Validation metrics are computed
            on all 31 bands, so held-out bands are measured.
    """

    name: str = "paper"
    arch: str = "inr"
    model_preset: str = "paper"
    model: dict = field(default_factory=dict)
    epochs: int = 1000
    batch_size: int = 56
    crop_size: int = 64
    crops_per_scene: int = 56
    augment: bool = True
    rgb_source: str = "dataset"
    lr: float = 1e-4
    betas: tuple = (0.9, 0.999)
    weight_decay: float = 0.0
    milestones: tuple = (200, 400, 600, 800)
    gamma: float = 0.5
    val_every: int = 10
    val_mode: str = "full"
    val_overlap: int = 16
    val_crops: int = 16
    seed: int = 0
    amp: str = "auto"
    num_workers: int | None = None
    checkpoint_every: int = 1
    wavelengths: list | None = None

    def __post_init__(self):
        problems = self._coerce_numbers()
        if self.arch not in archs.ARCHS:
            problems.append(f"arch must be one of {tuple(archs.ARCHS)}, got {self.arch!r}")
        if self.val_mode not in VAL_MODES:
            problems.append(f"val_mode must be one of {VAL_MODES}, got {self.val_mode!r}")
        if self.amp not in AMP_MODES:
            problems.append(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if "val_overlap" not in str(problems) and "crop_size" not in str(problems) and \
                not 0 <= self.val_overlap < self.crop_size:
            problems.append(f"val_overlap must satisfy 0 <= val_overlap < crop_size, got "
                            f"{self.val_overlap} and {self.crop_size}")
        try:
            self.wavelengths = target_wavelengths(self.wavelengths)
        except ValueError as e:
            problems.append(str(e))
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    def _coerce_numbers(self) -> list:
        """Convert the numeric fields in place; return a message per field whose value has
        the wrong type or lies outside its range (naming the key)."""
        problems: list = []
        for names, kind, ok, expect in _NUMBER_RULES:
            for name in names:
                if getattr(self, name) is None and name in _OPTIONAL:
                    continue
                x = _number(name, getattr(self, name), kind, ok, expect, problems)
                if x is not None:
                    setattr(self, name, x)
        for name, expect, ok in (("betas", "two numbers in [0, 1)", lambda v: len(v) == 2),
                                 ("milestones", "a list of integers >= 0", lambda v: True)):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not ok(value):
                problems.append(f"{name} must be {expect}, got {value!r}")
                continue
            kind, rule = (float, lambda x: 0 <= x < 1) if name == "betas" else (int, lambda x: x >= 0)
            xs = [_number(name, v, kind, rule, expect, problems) for v in value]
            if None not in xs:
                setattr(self, name, tuple(xs))
        if not isinstance(self.model or {}, dict):
            problems.append(f"model must be a mapping of model options, got {self.model!r}")
        else:
            self.model = dict(self.model or {})
        for name in ("arch", "model_preset", "rgb_source", "val_mode", "amp"):
            if not isinstance(getattr(self, name), str):
                problems.append(f"{name} must be a string, got {getattr(self, name)!r}")
        return problems

    # ----------------------------------------------------------- conversions
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"], d["milestones"] = list(self.betas), list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Build from a dict; ``base: PRESET`` starts from a preset; unknown keys are errors."""
        d = _drop_retired(dict(d))
        base = d.pop("base", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config keys {unknown}; known keys: {sorted(known)}")
        start = cls.preset(base).to_dict() if base else {}
        return cls(**{**start, **d})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrainConfig":
        """Read a YAML file of config fields (optionally ``base: quick`` to extend a preset)."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise ValueError(f"cannot read training config {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ValueError(f"training config {path} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"training config {path}: expected a mapping of fields, found "
                             f"a {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as e:
            raise ValueError(f"training config {path}: {e}") from None

    @classmethod
    def preset(cls, name: str) -> "TrainConfig":
        """A shipped preset: ``"paper"``, ``"colab"``, ``"quick"`` or ``"tiny"``."""
        path = CONFIG_DIR / f"{name}.yaml"
        if not path.is_file():
            raise ValueError(f"unknown training preset {name!r}; available: {list_presets()} "
                             f"(or give the path of a YAML file)")
        return cls.from_yaml(path)

    @classmethod
    def load(cls, preset_or_path: str | os.PathLike) -> "TrainConfig":
        """A preset name or a YAML path."""
        s = str(preset_or_path)
        if s in list_presets():
            return cls.preset(s)
        if not Path(s).is_file():
            raise ValueError(f"--config {s!r} is neither a preset ({list_presets()}) nor an "
                             f"existing YAML file")
        return cls.from_yaml(s)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def with_overrides(self, items: Sequence[str]) -> "TrainConfig":
        """Apply ``key=value`` strings (values parsed as YAML; ``model.KEY=value`` sets a
        model option), e.g. ``["lr=5e-4", "model.encoding=tile", "milestones=[10, 20]"]``."""
        import yaml

        d = self.to_dict()
        for item in items:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"--set expects key=value, got {item!r}")
            value = yaml.safe_load(raw) if raw.strip() else None
            if key.startswith("model."):
                d["model"] = {**d["model"], key[len("model."):]: value}
            elif key in d:
                d[key] = value
            else:
                raise ValueError(f"--set {item!r}: unknown key {key!r}; known keys: {sorted(d)} "
                                 f"(and model.OPTION)")
        return TrainConfig.from_dict(d)


#: fields of earlier versions, accepted (and ignored) in saved configs at these values only
_RETIRED = {"grad_clip": None, "tensorboard": False, "best_metric": "psnr"}


def _drop_retired(d: dict) -> dict:
    """Remove retired fields that hold the only value they ever had an effect with."""
    for key, value in _RETIRED.items():
        if key in d and d[key] == value:
            del d[key]
        elif key in d:
            raise ValueError(f"training config field {key!r} is no longer supported (only "
                             f"{key}: {value!r} is accepted, from configs saved by earlier "
                             f"versions); remove it")
    return d


def list_presets() -> list[str]:
    """Names of the shipped training presets."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        history: one dict per epoch (as in ``log.jsonl``).
        best: the validation record with the highest ``val_psnr`` (or None).
        out_dir, last_path, best_path, log_path: the files written (``best_path`` is None
            when there was no validation).
        model: the trained model (unwrapped, eval mode, on the training device).
        stopped_early: True if the callback asked to stop.
    """

    history: list
    best: dict | None
    out_dir: Path
    last_path: Path
    best_path: Path | None
    log_path: Path
    model: nn.Module
    stopped_early: bool = False




# ====================================================================== building blocks
def build_for_config(cfg: TrainConfig) -> nn.Module:
    """The untrained model a config describes (seeded with ``cfg.seed``), via :mod:`inr_lib.model.registry`."""
    preset = cfg.model_preset if cfg.arch == "inr" else None
    return archs.build(cfg.arch, preset, seed=cfg.seed, **cfg.model)


def amp_dtype_for(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """Autocast dtype: None (full fp32) on CPU or with ``amp="off"``; on CUDA bf16 where the
    GPU supports it natively (compute capability >= 8, e.g. A100/H100), else fp16 (T4, V100)."""
    if device.type != "cuda" and amp in ("bf16", "fp16"):
        warnings.warn(f"amp={amp} applies to CUDA only; training on {device.type} in full "
                      f"precision (fp32)", stacklevel=2)
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 and torch.cuda.is_bf16_supported() else torch.float16


def grad_scaler(enabled: bool) -> torch.amp.GradScaler:
    """A CUDA GradScaler (``torch.amp`` since torch 2.3, ``torch.cuda.amp`` before); a
    disabled one (CPU, bf16, fp32) passes the loss and the step through unchanged."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def train_step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor],
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, amp_dtype: torch.dtype | None,
               wavelengths: Sequence[float] | None = None) -> torch.Tensor:
    """One optimiser step of the paper's recipe; returns the batch's loss (detached, 0-dim).

    The loss is L1 on [-1, 1]-scaled data, ``mean |(2 p - 1) - (2 t - 1)|``, computed in the
    target's precision (fp32) even when the forward pass runs under autocast.

    Args:
        model: maps ``(B, 3, h, w)`` in [0, 1] to ``(B, 31, h, w)`` (may be a DDP wrapper).
        batch: ``(rgb (B, 3, h, w), hsi (B, 31, h, w))`` on the model's device, in [0, 1].
        optimizer: e.g. ``torch.optim.Adam``.
        scaler: a :func:`grad_scaler` (enabled only for fp16).
        amp_dtype: autocast dtype (:func:`amp_dtype_for`) or None for full precision.
        wavelengths: the bands (nm) that enter the loss (:attr:`TrainConfig.wavelengths`);
            None: all 31.
    """
    rgb, hsi = batch
    with _autocast(rgb.device, amp_dtype):
        pred = model(rgb)
    loss = F.l1_loss(*target_bands(pred.to(hsi.dtype) * 2 - 1, hsi * 2 - 1, wavelengths))
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def blocking_file(folder: Path) -> str | None:
    """``"X is a file, not a folder"`` when a file ``X`` stands where ``folder`` or one of
    its parents should be (the usual reason a folder cannot be created), else None."""
    for p in (folder, *folder.parents):
        if p.exists():
            return f"{p} is a file, not a folder" if not p.is_dir() else None
    return None


def check_run_dir(out_dir: str | os.PathLike, resume: bool, overwrite: bool) -> None:
    """Refuse to start a new run in a folder that holds one (unless resuming or overwriting),
    or that holds the user's run files without ``last.pt`` (unless overwriting); the rule is
    :func:`inr_lib.files.outputs.check_run_folder`.

    Raises:
        FileExistsError: ``out_dir/last.pt`` exists and neither ``resume`` nor ``overwrite``,
            or other run files exist without ``last.pt`` and not ``overwrite``.
    """
    check_run_folder(out_dir, resume, overwrite)


def check_output_dir(out_dir: Path, need_bytes: int) -> None:
    """Create ``out_dir`` and check it is writable with ``need_bytes`` free, or raise
    :class:`OutputDirError` saying what to do."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write_test_{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        why = blocking_file(out_dir) or e.strerror or e
        raise OutputDirError(f"output folder {out_dir} is not writable ({why}); "
                             f"choose another --out folder") from None
    problem = free_space_problem(out_dir, need_bytes, "the checkpoints")
    if problem:
        raise OutputDirError(f"output folder {problem} (--out)")


class RunLockedError(OutputDirError):
    """Another training run is writing the same run folder."""


LOCK_NAME = ".lock"


@contextlib.contextmanager
def run_lock(out_dir: Path, main: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir/.lock`` while a run writes ``out_dir`` (rank 0 only).

    A second training into the same folder fails at once with :class:`RunLockedError`
    naming the process that holds it. The lock is released when the run ends or its process
    dies (an OS file lock; the empty-ish ``.lock`` file stays). No-op where ``fcntl`` is
    missing (Windows).
    """
    try:
        import fcntl
    except ImportError:
        fcntl = None  # type: ignore[assignment]  # Windows: no lock
    if not main or fcntl is None:
        yield
        return
    check_output_dir(out_dir, need_bytes=0)
    with open(out_dir / LOCK_NAME, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise RunLockedError(f"{out_dir} is being written by another training run ({holder}); "
                                 f"wait for it to finish, or choose another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        yield


# ====================================================================== the data a run used
DATA_RECORD = "data.json"


def data_identity(d: dict) -> dict:
    """What a run was trained on: the dataset kind, folder, split and scene names."""
    return {"dataset": d["dataset"], "root": d["root"], "split": d["split_name"],
            "train": [s.name for s in d["train"]], "test": [s.name for s in d["test"]]}


def check_same_data(out: Path, identity: dict, allowed: bool) -> None:
    """``--resume`` on other scenes than the run started with is an error unless ``allowed``
    (best.pt would be re-selected on another validation set)."""
    try:
        old = json.loads((out / DATA_RECORD).read_text())
    except (OSError, ValueError):
        return   # a run from before this record existed: nothing to compare
    diff = [k for k in ("dataset", "train", "test") if old.get(k) != identity[k]]
    if diff and not allowed:
        def show(r):
            return (f"{r.get('dataset')} {r.get('root')} split {r.get('split')!r}: "
                    f"{len(r.get('train', []))} train / {len(r.get('test', []))} test scenes")
        raise ValueError(f"cannot resume {out}: it was trained on {show(old)}, but --data/--split now "
                         f"give {show(identity)} (different {', '.join(diff)}); use the same --data "
                         f"and --split, or pass --allow-other-data to continue on these scenes")


def record_data(out: Path, identity: dict) -> Callable[[dict, nn.Module], None]:
    """A training callback writing ``out/data.json`` after the first epoch (once the run has
    started, so a failed start leaves an older run's record alone)."""
    text = json.dumps(identity, indent=1) + "\n"
    written: list[bool] = []

    def callback(record, model):
        if not written:
            atomic_write(out / DATA_RECORD, lambda f: f.write(text.encode()))
            written.append(True)
        return None

    return callback


# ====================================================================== processes (DDP)
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device: torch.device) -> tuple[_Dist, torch.device]:
    """Read RANK / WORLD_SIZE / LOCAL_RANK (as set by torchrun) and join the process group."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owns = True
    return _Dist(rank, world, local, owns), device


def _all_reduce_sum(x: torch.Tensor, d: _Dist) -> torch.Tensor:
    if d.enabled:
        import torch.distributed as dist

        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


# ====================================================================== one run's state
@dataclass
class _Run:
    """What one call of :func:`train` holds between its steps."""

    cfg: TrainConfig
    out_dir: Path
    device: torch.device
    dist: _Dist
    model: nn.Module
    optimizer: Any
    scheduler: Any
    scaler: Any
    amp_dtype: torch.dtype | None
    start_epoch: int = 0
    saved_epoch: int = 0
    history: list = field(default_factory=list)
    best: dict | None = None
    begun: bool = True         # False: a new run over an old one that has not replaced it yet

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best.pt"

    @property
    def log_path(self) -> Path:
        return self.out_dir / "log.jsonl"


def _new_run(cfg: TrainConfig, out_dir: Path, device: torch.device, d: _Dist) -> _Run:
    """Seed everything, build the model and its optimiser, scheduler and gradient scaler."""
    import random

    import numpy as np

    if cfg.batch_size % d.world:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the number of "
                         f"processes ({d.world})")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    model = build_for_config(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                 weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones),
                                                     gamma=cfg.gamma)
    amp_dtype = amp_dtype_for(device, cfg.amp)
    return _Run(cfg, out_dir, device, d, model, optimizer, scheduler,
                grad_scaler(enabled=amp_dtype == torch.float16), amp_dtype)


def _prepare_output(run: _Run) -> None:
    """Rank 0: remove debris of a killed run and check the folder can hold the checkpoints."""
    if not run.dist.main:
        return
    # half-written temporaries of a run that was killed (they are never read): not counted
    remove_stale_temp_files(run.out_dir, [run.last_path.name, run.best_path.name,
                                          run.log_path.name, "config.yaml"])
    n_params = sum(p.numel() for p in run.model.parameters())
    # weights + 2 Adam moments, for last.pt, best.pt and one temporary copy, plus margin
    check_output_dir(run.out_dir, need_bytes=3 * n_params * 4 * 3 + 32 * 2**20)


def _restore(run: _Run, resume: bool) -> None:
    """Continue from ``last.pt`` (``resume``); note whether an older run is still to be replaced."""
    talk = run.dist.main
    if resume and run.last_path.is_file():
        try:
            state = ckpt_lib.load_checkpoint(run.last_path, map_location="cpu")
        except ckpt_lib.CheckpointError as e:
            raise ckpt_lib.CheckpointError(
                f"cannot resume: {e} To resume from the run's best.pt instead, copy it over "
                f"last.pt; or start afresh with overwrite=True (--overwrite)") from None
        _check_resumable(state, run.cfg, run.model, run.last_path)
        _load_state(run, state)
        if talk:
            print(f"resuming {run.out_dir} after epoch {run.start_epoch} of {run.cfg.epochs}")
    elif resume and talk:
        print(f"--resume: no {run.last_path} yet, starting a new run")
    # a new run over an old one (overwrite=True) replaces it only once its first epoch is
    # done: settings that fail (crop too large, lr that diverges, ...) leave the old run intact
    run.begun = not (run.start_epoch == 0 and any(
        p.exists() for p in (run.last_path, run.best_path, run.log_path)))


def _load_state(run: _Run, state: dict) -> None:
    """Weights, optimiser, scheduler, scaler, RNGs and the log of a checkpoint, into ``run``."""
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler") and run.scaler.is_enabled():
        run.scaler.load_state_dict(state["scaler"])
    if state.get("rng"):
        ckpt_lib.set_rng_state(state["rng"])
    run.start_epoch = run.saved_epoch = int(state["epoch"])
    run.history, run.best = list(state["history"]), state["best"]


def _check_resumable(state: dict, cfg: TrainConfig, model: nn.Module, path: Path) -> None:
    config: Any = model.config        # a registered architecture's config
    want = {"arch": cfg.arch, **config.to_dict()}
    have = {"arch": state["arch"], **state["model_config"]}
    diff = {k: (have.get(k), want.get(k)) for k in sorted(set(want) | set(have))
            if have.get(k) != want.get(k)}
    if diff:
        shown = ", ".join(f"{k}: {a!r} there, {b!r} asked" for k, (a, b) in diff.items())
        raise ValueError(f"cannot resume from {path}: it holds a different model ({shown}); "
                         f"use the run's own config ({path.parent / 'config.yaml'}) or a new output folder")
    if state.get("optimizer") is None or state.get("scheduler") is None:
        raise ValueError(f"cannot resume from {path}: it has no optimiser/scheduler state")
    old = state.get("train_config") or {}
    for key in ("batch_size", "crop_size", "crops_per_scene", "seed", "lr", "milestones"):
        if key in old and old[key] != cfg.to_dict()[key]:
            warnings.warn(f"resuming {path} with {key}={cfg.to_dict()[key]!r}, but the run "
                          f"started with {old[key]!r}; the result will differ from an "
                          f"uninterrupted run", stacklevel=2)


def _begin_run(run: _Run, history: list) -> None:
    """Rank 0: ``config.yaml`` and ``log.jsonl`` (``history``), both atomically; a new run
    (``start_epoch`` 0) first removes the checkpoints of the run it replaces."""
    if not run.dist.main:
        return
    import yaml

    if run.start_epoch == 0:
        for old in (run.last_path, run.best_path):
            old.unlink(missing_ok=True)
    text = RUN_CONFIG_MARKER + yaml.safe_dump(run.cfg.to_dict(), sort_keys=False)
    atomic_write(run.out_dir / "config.yaml", lambda f: f.write(text.encode()))
    log = "".join(json.dumps(r) + "\n" for r in history)
    atomic_write(run.log_path, lambda f: f.write(log.encode()))
    run.begun = True


# ====================================================================== data
def _make_loader(run: _Run, train_scenes: list) -> tuple[DataLoader, PatchDataset, torch.Generator]:
    """This process's share of the seeded crops: ``(loader, dataset, worker-seed generator)``."""
    cfg, d, device = run.cfg, run.dist, run.device
    data = PatchDataset(train_scenes, size=cfg.crop_size, crops_per_scene=cfg.crops_per_scene,
                        seed=cfg.seed, augment=cfg.augment, rgb_source=cfg.rgb_source)
    sampler: DistributedSampler = DistributedSampler(data, num_replicas=d.world, rank=d.rank, shuffle=True,
                                 seed=cfg.seed, drop_last=False)
    workers = cfg.num_workers
    if workers is None:
        workers = min(4, max(1, (os.cpu_count() or 1) // d.world)) if device.type == "cuda" else 0
    gen = torch.Generator()
    loader = DataLoader(data, batch_size=cfg.batch_size // d.world, sampler=sampler,
                        num_workers=workers, pin_memory=device.type == "cuda", drop_last=False,
                        generator=gen)
    return loader, data, gen


def _set_epoch(loader: DataLoader, data: PatchDataset, gen: torch.Generator, seed: int,
               epoch: int) -> None:
    """Make the crops and their order of ``epoch`` a pure function of the seed and the epoch."""
    sampler: Any = loader.sampler       # the DistributedSampler of _make_loader
    sampler.set_epoch(epoch)
    data.set_epoch(epoch)
    gen.manual_seed(seed * 100003 + epoch)   # worker seeds (unused by the data)


def _val_crops(cfg: TrainConfig, val_scenes: list):
    """``(rgb, hsi)`` stacks of the fixed validation crops, or None (``val_mode="full"``)."""
    if not val_scenes or cfg.val_mode not in ("crops", "both"):
        return None
    vd = PatchDataset(val_scenes, size=cfg.crop_size, crops_per_scene=cfg.val_crops,
                      seed=cfg.seed + 1, augment=False, rgb_source=cfg.rgb_source)
    items = [vd[i] for i in range(len(vd))]
    return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])


# ====================================================================== validation
def _validate(model: nn.Module, cfg: TrainConfig, val_scenes, val_crops, device) -> dict:
    """Validation metrics (means over scenes / crops) as ``{"val_psnr": ...}``."""
    from ..evaluation import evaluate

    out = {}
    if cfg.val_mode in ("full", "both"):
        res = evaluate(model, val_scenes, mode="tiled", tile=cfg.crop_size,
                       overlap=cfg.val_overlap, rgb_source=cfg.rgb_source, device=device,
                       progress=False)
        out.update({f"val_{k}": v for k, v in res["mean"].items()})
    if cfg.val_mode in ("crops", "both"):
        key = "val_crops_" if cfg.val_mode == "both" else "val_"
        out.update({f"{key}{k}": v for k, v in _score_crops(model, val_crops, device).items()})
    return out


@torch.no_grad()
def _score_crops(model: nn.Module, val_crops, device) -> dict:
    """Mean metrics of the model (eval mode, restored afterwards) on fixed validation crops."""
    from ..evaluation import metrics

    rgb, hsi = val_crops
    was = model.training
    model.eval()
    pred = torch.cat([model(rgb[i:i + 64].to(device)).float().cpu()
                      for i in range(0, len(rgb), 64)])
    model.train(was)
    return {k: float(torch.nanmean(v)) for k, v in metrics.compute_all(pred.clamp(0, 1), hsi).items()}


def _is_better(value: float | None, best: float | None) -> bool:
    """A finite validation PSNR above the best so far."""
    if value is None or not math.isfinite(value):
        return False
    return best is None or value > best


# ====================================================================== the loop
def train(cfg: TrainConfig, train_scenes: Sequence, val_scenes: Sequence, out_dir: str | os.PathLike,
          resume: bool = False, device: str | torch.device | None = None, progress: bool = True,
          callback: Callable[[dict, nn.Module], bool | None] | None = None, *,
          overwrite: bool = False) -> TrainResult:
    """Train a model on crops of ``train_scenes``, validating on ``val_scenes``.

    Args:
        cfg: the :class:`TrainConfig`.
        train_scenes: :class:`~inr_lib.data.Scene` objects (``hsi`` (31, H, W) in [0, 1]).
        val_scenes: held-out scenes (may be empty: then there is no validation and no
            ``best.pt``).
        out_dir: run folder: ``last.pt``, ``best.pt``, ``log.jsonl``, ``config.yaml``.
        resume: continue from ``out_dir/last.pt`` if it exists (otherwise start afresh,
            with a note). The stored model configuration must match ``cfg``'s; ``epochs``
            may be raised to train longer. Resuming a finished run trains nothing and
            returns it (handy for notebooks that are re-run).
        overwrite: start afresh even if ``out_dir`` already holds a run (its checkpoints
            are replaced). Without it (and without ``resume``) an existing run is an error.
        device: "auto"/None (CUDA if available), "cpu", "cuda", "cuda:1", ...
        progress: show a tqdm bar per epoch (rank 0 only).
        callback: ``callback(record, model)``, called on rank 0 after every epoch (after
            its checkpoint is written) with that epoch's log record and the (unwrapped)
            model; return True to stop training there.

    Returns:
        :class:`TrainResult`.

    Raises:
        FileExistsError: ``out_dir`` holds a run and neither ``resume`` nor ``overwrite``.
        NonFiniteLossError: the loss became NaN/inf (nothing of that epoch is written).
        OutputDirError: the output folder is not writable or too full (checked before
            training), or a checkpoint write failed (the previous checkpoint is intact).
    """
    from ..runtime import pick_device

    out_dir = Path(out_dir)
    device = pick_device(str(device) if device is not None else None)
    dist_info, device = _setup_distributed(device)
    try:
        check_run_dir(out_dir, resume, overwrite)
        with run_lock(out_dir, dist_info.main):
            run = _start(cfg, out_dir, device, dist_info, resume)
            stopped = _loop(run, list(train_scenes), list(val_scenes), progress, callback)
        return _finish(run, stopped)
    finally:
        if dist_info.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _start(cfg: TrainConfig, out_dir: Path, device: torch.device, d: _Dist, resume: bool) -> _Run:
    """A run ready for its first epoch: built, the folder checked, restored or begun."""
    run = _new_run(cfg, out_dir, device, d)
    _prepare_output(run)
    _restore(run, resume)
    if run.begun:
        _begin_run(run, run.history)
    return run


def _finish(run: _Run, stopped: bool) -> TrainResult:
    """Wait for every process, put the model in eval mode and say what was written."""
    if run.dist.enabled:
        import torch.distributed as dist

        dist.barrier()
    run.model.eval()
    return TrainResult(history=run.history, best=run.best, out_dir=run.out_dir,
                       last_path=run.last_path,
                       best_path=run.best_path if run.best_path.is_file() else None,
                       log_path=run.log_path, model=run.model, stopped_early=stopped)


def _loop(run: _Run, train_scenes: list, val_scenes: list, progress: bool, callback) -> bool:
    """The epochs from ``run.start_epoch`` on; returns True if the callback stopped them."""
    from tqdm.auto import tqdm

    cfg, d = run.cfg, run.dist
    net = run.model
    if d.enabled:
        net = nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    loader, data, gen = _make_loader(run, train_scenes)
    val_crops = _val_crops(cfg, val_scenes)
    for epoch in range(run.start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        _set_epoch(loader, data, gen, cfg.seed, epoch)
        lr = run.optimizer.param_groups[0]["lr"]
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not (progress and d.main), unit="batch")
        loss, seen = _train_epoch(run, net, bar, t0)
        record = {"epoch": epoch + 1, "loss": loss, "lr": lr}
        stop = _end_epoch(run, record, t0, seen, val_scenes, val_crops, progress, callback)
        if _all_reduce_sum(torch.tensor([float(stop)], device=run.device), d).item() > 0:
            return True
    return False


def _train_epoch(run: _Run, net: nn.Module, bar, t0: float) -> tuple[float, float]:
    """One pass over the loader: ``(mean loss over all processes, crops seen)``."""
    device, d = run.device, run.dist
    net.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    for step, (rgb, hsi) in enumerate(bar):
        batch = (rgb.to(device, non_blocking=True), hsi.to(device, non_blocking=True))
        loss = train_step(net, batch, run.optimizer, run.scaler, run.amp_dtype, run.cfg.wavelengths)
        loss_sum += loss.double() * len(rgb)
        count += len(rgb)
        if step % 10 == 0 and not bar.disable:
            bar.set_postfix(loss=f"{loss.item():.4f}",
                            samples_s=f"{count.item() * d.world / (time.perf_counter() - t0):.1f}")
    bar.close()
    totals = _all_reduce_sum(torch.stack([loss_sum, count]), d).cpu()
    return float(totals[0] / totals[1]), float(totals[1])


def _end_epoch(run: _Run, record: dict, t0: float, seen: float, val_scenes: list, val_crops,
               progress: bool, callback) -> bool:
    """Check the loss, step the LR, validate, write checkpoints and the log, call back.

    Returns True if the callback asked to stop (rank 0; other ranks return False)."""
    cfg, epoch = run.cfg, record["epoch"]
    if not math.isfinite(record["loss"]):
        good = (f"the last good checkpoint {run.last_path} (epoch {run.saved_epoch}) is kept"
                if run.saved_epoch else "no checkpoint had been written yet")
        raise NonFiniteLossError(
            f"training loss became {record['loss']} in epoch {epoch}; stopping ({good}). "
            f"Try a lower learning rate (lr) or amp: off")
    run.scheduler.step()
    seconds = time.perf_counter() - t0
    record.update(seconds=round(seconds, 3), samples_per_s=round(seen / seconds, 2))
    if not run.dist.main:
        return False
    last = epoch == cfg.epochs
    improved = False
    if val_scenes and cfg.val_every > 0 and (epoch % cfg.val_every == 0 or last):
        tv = time.perf_counter()
        record.update(_validate(run.model, cfg, val_scenes, val_crops, run.device))
        record["val_seconds"] = round(time.perf_counter() - tv, 3)
        improved = _is_better(record.get("val_psnr"), (run.best or {}).get("val_psnr"))
        if improved:
            run.best = dict(record)
    run.history.append(record)
    if not run.begun:
        _begin_run(run, [])
    if epoch % cfg.checkpoint_every == 0 or last or improved:
        _write_checkpoints(run, epoch, improved)
    with open(run.log_path, "a") as f:
        f.write(json.dumps(record) + "\n")
    if progress:
        print(_summary(record))
    return bool(callback is not None and callback(record, run.model))


def _write_checkpoints(run: _Run, epoch: int, improved: bool) -> None:
    """``best.pt`` (if ``improved``), then ``last.pt``.

    best.pt first: a crash between the two writes then resumes from the previous last.pt and
    recomputes (and rewrites) the same best.pt, whereas the other order could leave a last.pt
    whose ``best`` record has no best.pt behind it."""
    kwargs = dict(epoch=epoch, optimizer=run.optimizer, scheduler=run.scheduler,
                  scaler=run.scaler, train_config=run.cfg.to_dict(), history=run.history,
                  best=run.best)
    for path in ([run.best_path] if improved else []) + [run.last_path]:
        try:
            ckpt_lib.save_checkpoint(path, run.model, **kwargs)
        except OSError as e:
            kept = (f"{run.last_path} (epoch {run.saved_epoch}) is intact" if run.saved_epoch
                    else "no checkpoint had been written yet")
            raise OutputDirError(
                f"could not write {path} after epoch {epoch} ({e.strerror or e}); {kept}. "
                f"Free some space (or fix the folder), then continue with resume=True (--resume)"
            ) from None
    run.saved_epoch = epoch


def _summary(r: dict) -> str:
    s = (f"epoch {r['epoch']}: loss {r['loss']:.4f}, lr {r['lr']:.2e}, {r['seconds']:.1f} s, "
         f"{r['samples_per_s']:.1f} samples/s")
    vals = [f"{k[4:]} {v:.4g}" for k, v in r.items() if k.startswith("val_") and k != "val_seconds"
            and isinstance(v, float)]
    return s + (" | val " + ", ".join(vals) if vals else "")
