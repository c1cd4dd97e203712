"""What each command of :mod:`inr_lib.cli` does: one function per command (``cmd_<name>``,
its docstring is the command's ``--help``), the pieces they share after them.

Every command takes the parsed options (:func:`inr_lib.cli.build_parser`) and calls the
library; an expected failure is a :class:`CLIError` with a one-line message for the user.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import pretrained
from .data import load_data, scene_rgb
from .data.cave_splits import hold_out
from .data.spec import PARTS, parse_split
from .evaluation import evaluate, reconstruct, write_results
from .files import checkpoints as checkpoint
from .files import images
from .files.outputs import check_outputs, check_run_folder, free_space_problem, same_file
from .model.baselines import build_baseline
from .model.tiling import window_starts
from .runtime import pick_device
from .train import TrainConfig, train
from .train.rundir import blocking_file, claim, record_data

__all__ = ["CLIError", "cmd_train", "cmd_evaluate", "cmd_reconstruct", "cmd_baseline", "cmd_models",
           "TRAINED_BASELINES"]

#: the baselines that `baseline` trains with the training loop (registered architectures)
TRAINED_BASELINES = ("cnn", "mstpp")


class CLIError(Exception):
    """An expected failure with a message for the user (no traceback)."""


# ====================================================================== commands
def cmd_train(args: argparse.Namespace) -> int:
    """Train a model.

    Train INR-HSISR (or the cnn or mstpp baseline) on random crops of the train split,
    validating on full images of the test split (or, with --set val_holdout=N, of N training
    scenes held out, the test split then unused); writes last.pt, best.pt, log.jsonl,
    config.yaml and data.json to --out. Several GPUs: torchrun --nproc_per_node=N -m inr_lib train ...
    (the same options).
    """
    if args.resume and args.overwrite:
        raise CLIError("--resume and --overwrite contradict each other: --resume continues the run "
                       "in --out, --overwrite replaces it; give one of them")
    cfg = _train_config(args, args.config)
    device = _device(args)
    talk = os.environ.get("RANK", "0") == "0"     # under torchrun only rank 0 prints
    # claimed before the data are loaded, so that a wrong --out fails at once; train() finds
    # the folder claimed and does not check it again
    with claim(args.out, args.resume, args.overwrite, main=talk, data=args.data) as out:
        d = _training_data(args, talk)
        # val_holdout: train() validates on training scenes held out, as hold_out chooses them
        fit, val = hold_out(d["train"], cfg.val_holdout, cfg.seed) if cfg.val_holdout else (d["train"], d["test"])
        if talk:
            model = cfg.model_preset if cfg.arch == "inr" else cfg.arch
            held = f" held out of the training scenes ({', '.join(s.name for s in val)})" if cfg.val_holdout else ""
            print(f"training {cfg.name!r} ({cfg.arch}, model {model}{' ' + str(cfg.model) if cfg.model else ''}) "
                  f"for {cfg.epochs} epochs on {len(fit)} scenes, validating on "
                  f"{len(val)}{held}, device {device}, output {out}", file=sys.stderr)
        record = record_data(out, d, args.resume, args.allow_other_data, cfg) if talk else None
        res = train(cfg, d["train"], d["test"], out, resume=args.resume, device=device,
                    progress=not args.no_progress, overwrite=args.overwrite, callback=record)
    if talk:
        print(_done(res))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a checkpoint on full images.

    Reconstruct the full images of a split with a checkpoint and write
    PSNR/SSIM/SAM/RMSE/MRAE per scene, their means, per-band curves and the protocol to a
    JSON file.
    """
    check_outputs({"--json": args.json}, {"--checkpoint": args.checkpoint}, overwrite=args.overwrite,
                  flag="--overwrite", data=args.data, runs={"of --checkpoint": _run_of(args)})
    device = _device(args)
    model = _load_model(args, device)
    _score(args, model, model.checkpoint_info["train_config"], device)
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    """Fit/train and score a baseline.

    Fit ridge or physics (Mallett & Yuksel 2019) on the train split, or train the
    cnn or mstpp (MST++, Cai et al. 2022) baseline with the training loop, then evaluate it on
    the test split with the same protocol as `evaluate`.
    """
    run = _run_out(args) if args.name in TRAINED_BASELINES else None
    # --overwrite replaces the results file and the run; the deprecated --force only the file
    check_outputs({"--json": args.json}, overwrite=args.overwrite or args.force, flag="--overwrite",
                  data=args.data, runs={"--out": run})
    if args.resume and args.overwrite:
        raise CLIError("--resume and --overwrite contradict each other: --resume continues the run "
                       "in --out, --overwrite replaces it; give one of them")
    if run is not None:   # refuse before any work
        check_run_folder(run, args.resume, args.overwrite, data=args.data)
    device = _device(args)
    part = _eval_part(args.split)
    d = load_data(args.data, args.split)
    rgb_source = args.rgb_source or "dataset"
    if args.name in TRAINED_BASELINES:
        model, options, tc = _train_network(args, d, rgb_source, device)
    else:
        options, tc = _baseline_options(args, d, rgb_source), {}
        model = _fit_baseline(args.name, options, d, rgb_source)
    _score(args, model, {"rgb_source": rgb_source, **tc}, device, d, part,
           baseline={"name": args.name, "options": options, "fitted_on": [s.name for s in d["train"]]})
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """Turn an RGB image into a spectral cube.

    Reconstruct a 31-band cube (400..700 nm) from an RGB image (8/16-bit PNG,
    JPEG, BMP, TIFF; alpha is dropped with a note; greyscale needs --gray-ok). Large images
    are processed as tiles. Writes the cube, shape (31, H, W), float32 in [0, 1], as .h5
    (dataset 'hsi'), .npy (with a sidecar CUBE.npy.json: wavelengths, provenance, SHA-256) or
    .tif (one band per page, wavelengths in the metadata), and a preview PNG (input | sRGB
    rendering of the cube), by default CUBE's name with .preview.png. With --pretrained the
    inference is the model card's (mode, window, overlap), so the cube is what its test
    scores were computed from.
    """
    out, preview = _cube_path(args)
    device = _device(args)
    model = _load_model(args, device)
    source = model.checkpoint_info["path"]
    mode = _mode(args)
    tile, overlap = _window(args, model.checkpoint_info["train_config"], mode)
    try:
        rgb, notes = images.read_image(args.rgb, gray_ok=args.gray_ok)
    except images.ImageReadError as e:   # the message names the file; say which option gave it
        raise CLIError(f"--rgb {e}") from None
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    x = _resized(torch.from_numpy(rgb)[None], args.size)
    H, W = x.shape[-2:]
    _check_free_space(out, 31 * H * W * 4 + 6 * H * W + 2**20)
    print(f"reconstructing {args.rgb} ({H}x{W}) with {source}, "
          f"{'tiled ' + str(tile) + ' px' if mode == 'tiled' else 'whole image'}", file=sys.stderr)
    with _progress(model, x, mode, tile, overlap, disable=args.no_progress):
        cube = reconstruct(model, x, mode=mode, tile=tile, overlap=overlap, device=device)[0].numpy()
    if not np.isfinite(cube).all():
        raise CLIError(f"the reconstruction of {args.rgb} with {source} contains NaN/Inf "
                       f"values; nothing was written (try --mode tiled, or another checkpoint)")
    try:
        images.write_cube(out, cube, {"source_image": str(args.rgb), "checkpoint": str(source),
                               "checkpoint_sha256": model.checkpoint_info["sha256"],
                               "inference": f"{mode} tile={tile} overlap={overlap}"})
    except OSError as e:   # disk full, folder removed: one clean line, no HDF5 tracebacks
        raise CLIError(f"--out {out}: could not write the cube ({' '.join(str(e).split())[:200]}); "
                       f"nothing was written. Free some space or choose another output "
                       f"folder") from None
    if preview is not None:
        try:
            images.write_preview(preview, x[0].numpy(), cube)
        except OSError as e:   # a cube without its preview is not what was asked for
            out.unlink(missing_ok=True)      # both were written by this command just now
            if out.suffix.lower() == ".npy":
                images.cube_sidecar(out).unlink(missing_ok=True)
            raise CLIError(f"--preview {preview}: could not write the preview "
                           f"({' '.join(str(e).split())[:200]}); the cube was removed too, so "
                           f"nothing was written. Free some space (or inodes) or choose another "
                           f"output folder") from None
    print(f"wrote {out} (31 x {H} x {W}, float32, 400..700 nm)"
          + (f" and preview {preview}" if preview is not None else ""))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """List the trained models shipped with inr_lib, with their test scores.

    One row per model: parameters, training budget (epochs, optimiser steps, wall time) and the
    dev18 test scores (the 2 held-out CAVE scenes, full images) in its recommended inference mode,
    next to ridge regression on the same scenes. ``--card NAME`` prints one model's provenance:
    what it is, how it was trained (the exact command) and its scores in both inference modes."""
    if args.card:
        return _print_card(args.card)
    rows = pretrained.summary()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'name':<22}{'params':>9}{'epochs':>7}{'steps':>7}{'wall':>8}  {'mode':<6}"
          f"{'PSNR':>7}{'SAM':>7}   description")
    descriptions = pretrained.available()
    for r in rows:
        m = r["mode"]
        budget = ("" if r["epochs"] is None else
                  f"{r['params']:>9,}{r['epochs']:>7}{r['steps']:>7}{r['wall_min']:>7.0f}m")
        print(f"{r['name']:<22}{budget:>32}  {m:<6}{r[f'psnr_{m}']:>7.2f}{r[f'sam_{m}']:>7.2f}   "
              f"{descriptions.get(r['name'], 'baseline, fitted on dev18 train')[:60]}")
    print("scores: dev18 test (2 CAVE scenes, full images; PSNR in dB, SAM in degrees). "
          "One model in full: models --card NAME")
    return 0


# ====================================================================== pieces of commands
def _print_card(name: str) -> int:
    """``models --card NAME``: the label, the retraining command and the scores of a model."""
    c = pretrained.card(name)
    print(pretrained.label(name))
    print(pretrained.data_note(name))
    print(f"retrain (real CAVE in $INR_DATA/cave): {pretrained.runnable_command(c['command'])}")
    print(f"code: commit {c['code_commit'][:12]}; weights: {c['weights']['file']} "
          f"({c['weights']['dtype']}, sha256 {c['weights']['sha256'][:12]}...)")
    row = pretrained.summary([name], baselines=())[0]
    for mode in ("tiled", "whole"):
        if row[f"psnr_{mode}"] is not None:
            print(f"{mode:>6}: " + ", ".join(f"{k.upper()} {row[f'{k}_{mode}']:.4g}"
                                             for k in pretrained.METRICS))
    return 0


def _load_model(args, device):
    """The model of ``--checkpoint`` or ``--pretrained`` (eval mode, on ``device``), with
    ``checkpoint_info`` (path, sha256, train_config) for the protocol."""
    if getattr(args, "pretrained", None) is not None:     # "" too: refused by name

        return pretrained.load(args.pretrained, map_location=device)

    return checkpoint.load_model(args.checkpoint, map_location=device)


def _device(args):
    return pick_device(getattr(args, "device", None), allow_fallback=getattr(args, "allow_cpu_fallback", False))


def _train_config(args, config: str, **changes):
    """The :class:`~inr_lib.train.TrainConfig` of ``--config`` with ``changes``, ``--set``, ``--epochs``."""
    cfg = TrainConfig.load(config)
    if changes:
        cfg = cfg.replace(**changes)
    if args.set:
        cfg = cfg.with_overrides(args.set)
    return cfg.replace(epochs=args.epochs) if args.epochs is not None else cfg


def _done(res) -> str:
    best = res.best or {}
    msg = f"done: {len(res.history)} epochs; last checkpoint {res.last_path}"
    if res.best_path:
        msg += (f"; best {res.best_path} (epoch {best.get('epoch')}, val PSNR "
                f"{best.get('val_psnr', float('nan')):.2f} dB)")
    return msg


def _eval_part(split: str | None) -> str:
    """The part of the split to score: ``test`` unless ``--split`` names another."""
    part = parse_split(split)[1] or "test"
    if part not in PARTS:
        raise CLIError(f"--split part must be train, test or all, got {part!r}")
    return part


def _mode(args) -> str:
    """``--mode``, else the shipped model's recommended mode (``--pretrained``), else tiled."""
    if args.mode:
        return args.mode
    if getattr(args, "pretrained", None) is not None:
        return pretrained.card(args.pretrained)["recommended_mode"]
    return "tiled"


def _window(args: argparse.Namespace, tc: dict | None, mode: str | None = None) -> tuple[int, int]:
    """``(tile, overlap)``: the options, else (``--pretrained``) the card's protocol for
    ``mode`` where it records them, else the training run's crop size and overlap."""
    card: dict = {}
    if getattr(args, "pretrained", None) is not None and mode is not None:
        card = pretrained.inference(args.pretrained, mode)
    where = getattr(args, "checkpoint", None) or "the training config"
    tile = args.tile or card.get("tile") or checkpoint.stored_int(tc, "crop_size", 64, 1, where)
    if args.overlap is not None:
        return tile, args.overlap
    if card.get("overlap") is not None:
        return tile, card["overlap"]
    return tile, checkpoint.stored_int(tc, "val_overlap", 16, 0, where)


def _score(args, model, tc: dict, device, d: dict | None = None, part: str | None = None,
           **extra) -> None:
    """Evaluate ``model`` on ``--data``/``--split`` as the options say; write and print the results."""
    part = part or _eval_part(args.split)
    tile, overlap = _window(args, tc)           # a damaged checkpoint fails before the data load
    rgb_source = args.rgb_source or checkpoint.stored_str(
        tc, "rgb_source", "dataset", getattr(args, "checkpoint", None) or "the training config")
    if d is None:
        d = load_data(args.data, args.split, need=("train", "test") if part == "all" else (part,),
                      allow_empty=True)
    scenes = d["train"] + d["test"] if part == "all" else d[part]
    if not scenes:
        raise CLIError(f"--data {args.data}: no scenes to score in part {part!r} of split "
                       f"{d['split_name']!r}")
    res = evaluate(model, scenes, mode=_mode(args), tile=tile, overlap=overlap, border=args.border,
                   self_ensemble=args.self_ensemble, rgb_source=rgb_source, device=device,
                   progress=not args.no_progress, dataset=f"{d['dataset']} ({d['root']})",
                   split=f"{d['split_name']}:{part}")
    res.update(extra)
    write_results(res, args.json)
    m = res["mean"]
    print(f"{len(res['per_scene'])} scenes: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}, "
          f"SAM {m['sam']:.2f} deg, RMSE {m['rmse']:.4f}, MRAE {m['mrae']:.4f}"
          f"{_coverage(res['per_scene'])} -> {args.json}")


def _coverage(per_scene: list) -> str:
    """``" (SAM, MRAE: mean over 1 of 2 scenes; undefined for the others)"``, or ``""``
    when every mean covers every scene."""
    n = len(per_scene)
    short: dict = {}
    for k in ("psnr", "ssim", "sam", "rmse", "mrae"):
        ok = sum(1 for r in per_scene if isinstance(r.get(k), (int, float)) and math.isfinite(r[k]))
        if ok < n:
            short.setdefault(ok, []).append(k.upper())
    return "".join(f" ({', '.join(ks)}: mean over {ok} of {n} scenes; undefined or infinite for "
                   f"the others, e.g. an all-zero scene)" for ok, ks in short.items())


def _baseline_options(args, d: dict, rgb_source: str) -> dict:
    if args.name == "ridge":
        return {"degree": args.degree}
    enc = args.rgb_encoding
    if enc == "auto":
        enc = "srgb" if d["dataset"] == "cave" and rgb_source == "dataset" else "linear"
    return {"rgb_encoding": enc}


def _fit_baseline(name: str, options: dict, d: dict, rgb_source: str):
    """Fit ridge or physics on the train part."""
    model: Any = build_baseline(name, **options)     # ridge/physics: fit() is theirs
    print(f"fitting {name} {options} on {len(d['train'])} training scenes", file=sys.stderr)
    model.fit([scene_rgb(s, rgb_source) for s in d["train"]], [s.hsi for s in d["train"]])
    return model


def _train_network(args, d: dict, rgb_source: str, device):
    """Train the cnn or mstpp baseline with the training loop: ``(model, options, train config)``."""
    cfg = _train_config(args, args.config, arch=args.name, model={}, rgb_source=rgb_source)
    out = _run_out(args)
    print(f"training the {args.name} baseline ({cfg.name} schedule, {cfg.epochs} epochs) in {out}",
          file=sys.stderr)
    res = train(cfg, d["train"], d["test"], out, resume=args.resume, device=device,
                progress=not args.no_progress, overwrite=args.overwrite)
    return res.model, {"config": cfg.to_dict(), "run": str(out)}, cfg.to_dict()


def _run_out(args) -> Path:
    """A trained baseline's run folder: ``--out``, else next to ``--json`` (``X.json`` ->
    ``X_cnn_run``, ``X_mstpp_run``)."""
    if args.out:
        return Path(args.out)
    return Path(args.json).with_name(f"{Path(args.json).stem}_{args.name}_run")


def _run_of(args: argparse.Namespace) -> Path | None:
    """The run folder of ``--checkpoint`` (its files are inputs), or None."""
    ckpt = getattr(args, "checkpoint", None)
    return Path(ckpt).expanduser().parent if ckpt else None


def _cube_path(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """``(cube, preview or None)``: check ``--out`` names a cube file that (with its preview
    and, for .npy, its sidecar) may be written, in a writable folder (created if needed).

    The default preview, ``--out``'s name with ``.preview.png``, is skipped with a note when
    it would be the input image itself (an image named like that); ``--preview`` naming the
    input is an error, as is any output naming an input."""
    out = Path(args.out)
    kinds = ", ".join(images.CUBE_SUFFIXES)
    if out.suffix.lower() not in images.CUBE_SUFFIXES:
        raise CLIError(f"--out {out}: expected a cube file name ending in {kinds}")
    if out.is_dir():
        raise CLIError(f"--out {out} is a folder; expected a file name ending in {kinds}")
    preview = None if args.no_preview else Path(args.preview or out.with_name(out.stem + ".preview.png"))
    if preview is not None and not args.preview and same_file(preview, args.rgb):
        print(f"note: no preview written: its default name {preview} is the input image; "
              f"name one with --preview PATH", file=sys.stderr)
        preview = None
    outputs = {"--out": out, "--preview": preview,
               "sidecar": images.cube_sidecar(out) if out.suffix.lower() == ".npy" else None}
    check_outputs({k: v for k, v in outputs.items() if v is not None},
                  {"--rgb": args.rgb, "--checkpoint": args.checkpoint}, overwrite=args.overwrite,
                  flag="--overwrite", runs={"of --checkpoint": _run_of(args)})
    for label, path in (("--out", out), ("--preview", preview)):
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            why = blocking_file(path.parent) or e.strerror or e
            raise CLIError(f"{label} {path}: cannot create its folder {path.parent} ({why}); "
                           f"choose another output path") from None
        if not os.access(path.parent, os.W_OK):
            raise CLIError(f"{label} {path}: the folder {path.parent} is not writable; choose "
                           f"another output path")
    return out, preview


def _progress(model: Any, x: Any, mode: str, tile: int, overlap: int, disable: bool,
              batch_size: int = 16) -> contextlib.AbstractContextManager[Any]:
    """A tqdm bar on stderr over the forward passes of a reconstruction (one per batch of
    windows; a forward hook counts them), or nothing when ``disable``."""
    if disable or not isinstance(model, torch.nn.Module):
        return contextlib.nullcontext()
    B, _, H, W = x.shape
    total: int | None = B
    if not 0 <= overlap < tile:
        total = None          # predict_image refuses it with its own message
    elif not (mode == "whole" or (tile >= H and tile >= W)):
        windows = len(window_starts(H, tile, overlap)) * len(window_starts(W, tile, overlap))
        total = B * -(-windows // batch_size)
    return _Counting(model, tqdm(total=total, unit="pass", desc="reconstruct", file=sys.stderr))


class _Counting(contextlib.AbstractContextManager):
    """Advance ``bar`` on every forward pass of ``model`` while in the ``with`` block."""

    def __init__(self, model: Any, bar: Any):
        self.model, self.bar = model, bar

    def __enter__(self) -> _Counting:
        self.handle = self.model.register_forward_hook(lambda *_: self.bar.update(1))
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()
        self.bar.close()


def _check_free_space(out: Path, need: int) -> None:
    """Refuse before reconstructing when the folder of ``out`` has less than ``need`` bytes
    free (the uncompressed cube and its preview: an upper bound)."""
    problem = free_space_problem(out.parent, need, "the cube and its preview")
    if problem:
        raise CLIError(f"--out {out}: {problem}")


def _training_data(args, talk: bool) -> dict:
    """The scenes ``train`` uses: the split's parts, or (``--split all``) every scene for
    training and none held out."""
    every = parse_split(args.split)[1] == "all"
    d = load_data(args.data, args.split, verbose=talk, allow_empty=every)
    return {**d, "train": d["train"] + d["test"], "test": []} if every else d


def _resized(x, size):
    """``x`` ``(1, 3, H, W)`` resized (antialiased) to ``size`` = (H, W), or as it is."""
    if not size:
        return x
    h, w = size
    if h < 1 or w < 1:
        raise CLIError(f"--size expects two positive integers H W, got {h} {w}")
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", antialias=True,
                                           align_corners=False).clamp(0, 1)


