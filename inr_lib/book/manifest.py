"""The build manifest: which data every chapter of a book build used.

When the environment variable ``INR_BOOK_MANIFEST`` names a folder (``make book-publish`` sets
it), :func:`inr_lib.book.setup` appends one JSON line per chapter run to
``<folder>/<chapter>.jsonl`` (:func:`record`): real or synthetic data, where it was found, the
scenes and the split they form. :func:`check` reads the folder back after the build and lists
the chapters that fell back to synthetic data or recorded nothing, which is what
``tools/check_publish.py`` (the last step of ``make book-publish``) refuses to publish.
Without the variable nothing is written.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..data import list_cave_scenes, split_available
from . import shown

#: environment variable naming the manifest folder
ENV = "INR_BOOK_MANIFEST"

__all__ = ["ENV", "book_chapters", "check", "entry", "read", "record"]


def record(bk: Any) -> Path | None:
    """Append this chapter's :func:`entry` to ``$INR_BOOK_MANIFEST/<chapter>.jsonl``; returns
    that file, or ``None`` when the variable is not set (nothing is written)."""
    folder = os.environ.get(ENV)
    if not folder:
        return None
    path = Path(folder).expanduser() / f"{bk.chapter}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry(bk), sort_keys=True) + "\n")
    return path


def entry(bk: Any) -> dict:
    """What a chapter set up by :func:`inr_lib.book.setup` reads: ``chapter``, ``real``,
    ``data`` (``"cave"`` | ``"synthetic"``), ``found`` (how), ``path`` (as the book prints it),
    ``scenes``, ``split`` (the split those scenes form, as
    :func:`inr_lib.data.split_available` picks it), ``train``, ``test`` and ``profile``."""
    scenes = [s.name for s in list_cave_scenes(bk.data.path)]
    split = split_available(scenes, require=())
    return {"chapter": bk.chapter, "real": bk.data.kind == "cave", "data": bk.data.kind,
            "found": bk.data.source, "path": shown(bk.data.path), "scenes": scenes,
            "split": split["split"], "train": split["train"], "test": split["test"],
            "profile": bk.profile}


def read(folder: str | os.PathLike) -> dict[str, dict]:
    """``{chapter: its last entry}`` from the manifest ``folder`` (empty if there is none)."""
    out = {}
    for path in sorted(Path(folder).glob("*.jsonl")):
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if lines:
            last = json.loads(lines[-1])
            out[str(last["chapter"])] = last
    return out


def check(folder: str | os.PathLike, chapters: Iterable[str]) -> str | None:
    """``None`` when every chapter in ``chapters`` recorded real CAVE data in the manifest
    ``folder``; else one line that names the chapters that fell back to synthetic data and
    those that recorded nothing, and what to do."""
    entries = read(folder)
    synthetic = sorted(c for c in chapters if c in entries and not entries[c]["real"])
    missing = sorted(c for c in chapters if c not in entries)
    if not synthetic and not missing:
        return None
    parts = []
    if synthetic:
        parts.append(f"chapters {', '.join(synthetic)} fell back to synthetic data")
    if missing:
        parts.append(f"chapters {', '.join(missing)} recorded no data in {folder}")
    return ("not publishable: " + "; ".join(parts) + ". Put real CAVE in $INR_DATA/cave "
            "(python tools/fetch_data.py) and build again with make book-publish")


def book_chapters(book_dir: str | os.PathLike) -> list[str]:
    """The chapter numbers whose notebook in ``book_dir`` calls ``book.setup("NN", ...)``."""
    found = set()
    for nb in sorted(Path(book_dir).glob("*.ipynb")):
        found.update(re.findall(r'book\.setup\(\\?"(\w+)\\?"', nb.read_text(encoding="utf-8")))
    return sorted(found)
