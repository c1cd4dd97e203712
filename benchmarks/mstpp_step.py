"""CPU time of one training step: MST++ (``"mstpp"``) against the INR ``small-paper`` preset.

One step is what the training loop does per batch (:func:`inr_lib.train.train_step`): forward,
L1 loss on [-1, 1]-scaled output and target, backward, Adam; on a batch of 16 random 64x64
crops, on one torch thread, in float32. The two models' steps alternate (A, B, A, B, ...) so
that a change of the machine's load hits both alike; each is timed with the process's CPU time
(``time.process_time``, what the step itself costs, whatever else runs on the cores) and wall
time, after one warm-up step each. It prints the median of each and the ratio, which sets the
epochs of ``inr_lib/pretrained/configs/mstpp.yaml`` (the same wall-time budget as
``small-paper.yaml``)::

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/mstpp_step.py [--reps 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from inr_lib.model import registry as archs
from inr_lib.train import grad_scaler, train_step

#: name -> (architecture, configuration) as the registry builds them
MODELS = {"mstpp": ("mstpp", None), "small-paper": ("inr", "small-paper")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5, help="timed steps per model (default 5)")
    p.add_argument("--batch", type=int, default=16, help="crops per step (default 16)")
    p.add_argument("--crop", type=int, default=64, help="crop side in pixels (default 64)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    batch = (torch.rand(a.batch, 3, a.crop, a.crop, generator=g),
             torch.rand(a.batch, 31, a.crop, a.crop, generator=g))
    scaler = grad_scaler(False)             # float32: passes the loss and the step through
    runs = {}
    for name, (arch, config) in MODELS.items():
        model = archs.build(arch, config, seed=0).train()
        runs[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-4))
        train_step(model, batch, runs[name][1], scaler, None)   # warm-up: allocations, Adam state
    cpu: dict = {name: [] for name in runs}
    wall: dict = {name: [] for name in runs}
    for _ in range(a.reps):
        for name, (model, optimizer) in runs.items():      # interleaved: A, B, A, B, ...
            c0, w0 = time.process_time(), time.perf_counter()
            train_step(model, batch, optimizer, scaler, None)
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    print(f"one training step, batch {a.batch} of {a.crop}x{a.crop}, {a.threads} torch thread(s), "
          f"{a.reps} interleaved repetitions (median); torch {torch.__version__}, "
          f"{os.cpu_count()}-core {platform.machine()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':<13}{'params':>11}{'CPU s':>9}{'wall s':>9}  CPU s of each repetition")
    for name, (model, _) in runs.items():
        n = sum(q.numel() for q in model.parameters())
        print(f"{name:<13}{n:>11,}{statistics.median(cpu[name]):>9.3f}"
              f"{statistics.median(wall[name]):>9.3f}  " + " ".join(f"{t:.3f}" for t in cpu[name]))
    ratio_cpu = statistics.median(cpu["mstpp"]) / statistics.median(cpu["small-paper"])
    ratio_wall = statistics.median(wall["mstpp"]) / statistics.median(wall["small-paper"])
    print(f"ratio mstpp / small-paper: {ratio_cpu:.2f} (CPU time), {ratio_wall:.2f} (wall time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
