"""The run folder (``--out``): what a training run may do with it, checked once, before any
work.

:func:`claim` is the one guard: it refuses a folder that holds another run (unless resuming
or overwriting), one that cannot be written, and one another training is writing (an OS
lock, held until the run ends). The command line claims the folder before it loads the data,
so that a wrong ``--out`` fails in a second; :func:`~inr_lib.train.train` then finds it
claimed by this process and does not check again. :func:`check_free_space` runs once the
model (and so the size of its checkpoints) is known. :func:`record_data` keeps the scenes a
run was trained and validated on in ``data.json``, so that ``--resume`` on other data, or with
another hold-out of validation scenes, is refused.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Callable, Iterator

from ..data.cave_splits import hold_out
from ..files.atomic import atomic_write, remove_stale_temp_files
from ..files.outputs import check_run_folder, free_space_problem
from .config import TrainConfig

try:
    import fcntl
except ImportError:      # Windows: no run lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["claim", "check_free_space", "record_data", "blocking_file", "OutputDirError",
           "RunLockedError", "RUN_FILES", "LOCK_NAME", "DATA_RECORD"]

#: what a run writes (its half-written temporaries are removed when a run claims the folder)
RUN_FILES = ("last.pt", "best.pt", "log.jsonl", "config.yaml")
LOCK_NAME = ".lock"
DATA_RECORD = "data.json"
_CLAIMED: set = set()      # folders claimed by this process (absolute paths)


class OutputDirError(OSError):
    """The output folder cannot be used (not writable, or not enough free space)."""


class RunLockedError(OutputDirError):
    """Another training run is writing the same run folder."""


@contextlib.contextmanager
def claim(out_dir: str | os.PathLike, resume: bool, overwrite: bool, main: bool = True, *,
          data: str | None = None) -> Iterator[Path]:
    """Check that this run may use ``out_dir`` and hold it while the run writes it.

    Every process refuses a folder that holds a run (``last.pt``) unless ``resume`` or
    ``overwrite``, and the other folders :func:`inr_lib.files.outputs.check_run_folder` refuses
    (the user's files without a run, a folder inside the ``data`` folder). The main process
    (rank 0, the one that writes) then creates the folder, checks it is writable, takes an
    exclusive lock on ``out_dir/.lock`` (released when the run ends or its process dies; the
    small ``.lock`` file stays, naming the holder) and removes half-written temporaries of a
    killed run. Claiming a folder this process holds
    already yields it at once.

    Raises:
        FileExistsError: ``out_dir`` holds a run and neither ``resume`` nor ``overwrite``.
        OutputError: see :func:`~inr_lib.files.outputs.check_run_folder`.
        OutputDirError: the folder cannot be created or written.
        RunLockedError: another training run holds the folder.
    """
    out_dir = Path(out_dir)
    key = os.path.abspath(out_dir)
    if key in _CLAIMED:
        yield out_dir
        return
    check_run_folder(out_dir, resume, overwrite, data=data)
    with contextlib.ExitStack() as held:
        if main:
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
                probe = out_dir / f".write_test_{os.getpid()}"
                probe.write_bytes(b"ok")
                probe.unlink()
            except OSError as e:
                why = blocking_file(out_dir) or e.strerror or e
                raise OutputDirError(f"output folder {out_dir} is not writable ({why}); "
                                     f"choose another --out folder") from None
        if main and fcntl is not None:
            f = held.enter_context(open(out_dir / LOCK_NAME, "a+"))
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise RunLockedError(f"{out_dir} is being written by another training run "
                                     f"({holder}); wait for it to finish, or choose another "
                                     f"--out") from None
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            f.flush()
        if main:   # only now is no other process writing here: its debris is never read
            remove_stale_temp_files(out_dir, RUN_FILES)
        _CLAIMED.add(key)
        held.callback(_CLAIMED.discard, key)
        yield out_dir


def check_free_space(out_dir: Path, need_bytes: int) -> None:
    """Raise :class:`OutputDirError` when ``out_dir`` has less than ``need_bytes`` free."""
    problem = free_space_problem(out_dir, need_bytes, "the checkpoints")
    if problem:
        raise OutputDirError(f"output folder {problem} (--out)")


def record_data(out_dir: str | os.PathLike, d: dict, resume: bool, allow_other: bool = False,
                cfg: TrainConfig | None = None) -> Callable:
    """Keep the scenes a run is trained and validated on (``d``: what
    :func:`inr_lib.data.load_data` returns; ``cfg``: the run's config, for its
    ``val_holdout``) in ``out_dir/data.json``: ``train`` (trained on), ``val`` (validated
    on: the test part, or the training scenes held out), ``test`` (the split's test part),
    ``val_holdout`` and ``val_seed`` (the seed that chose the held-out scenes, or null).

    With ``resume``, scenes other than those the run started with are an error unless
    ``allow_other`` (``best.pt`` would be re-selected on another validation set); another
    hold-out (``val_holdout`` or, with one, ``seed``) is always an error. Returns a training
    callback that writes the record after the first epoch (once the run has started, so a
    failed start leaves an older run's record alone).

    Raises:
        ValueError: as said, or ``val_holdout`` leaves no scene to train on.
    """
    out_dir = Path(out_dir)
    k, seed = (cfg.val_holdout, cfg.seed) if cfg is not None else (0, 0)
    train, val = hold_out(d["train"], k, seed) if k else (d["train"], d["test"])
    identity = {"dataset": d["dataset"], "root": d["root"], "split": d["split_name"],
                "train": [s.name for s in train], "test": [s.name for s in d["test"]],
                "val": [s.name for s in val], "val_holdout": k, "val_seed": seed if k else None}
    try:
        old = json.loads((out_dir / DATA_RECORD).read_text()) if resume else {}
    except (OSError, ValueError):
        old = {}   # a run from before this record existed: nothing to compare
    held = [(r.get("val_holdout", 0), r.get("val_seed")) for r in (old, identity)]
    if old and held[0] != held[1]:
        raise ValueError(f"cannot resume {out_dir}: {out_dir / DATA_RECORD} records validation on "
                         f"{_validation(old)}, but the config now asks for {_validation(identity)}; "
                         f"resume with the run's own val_holdout and seed ({out_dir / 'config.yaml'}) "
                         f"or train into a new --out")
    # the validation scenes: the test part (compared already) unless some are held out
    diff = [key for key in ("dataset", "train", "test", "val")
            if old and old.get(key) != identity[key] and (key != "val" or k)]
    if diff and not allow_other:
        was, now = (f"{r.get('dataset')} {r.get('root')} split {r.get('split')!r}: "
                    f"{len(r.get('train', []))} train / {len(r.get('test', []))} test scenes"
                    for r in (old, identity))
        raise ValueError(f"cannot resume {out_dir}: it was trained on {was}, but --data/--split "
                         f"now give {now} (different {', '.join(diff)}); use the same --data "
                         f"and --split, or pass --allow-other-data to continue on these scenes")
    text = json.dumps(identity, indent=1) + "\n"
    written: list = []

    def callback(record, model):
        if not written:
            atomic_write(out_dir / DATA_RECORD, lambda f: f.write(text.encode()))
            written.append(True)

    return callback


def _validation(r: dict) -> str:
    """What a ``data.json`` record validates on, in words."""
    if not r.get("val_holdout"):
        return "the test scenes (val_holdout 0)"
    return (f"{r['val_holdout']} training scenes held out with seed {r.get('val_seed')} "
            f"({', '.join(r.get('val', []))}; val_holdout {r['val_holdout']})")


def blocking_file(folder: Path) -> str | None:
    """``"X is a file, not a folder"`` when a file ``X`` stands where ``folder`` or one of
    its parents should be (the usual reason a folder cannot be created), else None."""
    for p in (folder, *folder.parents):
        if p.exists():
            return f"{p} is a file, not a folder" if not p.is_dir() else None
    return None
