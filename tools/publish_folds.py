"""Copy finished fold evaluations into the package: runs/folds/NAME@foldK.MODE.json ->
inr_lib/pretrained/folds/NAME@dev18-foldK.MODE.json (what inr_lib.book.folds reads).

    python tools/publish_folds.py abl-reference abl-norm-none-tile

A design is copied only when all three folds are finished (the run's log has its last epoch)
and scored in both modes, and each result file names the fold's split and its 6 test scenes.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from inr_lib.data import cave_split  # noqa: E402

RUNS = ROOT / "runs" / "folds"
DEST = ROOT / "inr_lib" / "pretrained" / "folds"


def check(name: str) -> list[tuple[Path, Path]]:
    """The (source, destination) pairs of a finished design; raises SystemExit naming what is missing."""
    epochs = yaml.safe_load((ROOT / "inr_lib" / "pretrained" / "configs" / f"{name}.yaml").read_text())["epochs"]
    pairs = []
    for k in (1, 2, 3):
        run, fold = RUNS / f"{name}@fold{k}", f"dev18-fold{k}"
        log = run / "log.jsonl"
        last = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
        if not last or max(r.get("epoch", 0) for r in last) < epochs:
            raise SystemExit(f"error: {run} is not finished ({epochs} epochs); run tools/train_folds.sh {name}")
        for mode in ("tiled", "whole"):
            src = RUNS / f"{name}@fold{k}.{mode}.json"
            if not src.is_file():
                raise SystemExit(f"error: {src} is missing; run tools/train_folds.sh {name}")
            res = json.loads(src.read_text())
            scenes = sorted(s["scene"] for s in res["per_scene"])
            if scenes != sorted(cave_split(fold)["test"]):
                raise SystemExit(f"error: {src} scores {scenes}, not the test scenes of {fold}")
            pairs.append((src, DEST / f"{name}@{fold}.{mode}.json"))
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+")
    args = ap.parse_args()
    DEST.mkdir(exist_ok=True)
    for name in args.names:
        for src, dst in check(name):
            shutil.copyfile(src, dst)
            print(f"{src.relative_to(ROOT)} -> {dst.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
