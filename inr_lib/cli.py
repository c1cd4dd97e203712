"""Command line: ``python -m inr_lib train | evaluate | reconstruct | baseline | models``
(or ``inr-hsisr``).

This module parses the arguments and runs the command; what each command does is
:mod:`inr_lib.commands` (one function per command). Every command prints a one-line
``error: ...`` and exits with status 1 on bad input or a failed run (status 2 for malformed
arguments, 130 when interrupted); ``--debug`` shows the traceback instead.
``python -m inr_lib COMMAND --help`` shows the options and an example; ``--version`` the
version. How ``--data`` and ``--split`` are read is :data:`inr_lib.data.spec.DATA_HELP` (also
shown by ``--help``).

Options every command shares:

* ``--overwrite`` replaces what the command would write when it is already there and was not
  written by inr_lib (files the library wrote itself are replaced by a re-run without it).
  ``--force`` is its deprecated alias (one release; it prints a note). In ``baseline`` the old
  ``--force`` keeps its old meaning (replace the ``--json`` file only) while ``--overwrite``
  also replaces the cnn or mstpp run in ``--out``.
* ``-q``/``--quiet``: no progress bars and no notes on stderr; the result line (stdout) and
  errors remain. ``--no-progress``: no progress bars only.
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

from . import commands
from ._version import __version__
from .commands import CLIError
from .data.spec import DATA_HELP
from .files.checkpoints import CheckpointError
from .train import NonFiniteLossError
from .train.config import PRESET_NAMES

__all__ = ["main", "build_parser", "CLIError"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 error, 2 bad arguments, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(None if argv is None else [str(a) for a in argv])
    if not getattr(args, "func", None):
        parser.print_help()
        return 2

    if args.quiet:
        args.no_progress = True
    try:
        with _quiet(args.quiet):
            return int(args.func(args))
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


def _quiet(on: bool) -> contextlib.AbstractContextManager[Any]:
    """``-q``: the command's notes on stderr are dropped (``main`` prints errors after it)."""
    return contextlib.redirect_stderr(io.StringIO()) if on else contextlib.nullcontext()


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
    _verbosity(p)


def _verbosity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars and no notes on stderr (errors and the result remain)")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")


class _Deprecated(argparse.Action):
    """A flag kept for one release under its old name: sets ``dest`` and prints a one-line note."""

    def __init__(self, option_strings: Sequence[str], dest: str, use: str = "", **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)
        self.use = use

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"note: {option_string} is deprecated and will be removed in the next release; "
              f"use {self.use}", file=sys.stderr)
        setattr(namespace, self.dest, True)


def _replace_flags(p: argparse.ArgumentParser, what: str) -> None:
    """``--overwrite`` (replace ``what`` when it exists and inr_lib did not write it) and its
    deprecated alias ``--force``."""
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {what} if it exists and inr_lib did not write it (files inr_lib "
                        f"wrote are replaced without it)")
    p.add_argument("--force", dest="overwrite", action=_Deprecated, use="--overwrite",
                   help="deprecated alias of --overwrite")


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
                   help="window size for --mode tiled (default: the card's for --pretrained, else "
                        "the training crop size, else 64)")
    p.add_argument("--overlap", type=_int_at_least(0), default=None,
                   help="window overlap (default: the card's for --pretrained, else the training "
                        "val_overlap, else 16)")


def _eval_options(p):
    _inference(p)
    p.add_argument("--border", type=int, default=0, help="pixels cropped from each side before scoring")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average the 8 flips/transposes of the input")
    p.add_argument("--rgb-source", default=None,
                   help="'dataset' (the scenes' RGB images) or a response name such as cie1964 "
                        "(default: what the model was trained with, else dataset)")
    p.add_argument("--json", required=True, metavar="OUT", help="results file (JSON)")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Wraps plain paragraphs; keeps paragraphs with indented lines (examples, tables) as typed."""

    def _fill_text(self, text, width, indent):
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
    parser.add_argument("--version", action="version", version=f"inr_lib {__version__}")
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
    p = _command(sub, prog, commands.cmd_train,                  "--config quick --data synthetic --out runs/quick",
                 "--config paper --data cave:~/data/cave --out runs/paper --device cuda",
                 "--config paper --data cave:~/data/cave --out runs/paper --resume",
                 "--config tiny --data synthetic --out runs/t --set model.encoding=tile --set lr=5e-4")
    p.add_argument("--config", default="quick",
                   help=f"preset ({', '.join(PRESET_NAMES)}) or YAML file (default: quick)")
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
    p = _command(sub, prog, commands.cmd_evaluate,
                 "--checkpoint runs/quick/best.pt --data synthetic --json eval.json",
                 "--checkpoint best.pt --data cave:DIR --split default:test --mode whole "
                 "--self-ensemble --json eval.json",
                 "--pretrained small --data cave:DIR --split dev18:test --json eval.json")
    _checkpoint(p)
    _common(p)
    _eval_options(p)
    _replace_flags(p, "the --json file")


def _add_reconstruct(sub, prog: str) -> None:
    p = _command(sub, prog, commands.cmd_reconstruct,
                 "--checkpoint runs/quick/best.pt --rgb photo.jpg --out cube.h5",
                 "--checkpoint best.pt --rgb scan.png --size 512 512 --out cube.npy",
                 "--pretrained small --rgb photo.jpg --out cube.h5")
    _checkpoint(p)
    p.add_argument("--rgb", required=True, metavar="IMAGE", help="input image")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                   help="resize the input to H x W (antialiased) before reconstructing")
    p.add_argument("--gray-ok", action="store_true",
                   help="accept a greyscale image by replicating it to R, G, B")
    p.add_argument("--out", required=True, metavar="CUBE",
                   help="output cube: .h5 (HDF5), .npy (NumPy) or .tif (TIFF, one band per page)")
    preview = p.add_mutually_exclusive_group()
    preview.add_argument("--preview", metavar="PNG", default=None,
                         help="where the preview goes (default: CUBE's name with .preview.png)")
    preview.add_argument("--no-preview", action="store_true", help="write no preview")
    _replace_flags(p, "--out or the preview")
    _inference(p)
    _common(p, data=False)


def _add_baseline(sub, prog: str) -> None:
    p = _command(sub, prog, commands.cmd_baseline,
                 "ridge --data synthetic --json ridge.json",
                 "physics --data cave:DIR --json physics.json",
                 "cnn --data synthetic --config quick --out runs/cnn --json cnn.json")
    p.add_argument("name", choices=("ridge", "physics", *commands.TRAINED_BASELINES),
                   help="ridge regression, physics (Mallett & Yuksel 2019), the cnn baseline or "
                        "mstpp (MST++, Cai et al. 2022)")
    p.add_argument("--degree", type=int, default=1, help="ridge: polynomial degree 1..3 (default 1)")
    p.add_argument("--rgb-encoding", choices=("auto", "linear", "srgb"), default="auto",
                   help="physics: the input's transfer curve (auto: srgb for real CAVE RGB, else linear)")
    p.add_argument("--config", default="quick",
                   help="cnn, mstpp: training preset or YAML (default quick)")
    p.add_argument("--out", default=None, metavar="RUN_DIR",
                   help="cnn, mstpp: run folder (default: next to --json)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --json file if it exists and inr_lib did not write it, and "
                        "(cnn, mstpp) the run already in --out (its checkpoints and log)")
    p.add_argument("--force", action=_Deprecated, use="--overwrite (which also replaces the cnn "
                   "or mstpp run in --out)", help="deprecated: replace the --json file only")
    p.add_argument("--resume", action="store_true",
                   help="cnn, mstpp: continue the run in --out from its last.pt (a finished run is only "
                        "evaluated); without one, start it")
    _config_overrides(p, "cnn, mstpp: ")
    _common(p)
    _eval_options(p)


def _add_models(sub, prog: str) -> None:
    p = _command(sub, prog, commands.cmd_models,
                 "", "--card small", "--json")
    p.add_argument("--card", metavar="NAME", help="one model's provenance and scores")
    p.add_argument("--json", action="store_true", help="the table as JSON rows")
    _verbosity(p)


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
