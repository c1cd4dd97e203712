"""Proof of ownership before a folder is deleted or replaced.

The library deletes or replaces a folder only when it can prove it made it: the folder holds
a manifest the library wrote (a JSON file with an ``"entries"`` list of every file and
sub-folder inside, as relative POSIX paths) and nothing else. A folder with one more file
(the user's notes, a run folder, a thesis), one entry missing from the disk but listed, a
link, a manifest that is not ours or cannot be read: not proven, so it is left untouched and
the caller refuses with one line naming what is in the way (:func:`require_owned`).

Synthetic datasets (``SYNTHETIC.json``), extracted archives (``.inr_lib-extracted.json``)
and run folders use it.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from .atomic import atomic_write

__all__ = ["NotOwnedError", "entries_of", "not_owned", "require_owned", "write_manifest"]


class NotOwnedError(FileExistsError):
    """A folder the library would delete or replace, but cannot prove it made."""


def entries_of(folder: str | os.PathLike, skip: Iterable[str] = ()) -> list[str]:
    """Every file, folder and link below ``folder`` as sorted relative POSIX paths (links are
    listed, never followed), leaving out the names in ``skip`` at the top level."""
    folder, skip = Path(folder), set(skip)
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        rel = Path(top).relative_to(folder)
        for name in dirs + files:
            if rel == Path(".") and name in skip:
                continue
            found.append((rel / name).as_posix())
    return sorted(found)


def write_manifest(folder: str | os.PathLike, name: str, info: dict,
                   entries: Iterable[str] | None = None) -> Path:
    """Write ``folder/name``: ``info`` plus ``"entries"``: ``entries`` (what the caller wrote),
    by default every entry now inside ``folder`` (the manifest itself excluded). Call it
    last, once the folder holds all it should."""
    folder = Path(folder)
    listed = entries_of(folder, skip=(name,)) if entries is None else sorted(entries)
    data = dict(info, entries=listed)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return atomic_write(folder / name, lambda f: f.write(text.encode()))


def not_owned(folder: str | os.PathLike, name: str, entries: Iterable[str] | None = None,
              is_ours: Callable[[dict], bool] | None = None) -> str | None:
    """Why ``folder`` is not provably the library's, or None when it is.

    Args:
        folder: the folder to delete or replace.
        name: its manifest's file name.
        entries: the entries the manifest lists, when the caller derives them itself (a
            manifest of an older format); default: the manifest's ``"entries"``.
        is_ours: ``is_ours(manifest dict)`` -> bool, the caller's check that the manifest is
            one it wrote (e.g. its ``"generator"``); default: any dict with ``"entries"``.

    Returns:
        None, or a short reason such as ``"it also holds notes.txt, run"``.
    """
    folder = Path(folder)
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder"
    actual = entries_of(folder, skip=(name,))
    holds = f"it holds {_first(sorted({e.split('/')[0] for e in actual}))}" if actual else "it is empty"
    try:
        manifest = json.loads((folder / name).read_text())
    except FileNotFoundError:
        return f"it has no {name}; {holds}"
    except (OSError, ValueError):
        return f"its {name} cannot be read; {holds}"
    if not isinstance(manifest, dict) or (is_ours is not None and not is_ours(manifest)):
        return f"its {name} was not written by inr_lib; {holds}"
    listed = manifest.get("entries") if entries is None else list(entries)
    if not isinstance(listed, list) or not all(isinstance(e, str) for e in listed):
        return f"its {name} does not list the folder's entries; {holds}"
    extra = sorted(set(actual) - set(listed))
    if extra:
        tops = sorted({e.split("/")[0] if e.split("/")[0] not in listed else e for e in extra})
        return f"it also holds {_first(tops)}, which {name} does not list"
    links = [e for e in actual if os.path.islink(folder / e)]
    if links:
        return f"it holds links ({_first(links)})"
    return None


def require_owned(folder: str | os.PathLike, name: str, what: str, advice: str,
                  entries: Iterable[str] | None = None,
                  is_ours: Callable[[dict], bool] | None = None) -> None:
    """Raise :class:`NotOwnedError` unless ``folder`` is absent or provably the library's
    (:func:`not_owned`): ``"<folder> is in the way and inr_lib cannot prove it is <what>
    (<reason>); it is left untouched. <advice>"``, ``what`` e.g. ``"a synthetic dataset it
    wrote"``."""
    why = not_owned(folder, name, entries, is_ours)
    if why:
        raise NotOwnedError(f"{folder} is in the way and inr_lib cannot prove it is {what} "
                            f"({why}); it is left untouched. {advice}")


def _first(names: list[str], n: int = 5) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")
