"""CPU time of one training step: the B-spline head against the wavelength-as-coordinate head.

The ``small`` model as ``inr_lib/pretrained/configs/small-continuous-even.yaml`` trains it (batch
16 of 64x64 crops, loss on the 16 even bands, Adam, fp32) with ``spectral="continuous"`` (13
cubic B-spline coefficients per pixel) and with ``spectral="coordinate"`` (the MLP run once per
pixel and wavelength). Each step is :func:`inr_lib.train.train_step`, exactly as the training
loop calls it: the B-spline head computes ``model(rgb)`` at the 31 band centres and the 16 even
bands enter the loss; the coordinate head is evaluated at the 16 even wavelengths only. A third
case is the coordinate head's step as the loop took it before: all 31 band centres, then the
16 even bands kept.

One torch thread; after a warm-up step per case the cases are timed in turn (interleaved, so a
change of machine load affects them alike) ``--repeat`` times; the table gives the medians of
CPU time (``time.process_time``: this process's own CPU time, less sensitive than wall time
to other processes on the machine) and of wall time, and each case's CPU-time ratio to the
B-spline head.

    OMP_NUM_THREADS=1 python benchmarks/coordinate_step.py --repeat 7
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from inr_lib import build_model
from inr_lib.spectral import WAVELENGTHS
from inr_lib.train import grad_scaler, train_step

EVEN = [float(w) for w in WAVELENGTHS[::2]]        # 400, 420, ..., 700 nm


def _loop_step(model, opt, scaler, batch):
    """What the training loop does: ``train_step`` with the 16 even bands as targets."""
    return lambda: train_step(model, batch, opt, scaler, None, EVEN)


def _all_bands_step(model, opt, batch):
    """The coordinate model evaluated at all 31 band centres, the 16 targets kept (the loop's
    way before it evaluated a coordinate model at the targets only)."""
    rgb, hsi = batch

    def step():
        loss = F.l1_loss(model(rgb)[:, ::2] * 2 - 1, hsi[:, ::2] * 2 - 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=64)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    batch = (torch.rand(args.batch, 3, args.crop, args.crop, generator=g),
             torch.rand(args.batch, 31, args.crop, args.crop, generator=g))
    scaler = grad_scaler(False)
    cases = []
    for label, spectral, before in (("B-spline head (continuous): train_step", "continuous", False),
                                    ("coordinate head: train_step", "coordinate", False),
                                    ("coordinate head: all 31, 16 kept (before)", "coordinate", True)):
        model = build_model("small", spectral=spectral, seed=0).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        fn = _all_bands_step(model, opt, batch) if before else _loop_step(model, opt, scaler, batch)
        fn()                                                       # warm-up
        cases.append((label, model, fn, [], []))
    for _ in range(args.repeat):
        for _, _, fn, cpu, wall in cases:
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
    print(f"small, batch {args.batch} of {args.crop}x{args.crop}, loss on the 16 even bands, "
          f"1 torch thread, {platform.processor() or platform.machine()}, torch "
          f"{torch.__version__}; median of {args.repeat} interleaved steps")
    print(f"{'case':42s} {'parameters':>10s} {'P':>5s} {'CPU s':>7s} {'wall s':>7s} {'CPU ratio':>9s}")
    base = statistics.median(cases[0][3])
    for label, model, _, cpu, wall in cases:
        c = statistics.median(cpu)
        print(f"{label:42s} {model.num_parameters():>10,} {model.config.mlp_params:>5d} "
              f"{c:>7.3f} {statistics.median(wall):>7.3f} {c / base:>9.2f}")


if __name__ == "__main__":
    main()
