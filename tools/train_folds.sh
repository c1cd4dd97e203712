#!/usr/bin/env bash
# Cross-validate zoo designs over the 3 folds of the 18 development scenes (splits
# dev18-fold1..3: 12 train / 6 test each, every scene tested once), then score every fold's
# final weights (last.pt) on its 6 test scenes, full images, in both inference modes.
#   tools/train_folds.sh abl-reference abl-norm-none-tile      # names of inr_lib/pretrained/configs/*.yaml
# Resumable like tools/train_zoo.sh (run the same line again after a stop). Writes
# runs/folds/NAME@foldK/ (the run) and runs/folds/NAME@foldK.{tiled,whole}.json (the scores);
# tools/fold_table.py reads them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${ZOO_DATA:-cave:../shared/data/cave,../shared/data/cave_extra}
mkdir -p runs/folds
for name in "$@"; do
  cfg=inr_lib/pretrained/configs/$name.yaml
  [ -f "$cfg" ] || { echo "error: no config $cfg" >&2; exit 1; }
  for k in 1 2 3; do
    run=runs/folds/$name@fold$k
    echo "== $(date -u +%FT%TZ) $name fold $k commit $(git rev-parse HEAD)" >> $run.out
    OMP_NUM_THREADS=1 nice -n 10 $PY -m inr_lib train --config "$cfg" --data "$DATA" \
      --split dev18-fold$k --out $run --device cpu --resume --no-progress >> $run.out 2>&1
    for mode in tiled whole; do
      [ -f $run.$mode.json ] || OMP_NUM_THREADS=1 nice -n 10 $PY -m inr_lib evaluate \
        --checkpoint $run/last.pt --data "$DATA" --split dev18-fold$k:test --mode $mode \
        --device cpu --no-progress --json $run.$mode.json >> $run.out 2>&1
    done
  done
done
