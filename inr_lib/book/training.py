"""Chapter 7's plumbing around the training loop: re-running the chapter over a finished run
(:func:`skip_if_done`) and the table of a stored speed measurement (:func:`benchmark_table`)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..files.checkpoints import load_checkpoint
from . import shown, table

__all__ = ["skip_if_done", "benchmark_table"]


def skip_if_done(run_dir: str | os.PathLike, epochs: int) -> bool:
    """True when ``run_dir`` already holds at least ``epochs`` epochs (an earlier run of the
    notebook): then the log of those epochs is printed instead of training them again."""
    run_dir = Path(run_dir)
    last = run_dir / "last.pt"
    done = load_checkpoint(last)["epoch"] if last.is_file() else 0
    if done < epochs:
        return False
    print(f"{shown(run_dir)} already holds {done} epochs (an earlier run of this notebook); "
          f"skipping the first call. Its log of the first {epochs} epochs:")
    for line in (run_dir / "log.jsonl").read_text().splitlines()[:epochs]:
        r = json.loads(line)
        print(f"  epoch {r['epoch']}: loss {r['loss']:.4f}, {r['seconds']:.1f} s"
              + (f" | val psnr {r['val_psnr']:.2f}" if "val_psnr" in r else ""))
    return True


def benchmark_table(path: str | os.PathLike) -> bool:
    """Show the rows of a ``benchmarks/bench.py`` result file (readable against fast path, per
    case) with the machine they were measured on; False (nothing shown) when it is missing."""
    path = Path(path)
    if not path.is_file():
        return False
    bench = json.loads(path.read_text())
    meta = bench.get("meta", {})

    def case(r):
        if r.get("kind") == "train":
            return f"training step, batch {r.get('batch')} of {r.get('crop')} px crops"
        return f"inference, {r.get('image')} px image in {r.get('crop')} px tiles"

    rows = [(r.get("preset"), case(r), r.get("path"), f"{r['seconds']:.2f} s",
             f"{r['speedup_vs_readable']:.1f} x" if r.get("speedup_vs_readable") else "reference")
            for r in bench["rows"] if r.get("status", "ok") == "ok" and r.get("seconds")]
    threads = sorted({r.get("threads") for r in bench["rows"]})
    table(["model", "case", "path", "time", "speed-up"], rows,
          f"From {shown(path)} (written by benchmarks/bench.py): {meta.get('device', '?')}, "
          f"{meta.get('machine', '')} with {meta.get('cpus', '?')} cores, torch threads "
          f"{', '.join(map(str, threads))}, torch {meta.get('torch', '?')}, measured "
          f"{meta.get('date', '?')}. Not measured in this run.")
    return True
