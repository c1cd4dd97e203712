"""Which smooth basis should a continuous spectral output use? Measured on real CAVE spectra.

No network is involved: this measures how well each candidate function family can represent
and, above all, *predict* real spectra, which bounds what a model whose per-pixel MLP outputs
basis coefficients can do.

* **held out**: fit each candidate by least squares to the 16 even bands only (400, 420, ...,
  700 nm) of every sampled pixel and measure the RMSE at the 15 odd bands (410, ..., 690 nm),
  against linear, cubic-spline (not-a-knot and natural) and PCHIP interpolation of the
  even bands;
* **all 31**: fit to all 31 bands, RMSE at the 31 bands (how much a K-term basis loses);
* **ringing**, for each fit on a 1 nm grid: ``tv`` = total variation of the 1 nm curve over
  that of the 31 measured samples (mean over pixels; 1 = no extra wiggle), and ``over`` =
  the mean over pixels of the largest excursion of the 1 nm curve outside the range of the two
  measured band values around it (in [0, 1] units).

Pixels are sampled (seeded) from the 16 *training* scenes of split dev18, so the choice is made
without the test scenes; the same numbers on the 2 test scenes are printed as a check.
Values are reflectance-like band images in [0, 1].

Run (about a minute on a CPU):

    .venv/bin/python benchmarks/spectral_basis.py --cave ../shared/data/cave,../shared/data/cave_extra \
        | tee benchmarks/results/spectral_basis.txt
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator

from inr_lib.data.cave import cave_split, list_cave_scenes, load_cave_scene
from inr_lib.model.basis import bspline_basis, cosine_basis
from inr_lib.spectral import WAVELENGTHS

EVEN = np.arange(0, 31, 2)       # 400, 420, ..., 700 nm
ODD = np.arange(1, 31, 2)        # 410, 430, ..., 690 nm
FINE = np.arange(400.0, 700.5, 1.0)
KS_HELD = {"B-spline": tuple(range(8, 17)), "cosine": (8, 10, 12, 14, 16)}
KS_ALL = (8, 12, 13, 16, 20, 24, 31)
KS_COST = (8, 12, 13, 16)


def sample_pixels(roots: list[str], names: list[str], n: int, seed: int) -> np.ndarray:
    """``(n, 31)`` spectra sampled evenly from the named scenes."""
    found = {s.name: s for s in list_cave_scenes(roots)}
    missing = [m for m in names if m not in found]
    if missing:
        raise SystemExit(f"benchmarks/spectral_basis.py: scenes {missing} not found under "
                         f"{roots}; pass --cave with the folders holding them")
    rng = np.random.default_rng(seed)
    per = -(-n // len(names))
    out = []
    for name in names:
        hsi = load_cave_scene(found[name].path).hsi.reshape(31, -1)
        out.append(hsi[:, rng.choice(hsi.shape[1], per, replace=False)].T)
    return np.concatenate(out)[:n].astype(np.float64)


def ringing(curve: np.ndarray, bands: np.ndarray) -> tuple[float, float]:
    """``(tv ratio, overshoot)`` of 1 nm curves ``(N, 301)`` against the bands ``(N, 31)``."""
    tv_curve = np.abs(np.diff(curve, axis=1)).sum(1)
    tv_bands = np.abs(np.diff(bands, axis=1)).sum(1)
    ok = tv_bands > 1e-6
    lo = np.minimum(bands[:, :-1], bands[:, 1:])                 # (N, 30) per interval
    hi = np.maximum(bands[:, :-1], bands[:, 1:])
    seg = np.minimum(((FINE - 400) // 10).astype(int), 29)       # interval of each 1 nm point
    over = np.maximum(curve - hi[:, seg], lo[:, seg] - curve).clip(min=0).max(1)
    return float(np.mean(tv_curve[ok] / tv_bands[ok])), float(over.mean())


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def held_out_rows(spec: np.ndarray) -> list[tuple]:
    """Fit on the even bands, predict the odd ones."""
    x_even, y_even = WAVELENGTHS[EVEN].astype(float), spec[:, EVEN]
    rows = []
    interps = {
        "linear interp.": lambda x: np.stack([np.interp(x, x_even, s) for s in y_even]),
        "cubic spline (not-a-knot)": lambda x: CubicSpline(x_even, y_even, axis=1)(x),
        "cubic spline (natural)": lambda x: CubicSpline(x_even, y_even, axis=1, bc_type="natural")(x),
        "PCHIP": lambda x: PchipInterpolator(x_even, y_even, axis=1)(x),
    }
    for name, f in interps.items():
        rows.append((name, "-", rmse(f(WAVELENGTHS[ODD]), spec[:, ODD]),
                     *ringing(f(FINE), spec)))
    for family, basis in (("B-spline", bspline_basis), ("cosine", cosine_basis)):
        for k in KS_HELD[family]:
            A = basis(x_even, k)                                 # (16, K)
            coef, *_ = np.linalg.lstsq(A, y_even.T, rcond=None)  # (K, N)
            pred_odd = (basis(WAVELENGTHS[ODD], k) @ coef).T
            curve = (basis(FINE, k) @ coef).T
            rows.append((f"{family} K={k} (cond {np.linalg.cond(A):.0f})", k,
                         rmse(pred_odd, spec[:, ODD]), *ringing(curve, spec)))
    return rows


def all_bands_rows(spec: np.ndarray) -> list[tuple]:
    """Fit on all 31 bands: representation error and ringing."""
    x = WAVELENGTHS.astype(float)
    rows = []
    for family, basis in (("B-spline", bspline_basis), ("cosine", cosine_basis)):
        for k in KS_ALL:
            coef, *_ = np.linalg.lstsq(basis(x, k), spec.T, rcond=None)
            fit = (basis(x, k) @ coef).T
            curve = (basis(FINE, k) @ coef).T
            rows.append((f"{family} K={k}", k, rmse(fit, spec), *ringing(curve, spec)))
    return rows


def print_table(title: str, rows: list[tuple], err: str) -> None:
    print(f"\n{title}")
    print(f"{'method':34s} {err:>12s} {'tv ratio':>9s} {'overshoot':>10s}")
    for name, _, e, tv, over in rows:
        print(f"{name:34s} {e:12.5f} {tv:9.3f} {over:10.5f}")


def print_cost(hidden: int = 64, deep: int = 1024, tile: int = 4) -> None:
    """FLOPs per pixel (multiply-add = 2) of the MLP's last layer and the basis evaluation."""
    print(f"\ncost per pixel, paper widths (last hidden layer {hidden}, hypernetwork head from "
          f"{deep} channels, one MLP per {tile}x{tile} tile):")
    print(f"{'output':14s} {'last layer':>11s} {'basis @31':>10s} {'basis @N':>10s} "
          f"{'head/pixel':>11s}")
    for name, k in (("31 bands", 31), *((f"K={k}", k) for k in KS_COST)):
        last = 2 * hidden * k + k
        basis31 = 0 if k == 31 and name == "31 bands" else 2 * k * 31
        head = 2 * deep * (hidden * k + k) // (tile * tile)
        per_n = "-" if name == "31 bands" else f"{2 * k}*N"
        print(f"{name:14s} {last:11d} {basis31:10d} {per_n:>10s} {head:11d}")
    print("(basis @31 and @N: dense evaluation at the 31 band centres / at N wavelengths; a "
          "cubic B-spline has only 4 non-zero functions per wavelength, i.e. 8*N if evaluated "
          "sparsely. head/pixel: the share of the hypernetwork's 1x1 head that predicts the "
          "last layer, per pixel.)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cave", default="../shared/data/cave,../shared/data/cave_extra",
                   help="comma-separated folders holding the CAVE scenes of split dev18")
    p.add_argument("--pixels", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    roots = args.cave.split(",")
    split = cave_split("dev18")
    t0 = time.perf_counter()
    train = sample_pixels(roots, split["train"], args.pixels, args.seed)
    test = sample_pixels(roots, split["test"], args.pixels // 4, args.seed + 1)
    print(f"spectral basis benchmark: {len(train)} pixels from the {len(split['train'])} dev18 "
          f"training scenes (seed {args.seed}), {len(test)} from the 2 test scenes as a check")
    print(f"mean spectrum value {train.mean():.4f}, mean |odd band - mean of neighbours| "
          f"{np.abs(train[:, ODD] - (train[:, ODD - 1] + train[:, ODD + 1]) / 2).mean():.5f}")
    for label, spec in (("training scenes", train), ("test scenes (check)", test)):
        rows = held_out_rows(spec)
        print_table(f"[{label}] fit the 16 even bands, RMSE at the 15 odd bands", rows,
                    "odd RMSE")
        if spec is train:
            best = min((r for r in rows if r[1] != "-"), key=lambda r: r[2])
    print(f"\nbest basis on the training scenes (held-out odd-band RMSE): {best[0]}")
    for label, spec in (("training scenes", train), ("test scenes (check)", test)):
        print_table(f"[{label}] fit all 31 bands, RMSE at the 31 bands",
                    all_bands_rows(spec), "31 RMSE")
    print_cost()
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
