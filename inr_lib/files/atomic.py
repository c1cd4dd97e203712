"""Writing files so that nothing is lost: every file the library writes goes through
:func:`atomic_write` (the bytes go to a temporary file in the same folder,
``.<name>.<random>.tmp``, which is flushed, fsync-ed and renamed over the target with
``os.replace``; a crash at any point leaves either the old or the new file, never a partial
one, plus after a hard kill a stray temporary file that :func:`remove_stale_temp_files`
deletes), and :func:`sha256_file`, the one SHA-256 of a file (downloads, checkpoints, cards).
"""
from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterable

__all__ = ["atomic_write", "remove_stale_temp_files", "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: str | os.PathLike, write: Callable) -> Path:
    """Write a file atomically: ``write(f)`` fills a temporary binary file next to ``path``,
    which is then flushed, fsync-ed and renamed onto ``path``. On any error the temporary
    file is removed and an existing ``path`` is left untouched. Only a regular file (or a
    link to one) is ever replaced: a device, pipe or socket at ``path`` is an OSError."""
    path = Path(path)
    _check_regular(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        _chmod_like_new_file(fd)
        with os.fdopen(fd, "w+b") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _check_regular(path: Path) -> None:
    """Raise OSError when ``path`` exists and is neither a regular file nor a link (to a
    regular file or to nothing): renaming over it would turn ``/dev/full`` into a file."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise OSError(f"{path} is not a regular file (a device, pipe, socket or folder); "
                      f"inr_lib only ever replaces regular files: choose another output path")


def _replace(tmp: str, path: Path) -> None:
    """The commit step of :func:`atomic_write` (tests wrap it to stop a process just before)."""
    _check_regular(path)       # again: it may have changed while the file was written
    os.replace(tmp, path)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (not possible on every platform)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _chmod_like_new_file(fd: int) -> None:
    """mkstemp creates files readable by the owner only; give the usual ``0o666 & ~umask``."""
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)
    except (AttributeError, OSError):  # not on every platform
        pass


def remove_stale_temp_files(folder: str | os.PathLike, names: Iterable[str]) -> list:
    """Delete the temporary files that an interrupted :func:`atomic_write` of one of
    ``names`` (e.g. ``"last.pt"``) left in ``folder`` (``.<name>.<random>.tmp``); returns them.

    Only call it when no other process is writing these files in ``folder``."""
    folder, removed = Path(folder), []
    for name in names:
        for p in folder.glob(f".{name}.*.tmp"):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed
