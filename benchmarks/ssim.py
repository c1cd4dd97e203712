"""SSIM speed: ``inr_lib.evaluation.metrics.ssim`` against scikit-image on the same image pair.

Example::

    OMP_NUM_THREADS=1 python benchmarks/ssim.py --size 31 512 512

Times one call of each on the same random (C, H, W) pair in [0, 1] (a noisy copy of a
smooth random image, clipped) after a small warm-up call, and prints wall-clock and CPU
(process) seconds, their ratio and the absolute difference of the two SSIM values.
scikit-image runs on one thread; torch runs on ``--threads`` (default 1, a like-for-like
comparison). The CPU-time ratio is the steadier number on a loaded machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from skimage.metrics import structural_similarity

from inr_lib.evaluation import metrics


def make_pair(c: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A (1, C, H, W) float64 target with some spatial structure and a noisy prediction."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, c, h // 8 + 1, w // 8 + 1, generator=g, dtype=torch.float64)
    target = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear")
    target = (target + 0.02 * torch.randn(target.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    pred = (target + 0.03 * torch.randn(target.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return pred, target


def skimage_ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """scikit-image SSIM of one (C, H, W) pair with the settings of ``inr_lib.evaluation.metrics``."""
    return structural_similarity(
        target, pred, channel_axis=0, gaussian_weights=True, sigma=metrics.SSIM_SIGMA,
        use_sample_covariance=False, data_range=1.0, K1=metrics.SSIM_K1, K2=metrics.SSIM_K2,
    )


def timed(fn):
    """Run ``fn()`` once; return (result, wall seconds, CPU seconds of this process)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, nargs=3, default=[31, 512, 512], metavar=("C", "H", "W"))
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pred, target = make_pair(*args.size)
    p_np, t_np = pred[0].numpy(), target[0].numpy()
    metrics.ssim(pred[:, :2, :64, :64], target[:, :2, :64, :64])  # warm-up (BLAS init)
    skimage_ssim(p_np[:2, :64, :64], t_np[:2, :64, :64])

    ours, ours_wall, ours_cpu = timed(lambda: metrics.ssim(pred, target).item())
    ref, ref_wall, ref_cpu = timed(lambda: skimage_ssim(p_np, t_np))
    c, h, w = args.size
    print(f"SSIM of one 1x{c}x{h}x{w} float64 pair on CPU ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, torch threads {args.threads})")
    print(f"  inr_lib.evaluation.metrics.ssim : wall {ours_wall:7.3f} s  cpu {ours_cpu:7.3f} s  value {ours:.15f}")
    print(f"  skimage (1 thread)   : wall {ref_wall:7.3f} s  cpu {ref_cpu:7.3f} s  value {ref:.15f}")
    print(f"  speed-up over scikit-image: wall {ref_wall / ours_wall:.2f}x, cpu {ref_cpu / ours_cpu:.2f}x; "
          f"|difference| {abs(ours - ref):.1e}")


if __name__ == "__main__":
    main()
