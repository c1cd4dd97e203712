"""Measure how long each chapter takes in the quick profile and record it for the book.

    python tools/time_chapters.py [book/07_training.ipynb ...]   # default: every chapter
    python tools/time_chapters.py --estimates                    # the full-profile column only

Each chapter runs once, in order, under nbval (``pytest --nbval-lax``, the quick profile, one
torch thread), as ``make test`` runs it; the wall time of that run (kernel start included) is
written to ``inr_lib/book/chapter_times.json`` (package data: ``book.setup`` prints it in
Colab, where only the library is installed) with the machine, the data and the load average,
keeping the other chapters' entries. Chapter 8 evaluates the run chapter 7 trained, so run them
in order.

The full profile has not been measured on a GPU: :data:`FULL` holds labelled estimates, each
with its basis (a measured step time and the chapter's step count), and is written with them.
``auto`` never starts a chapter whose ``train_minutes`` exceed 30 (``book.AUTO_LIMIT_MINUTES``).
Chapters 10 and 11 train in the full profile only the variants ticked in their form: their
``train_minutes`` are those of the default ticks, and ``run_minutes`` (:data:`RUN_MINUTES`), the
estimate of one run, lets the chapter add up what the reader ticks.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "inr_lib" / "book" / "chapter_times.json"
#: the page whose table shows these times (between the two markers)
PAGE = ROOT / "book" / "colab.md"
MARKERS = ("<!-- chapter-times: written by tools/time_chapters.py -->", "<!-- /chapter-times -->")

#: measured step times the estimates below start from
_PAPER_STEP = ("the paper model: 1.4-1.9 s per step of 56 crops, from the released code's "
               "logged 25-35 s per epoch of 18 steps (GPU not named)")
_SMALL_STEP = ("the small model: 0.72 s per step of 16 crops on 1 CPU thread "
               "(benchmarks/results/cpu.json), about 25 ms on a T4 assumed (20 GFLOP a step "
               "at about 1 TFLOP/s)")
_NO_TRAINING = "no training: the full profile runs the same cells; at most the quick time"

_SMALL_MEM = "1-3 GiB (a small-model step of batch 16 peaks at 1.1-2.6 GiB on the CPU)"
_PAPER_MEM = "up to a T4's 15 GiB (the colab preset is sized for it; AMP fp16)"
#: GPU memory of the full profile per chapter: none is measured on a GPU, so each says why
MEMORY = {"00": "under 2 GiB (inference with a small model)", "02": "under 1 GiB (small MLPs)",
          "04": _SMALL_MEM, "05": _SMALL_MEM, "07": _PAPER_MEM, "08": _PAPER_MEM,
          "09": _PAPER_MEM, "11": _SMALL_MEM,
          "10": ("under 2 GiB with the default ticks (shipped small models scored); "
                 f"a ticked variant: {_PAPER_MEM}")}

#: estimated minutes of one full-profile training run, for the chapters that train only the
#: variants the reader ticks (:func:`inr_lib.book.selection.choose` adds them up)
RUN_MINUTES = {"10": 60, "11": 5.33}

#: full profile per chapter (Colab, T4): minutes in all, minutes of training with the chapter's
#: default choices (chapters 10 and 11: the default ticks of their form), and why
FULL = {
    "00": (None, 0, _NO_TRAINING),
    "01": (None, 0, _NO_TRAINING),
    "02": (5, 2, ("about 15,000 optimiser steps of MLPs on 64x64 images (2,000-3,000 a fit) "
                  "at a few ms a step")),
    "03": (None, 0, _NO_TRAINING),
    "04": (5, 2, f"3,000 steps of {_SMALL_STEP}"),
    "05": (6, 2, f"3,000 steps of {_SMALL_STEP}"),
    "06": (None, 0, _NO_TRAINING),
    "07": (80, 70, f"the colab preset, 150 epochs of 16 steps on dev18, {_PAPER_STEP}"),
    "08": (90, 80, ("chapter 7's run when it is not on Drive yet (70 min) and the CNN baseline "
                    "on the colab schedule (about 10 min, assumed)")),
    "09": (150, 140, ("the colab recipe on NUS and NTIRE 2018 where you have them (about 70 "
                      f"min each; nothing trains without them), {_PAPER_STEP}")),
    "10": (10, 0, ("the default ticks train nothing: every variant with a shipped counterpart "
                   "(abl-*) is loaded from the zoo and scored on the dev18 test scenes (about ten "
                   "evaluations of a 0.7 M-parameter model, and the CAVE download on first use; "
                   "assumed); each ticked variant trains one run per seed on the colab schedule, "
                   f"about an hour a run ({_PAPER_STEP})")),
    "11": (30, 21, ("the default ticks (cont-even and bands-even, two seeds each): four runs of "
                    "12,800 steps (the shipped small models' budget), about 5.3 min a run "
                    f"({_SMALL_STEP}); bands-all is the shipped small; ticking bands-all or "
                    "cont-all adds a run each")),
    "12": (None, 0, _NO_TRAINING),
}


def main(paths: list[str]) -> int:
    chapters = [Path(p) for p in paths] or sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    record = json.loads(OUT.read_text()) if OUT.is_file() else {"chapters": {}}
    env = {**os.environ, "INR_PROFILE": "quick", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    failed = 0
    for nb in chapters:
        t0 = time.perf_counter()
        load = os.getloadavg()[0]
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "--nbval-lax", "--nbval-current-env", str(nb)],
                           cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        failed += r.returncode != 0
        key = nb.name.split("_")[0]
        entry = record["chapters"].setdefault(key, {})
        entry["file"] = nb.name
        entry["quick"] = {"seconds": round(seconds), "passed": r.returncode == 0,
                          "load_average_at_start": round(load, 1)}
        print(f"{nb.name}: {seconds:.0f} s, {'passed' if r.returncode == 0 else 'FAILED'} "
              f"(load average {load:.1f})", flush=True)
        if r.returncode:
            print(r.stdout[-3000:], flush=True)
        record["quick_protocol"] = _protocol(env)
        _write(record)
    return 1 if failed else 0


def _write(record: dict) -> None:
    """Add the full-profile estimates of :data:`FULL` and write the file."""
    for key, (minutes, train_minutes, basis) in FULL.items():
        entry = record["chapters"].setdefault(key, {})
        quick = entry.get("quick", {}).get("seconds", 0) / 60
        entry["full"] = {"minutes": minutes if minutes is not None else max(1, math.ceil(quick)),
                         "train_minutes": train_minutes, "basis": basis,
                         "label": "an estimate, not measured on a GPU",
                         "gpu_memory": MEMORY.get(key, "none needed (no GPU work)")}
        if key in RUN_MINUTES:
            entry["full"]["run_minutes"] = RUN_MINUTES[key]
    OUT.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    _write_page(record)


def _write_page(record: dict) -> None:
    """Rewrite the table of ``book/colab.md`` between :data:`MARKERS` from ``record``."""
    if not PAGE.is_file():
        return
    text = PAGE.read_text()
    start, end = text.index(MARKERS[0]) + len(MARKERS[0]), text.index(MARKERS[1])
    rows = [("| chapter | quick profile (measured, CPU) | full profile (estimate, T4) | of it training "
             "| GPU memory, full (estimate) | `auto` on a Colab GPU |"),
            "|---|---|---|---|---|---|"]
    for key, e in sorted(record["chapters"].items()):
        quick, full = e.get("quick", {}), e["full"]
        auto = "quick (ask for full)" if full["train_minutes"] > 30 else "full"
        rows.append(f"| {key} | {_fmt(quick.get('seconds'))} | {_fmt(full['minutes'] * 60)} | "
                    f"{_fmt(full['train_minutes'] * 60) if full['train_minutes'] else 'none'} | "
                    f"{full['gpu_memory']} | {auto} |")
    ticks = "; ".join(f"chapter {int(k)}: about {_fmt(e['full']['run_minutes'] * 60)} a run"
                      for k, e in sorted(record["chapters"].items()) if e["full"].get("run_minutes"))
    note = (f"\n\nQuick: {record.get('quick_protocol', 'not measured yet')}. Full: estimates, not "
            f"measured on a GPU; the basis of each is in `inr_lib/book/chapter_times.json`."
            + (f" Chapters with a form of variants to train count the default ticks; each "
               f"further ticked run adds its time ({ticks})." if ticks else "") + "\n")
    PAGE.write_text(text[:start] + "\n" + "\n".join(rows) + note + text[end:])


def _fmt(seconds) -> str:
    """``45 s``, ``12 min``, ``10.3 h`` or a dash."""
    if not seconds:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


def _protocol(env: dict) -> str:
    """One line: how the quick times were measured."""
    import torch

    data = "real CAVE (INR_CAVE, dev8)" if env.get("INR_CAVE") else "synthetic CAVE-layout data"
    return (f"pytest --nbval-lax, INR_PROFILE=quick, OMP_NUM_THREADS=1, {data}; "
            f"{platform.machine()} CPU, {os.cpu_count()} cores shared with other jobs "
            f"(load average at each start recorded), torch {torch.__version__}, "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--estimates"]:          # rewrite the full-profile estimates only
        _write(json.loads(OUT.read_text()) if OUT.is_file() else {"chapters": {}})
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
