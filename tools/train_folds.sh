#!/usr/bin/env bash
# Cross-validate zoo designs over the 3 folds of the 18 development scenes (splits
# dev18-fold1..3: 12 train / 6 test each, every scene tested once): train each fold with
# tools/train_zoo.sh, then score the fold's final weights (last.pt) on its 6 test scenes, full
# images, in both inference modes.
#   tools/train_folds.sh abl-reference abl-norm-none-tile      # names of inr_lib/pretrained/configs/*.yaml
# Resumable (run the same line again after a stop). Writes runs/folds/NAME@foldK/ (the run) and
# runs/folds/NAME@foldK.{tiled,whole}.json (the scores); tools/publish_folds.py ships them and
# inr_lib.book.folds compares designs scene by scene.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${ZOO_DATA:-cave:../shared/data/cave,../shared/data/cave_extra}
for name in "$@"; do
  for k in 1 2 3; do
    run=runs/folds/$name@fold$k
    ZOO_SPLIT=dev18-fold$k ZOO_RUN=$run tools/train_zoo.sh "$name"
    for mode in tiled whole; do
      [ -f "$run.$mode.json" ] || OMP_NUM_THREADS=1 nice -n 10 $PY -m inr_lib evaluate \
        --checkpoint "$run/last.pt" --data "$DATA" --split "dev18-fold$k:test" --mode $mode \
        --device cpu --no-progress --json "$run.$mode.json" >> "$run.out" 2>&1
    done
  done
done
