"""The training loop: :func:`train` and its optimiser step :func:`train_step`.

The loop implements the paper's recipe (preset ``"paper"``): Adam (lr 1e-4), L1 loss on
[-1, 1]-scaled prediction and target (``|(2 p - 1) - (2 t - 1)|``), MultiStepLR halving the
rate at epochs 200/400/600/800 of 1000, batches of 56 random 64x64 crops with flips and
transposes, 56 crops per training scene per epoch. :func:`train` reads top-down: the run
folder claimed, the run started (or resumed exactly), then per epoch the steps, the loss
over all processes, validation, checkpoints and the log line; the helpers follow it in the
order it calls them.

A hard kill at any moment (even inside a checkpoint write) loses at most the epoch in
progress: ``resume=True`` then gives the same final weights as an uninterrupted run
(``tests/test_kill_resume.py``). On CUDA it uses mixed precision chosen by the GPU (bf16 on
Ampere and newer, fp16 with a gradient scaler otherwise, e.g. the Colab T4), pinned memory
and DataLoader workers.

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
import json
import math
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from ..data.cave_splits import hold_out
from ..data.patches import PatchDataset
from ..evaluation import evaluate, metrics
from ..files import checkpoints as ckpt_lib
from ..files.atomic import atomic_write
from ..files.outputs import RUN_CONFIG_MARKER, free_space_problem
from ..model import registry as archs
from ..model.basis import target_bands
from ..runtime import amp_dtype_for, grad_scaler, pick_device
from . import rundir
from .config import TrainConfig
from .rundir import OutputDirError

__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "OutputDirError", "train",
           "train_step", "build_for_config", "amp_dtype_for", "grad_scaler"]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint was kept."""

    def __init__(self, loss: float, epoch: int, kept: str):
        super().__init__(f"training loss became {loss} in epoch {epoch}; stopping ({kept}). "
                         f"Try a lower learning rate (lr) or amp: off")


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


def train(cfg: TrainConfig, train_scenes: Sequence, val_scenes: Sequence, out_dir: str | os.PathLike,
          resume: bool = False, device: str | torch.device | None = None, progress: bool = True,
          callback: Callable[[dict, nn.Module], bool | None] | None = None, *,
          overwrite: bool = False) -> TrainResult:
    """Train a model on crops of ``train_scenes``, validating on ``val_scenes``.

    Args:
        cfg: the :class:`TrainConfig`.
        train_scenes: :class:`~inr_lib.data.Scene` objects (``hsi`` (31, H, W) in [0, 1]).
        val_scenes: held-out scenes, unused with ``cfg.val_holdout`` > 0 (may be empty: then
            there is no validation and no ``best.pt``).
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
    with _processes(pick_device(None if device is None else str(device))) as (d, dev), \
            rundir.claim(out_dir, resume, overwrite, main=d.main) as out:
        run = _start(cfg, out, dev, d, resume, list(train_scenes), list(val_scenes))
        for epoch in range(run.start_epoch, cfg.epochs):
            t0, lr = time.perf_counter(), run.optimizer.param_groups[0]["lr"]
            # crops and order follow from (seed, epoch) alone on every rank (the sampler reshuffles
            # with seed + epoch once told the epoch): a resumed run sees the same batches
            run.loader.sampler.set_epoch(epoch)
            run.loader.dataset.set_epoch(epoch)
            run.loader.generator.manual_seed(cfg.seed * 100003 + epoch)   # worker seeds (unused)
            run.net.train()
            sums = torch.zeros(2, dtype=torch.float64, device=dev)   # loss x crops, crops
            bar = tqdm(run.loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                       disable=not (progress and d.main), unit="batch")
            for step, (rgb, hsi) in enumerate(bar):
                batch = (rgb.to(dev, non_blocking=True), hsi.to(dev, non_blocking=True))
                loss = train_step(run.net, batch, run.optimizer, run.scaler, run.amp_dtype,
                                  cfg.wavelengths)
                sums[0] += loss.double() * len(rgb)
                sums[1] += len(rgb)
                if step % 10 == 0 and not bar.disable:
                    rate = sums[1].item() * d.world / (time.perf_counter() - t0)
                    bar.set_postfix(loss=f"{loss.item():.4f}", samples_s=f"{rate:.1f}")
            bar.close()
            if d.world > 1:   # the loss of the epoch is the mean over all ranks' crops
                torch.distributed.all_reduce(sums)
            loss_sum, seen = sums.tolist()
            if not math.isfinite(loss_sum / seen):
                raise NonFiniteLossError(loss_sum / seen, epoch + 1, run.kept("is kept"))
            run.scheduler.step()
            seconds = time.perf_counter() - t0
            record = {"epoch": epoch + 1, "loss": loss_sum / seen, "lr": lr,
                      "seconds": round(seconds, 3), "samples_per_s": round(seen / seconds, 2)}
            stop = False
            if d.main:   # rank 0 validates and writes; the others wait at the all-reduce below
                last = epoch + 1 == cfg.epochs
                due = run.val_scenes and cfg.val_every > 0 and ((epoch + 1) % cfg.val_every == 0 or last)
                improved = bool(due) and _validate(run, record)
                if not run.begun:   # a new run replaces the folder's old run only now
                    _begin_run(run)
                run.history.append(record)
                if (epoch + 1) % cfg.checkpoint_every == 0 or last or improved:
                    _save_checkpoints(run, epoch + 1, improved)
                _log(run, record, progress)
                stop = bool(callback is not None and callback(record, run.model))
            # a stop on rank 0 stops every rank (each step's gradient all-reduce needs them all)
            stops = torch.tensor([float(stop)], device=dev)
            if d.world > 1:
                torch.distributed.all_reduce(stops)
            if stops.item() > 0:
                run.stopped = True
                break
    run.model.eval()
    return TrainResult(run.history, run.best, run.out_dir, run.last_path,
                       run.best_path if run.best_path.is_file() else None, run.log_path, run.model,
                       stopped_early=run.stopped)


# ====================================================================== helpers, in call order
@dataclass
class _Dist:
    """This process among the ``torchrun`` processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    main: bool = True      # rank 0: the process that validates and writes


@contextlib.contextmanager
def _processes(device: torch.device):
    """``(_Dist, device)`` from RANK / WORLD_SIZE / LOCAL_RANK (as set by torchrun), inside
    the process group (joined here, and left at the end, unless the caller had joined it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield _Dist(), device
        return
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owns = not torch.distributed.is_initialized()
    if owns:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield _Dist(rank, world, rank == 0), device
        torch.distributed.barrier()   # no rank returns before rank 0 has written the last epoch
    finally:
        if owns:
            torch.distributed.destroy_process_group()


@dataclass
class _Run:
    """What one call of :func:`train` holds from epoch to epoch."""

    cfg: TrainConfig
    out_dir: Path
    device: torch.device
    dist: _Dist
    model: Any                 # the network (nn.Module with a .config)
    optimizer: Any
    scheduler: Any
    scaler: Any
    amp_dtype: torch.dtype | None
    last_path: Path
    best_path: Path
    log_path: Path
    net: Any = None            # the model, wrapped in DDP when there are several processes
    loader: Any = None         # this process's DataLoader of training crops
    val_scenes: list = field(default_factory=list)
    val_crops: Any = None      # (rgb, hsi) of the fixed validation crops, or None
    start_epoch: int = 0
    saved_epoch: int = 0
    history: list = field(default_factory=list)
    best: dict | None = None
    begun: bool = True         # False: a new run over an old one that has not replaced it yet
    stopped: bool = False

    def kept(self, state: str) -> str:
        """What a failure leaves: ``"the last good checkpoint .../last.pt (epoch 3) is kept"``."""
        if not self.saved_epoch:
            return "no checkpoint had been written yet"
        return f"the last good checkpoint {self.last_path} (epoch {self.saved_epoch}) {state}"


def _start(cfg: TrainConfig, out_dir: Path, device: torch.device, d: _Dist, resume: bool,
           train_scenes: list, val_scenes: list) -> _Run:
    """The run ready for its first epoch: everything seeded; the model (``run.net``: wrapped in
    DDP on several processes), its Adam optimiser, MultiStepLR schedule and mixed precision;
    the folder's room checked; restored from ``last.pt`` (``resume``); this process's loader
    of training crops (``val_holdout``: less the scenes held out for validation) and the fixed
    validation crops (``val_mode`` crops or both)."""
    if cfg.batch_size % d.world:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the number of "
                         f"processes ({d.world})")
    if cfg.val_holdout:   # validation on training scenes held out, the test scenes unseen
        train_scenes, val_scenes = hold_out(train_scenes, cfg.val_holdout, cfg.seed)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    model = build_for_config(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                 weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones),
                                                     gamma=cfg.gamma)
    amp_dtype = amp_dtype_for(device, cfg.amp)
    # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none
    scaler = grad_scaler(enabled=amp_dtype == torch.float16)
    run = _Run(cfg, out_dir, device, d, model, optimizer, scheduler, scaler, amp_dtype,
               last_path=out_dir / "last.pt", best_path=out_dir / "best.pt",
               log_path=out_dir / "log.jsonl")
    if d.main:
        # weights + 2 Adam moments, for last.pt, best.pt and one temporary copy, plus margin
        need = 3 * sum(p.numel() for p in model.parameters()) * 4 * 3 + 32 * 2**20
        problem = free_space_problem(out_dir, need, "the checkpoints")
        if problem:
            raise OutputDirError(f"output folder {problem} (--out)")
    _restore(run, resume)
    if run.begun:
        _begin_run(run)
    # DDP broadcasts rank 0's (restored) weights here and averages the gradients in backward()
    run.net = model if d.world == 1 else nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    run.loader = _make_loader(cfg, train_scenes, device, d)
    run.val_scenes = val_scenes
    run.val_crops = _val_crops(cfg, val_scenes) if cfg.val_mode != "full" else None
    return run


def build_for_config(cfg: TrainConfig) -> nn.Module:
    """The untrained model a config describes (seeded with ``cfg.seed``), via :mod:`inr_lib.model.registry`."""
    preset = cfg.model_preset if cfg.arch == "inr" else None
    return archs.build(cfg.arch, preset, seed=cfg.seed, **cfg.model)


def _restore(run: _Run, resume: bool) -> None:
    """Continue from ``last.pt`` (``resume``): weights, optimiser, schedule, scaler, RNG states
    and log; note whether an older run in the folder is still to be replaced."""
    if resume and run.last_path.is_file():
        try:
            state = ckpt_lib.load_checkpoint(run.last_path, map_location="cpu")
        except ckpt_lib.CheckpointError as e:
            raise ckpt_lib.CheckpointError(
                f"cannot resume: {e} To resume from the run's best.pt instead, copy it over "
                f"last.pt; or start afresh with overwrite=True (--overwrite)") from None
        want = {"arch": run.cfg.arch, **run.model.config.to_dict()}
        have = {"arch": state["arch"], **state["model_config"]}
        diff = ", ".join(f"{k}: {have.get(k)!r} there, {want.get(k)!r} asked"
                         for k in sorted(set(want) | set(have)) if have.get(k) != want.get(k))
        if diff:
            raise ValueError(f"cannot resume from {run.last_path}: it holds a different model "
                             f"({diff}); use the run's own config ({run.out_dir / 'config.yaml'}) "
                             f"or a new output folder")
        if state.get("optimizer") is None or state.get("scheduler") is None:
            raise ValueError(f"cannot resume from {run.last_path}: it has no optimiser/scheduler state")
        old, new = state.get("train_config") or {}, run.cfg.to_dict()
        # a run from before val_holdout existed has no key: it validated on the test scenes (0)
        held = [(c.get("val_holdout") or 0, c.get("seed") if c.get("val_holdout") else None) for c in (old, new)]
        if old and held[0] != held[1]:   # (count, seed) choose the validation scenes
            raise ValueError(f"cannot resume from {run.last_path}: its validation scenes were chosen "
                             f"by (val_holdout, seed) {held[0]}, now {held[1]} (val_holdout 0: the "
                             f"test scenes); use the run's own config ({run.out_dir / 'config.yaml'})")
        for key in ("batch_size", "crop_size", "crops_per_scene", "seed", "lr", "milestones"):
            if key in old and old[key] != new[key]:
                warnings.warn(f"resuming {run.last_path} with {key}={new[key]!r}, but the run "
                              f"started with {old[key]!r}; the result will differ from an "
                              f"uninterrupted run", stacklevel=2)
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") and run.scaler.is_enabled():
            run.scaler.load_state_dict(state["scaler"])
        if state.get("rng"):   # the RNGs as the checkpoint left them: exact resume
            ckpt_lib.set_rng_state(state["rng"])
        run.start_epoch = run.saved_epoch = int(state["epoch"])
        run.history, run.best = list(state["history"]), state["best"]
        if run.dist.main:
            print(f"resuming {run.out_dir} after epoch {run.start_epoch} of {run.cfg.epochs}")
    elif resume and run.dist.main:
        print(f"--resume: no {run.last_path} yet, starting a new run")
    # a new run over an old one (overwrite=True) replaces it only once its first epoch is
    # done: settings that fail (crop too large, lr that diverges, ...) leave the old run intact
    run.begun = not (run.start_epoch == 0 and any(
        p.exists() for p in (run.last_path, run.best_path, run.log_path)))


def _begin_run(run: _Run) -> None:
    """Rank 0: ``config.yaml`` and ``log.jsonl`` (the history so far), both atomically; a new
    run (``start_epoch`` 0) first removes the checkpoints of the run it replaces."""
    if not run.dist.main:
        return
    if run.start_epoch == 0:
        for old in (run.last_path, run.best_path):
            old.unlink(missing_ok=True)
    text = RUN_CONFIG_MARKER + yaml.safe_dump(run.cfg.to_dict(), sort_keys=False)
    atomic_write(run.out_dir / "config.yaml", lambda f: f.write(text.encode()))
    log = "".join(json.dumps(r) + "\n" for r in run.history)
    atomic_write(run.log_path, lambda f: f.write(log.encode()))
    run.begun = True


def _make_loader(cfg: TrainConfig, train_scenes: list, device: torch.device, d: _Dist) -> DataLoader:
    """This process's share of the seeded training crops (``batch_size / world`` a step)."""
    data = PatchDataset(train_scenes, size=cfg.crop_size, crops_per_scene=cfg.crops_per_scene,
                        seed=cfg.seed, augment=cfg.augment, rgb_source=cfg.rgb_source)
    sampler: Any = DistributedSampler(data, num_replicas=d.world, rank=d.rank, shuffle=True,
                                 seed=cfg.seed, drop_last=False)
    workers = cfg.num_workers
    if workers is None:
        workers = min(4, max(1, (os.cpu_count() or 1) // d.world)) if device.type == "cuda" else 0
    return DataLoader(data, batch_size=cfg.batch_size // d.world, sampler=sampler,
                      num_workers=workers, pin_memory=device.type == "cuda", drop_last=False,
                      generator=torch.Generator())


def _val_crops(cfg: TrainConfig, val_scenes: list):
    """``(rgb, hsi)`` stacks of the fixed validation crops (``val_mode`` crops or both)."""
    if not val_scenes:
        return None
    vd = PatchDataset(val_scenes, size=cfg.crop_size, crops_per_scene=cfg.val_crops,
                      seed=cfg.seed + 1, augment=False, rgb_source=cfg.rgb_source)
    items = [vd[i] for i in range(len(vd))]
    return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])


def train_step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor],
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, amp_dtype: torch.dtype | None,
               wavelengths: Sequence[float] | None = None) -> torch.Tensor:
    """One optimiser step of the paper's recipe; returns the batch's loss (detached, 0-dim).

    The loss is L1 on [-1, 1]-scaled data, ``mean |(2 p - 1) - (2 t - 1)|``, computed in the
    target's precision (fp32) even when the forward pass runs under autocast.

    Args:
        model: maps ``(B, 3, h, w)`` in [0, 1] to ``(B, 31, h, w)`` (may be a DDP wrapper);
            a coordinate model (``spectral="coordinate"``) is called ``model(rgb, wavelengths=...)``.
        batch: ``(rgb (B, 3, h, w), hsi (B, 31, h, w))`` on the model's device, in [0, 1].
        optimizer: e.g. ``torch.optim.Adam``.
        scaler: a :func:`grad_scaler` (enabled only for fp16).
        amp_dtype: autocast dtype (:func:`amp_dtype_for`) or None for full precision.
        wavelengths: the bands (nm) that enter the loss (:attr:`TrainConfig.wavelengths`);
            None: all 31.
    """
    rgb, hsi = batch
    autocast = contextlib.nullcontext() if amp_dtype is None else torch.autocast(rgb.device.type, dtype=amp_dtype)
    net = getattr(model, "module", model)                     # the network inside a DDP wrapper
    per_wavelength = getattr(getattr(net, "config", None), "spectral", None) == "coordinate"
    with autocast:
        # a coordinate model runs its MLP once per wavelength: there, only at the target bands
        # (the others compute all 31 bands in one pass; target_bands keeps the targets)
        pred = model(rgb, wavelengths=np.asarray(wavelengths)) if per_wavelength and wavelengths else model(rgb)
    loss = F.l1_loss(*target_bands(pred.to(hsi.dtype) * 2 - 1, hsi * 2 - 1, wavelengths))
    optimizer.zero_grad(set_to_none=True)
    # fp16: scale the loss so small gradients survive, unscale before the step, skip steps
    # with inf/nan gradients and adapt the scale; disabled (fp32, bf16) all three pass through
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def _validate(run: _Run, record: dict) -> bool:
    """Add the validation metrics (means over scenes / crops) and their time to ``record``;
    returns whether its PSNR is finite and the best so far (then it becomes ``run.best``)."""
    cfg, model, t0 = run.cfg, run.model, time.perf_counter()
    if cfg.val_mode in ("full", "both"):
        res = evaluate(model, run.val_scenes, mode="tiled", tile=cfg.crop_size,
                       overlap=cfg.val_overlap, rgb_source=cfg.rgb_source, device=run.device,
                       progress=False)
        record.update({f"val_{k}": v for k, v in res["mean"].items()})
    if cfg.val_mode in ("crops", "both"):
        rgb, hsi = run.val_crops
        was = model.training
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(rgb[i:i + 64].to(run.device)).float().cpu()
                              for i in range(0, len(rgb), 64)])
            scores = metrics.compute_all(pred.clamp(0, 1), hsi)
        model.train(was)
        key = "val_crops_" if cfg.val_mode == "both" else "val_"
        record.update({f"{key}{k}": float(torch.nanmean(v)) for k, v in scores.items()})
    record["val_seconds"] = round(time.perf_counter() - t0, 3)
    psnr, best = record.get("val_psnr"), (run.best or {}).get("val_psnr")
    improved = psnr is not None and math.isfinite(psnr) and (best is None or psnr > best)
    if improved:
        run.best = dict(record)
    return improved


def _save_checkpoints(run: _Run, epoch: int, improved: bool) -> None:
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
            raise OutputDirError(
                f"could not write {path} after epoch {epoch} ({e.strerror or e}); "
                f"{run.kept('is intact')}. Free some space (or fix the folder), then continue "
                f"with resume=True (--resume)") from None
    run.saved_epoch = epoch


def _log(run: _Run, r: dict, progress: bool) -> None:
    """Append the epoch's record to ``log.jsonl``; with ``progress``, print it in one line."""
    with open(run.log_path, "a") as f:
        f.write(json.dumps(r) + "\n")
    if progress:
        vals = [f"{k[4:]} {v:.4g}" for k, v in r.items()
                if k.startswith("val_") and k != "val_seconds" and isinstance(v, float)]
        print(f"epoch {r['epoch']}: loss {r['loss']:.4f}, lr {r['lr']:.2e}, {r['seconds']:.1f} s, "
              f"{r['samples_per_s']:.1f} samples/s" + (" | val " + ", ".join(vals) if vals else ""))
