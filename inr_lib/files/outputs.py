"""The one rule for files the library writes: only the paths the user named as outputs.

:func:`check_outputs` is called by every command *before* any work starts. Each output path
must be writable, must not be one of the command's inputs (even with ``--overwrite``): the files
it reads, every file under a ``--data`` folder, and the files of a run folder it reads or
writes (:data:`RUN_FILES`). It must not be an existing file unless the user allowed replacing
it (``--overwrite``, or its deprecated alias ``--force``) or the file is one the library wrote
itself (a results JSON, a cube ``.h5``/``.tif``, a cube ``.npy`` whose sidecar records its
SHA-256, or a preview PNG, each carrying the library's marker), which a re-run may replace;
and only a regular file is ever replaced (never a device, pipe or socket).

:func:`check_run_folder` is the same rule for a training run's ``--out`` folder.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable, Mapping

import h5py
import tifffile
from PIL import Image

from .images import PNG_MARKER, SIDECAR_MARKER, TIFF_MARKER, npy_written_by_inr_lib

__all__ = ["OutputError", "check_outputs", "check_run_folder", "data_folders", "RUN_FILES",
           "RUN_CONFIG_MARKER",
           "same_file", "written_by_inr_lib", "free_space_problem", "PNG_MARKER"]

#: The files of a training run folder (``last.pt`` is the one that makes it resumable).
RUN_FILES = ("last.pt", "best.pt", "config.yaml", "log.jsonl", "data.json")
#: First line of every ``config.yaml`` a run writes: the proof that a folder holding only it
#: and an empty ``log.jsonl`` is a run of the library killed before its first checkpoint.
RUN_CONFIG_MARKER = "# run configuration written by inr_lib train\n"


class OutputError(ValueError):
    """An output path that would destroy or replace something the user did not ask to replace."""


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (also through links, ``..`` or case)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def written_by_inr_lib(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file this library wrote (so a re-run may replace it)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            with open(path, "rb") as f:
                data = json.loads(f.read(64 * 2**20))
            return isinstance(data, dict) and (("per_scene" in data and "mean" in data)
                                               or data.get("written_by") == SIDECAR_MARKER)
        if suffix == ".npy":       # a cube with its sidecar, unchanged since (files.images)
            return npy_written_by_inr_lib(path)
        if suffix in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:
                return tif.pages.first.software == TIFF_MARKER
        if suffix in (".h5", ".hdf5"):
            with h5py.File(path, "r") as f:
                return "inr_lib_version" in f.attrs
        if suffix == ".png":
            with Image.open(path) as im:
                return im.info.get("Software") == PNG_MARKER
    except Exception:   # unreadable or not the format its name says: not ours
        return False
    return False


def _check_folder(label: str, out: Path) -> None:
    for p in (out.parent, *out.parent.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"{label} {out}: cannot create its folder {out.parent} ({p} is "
                                  f"a file, not a folder); choose another output path")
            if not os.access(p, os.W_OK | os.X_OK):
                raise OutputError(f"{label} {out}: the folder {p} is not writable; choose another "
                                  f"output path")
            return


def check_outputs(outputs: Mapping[str, str | os.PathLike],
                  inputs: Mapping[str, str | os.PathLike] | None = None, *,
                  overwrite: bool = False, flag: str = "--force",
                  owned: Callable[[Path], bool] = written_by_inr_lib,
                  data: str | None = None,
                  runs: Mapping[str, str | os.PathLike | None] | None = None) -> None:
    """Refuse, before any work, outputs that would destroy something.

    Args:
        outputs: ``{label: path}`` of the files the command will write (label as the user
            typed it, e.g. ``"--json"``, ``"preview"``).
        inputs: ``{label: path}`` of the files it reads; an output equal to one is always an
            error.
        overwrite: the user allowed replacing existing files (``flag``).
        flag: the option that allows it, named in the message.
        owned: ``owned(path)`` is True for an existing file the library wrote itself, which
            may be replaced without ``flag``.
        data: the ``--data`` spec; every file under its folders is an input.
        runs: ``{label: run folder}`` (e.g. ``{"--out": "runs/cnn"}``); the run files in it
            (:data:`RUN_FILES`) are inputs.

    Raises:
        OutputError: one line naming the path and what to do.
    """
    inputs = dict(inputs or {})
    for run_label, run in (runs or {}).items():
        if run is not None:
            inputs.update({f"{n} of the run folder {run_label} {run}": Path(run) / n
                           for n in RUN_FILES})
    for label, out in outputs.items():
        out = Path(out).expanduser()
        _check_name_length(label, out)
        for in_label, inp in inputs.items():
            if inp is not None and same_file(out, inp):
                raise OutputError(f"{label} {out} is the same file as {in_label}; writing it would "
                                  f"destroy the input: choose another output path")
        _check_not_in_data(label, out, data)
        if out.is_dir():
            raise OutputError(f"{label} {out} is a folder; expected a file name")
        if out.exists() and not out.is_file():
            raise OutputError(not_regular(label, out))
        _check_folder(label, out)
        if (out.exists() or out.is_symlink()) and not overwrite and not owned(out):
            raise OutputError(f"{label} {out} already exists and was not written by inr_lib; pass "
                              f"{flag} to replace it, or choose another path")


def check_run_folder(out: str | os.PathLike, resume: bool = False, overwrite: bool = False, *,
                     data: str | None = None, label: str = "--out") -> None:
    """Refuse, before any work, a training run folder that would lose the user's files.

    A folder holding ``last.pt`` is a run: continue it (``resume``) or replace it
    (``overwrite``). A folder holding other run files (:data:`RUN_FILES`: the user's
    ``config.yaml``, a ``log.jsonl``, ...) but no ``last.pt`` is not a run the library can
    continue, so it is refused unless ``overwrite``. A folder inside a ``data`` folder is
    refused always, and so is a path that is a file.

    Raises:
        FileExistsError, OutputError: one line naming the folder and what to do.
    """
    out = Path(out).expanduser()
    _check_name_length(label, out)
    _check_not_in_data(label, out, data)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{label} {out} is a file, not a folder; choose another output folder")
    last = out / "last.pt"
    if not resume and not overwrite and last.is_file():
        raise FileExistsError(f"{out} already holds a training run ({last}); continue it "
                              f"with --resume (resume=True), replace it with --overwrite "
                              f"(overwrite=True), or choose another output folder")
    found = [n for n in RUN_FILES if (out / n).exists() or (out / n).is_symlink()]
    if found and not last.is_file() and not overwrite and not _unstarted_run(out, found):
        raise FileExistsError(f"{label} {out} holds {', '.join(found)} but no last.pt, so it is "
                              f"not a run that can be continued, and these files would be "
                              f"replaced; pass --overwrite (overwrite=True) to replace them, or "
                              f"choose another output folder")
    special = [n for n in RUN_FILES if (out / n).exists() and not (out / n).is_file()]
    if special:
        raise OutputError(not_regular(label, out / special[0]))


def _unstarted_run(out: Path, found: list) -> bool:
    """Whether the run files ``found`` in ``out`` are provably a run of the library killed
    before its first checkpoint: its marked ``config.yaml`` and an empty ``log.jsonl`` only
    (nothing of value to lose; a new run, or ``--resume``, starts it again)."""
    try:
        if not set(found) <= {"config.yaml", "log.jsonl"} or "config.yaml" not in found:
            return False
        with open(out / "config.yaml", encoding="utf-8") as f:
            if f.readline() != RUN_CONFIG_MARKER.rstrip("\n") + "\n":
                return False
        log = out / "log.jsonl"
        return not log.exists() or (log.is_file() and not log.is_symlink() and log.stat().st_size == 0)
    except (OSError, UnicodeDecodeError):
        return False


def not_regular(label: str, path: Path) -> str:
    """The one line for an output path that exists and is not a regular file."""
    return (f"{label} {path} is not a regular file (a device, pipe, socket or a link to one); "
            f"inr_lib only ever replaces regular files: choose another output path")


def data_folders(spec: str | None) -> list[Path]:
    """The folders a ``--data`` spec names (``"cave:A,B"`` -> [A, B]; none for the default
    locations of ``"synthetic"``, ``"cave"`` or ``"auto"``)."""
    if not spec or ":" not in spec:
        return []
    _, _, paths = spec.partition(":")
    return [Path(p).expanduser() for p in paths.split(",") if p]


def _check_not_in_data(label: str, out: Path, data: str | None) -> None:
    """Every file under a ``--data`` folder is an input: nothing is written there."""
    target = out.resolve()
    for folder in data_folders(data):
        root = folder.resolve()
        if target == root or root in target.parents:
            raise OutputError(f"{label} {out} is inside the --data folder {folder}; the files "
                              f"there are inputs and are never written: choose an output path "
                              f"outside it")


def _check_name_length(label: str, out: Path) -> None:
    """A file name longer than the file system allows, named with its option."""
    for part in out.parts:
        if len(os.fsencode(part)) > 255:
            raise OutputError(f"{label}: the name {part[:40]}... is {len(os.fsencode(part))} "
                              f"bytes long, more than the 255 a file name may have; choose a "
                              f"shorter name")


def free_space_problem(folder: str | os.PathLike, need: int, what: str) -> str | None:
    """What to tell the user when ``folder`` has fewer than ``need`` bytes free for ``what``
    (e.g. ``"the checkpoints"``), else None (also when the free space cannot be read): the
    check every command makes before it writes something large."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    if free >= need:
        return None
    return (f"{folder} has {free / 2**20:.1f} MiB free, but {what} need up to "
            f"{need / 2**20:.1f} MiB; free some space or choose another output folder")
