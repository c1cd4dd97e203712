"""Fit the "cave-rgb" camera pipeline to real CAVE scenes and print how closely it reproduces
their ``*_RGB.bmp`` images, in 8-bit codes, per scene.

    python tools/fit_camera_pipeline.py DIR [DIR ...]          # print the per-scene table
    python tools/fit_camera_pipeline.py DIR [DIR ...] --write  # and store the fit

The pipeline (:class:`inr_lib.spectral.CameraPipeline`) is, per channel c,
``code_c = 255 * clip(hsi @ response[:, c], 0, 1) ** (1 / gamma_c)``. It is fitted on the
training scenes of the ``dev18`` split that are present (3000 pixels drawn per scene, seed 0):
for each channel, a linear least-squares start at gammas 1.0, 1.25, ..., 3.0 (on the
linearised codes), then nonlinear least squares on the code error itself. Every present scene
is then scored on all its pixels, with the predicted codes rounded to integers; scenes outside
the fit (dev18's test scenes, or any other) are marked "held out".

``--write`` stores the response, the gammas, the protocol and the table in
``inr_lib/pipelines/cave-rgb.json``, which :func:`inr_lib.spectral.get_pipeline` reads and
chapter 6 shows.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inr_lib.data import cave_split, list_cave_scenes, load_cave_scene  # noqa: E402 (after the sys.path line: runs from a checkout)

OUT = ROOT / "inr_lib" / "pipelines" / "cave-rgb.json"
PIXELS_PER_SCENE = 3000
SEED = 0
GAMMA_STARTS = np.arange(1.0, 3.01, 0.25)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", help="folders of real CAVE scenes")
    p.add_argument("--write", action="store_true", help=f"store the fit in {OUT.relative_to(ROOT)}")
    args = p.parse_args(argv)
    scenes = {s.name: s for s in (load_cave_scene(d.path) for d in list_cave_scenes(args.folders))}
    fit_names = [n for n in cave_split("dev18")["train"] if n in scenes]
    if len(fit_names) < 2:
        print(f"error: need at least 2 dev18 training scenes in {args.folders}, found "
              f"{fit_names}; pass the folders that hold them", file=sys.stderr)
        return 1
    response, gamma = fit([scenes[n] for n in fit_names])
    rows = [score(s, response, gamma) | {"scene": n, "used": "fit" if n in fit_names else "held out"}
            for n, s in sorted(scenes.items())]
    print_table(rows)
    if args.write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(record(response, gamma, fit_names, rows), indent=1) + "\n")
        print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


def fit(scenes: list) -> tuple[np.ndarray, np.ndarray]:
    """``(response (31, 3), gamma (3,))`` minimising the squared code error on a pixel sample."""
    from scipy.optimize import least_squares

    rng = np.random.default_rng(SEED)
    hs, ys = [], []
    for s in scenes:
        h = s.hsi.reshape(31, -1).T.astype(np.float64)
        y = np.round(s.rgb.reshape(3, -1).T.astype(np.float64) * 255.0)
        idx = rng.choice(h.shape[0], PIXELS_PER_SCENE, replace=False)
        hs.append(h[idx])
        ys.append(y[idx])
    h, y = np.concatenate(hs), np.concatenate(ys)
    response, gamma = np.zeros((31, 3)), np.zeros(3)
    for c in range(3):
        start = min((_linear_start(h, y[:, c], g) for g in GAMMA_STARTS),
                    key=lambda p, c=c: float(np.mean((_codes(h, p) - y[:, c]) ** 2)))
        sol = least_squares(lambda p, c=c: _codes(h, p) - y[:, c], start, jac=lambda p: _jacobian(h, p),
                            max_nfev=100)
        response[:, c], gamma[c] = sol.x[:31], sol.x[31]
    return response, gamma


def _codes(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    return 255.0 * np.clip(h @ p[:31], 0.0, 1.0) ** (1.0 / p[31])


def _linear_start(h: np.ndarray, y: np.ndarray, g: float) -> np.ndarray:
    """Least squares on the linearised codes ``(y / 255) ** g``, weighted so each pixel counts
    about as its code error would."""
    w = np.clip(y / 255.0, 0.02, 1.0) ** (1.0 - g)
    r = np.linalg.lstsq(h / w[:, None], (y / 255.0) ** g / w, rcond=None)[0]
    return np.r_[r, g]


def _jacobian(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    raw = h @ p[:31]
    lin, g = np.clip(raw, 1e-4, 1.0), p[31]
    inside = ((raw > 0) & (raw < 1)).astype(np.float64)  # clipped pixels do not move
    d_resp = (255.0 / g * lin ** (1.0 / g - 1.0) * inside)[:, None] * h
    d_gamma = -255.0 / g**2 * lin ** (1.0 / g) * np.log(lin) * inside
    return np.concatenate([d_resp, d_gamma[:, None]], axis=1)


def score(scene, response: np.ndarray, gamma: np.ndarray) -> dict:
    """Code errors of the pipeline on every pixel and channel of ``scene``."""
    from inr_lib.spectral import CameraPipeline

    pred = np.round(CameraPipeline("fit", response, gamma, {})(scene.hsi.astype(np.float64)) * 255.0)
    err = np.abs(pred - np.round(scene.rgb.astype(np.float64) * 255.0))
    return {"mae": float(err.mean()), "rmse": float(np.sqrt((err**2).mean())),
            "p99": float(np.percentile(err, 99)), "within2": float((err <= 2).mean())}


def print_table(rows: list) -> None:
    print(f"{'scene':24s} {'used':9s} {'mean |err|':>10s} {'RMSE':>6s} {'99th pct':>8s} {'<= 2 codes':>10s}")
    for r in rows:
        print(f"{r['scene']:24s} {r['used']:9s} {r['mae']:10.2f} {r['rmse']:6.2f} {r['p99']:8.0f} "
              f"{100 * r['within2']:9.1f}%")


def record(response: np.ndarray, gamma: np.ndarray, fit_names: list, rows: list) -> dict:
    return {
        "name": "cave-rgb",
        "description": "CAVE's *_RGB.bmp as a function of the scene's bands: a linear 31->3 "
                       "response, clipped to [0, 1], then code = 255 * x ** (1 / gamma) per channel",
        "protocol": {
            "script": "tools/fit_camera_pipeline.py", "split": "dev18",
            "fit_scenes": fit_names, "pixels_per_scene": PIXELS_PER_SCENE, "seed": SEED,
            "loss": "squared 8-bit code error (nonlinear least squares, per channel)",
            "scores": "every pixel and channel of each scene, predicted codes rounded",
        },
        "scores": rows,
        "gamma": [round(float(g), 6) for g in gamma],
        "response": [[round(float(v), 8) for v in row] for row in response],
    }


if __name__ == "__main__":
    sys.exit(main())
