"""Cost per pixel of the continuous spectral output against the 31-band output.

For a preset (default ``small``), times on one image (whole-image inference, eval mode, no
gradient; the median of ``--repeat`` runs after a warm-up):

* ``bands``: the 31-band model, ``model(rgb)``;
* ``continuous``: the continuous model at the 31 band centres, ``model(rgb)``;
* ``continuous, N nm``: the continuous model at N wavelengths, ``model.spectra(rgb, wl)``
  (e.g. 301 = every nanometre of 400-700 nm);

and prints milliseconds per image and nanoseconds per pixel, with the parameter counts.

    python benchmarks/spectral_cost.py --device cpu --size 256
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from inr_lib import build_model
from inr_lib.spectral import WAVELENGTHS


def _time(fn, repeat: int, device: torch.device) -> float:
    """Median wall time of ``fn()`` in seconds (one warm-up call first)."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad():
        fn()
        sync()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rgb = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    bands = build_model(args.preset, seed=0).eval().to(device)
    cont = build_model(args.preset, spectral="continuous", seed=0).eval().to(device)
    fine = np.arange(400, 701, 1.0)
    cases = [
        ("bands: model(rgb)", bands, len(WAVELENGTHS), lambda: bands(rgb)),
        ("continuous: model(rgb), 31 band centres", cont, len(WAVELENGTHS), lambda: cont(rgb)),
        ("continuous: spectra(rgb, 301 wavelengths)", cont, len(fine), lambda: cont.spectra(rgb, fine)),
    ]
    pixels = args.size * args.size
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"preset {args.preset!r}, one {args.size}x{args.size} image, whole-image inference, "
          f"{device.type} ({name}), {args.threads} thread(s), torch {torch.__version__}, "
          f"median of {args.repeat}")
    print(f"{'case':45s} {'parameters':>11s} {'outputs':>8s} {'ms/image':>9s} {'ns/pixel':>9s}")
    for label, model, outputs, fn in cases:
        s = _time(fn, args.repeat, device)
        print(f"{label:45s} {model.num_parameters():>11,} {outputs:>8d} {1e3 * s:>9.1f} "
              f"{1e9 * s / pixels:>9.0f}")


if __name__ == "__main__":
    main()
