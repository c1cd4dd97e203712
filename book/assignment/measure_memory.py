"""Peak memory of one forward and backward pass of a per-pixel MLP path (for task B1).

Usage::

    python measure_memory.py --size 64 --path readable      # prints one JSON line

Runs on the CPU and reports the growth of the process's peak resident memory (ru_maxrss,
Linux and macOS) during the pass, in MiB, with the paper's MLP (widths 11, 64, 64, 64, 64,
31; P = 15,263) on one ``size x size`` image. Run one measurement per process: the peak of a
process never goes down. Uses ``inr_lib.model.pixelwise`` (this script is not a solution).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys

import torch

WIDTHS = (11, 64, 64, 64, 64, 31)


def _peak_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024   # bytes on macOS, KiB on Linux


def measure(size: int, path: str) -> dict:
    """Forward + backward of ``path`` ("readable" or "fast") on a ``size x size`` image."""
    from inr_lib.model.pixelwise import apply_mlp_fast, apply_mlp_readable, mlp_param_count

    if size % 4:
        raise SystemExit(f"measure_memory.py: --size must be a multiple of 4, got {size}")
    P = mlp_param_count(WIDTHS)
    params = (torch.randn(1, P, size // 4, size // 4) * 0.1).requires_grad_(True)
    x = torch.randn(1, WIDTHS[0], size, size).requires_grad_(True)
    fn = {"readable": apply_mlp_readable, "fast": apply_mlp_fast}[path]
    before = _peak_mib()
    fn(params, x, WIDTHS, 4).square().mean().backward()
    return {"size": size, "path": path, "peak_extra_mib": round(_peak_mib() - before, 1),
            "per_pixel_params_mib": round(P * size * size * 4 / 2**20, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="image side in pixels (multiple of 4)")
    ap.add_argument("--path", choices=("readable", "fast"), default="readable")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(json.dumps(measure(args.size, args.path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
