"""Command line: ``python -m inr_lib train | evaluate | reconstruct | baseline | models``
(or ``inr-hsisr``).

Argument parsing plus one short function per command that calls the library. Every command
prints a one-line ``error: ...`` and exits with status 1 on bad input or a failed run (status
2 for malformed arguments, 130 when interrupted); ``--debug`` shows the traceback instead.
``python -m inr_lib COMMAND --help`` shows the options and an example. How ``--data`` and
``--split`` are read is :data:`inr_lib.data.spec.DATA_HELP` (also shown by ``--help``).
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path
from typing import Sequence

from .data.spec import DATA_HELP, PARTS, parse_split
from .files import checkpoints as checkpoint
from .files.outputs import check_outputs, check_run_folder, free_space_problem

__all__ = ["main", "build_parser", "CLIError"]


class CLIError(Exception):
    """An expected failure with a message for the user (no traceback)."""


# ====================================================================== commands
def cmd_train(args: argparse.Namespace) -> int:
    """Train a model.

    Train INR-HSISR (or the cnn baseline) on random crops of the train split,
    validating on full images of the test split; writes last.pt, best.pt, log.jsonl and
    config.yaml to --out. Several GPUs: torchrun --nproc_per_node=N -m inr_lib train ...
    (the same options).
    """
    from .train.loop import (
        check_output_dir,
        check_same_data,
        data_identity,
        record_data,
        train,
    )

    if args.resume and args.overwrite:
        raise CLIError("--resume and --overwrite contradict each other: --resume continues the run "
                       "in --out, --overwrite replaces it; give one of them")
    cfg = _train_config(args, args.config)
    device = _device(args)
    talk = os.environ.get("RANK", "0") == "0"     # under torchrun only rank 0 prints
    if talk:   # fail before loading data, not after (train() checks the free space again)
        check_run_folder(args.out, args.resume, args.overwrite, data=args.data)
        check_output_dir(Path(args.out), need_bytes=0)
    d = _training_data(args, talk)
    identity = data_identity(d)
    if talk:
        model = cfg.model_preset if cfg.arch == "inr" else cfg.arch
        print(f"training {cfg.name!r} ({cfg.arch}, model {model}{' ' + str(cfg.model) if cfg.model else ''}) "
              f"for {cfg.epochs} epochs on {len(d['train'])} scenes, validating on "
              f"{len(d['test'])}, device {device}, output {args.out}", file=sys.stderr)
        if args.resume:
            check_same_data(Path(args.out), identity, args.allow_other_data)
    res = train(cfg, d["train"], d["test"], args.out, resume=args.resume, device=device,
                progress=not args.no_progress, overwrite=args.overwrite,
                callback=record_data(Path(args.out), identity) if talk else None)
    if talk:
        print(_done(res))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a checkpoint on full images.

    Reconstruct the full images of a split with a checkpoint and write
    PSNR/SSIM/SAM/RMSE/MRAE per scene, their means, per-band curves and the protocol to a
    JSON file.
    """
    check_outputs({"--json": args.json}, {"--checkpoint": args.checkpoint}, overwrite=args.force,
                  data=args.data, runs={"of --checkpoint": _run_of(args)})
    device = _device(args)
    model = _load_model(args, device)
    _score(args, model, model.checkpoint_info["train_config"], device)
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    """Fit/train and score a baseline.

    Fit ridge or physics (Mallett & Yuksel 2019) on the train split, or train the
    cnn baseline with the training loop, then evaluate it on the test split with the same
    protocol as `evaluate`.
    """
    from .data import load_data

    cnn = _cnn_out(args) if args.name == "cnn" else None
    check_outputs({"--json": args.json}, overwrite=args.force, data=args.data, runs={"--out": cnn})
    if args.resume and args.overwrite:
        raise CLIError("--resume and --overwrite contradict each other: --resume continues the run "
                       "in --out, --overwrite replaces it; give one of them")
    if cnn is not None:   # refuse before any work
        check_run_folder(cnn, args.resume, args.overwrite, data=args.data)
    device = _device(args)
    part = _eval_part(args.split)
    d = load_data(args.data, args.split)
    rgb_source = args.rgb_source or "dataset"
    if args.name == "cnn":
        model, options, tc = _train_cnn(args, d, rgb_source, device)
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
    are processed as tiles. Writes the cube (.h5 dataset 'hsi' or .npy, shape (31, H, W),
    float32 in [0, 1]) and a preview PNG next to it (input | sRGB rendering of the cube).
    """
    import numpy as np
    import torch

    from .evaluation import reconstruct
    from .files.images import ImageReadError, read_image, write_cube, write_preview

    out = _cube_path(args)
    device = _device(args)
    model = _load_model(args, device)
    source = model.checkpoint_info["path"]
    tile, overlap = _window(args, model.checkpoint_info["train_config"])
    mode = _mode(args)
    try:
        rgb, notes = read_image(args.rgb, gray_ok=args.gray_ok)
    except ImageReadError as e:   # the message names the file; say which option gave it
        raise CLIError(f"--rgb {e}") from None
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    x = _resized(torch.from_numpy(rgb)[None], args.size)
    H, W = x.shape[-2:]
    _check_free_space(out, 31 * H * W * 4 + 6 * H * W + 2**20)
    print(f"reconstructing {args.rgb} ({H}x{W}) with {source}, "
          f"{'tiled ' + str(tile) + ' px' if mode == 'tiled' else 'whole image'}", file=sys.stderr)
    cube = reconstruct(model, x, mode=mode, tile=tile, overlap=overlap, device=device)[0].numpy()
    if not np.isfinite(cube).all():
        raise CLIError(f"the reconstruction of {args.rgb} with {source} contains NaN/Inf "
                       f"values; nothing was written (try --mode tiled, or another checkpoint)")
    try:
        write_cube(out, cube, {"source_image": str(args.rgb), "checkpoint": str(source),
                               "checkpoint_sha256": model.checkpoint_info["sha256"]})
    except OSError as e:   # disk full, folder removed: one clean line, no HDF5 tracebacks
        raise CLIError(f"--out {out}: could not write the cube ({' '.join(str(e).split())[:200]}); "
                       f"nothing was written. Free some space or choose another output "
                       f"folder") from None
    try:
        preview = write_preview(out.with_suffix(".png"), x[0].numpy(), cube, cube_file=out)
    except OSError as e:   # a cube without its preview is not what was asked for
        out.unlink(missing_ok=True)
        raise CLIError(f"--out {out}: could not write the preview {out.with_suffix('.png')} "
                       f"({' '.join(str(e).split())[:200]}); the cube was removed too, so nothing "
                       f"was written. Free some space (or inodes) or choose another output "
                       f"folder") from None
    print(f"wrote {out} (31 x {H} x {W}, float32, 400..700 nm) and preview {preview}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """List the trained models shipped with inr_lib, with their test scores.

    One row per model: parameters, training budget (epochs, optimiser steps, wall time) and the
    dev18 test scores (the 2 held-out CAVE scenes, full images) in its recommended inference mode,
    next to ridge regression on the same scenes. ``--card NAME`` prints one model's provenance:
    what it is, how it was trained (the exact command) and its scores in both inference modes."""
    from . import pretrained

    if args.card:
        return _print_card(args.card)
    rows = pretrained.summary()
    if args.json:
        import json
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
    from . import pretrained

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
        from .pretrained import load

        return load(args.pretrained, map_location=device)
    from .files.checkpoints import load_model

    return load_model(args.checkpoint, map_location=device)


def _device(args):
    from .runtime import pick_device

    return pick_device(getattr(args, "device", None), allow_fallback=getattr(args, "allow_cpu_fallback", False))


def _train_config(args, config: str, **changes):
    """The :class:`~inr_lib.train.TrainConfig` of ``--config`` with ``changes``, ``--set``, ``--epochs``."""
    from .train import TrainConfig

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
        from . import pretrained
        return pretrained.card(args.pretrained)["recommended_mode"]
    return "tiled"


def _window(args, tc) -> tuple[int, int]:
    """``(tile, overlap)``: the options, else the training run's crop size and overlap."""
    where = getattr(args, "checkpoint", None) or "the training config"
    tile = args.tile or checkpoint.stored_int(tc, "crop_size", 64, 1, where)
    if args.overlap is not None:
        return tile, args.overlap
    return tile, checkpoint.stored_int(tc, "val_overlap", 16, 0, where)


def _score(args, model, tc: dict, device, d: dict | None = None, part: str | None = None,
           **extra) -> None:
    """Evaluate ``model`` on ``--data``/``--split`` as the options say; write and print the results."""
    from .data import load_data
    from .evaluation import evaluate, write_results

    part = part or _eval_part(args.split)
    tile, overlap = _window(args, tc)           # a damaged checkpoint fails before the data load
    rgb_source = args.rgb_source or checkpoint.stored_str(tc, "rgb_source", "dataset",
                                              getattr(args, "checkpoint", None))
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
    import math

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
    from .data import scene_rgb
    from .model.baselines import build_baseline

    model = build_baseline(name, **options)
    print(f"fitting {name} {options} on {len(d['train'])} training scenes", file=sys.stderr)
    model.fit([scene_rgb(s, rgb_source) for s in d["train"]], [s.hsi for s in d["train"]])
    return model


def _train_cnn(args, d: dict, rgb_source: str, device):
    """Train the cnn baseline with the training loop: ``(model, options, train config)``."""
    from .train import train

    cfg = _train_config(args, args.config, arch="cnn", model={}, rgb_source=rgb_source)
    out = _cnn_out(args)
    print(f"training the cnn baseline ({cfg.name} schedule, {cfg.epochs} epochs) in {out}",
          file=sys.stderr)
    res = train(cfg, d["train"], d["test"], out, resume=args.resume, device=device,
                progress=not args.no_progress, overwrite=args.overwrite)
    return res.model, {"config": cfg.to_dict(), "run": str(out)}, cfg.to_dict()


def _cnn_out(args) -> Path:
    """The cnn baseline's run folder: ``--out``, else next to ``--json``."""
    return Path(args.out) if args.out else Path(args.json).with_name(Path(args.json).stem + "_cnn_run")


def _run_of(args) -> Path | None:
    """The run folder of ``--checkpoint`` (its files are inputs), or None."""
    ckpt = getattr(args, "checkpoint", None)
    return Path(ckpt).expanduser().parent if ckpt else None


def _cube_path(args) -> Path:
    """Check ``--out`` names a .h5/.npy file that (with its preview) may be written, in a
    writable folder (created if needed)."""
    from .files.images import CUBE_SUFFIXES
    from .train.loop import blocking_file

    out = Path(args.out)
    if out.suffix.lower() not in CUBE_SUFFIXES:
        raise CLIError(f"--out {out}: expected a .h5 or .npy file name")
    if out.is_dir():
        raise CLIError(f"--out {out} is a folder; expected a file name ending in .h5 or .npy")
    check_outputs({"--out": out, "preview": out.with_suffix(".png")},
                  {"--rgb": args.rgb, "--checkpoint": args.checkpoint}, overwrite=args.force,
                  runs={"of --checkpoint": _run_of(args)})
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = blocking_file(out.parent) or e.strerror or e
        raise CLIError(f"--out {out}: cannot create its folder {out.parent} ({why}); "
                       f"choose another output path") from None
    if not os.access(out.parent, os.W_OK):
        raise CLIError(f"--out {out}: the folder {out.parent} is not writable; choose another "
                       f"output path")
    return out


def _check_free_space(out: Path, need: int) -> None:
    """Refuse before reconstructing when the folder of ``out`` has less than ``need`` bytes
    free (the uncompressed cube and its preview: an upper bound)."""
    problem = free_space_problem(out.parent, need, "the cube and its preview")
    if problem:
        raise CLIError(f"--out {out}: {problem}")


def _training_data(args, talk: bool) -> dict:
    """The scenes ``train`` uses: the split's parts, or (``--split all``) every scene for
    training and none held out."""
    from .data import load_data

    every = parse_split(args.split)[1] == "all"
    d = load_data(args.data, args.split, verbose=talk, allow_empty=every)
    return {**d, "train": d["train"] + d["test"], "test": []} if every else d


def _resized(x, size):
    """``x`` ``(1, 3, H, W)`` resized (antialiased) to ``size`` = (H, W), or as it is."""
    import torch

    if not size:
        return x
    h, w = size
    if h < 1 or w < 1:
        raise CLIError(f"--size expects two positive integers H W, got {h} {w}")
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", antialias=True,
                                           align_corners=False).clamp(0, 1)


# ====================================================================== parser
def _common(p, data=True, device=True):
    if data:
        p.add_argument("--data", required=True, metavar="SPEC",
                       help="synthetic | synthetic:DIR | cave:DIR | auto (see python -m inr_lib --help)")
        p.add_argument("--split", default=None, metavar="NAME[:PART]",
                       help="split name (default, dev8, ...) and/or part (train, test, all); "
                            "default: automatic split")
    if device:
        p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
        p.add_argument("--allow-cpu-fallback", action="store_true",
                       help="use the CPU (with a warning) when --device cuda is not available")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _inference(p):
    p.add_argument("--mode", choices=("tiled", "whole"), default=None,
                   help="tiled: windows of the training crop size, blended; whole: the full image "
                        "in one pass (default: the card's recommended mode for --pretrained, "
                        "else tiled)")
    p.add_argument("--tile", type=_int_at_least(1), default=None,
                   help="window size for --mode tiled (default: the training crop size, else 64)")
    p.add_argument("--overlap", type=_int_at_least(0), default=None,
                   help="window overlap (default: the training val_overlap, else 16)")


def _eval_options(p):
    _inference(p)
    p.add_argument("--border", type=int, default=0, help="pixels cropped from each side before scoring")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average the 8 flips/transposes of the input")
    p.add_argument("--rgb-source", default=None,
                   help="'dataset' (the scenes' RGB images) or a response name such as cie1964 "
                        "(default: what the model was trained with, else dataset)")
    p.add_argument("--json", required=True, metavar="OUT", help="results file (JSON)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --json file that inr_lib did not write")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Wraps plain paragraphs; keeps paragraphs with indented lines (examples, tables) as typed."""

    def _fill_text(self, text, width, indent):
        import textwrap

        paras = []
        for para in text.split("\n\n"):
            if any(line.startswith(" ") for line in para.splitlines()):
                paras.append(textwrap.indent(para, indent))
            else:
                paras.append(textwrap.fill(" ".join(para.split()), width, initial_indent=indent,
                                           subsequent_indent=indent))
        return "\n\n".join(paras)


def _program_name() -> str:
    """``inr-hsisr`` when run as the console script, else ``python -m inr_lib``."""
    return "inr-hsisr" if Path(sys.argv[0]).name == "inr-hsisr" else "python -m inr_lib"


def _examples(prog: str, *lines: str) -> str:
    return "examples:\n" + "".join(f"  {prog} {line}\n" for line in lines)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``prog`` (default :func:`_program_name`) names the program in help."""
    prog = prog or _program_name()
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=_Formatter,
        description="INR-HSISR: recover 31-band spectral images (400..700 nm) from RGB.\n\n"
                    + DATA_HELP,
        epilog=_examples(prog, "train --config quick --data synthetic --out runs/quick",
                         "evaluate --checkpoint runs/quick/best.pt --data synthetic --json eval.json",
                         "reconstruct --checkpoint runs/quick/best.pt --rgb photo.png --out cube.h5",
                         "baseline ridge --data cave:data/cave --json ridge.json"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_train, _add_evaluate, _add_reconstruct, _add_baseline, _add_models):
        add(sub, prog)
    return parser


def _command(sub, prog: str, func, *examples: str):
    """A sub-command parser running ``func``: the first line of its docstring is the short
    help, the rest the description; ``examples`` (argument strings) end its help."""
    name = func.__name__[len("cmd_"):]
    summary, _, description = inspect.cleandoc(func.__doc__).partition("\n\n")
    p = sub.add_parser(name, formatter_class=_Formatter, help=summary[0].lower() + summary[1:-1],
                       description=description.strip(),
                       epilog=_examples(prog, *(f"{name} {e}" for e in examples)))
    p.set_defaults(func=func)
    return p


def _add_train(sub, prog: str) -> None:
    from .train.loop import list_presets

    p = _command(sub, prog, cmd_train,                  "--config quick --data synthetic --out runs/quick",
                 "--config paper --data cave:~/data/cave --out runs/paper --device cuda",
                 "--config paper --data cave:~/data/cave --out runs/paper --resume",
                 "--config tiny --data synthetic --out runs/t --set model.encoding=tile --set lr=5e-4")
    p.add_argument("--config", default="quick",
                   help=f"preset ({', '.join(list_presets())}) or YAML file (default: quick)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh even if RUN_DIR already holds a run (replaces its checkpoints "
                        "once the new run's first epoch is done)")
    p.add_argument("--allow-other-data", action="store_true",
                   help="with --resume: continue even if --data/--split give other scenes than "
                        "the run was trained on (recorded in RUN_DIR/data.json)")
    _config_overrides(p)
    _common(p)


def _add_evaluate(sub, prog: str) -> None:
    p = _command(sub, prog, cmd_evaluate,                  "--checkpoint runs/quick/best.pt --data synthetic --json eval.json",
                 "--checkpoint best.pt --data cave:DIR --split default:test --mode whole "
                 "--self-ensemble --json eval.json",
                 "--pretrained small --data cave:DIR --split dev18:test --json eval.json")
    _checkpoint(p)
    _common(p)
    _eval_options(p)


def _add_reconstruct(sub, prog: str) -> None:
    p = _command(sub, prog, cmd_reconstruct,                  "--checkpoint runs/quick/best.pt --rgb photo.jpg --out cube.h5",
                 "--checkpoint best.pt --rgb scan.png --size 512 512 --out cube.npy",
                 "--pretrained small --rgb photo.jpg --out cube.h5")
    _checkpoint(p)
    p.add_argument("--rgb", required=True, metavar="IMAGE", help="input image")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                   help="resize the input to H x W (antialiased) before reconstructing")
    p.add_argument("--gray-ok", action="store_true",
                   help="accept a greyscale image by replicating it to R, G, B")
    p.add_argument("--out", required=True, metavar="CUBE", help="output .h5 or .npy")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out / preview file that inr_lib did not write")
    _inference(p)
    _common(p, data=False)


def _add_baseline(sub, prog: str) -> None:
    p = _command(sub, prog, cmd_baseline,                  "ridge --data synthetic --json ridge.json",
                 "physics --data cave:DIR --json physics.json",
                 "cnn --data synthetic --config quick --out runs/cnn --json cnn.json")
    p.add_argument("name", choices=("ridge", "physics", "cnn"),
                   help="ridge regression, physics (Mallett & Yuksel 2019) or the cnn baseline")
    p.add_argument("--degree", type=int, default=1, help="ridge: polynomial degree 1..3 (default 1)")
    p.add_argument("--rgb-encoding", choices=("auto", "linear", "srgb"), default="auto",
                   help="physics: the input's transfer curve (auto: srgb for real CAVE RGB, else linear)")
    p.add_argument("--config", default="quick", help="cnn: training preset or YAML (default quick)")
    p.add_argument("--out", default=None, metavar="RUN_DIR",
                   help="cnn: run folder (default: next to --json)")
    p.add_argument("--overwrite", action="store_true",
                   help="cnn: replace the run already in --out (its checkpoints and log)")
    p.add_argument("--resume", action="store_true",
                   help="cnn: continue the run in --out from its last.pt (a finished run is only "
                        "evaluated); without one, start it")
    _config_overrides(p, "cnn: ")
    _common(p)
    _eval_options(p)


def _add_models(sub, prog: str) -> None:
    p = _command(sub, prog, cmd_models, "", "--card small", "--json")
    p.add_argument("--card", metavar="NAME", help="one model's provenance and scores")
    p.add_argument("--json", action="store_true", help="the table as JSON rows")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _checkpoint(p) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", metavar="CKPT",
                       help="a checkpoint written by train (RUN_DIR/best.pt or RUN_DIR/last.pt)")
    which.add_argument("--pretrained", metavar="NAME",
                       help="a model shipped with inr_lib (`models` lists them)")


def _config_overrides(p, prefix: str = "") -> None:
    p.add_argument("--epochs", type=int, default=None, help=f"{prefix}override the number of epochs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"{prefix}override a config field (YAML value); model.OPTION=VALUE for "
                        f"model options; repeatable")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 error, 2 bad arguments, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .files.checkpoints import CheckpointError
    from .train.loop import NonFiniteLossError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        hint = " (continue with --resume)" if args.command == "train" else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return 130
    except (CLIError, CheckpointError, NonFiniteLossError, ValueError, KeyError, OSError,
            RuntimeError, TypeError) as e:
        if args.debug:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        msg = " ".join(str(msg).split()) or type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 1
