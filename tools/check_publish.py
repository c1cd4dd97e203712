"""The last step of ``make book-publish``: refuse a build in which a chapter did not use real CAVE.

    python tools/check_publish.py MANIFEST_DIR [--book book]

Reads the build manifest that every chapter's ``book.setup`` wrote into ``MANIFEST_DIR``
(``INR_BOOK_MANIFEST``, see :mod:`inr_lib.book.manifest`) and exits 1 with one line naming the
chapters that fell back to synthetic data or recorded nothing; exits 0 when every chapter of
``--book`` that calls ``book.setup`` used real CAVE.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inr_lib.book.manifest import book_chapters, check, read  # noqa: E402 (after the sys.path line: runs from a checkout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifest", help="the folder INR_BOOK_MANIFEST named during the build")
    p.add_argument("--book", default=str(ROOT / "book"), help="the chapters' folder (default: book)")
    args = p.parse_args(argv)
    chapters = book_chapters(args.book)
    problem = check(args.manifest, chapters)
    if problem:
        print(f"{args.manifest}: {problem}", file=sys.stderr)
        return 1
    entries = read(args.manifest)
    print(f"publish check: all {len(chapters)} chapters used real CAVE "
          f"({', '.join(sorted({e['path'] for e in entries.values()}))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
