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
  :class:`~inr_lib.baselines.SmallResCNN` baseline, trained by the same loop);
* per epoch: crops from :class:`~inr_lib.data.patches.PatchDataset` (a pure function of
  seed, epoch and index) in the order of a seeded ``DistributedSampler``; a tqdm bar with
  loss and samples/s; one JSON line in ``log.jsonl``; validation every ``val_every`` epochs
  on the **full** held-out images (tiled at the crop size), or on random crops, or both;
  ``last.pt`` and, when the validation PSNR improves, ``best.pt`` (atomic writes, see
  :mod:`inr_lib.checkpoint`);
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
import shutil
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from . import checkpoint as ckpt_lib
from .data.patches import PatchDataset

__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "OutputDirError", "train",
           "list_presets", "build_for_config", "amp_dtype_for"]

CONFIG_DIR = Path(__file__).parent / "configs"
VAL_MODES = ("full", "crops", "both")
AMP_MODES = ("auto", "bf16", "fp16", "off")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint was kept."""


class OutputDirError(OSError):
    """The output folder cannot be used (not writable, or not enough free space)."""


# ====================================================================== configuration
@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in checkpoints and ``config.yaml``).

    The defaults are the paper's recipe. Load presets with :meth:`preset` or YAML files
    with :meth:`from_yaml`; change fields with :meth:`replace` or :meth:`with_overrides`.

    Attributes:
        name: a label for the run.
        arch: ``"inr"`` (the INR-HSISR model) or ``"cnn"`` (the SmallResCNN baseline).
        model_preset: preset of :func:`inr_lib.build_model` (``arch="inr"`` only).
        model: options passed on to the model: for ``"inr"`` any
            :class:`~inr_lib.model.ModelConfig` field (``encoding``, ``norm``,
            ``linear_prior``, ``tile``, ``hyper``, ...); for ``"cnn"`` the
            :class:`~inr_lib.baselines.SmallResCNNConfig` fields (``channels``, ``num_blocks``).
        epochs: epochs to train (1000).
        batch_size: crops per optimiser step, over all processes (56).
        crop_size: side of the square training crops (64).
        crops_per_scene: crops per training scene per epoch (56).
        augment: random flips and transposes of the crops.
        rgb_source: ``"dataset"`` (the scenes' own RGB) or a response name (``"cie1964"``).
        lr, betas, weight_decay: Adam settings (1e-4, (0.9, 0.999), 0).
        milestones, gamma: MultiStepLR: multiply the rate by ``gamma`` after these epochs.
        grad_clip: clip the gradient norm to this value (None: no clipping; the paper
            does not clip).
        val_every: validate every this many epochs (and after the last one; 0 = never).
        val_mode: ``"full"`` (whole held-out images, tiled at ``crop_size`` with
            ``val_overlap``), ``"crops"`` (``val_crops`` random crops per scene, as the
            released code validated) or ``"both"``.
        val_overlap, val_crops: see ``val_mode``.
        best_metric: validation metric selecting ``best.pt`` (``"psnr"``, ``"ssim"``,
            ``"sam"``, ``"rmse"``, ``"mrae"``), taken from the full-image validation when
            there is one.
        seed: seeds the weights, the crops and their order.
        amp: ``"auto"`` (CUDA: bf16 where supported natively, else fp16; CPU: off),
            ``"bf16"``, ``"fp16"`` or ``"off"``.
        num_workers: DataLoader workers (None: 0 on CPU, up to 4 per process on CUDA).
        tensorboard: also write TensorBoard scalars to ``OUT/tb`` (if installed).
        checkpoint_every: write ``last.pt`` every this many epochs (and after the last).
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
    grad_clip: float | None = None
    val_every: int = 10
    val_mode: str = "full"
    val_overlap: int = 16
    val_crops: int = 16
    best_metric: str = "psnr"
    seed: int = 0
    amp: str = "auto"
    num_workers: int | None = None
    tensorboard: bool = False
    checkpoint_every: int = 1

    def __post_init__(self):
        problems = self._coerce_numbers()
        if self.arch not in ("inr", "cnn"):
            problems.append(f"arch must be 'inr' or 'cnn', got {self.arch!r}")
        if self.val_mode not in VAL_MODES:
            problems.append(f"val_mode must be one of {VAL_MODES}, got {self.val_mode!r}")
        if self.amp not in AMP_MODES:
            problems.append(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if "val_overlap" not in str(problems) and "crop_size" not in str(problems) and \
                not 0 <= self.val_overlap < self.crop_size:
            problems.append(f"val_overlap must satisfy 0 <= val_overlap < crop_size, got "
                            f"{self.val_overlap} and {self.crop_size}")
        if self.best_metric not in ("psnr", "ssim", "sam", "rmse", "mrae"):
            problems.append(f"best_metric must be psnr/ssim/sam/rmse/mrae, got {self.best_metric!r}")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    def _coerce_numbers(self) -> list:
        """Convert the numeric fields in place; return a message per field whose value has
        the wrong type or lies outside its range (naming the key)."""
        import math

        problems = []

        def number(name, kind, ok, expect, value=None):
            v = getattr(self, name) if value is None else value
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

        for name in ("epochs", "batch_size", "crop_size", "crops_per_scene", "checkpoint_every"):
            x = number(name, int, lambda x: x >= 1, "an integer >= 1")
            if x is not None:
                setattr(self, name, x)
        for name, ok, expect in (
                ("lr", lambda x: 0 < x <= 1, "a number in (0, 1]"),
                ("gamma", lambda x: 0 < x <= 1, "a number in (0, 1] (the factor applied to lr at "
                                                "each milestone)"),
                ("weight_decay", lambda x: x >= 0, "a number >= 0")):
            x = number(name, float, ok, expect)
            if x is not None:
                setattr(self, name, x)
        for name in ("val_every", "val_overlap", "seed"):
            x = number(name, int, lambda x: x >= 0, "an integer >= 0")
            if x is not None:
                setattr(self, name, x)
        if self.val_crops is not None:
            x = number("val_crops", int, lambda x: x >= 1, "an integer >= 1")
            self.val_crops = self.val_crops if x is None else x
        if self.grad_clip is not None:
            x = number("grad_clip", float, lambda x: x > 0, "a positive number or null")
            self.grad_clip = self.grad_clip if x is None else x
        if self.num_workers is not None:
            x = number("num_workers", int, lambda x: x >= 0, "an integer >= 0 or null")
            self.num_workers = self.num_workers if x is None else x
        if not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2:
            problems.append(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        else:
            bs = [number("betas", float, lambda x: 0 <= x < 1, "two numbers in [0, 1)", b)
                  for b in self.betas]
            if None not in bs:
                self.betas = tuple(bs)
        if not isinstance(self.milestones, (list, tuple)):
            problems.append(f"milestones must be a list of epochs, got {self.milestones!r}")
        else:
            ms = [number("milestones", int, lambda x: x >= 0, "a list of integers >= 0", m)
                  for m in self.milestones]
            if None not in ms:
                self.milestones = tuple(ms)
        if not isinstance(self.model or {}, dict):
            problems.append(f"model must be a mapping of model options, got {self.model!r}")
        else:
            self.model = dict(self.model or {})
        for name in ("arch", "model_preset", "rgb_source", "val_mode", "best_metric", "amp"):
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
        d = dict(d)
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

    def replace(self, **changes) -> "TrainConfig":
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


def list_presets() -> list[str]:
    """Names of the shipped training presets."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        history: one dict per epoch (as in ``log.jsonl``).
        best: the validation record with the best ``best_metric`` (or None).
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


# ====================================================================== helpers
def build_for_config(cfg: TrainConfig) -> nn.Module:
    """The untrained model a config describes (seeded with ``cfg.seed``)."""
    if cfg.arch == "inr":
        from .model import build_model

        return build_model(cfg.model_preset, seed=cfg.seed, **cfg.model)
    from .baselines import SmallResCNN

    return SmallResCNN(**{"seed": cfg.seed, **cfg.model})


def amp_dtype_for(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """Autocast dtype: None (full fp32) on CPU or with ``amp="off"``; on CUDA bf16 where the
    GPU supports it natively (compute capability >= 8, e.g. A100/H100), else fp16 (T4, V100)."""
    if device.type != "cuda" and amp in ("bf16", "fp16"):
        warnings.warn(f"amp={amp} applies to CUDA only; training on {device.type} in full "
                      f"precision (fp32)")
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 and torch.cuda.is_bf16_supported() else torch.float16


class RunLockedError(OutputDirError):
    """Another training run is writing the same run folder."""


LOCK_NAME = ".lock"


@contextlib.contextmanager
def run_lock(out_dir: Path, main: bool = True):
    """Hold an exclusive lock on ``out_dir/.lock`` while a run writes ``out_dir`` (rank 0 only).

    A second training into the same folder fails at once with :class:`RunLockedError`
    naming the process that holds it. The lock is released when the run ends or its process
    dies (an OS file lock; the empty-ish ``.lock`` file stays). No-op where ``fcntl`` is
    missing (Windows).
    """
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if not main or fcntl is None:
        yield
        return
    check_output_dir(out_dir, need_bytes=0)
    f = open(out_dir / LOCK_NAME, "a+")
    try:
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
    finally:
        f.close()


def blocking_file(folder: Path) -> str | None:
    """``"X is a file, not a folder"`` when a file ``X`` stands where ``folder`` or one of
    its parents should be (the usual reason a folder cannot be created), else None."""
    for p in (folder, *folder.parents):
        if p.exists():
            return f"{p} is a file, not a folder" if not p.is_dir() else None
    return None


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
    free = shutil.disk_usage(out_dir).free
    if free < need_bytes:
        raise OutputDirError(f"output folder {out_dir} has {free / 2**20:.0f} MiB free, but the "
                             f"checkpoints need about {need_bytes / 2**20:.0f} MiB; free some "
                             f"space or choose another --out folder")


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


def _validate(model: nn.Module, cfg: TrainConfig, val_scenes, val_crops, device) -> dict:
    """Validation metrics (means over scenes / crops) as ``{"val_psnr": ...}``."""
    from . import metrics
    from .evaluate import evaluate

    out = {}
    if cfg.val_mode in ("full", "both"):
        res = evaluate(model, val_scenes, mode="tiled", tile=cfg.crop_size,
                       overlap=cfg.val_overlap, rgb_source=cfg.rgb_source, device=device,
                       progress=False)
        out.update({f"val_{k}": v for k, v in res["mean"].items()})
    if cfg.val_mode in ("crops", "both"):
        rgb, hsi = val_crops
        with torch.no_grad():
            was = model.training
            model.eval()
            pred = torch.cat([model(rgb[i:i + 64].to(device)).float().cpu()
                              for i in range(0, len(rgb), 64)])
            model.train(was)
        scores = metrics.compute_all(pred.clamp(0, 1), hsi)
        key = "val_crops_" if cfg.val_mode == "both" else "val_"
        out.update({f"{key}{k}": float(torch.nanmean(v)) for k, v in scores.items()})
    return out


def _is_better(value: float, best: float | None, metric: str) -> bool:
    from .metrics import HIGHER_IS_BETTER

    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if HIGHER_IS_BETTER[metric] else value < best


def _write_log(path: Path, history: list) -> None:
    ckpt_lib.atomic_write(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in history).encode()))


def _scheduler_for(cfg, optimizer):
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones),
                                                gamma=cfg.gamma)


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
        NonFiniteLossError: the loss became NaN/inf (nothing of that epoch is written).
        OutputDirError: the output folder is not writable or too full (checked before
            training), or a checkpoint write failed (the previous checkpoint is intact).
    """
    from tqdm.auto import tqdm

    from .runtime import pick_device

    out_dir = Path(out_dir)
    device = pick_device(str(device) if device is not None else None)
    dist_info, device = _setup_distributed(device)
    try:
        if not resume and not overwrite and (out_dir / "last.pt").is_file():
            raise FileExistsError(f"{out_dir} already holds a training run ({out_dir / 'last.pt'}); "
                                  f"continue it with resume=True (--resume), replace it with "
                                  f"overwrite=True (--overwrite), or choose another output folder")
        with run_lock(out_dir, dist_info.main):
            return _train(cfg, list(train_scenes), list(val_scenes), out_dir, resume, device,
                          progress, callback, dist_info, tqdm)
    finally:
        if dist_info.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(cfg, train_scenes, val_scenes, out_dir, resume, device, progress, callback, d, tqdm):
    import random

    import numpy as np

    if cfg.batch_size % d.world:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the number of "
                         f"processes ({d.world})")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    model = build_for_config(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    last_path, best_path, log_path = out_dir / "last.pt", out_dir / "best.pt", out_dir / "log.jsonl"
    if d.main:
        # half-written temporaries of a run that was killed (they are never read): not counted
        ckpt_lib.remove_stale_temp_files(out_dir, [last_path.name, best_path.name, log_path.name,
                                                   "config.yaml"])
        # weights + 2 Adam moments, for last.pt, best.pt and one temporary copy, plus margin
        check_output_dir(out_dir, need_bytes=3 * n_params * 4 * 3 + 32 * 2**20)

    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                 weight_decay=cfg.weight_decay)
    scheduler = _scheduler_for(cfg, optimizer)
    amp_dtype = amp_dtype_for(device, cfg.amp)
    scaler = _grad_scaler(enabled=amp_dtype == torch.float16)

    start_epoch, history, best = 0, [], None
    if resume and last_path.is_file():
        try:
            state = ckpt_lib.load_checkpoint(last_path, map_location="cpu")
        except ckpt_lib.CheckpointError as e:
            raise ckpt_lib.CheckpointError(
                f"cannot resume: {e} To resume from the run's best.pt instead, copy it over "
                f"last.pt; or start afresh with overwrite=True (--overwrite)") from None
        _check_resumable(state, cfg, model, last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
        if state.get("rng"):
            ckpt_lib.set_rng_state(state["rng"])
        start_epoch, history, best = int(state["epoch"]), list(state["history"]), state["best"]
        if d.main:
            print(f"resuming {out_dir} after epoch {start_epoch} of {cfg.epochs}")
    elif resume and d.main:
        print(f"--resume: no {last_path} yet, starting a new run")
    # a new run over an old one (overwrite=True) replaces it only once its first epoch is
    # done: settings that fail (crop too large, lr that diverges, ...) leave the old run intact
    begun = not (start_epoch == 0 and any(p.exists() for p in (last_path, best_path, log_path)))
    if d.main and begun:
        _begin_run(out_dir, cfg, history, start_epoch)

    net = model
    if d.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    data = PatchDataset(train_scenes, size=cfg.crop_size, crops_per_scene=cfg.crops_per_scene,
                        seed=cfg.seed, augment=cfg.augment, rgb_source=cfg.rgb_source)
    sampler = DistributedSampler(data, num_replicas=d.world, rank=d.rank, shuffle=True,
                                 seed=cfg.seed, drop_last=False)
    workers = cfg.num_workers
    if workers is None:
        workers = min(4, max(1, (os.cpu_count() or 1) // d.world)) if device.type == "cuda" else 0
    loader_gen = torch.Generator()
    loader = DataLoader(data, batch_size=cfg.batch_size // d.world, sampler=sampler,
                        num_workers=workers, pin_memory=device.type == "cuda", drop_last=False,
                        generator=loader_gen)
    val_crops = None
    if val_scenes and cfg.val_mode in ("crops", "both"):
        vd = PatchDataset(val_scenes, size=cfg.crop_size, crops_per_scene=cfg.val_crops,
                          seed=cfg.seed + 1, augment=False, rgb_source=cfg.rgb_source)
        items = [vd[i] for i in range(len(vd))]
        val_crops = (torch.stack([a for a, _ in items]), torch.stack([b for _, b in items]))

    writer = _tensorboard(out_dir, cfg) if d.main else None
    stopped, saved_epoch = False, start_epoch
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        data.set_epoch(epoch)
        loader_gen.manual_seed(cfg.seed * 100003 + epoch)   # worker seeds (unused by the data)
        lr = optimizer.param_groups[0]["lr"]
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        count = torch.zeros((), dtype=torch.float64, device=device)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not (progress and d.main), unit="batch")
        for step, (rgb, hsi) in enumerate(bar):
            rgb = rgb.to(device, non_blocking=True)
            hsi = hsi.to(device, non_blocking=True)
            with _autocast(device, amp_dtype):
                pred = net(rgb)
            loss = F.l1_loss(pred.float() * 2 - 1, hsi * 2 - 1)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach().double() * len(rgb)
            count += len(rgb)
            if step % 10 == 0 and not bar.disable:
                seen = count.item() * d.world
                bar.set_postfix(loss=f"{loss.item():.4f}",
                                samples_s=f"{seen / (time.perf_counter() - t0):.1f}")
        bar.close()
        totals = _all_reduce_sum(torch.stack([loss_sum, count]), d).cpu()
        epoch_loss = float(totals[0] / totals[1])
        if not math.isfinite(epoch_loss):
            good = (f"the last good checkpoint {last_path} (epoch {saved_epoch}) is kept"
                    if saved_epoch else "no checkpoint had been written yet")
            raise NonFiniteLossError(
                f"training loss became {epoch_loss} in epoch {epoch + 1}; stopping ({good}). "
                f"Try a lower learning rate (lr), grad_clip, or amp: off")
        scheduler.step()
        seconds = time.perf_counter() - t0
        record = {"epoch": epoch + 1, "loss": epoch_loss, "lr": lr, "seconds": round(seconds, 3),
                  "samples_per_s": round(float(totals[1]) / seconds, 2)}
        last_epoch = epoch + 1 == cfg.epochs
        do_val = bool(val_scenes) and cfg.val_every > 0 and ((epoch + 1) % cfg.val_every == 0 or last_epoch)
        improved = False
        if d.main:
            if do_val:
                tv = time.perf_counter()
                record.update(_validate(model, cfg, val_scenes, val_crops, device))
                record["val_seconds"] = round(time.perf_counter() - tv, 3)
                value = record.get(f"val_{cfg.best_metric}")
                improved = _is_better(value, best.get(f"val_{cfg.best_metric}") if best else None,
                                      cfg.best_metric)
                if improved:
                    best = dict(record)
            history.append(record)
            if not begun:
                _begin_run(out_dir, cfg, [], start_epoch)
                begun = True
            if (epoch + 1) % cfg.checkpoint_every == 0 or last_epoch or improved:
                kwargs = dict(epoch=epoch + 1, optimizer=optimizer, scheduler=scheduler,
                              scaler=scaler, train_config=cfg.to_dict(), history=history, best=best)
                # best.pt first: a crash between the two writes then resumes from the previous
                # last.pt and recomputes (and rewrites) the same best.pt, whereas the other
                # order could leave a last.pt whose `best` record has no best.pt behind it
                if improved:
                    _save(best_path, model, kwargs, saved_epoch, last_path)
                _save(last_path, model, kwargs, saved_epoch, last_path)
                saved_epoch = epoch + 1
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            if writer is not None:
                for k, v in record.items():
                    if k != "epoch" and isinstance(v, (int, float)):
                        writer.add_scalar(k, v, epoch + 1)
            if progress:
                print(_summary(record))
            if callback is not None and callback(record, model):
                stopped = True
        flag = _all_reduce_sum(torch.tensor([float(stopped)], device=device), d)
        if flag.item() > 0:
            stopped = True
            break
    if writer is not None:
        writer.close()
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()
    model.eval()
    return TrainResult(history=history, best=best, out_dir=out_dir, last_path=last_path,
                       best_path=best_path if best_path.is_file() else None, log_path=log_path,
                       model=model, stopped_early=stopped)


def _begin_run(out_dir: Path, cfg: TrainConfig, history: list, start_epoch: int) -> None:
    """Write ``config.yaml`` and ``log.jsonl`` (``history``); a new run (``start_epoch`` 0)
    first removes the checkpoints of the run it replaces."""
    import yaml

    if start_epoch == 0:
        for old in ("last.pt", "best.pt"):
            (out_dir / old).unlink(missing_ok=True)
    ckpt_lib.atomic_write(out_dir / "config.yaml",
                          lambda f: f.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode()))
    _write_log(out_dir / "log.jsonl", history)


def _save(path: Path, model, kwargs: dict, saved_epoch: int, last_path: Path) -> None:
    """Write a checkpoint; a failed write (disk full, folder gone) says what is still intact."""
    try:
        ckpt_lib.save_checkpoint(path, model, **kwargs)
    except OSError as e:
        kept = (f"{last_path} (epoch {saved_epoch}) is intact" if saved_epoch
                else "no checkpoint had been written yet")
        raise OutputDirError(
            f"could not write {path} after epoch {kwargs['epoch']} ({e.strerror or e}); {kept}. "
            f"Free some space (or fix the folder), then continue with resume=True (--resume)"
        ) from None


def _grad_scaler(enabled: bool):
    """A CUDA GradScaler (``torch.amp`` since torch 2.3, ``torch.cuda.amp`` before)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    import contextlib

    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def _check_resumable(state: dict, cfg: TrainConfig, model: nn.Module, path: Path) -> None:
    want = {"arch": cfg.arch, **model.config.to_dict()}
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
                          f"uninterrupted run")


def _summary(r: dict) -> str:
    s = (f"epoch {r['epoch']}: loss {r['loss']:.4f}, lr {r['lr']:.2e}, {r['seconds']:.1f} s, "
         f"{r['samples_per_s']:.1f} samples/s")
    vals = [f"{k[4:]} {v:.4g}" for k, v in r.items() if k.startswith("val_") and k != "val_seconds"
            and isinstance(v, float)]
    return s + (" | val " + ", ".join(vals) if vals else "")


def _tensorboard(out_dir: Path, cfg: TrainConfig):
    if not cfg.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn("tensorboard=True but TensorBoard is not installed (pip install tensorboard); "
                      "logging to log.jsonl only")
        return None
    return SummaryWriter(str(out_dir / "tb"))
