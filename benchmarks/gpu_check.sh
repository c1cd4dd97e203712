#!/usr/bin/env bash
# The one-command GPU check (benchmarks/README.md, "GPU check"): CUDA tests, benchmarks, a short
# paper-recipe training run and its evaluation, results in $OUT/gpu_check.json, <= 8 minutes.
# Stage the data and wheels first, where ../shared/data/cave exists:
#     python benchmarks/gpu_check.py --stage-data        # fills gpu_data/ (git-ignored)
# then on the GPU machine, from anywhere:
#     bash benchmarks/gpu_check.sh                       # extra arguments go to gpu_check.py
set -u
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" benchmarks/gpu_check.py --out "${OUT:-runs/gpu_check}" "$@"
