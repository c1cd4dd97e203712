"""The held-out-band experiment's scoring (inr_lib.book.heldout)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from inr_lib import build_model
from inr_lib.book.heldout import (
    EVEN,
    ODD,
    TABLE_HEADER,
    band_errors,
    compare,
    headline,
    psnr,
    summarise,
    table_rows,
)
from inr_lib.evaluation import evaluate
from inr_lib.spectral import WAVELENGTHS


class Constant(nn.Module):
    """Returns a fixed cube whatever the RGB (an 'oracle' for one scene)."""

    def __init__(self, cube: np.ndarray):
        super().__init__()
        self.register_buffer("cube", torch.from_numpy(cube)[None])

    def forward(self, x):
        return self.cube.expand(x.shape[0], -1, -1, -1)


def _scene(hsi: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(name="s", hsi=hsi.astype(np.float32), rgb=hsi[[25, 15, 5]].astype(np.float32),
                           wavelengths=WAVELENGTHS)


def test_model_row_equals_evaluate_per_band_rmse(random_scene):
    scenes = [random_scene("a", 0, 20, 16), random_scene("b", 1, 20, 16)]
    model = build_model("tiny", seed=0)
    got = band_errors(model, scenes, mode="tiled", tile=16, overlap=4)
    ref = evaluate(model, scenes, mode="tiled", tile=16, overlap=4, progress=False)
    np.testing.assert_allclose(got["model"], ref["per_band"]["rmse"], rtol=1e-6)  # evaluate averages in float32
    each = band_errors(model, scenes, mode="tiled", tile=16, overlap=4, per_scene=True)
    assert each["model"].shape == (2, 31)
    np.testing.assert_allclose(each["model"][1], ref["per_scene"][1]["rmse_per_band"], rtol=1e-12)
    np.testing.assert_allclose(each["cubic"].mean(0), got["cubic"], rtol=1e-12)
    # the fills replace only the held-out bands
    for kind in ("linear", "cubic"):
        np.testing.assert_array_equal(got[kind][0::2], got["model"][0::2])
        assert not np.array_equal(got[kind][1::2], got["model"][1::2])


def test_fills_interpolate_the_kept_bands():
    wl = WAVELENGTHS[:, None, None]
    truth = 0.2 + 0.5 * (wl - 400) / 300 + np.zeros((31, 6, 5))       # linear in wavelength
    wrong_odd = truth.copy()
    wrong_odd[1::2] = 0.0                                                 # odd outputs are garbage
    got = band_errors(Constant(wrong_odd.astype(np.float32)), [_scene(truth)], mode="whole")
    assert got["model"][1::2].min() > 0.2 and got["model"][0::2].max() < 1e-7
    # straight lines and a cubic spline through the even bands recover a straight spectrum
    assert got["linear"].max() < 1e-6 and got["cubic"].max() < 1e-6
    # a curved spectrum: the cubic spline beats straight lines at the held-out bands
    curved = 0.5 + 0.3 * np.sin((wl - 400) / 40) + np.zeros((31, 6, 5))
    got = band_errors(Constant(curved.astype(np.float32)), [_scene(curved)], mode="whole")
    assert got["cubic"][1::2].mean() < got["linear"][1::2].mean()


def test_summarise_and_compare():
    a = np.full(31, 0.02)
    a[1::2] = 0.01
    b = a.copy()
    b[1::2] = 0.012
    s = summarise([a, b], ODD)
    assert s.held == pytest.approx(0.011) and s.per_seed == pytest.approx((0.01, 0.012))
    assert s.kept == pytest.approx(0.02) and s.spread == pytest.approx(0.002)
    assert s.held_psnr == pytest.approx(psnr(0.011)) and psnr(0.1) == pytest.approx(20.0)
    worse = summarise([np.full(31, 0.05)], ODD)
    assert worse.spread is None
    assert compare(s, worse) == "better than" and compare(worse, s) == "worse than"
    assert compare(s, summarise([np.full(31, 0.0115)], ODD)).startswith("no different")
    assert compare(summarise([a]), worse).endswith("(one seed: no seed spread to hold it against)")
    assert compare(s, worse, noise=0.1).startswith("no different")
    assert EVEN[0] == 400 and EVEN[-1] == 700 and len(EVEN) == 16 and len(ODD) == 15


def test_headline_picks_the_best_baseline_and_formats_rows():
    def flat(held, kept=0.02):
        c = np.full(31, kept)
        c[1::2] = held
        return c
    method = summarise([flat(0.010), flat(0.011)])
    bases = {"linear": summarise([flat(0.030), flat(0.031)]), "cubic": summarise([flat(0.020), flat(0.0205)])}
    h = headline(method, bases)
    assert h["best"] == "cubic" and h["gap"] == pytest.approx(0.02 + 0.00025 - 0.0105)
    assert h["noise"] == pytest.approx(0.001) and h["verdict"] == "better than"
    rows = table_rows({"m": method, **bases}, {"cubic": "spline", "m": "model", "absent": "x"})
    assert [r[0] for r in rows] == ["spline", "model"] and all(len(r) == len(TABLE_HEADER) for r in rows)
    assert rows[1][1:3] == ("0.01050", "0.01000 / 0.01100") and rows[1][3] == f"{psnr(0.0105):.2f}"
    assert table_rows({"one": summarise([flat(0.01)])}, {"one": "one"})[0][2] == ""
