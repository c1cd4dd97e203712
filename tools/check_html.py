"""Fail when the built book shows a path of the machine that built it.

    python tools/check_html.py [_build/html]

Scans every HTML page for the absolute paths of this build: the repository, the folder that
holds it (where ``../shared`` data lives), the home folder, temporary folders made by a run
(``/tmp/tmp...``, ``/tmp/inr-...``) and the data
folders named by ``$INR_DATA`` / ``$INR_CAVE``. Chapters print paths relative to those roots
(:func:`inr_lib.book.shown`); a page that leaks one is listed with the path and its context,
and the exit status is 1. Run by ``make book`` after the build.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine_paths() -> list[str]:
    """The absolute paths that must not appear in the built pages (longest first)."""
    roots = {ROOT, Path.home()}
    # the folder beside the checkout (a development copy of the data), unless the checkout sits
    # directly in the temporary folder (a fresh clone in mktemp -d): then every /tmp path would match
    if ROOT.parent.resolve() != Path(tempfile.gettempdir()).resolve():
        roots.add(ROOT.parent)
    for var in ("INR_DATA", "INR_CAVE"):
        if os.environ.get(var):
            roots.add(Path(os.environ[var]).expanduser())
    found = set()
    for root in roots:
        for p in (root.absolute(), root.resolve()):
            if len(p.parts) > 1:              # never the filesystem root itself
                found.add(str(p) + os.sep)
    # temporary folders made by a run (tempfile's "tmp..." names, the chapters' "inr-..." ones);
    # an example path in the prose such as /tmp/x is not one
    tmp = Path(tempfile.gettempdir())
    found |= {str(p) + os.sep + name for p in {tmp, tmp.resolve()} for name in ("tmp", "inr")}
    return sorted(found, key=len, reverse=True)


def leaks(html_dir: Path, paths: list[str]) -> list[str]:
    """``"page: path ... context"`` for every page of ``html_dir`` that contains one of ``paths``."""
    out = []
    for page in sorted(html_dir.rglob("*.html")):
        text = page.read_text(errors="replace")
        for p in paths:
            i = text.find(p)
            if i >= 0:
                context = " ".join(text[max(0, i - 60): i + len(p) + 40].split())
                out.append(f"{page.relative_to(html_dir)}: {p} ... {context}")
                break
    return out


def main(argv: list[str]) -> int:
    html_dir = Path(argv[0]) if argv else ROOT / "_build" / "html"
    if not html_dir.is_dir():
        print(f"error: {html_dir} does not exist; build the book first (make book)", file=sys.stderr)
        return 1
    found = leaks(html_dir, machine_paths())
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    if found:
        print(f"{len(found)} page(s) show a path of this machine; print paths with "
              f"inr_lib.book.shown()", file=sys.stderr)
        return 1
    print(f"no build-machine paths in {len(list(html_dir.rglob('*.html')))} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
