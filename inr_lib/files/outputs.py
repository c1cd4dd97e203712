"""The one rule for files the library writes: only the paths the user named as outputs.

:func:`check_outputs` is called by every command *before* any work starts. Each output path
must be writable, must not be one of the command's inputs (even with ``--force``), and must
not be an existing file unless the user allowed replacing it (``--force`` / ``--overwrite``)
or the file is one the library wrote itself (a results JSON, a cube ``.h5`` or a preview PNG
carrying the library's marker), which a re-run may replace.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable, Mapping

from .images import PNG_MARKER

__all__ = ["OutputError", "check_outputs", "same_file", "written_by_inr_lib", "free_space_problem",
           "PNG_MARKER"]


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
            return isinstance(data, dict) and "per_scene" in data and "mean" in data
        if suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                return "inr_lib_version" in f.attrs
        if suffix == ".png":
            from PIL import Image

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
                  owned: Callable[[Path], bool] = written_by_inr_lib) -> None:
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

    Raises:
        OutputError: one line naming the path and what to do.
    """
    inputs = inputs or {}
    for label, out in outputs.items():
        out = Path(out).expanduser()
        for in_label, inp in inputs.items():
            if inp is not None and same_file(out, inp):
                raise OutputError(f"{label} {out} is the same file as {in_label}; writing it would "
                                  f"destroy the input: choose another output path")
        if out.is_dir():
            raise OutputError(f"{label} {out} is a folder; expected a file name")
        _check_folder(label, out)
        if (out.exists() or out.is_symlink()) and not overwrite and not owned(out):
            raise OutputError(f"{label} {out} already exists and was not written by inr_lib; pass "
                              f"{flag} to replace it, or choose another path")


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
