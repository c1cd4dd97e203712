"""Measure how long each chapter takes to run, cell by cell (for the session scripts).

Usage::

    INR_PROFILE=quick OMP_NUM_THREADS=1 python -m course.measure book/01_hyperspectral.ipynb ... \
        --json course/timings/cpu2.json

Executes every notebook with ``nbclient`` in the quick profile (as ``make book`` does) and
writes, per chapter, the wall time of every code cell (by cell id) and of the whole chapter,
with the machine it ran on. ``course/sessions.py`` reads the file to print the measured times
in the session scripts and in chapter 12; numbers that were not measured are never written there.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def measure(path: Path, timeout: int = 3600) -> dict:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    cells = {}
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            t0 = time.perf_counter()
            client.execute_cell(cell, index)
            cells[cell.get("id", str(index))] = round(time.perf_counter() - t0, 2)
    return {"total_s": round(time.perf_counter() - start, 1), "cells_s": cells}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--json", required=True, help="results file (merged with what it holds)")
    args = ap.parse_args(argv)
    out = Path(args.json)
    data = json.loads(out.read_text()) if out.is_file() else {"chapters": {}}
    data["machine"] = (f"{platform.machine()} CPU, {os.cpu_count()} cores ({platform.processor() or 'cpu'}), "
                       f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
                       f"INR_PROFILE={os.environ.get('INR_PROFILE', 'unset')}")
    for nb in args.notebooks:
        p = Path(nb)
        r = measure(p)
        r["measured"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        data["chapters"][p.stem] = r
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"{p.stem}: {r['total_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
