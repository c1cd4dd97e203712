"""The publish workflow's data step: real CAVE into ``$INR_DATA/cave``, where the book looks.

    INR_DATA=~/data python tools/fetch_data.py

Calls :func:`inr_lib.data.download_cave` (a no-op when the scenes are already there, e.g.
restored from the workflow's cache). ``INR_CAVE_URL`` overrides where the archive comes from
(a mirror, or a ``file://`` URL of a local zip); the default is the official CAVE archive.
Prints the folder and the number of scenes; exits 1 with one line when it fails.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inr_lib.data import (  # noqa: E402 (after the sys.path line: runs from a checkout)
    CAVE_URL,
    DataFormatError,
    DownloadError,
    default_data_root,
    download_cave,
    list_cave_scenes,
)

#: environment variable overriding the archive's URL
URL_ENV = "INR_CAVE_URL"


def main() -> int:
    dest = default_data_root() / "cave"
    url = os.environ.get(URL_ENV) or CAVE_URL
    try:
        download_cave(dest, url=url, progress=sys.stderr.isatty())
        n = len(list_cave_scenes(dest))
    except (DownloadError, DataFormatError, OSError) as e:
        print(f"error: could not get CAVE into {dest} from {url}: {e}", file=sys.stderr)
        return 1
    print(f"real CAVE: {n} scenes in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
