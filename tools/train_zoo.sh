#!/usr/bin/env bash
# Train (or continue) the shipped models, one after another, the way their cards record: one
# torch thread, CPU, resumable (run the same line again after a stop: it continues exactly).
#   tools/train_zoo.sh small-paper abl-reference ...      # names of inr_lib/pretrained/configs/*.yaml
# Data: the dev18 scenes in ../shared/data/cave and ../shared/data/cave_extra (or $ZOO_DATA).
# Each start is logged with the code's commit in runs/zoo/NAME.out (the card's code_commit).
# Run it from a checkout that does not change while it trains (a training imports parts of the
# library lazily, e.g. for validation), e.g. a pinned worktree sharing this runs/ folder:
#   git worktree add --detach ../zoo HEAD && ln -s "$PWD/runs" ../zoo/runs && ../zoo/tools/train_zoo.sh NAME
# ZOO_SPLIT (default dev18) and ZOO_RUN (default runs/zoo/NAME) train on another split into
# another folder (tools/train_folds.sh uses them for the cross-validation folds).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${ZOO_DATA:-cave:../shared/data/cave,../shared/data/cave_extra}
for name in "$@"; do
  cfg=inr_lib/pretrained/configs/$name.yaml
  [ -f "$cfg" ] || { echo "error: no config $cfg" >&2; exit 1; }
  run=${ZOO_RUN:-runs/zoo/$name}
  mkdir -p "$(dirname "$run")"
  echo "== $(date -u +%FT%TZ) $name split ${ZOO_SPLIT:-dev18} commit $(git rev-parse HEAD)" >> "$run.out"
  OMP_NUM_THREADS=1 nice -n 10 $PY -m inr_lib train --config "$cfg" --data "$DATA" \
    --split "${ZOO_SPLIT:-dev18}" --out "$run" --device cpu --resume --no-progress >> "$run.out" 2>&1
done
