"""Continuous in wavelength: ``spectral="continuous"``, ``model.spectra`` and band-subset training.

Smoothness bound checked on a briefly trained model (:func:`test_trained_curve_does_not_ring`):
at every pixel the 1 nm curve over 400..700 nm has total variation at most 1.1 x that of its
31 band values, and nowhere leaves the range of the two band values around it by more than 5 %
of the pixel's spectral range (max - min of its 31 bands). The shipped continuous models are held
to the same bound on a 128x128 window of each dev18 test scene
(:func:`test_shipped_continuous_models_do_not_ring`), with the range counted as at least
RANGE_FLOOR = 0.1 (a tenth of full scale): on nearly flat, dark spectra a relative bound on a tiny
range would flag curvature of a few thousandths. Measured on the full test images,
small-continuous-even's curves stay within TV ratio 1.09, and every pixel whose overshoot exceeds
5 % of its own range has a range below 0.05 and an absolute overshoot below 0.003 (its RMSE is
0.019).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inr_lib import build_model, pretrained
from inr_lib.files.checkpoints import load_checkpoint, load_model, save_checkpoint
from inr_lib.model import ModelConfig
from inr_lib.model.basis import (
    DEFAULT_CONTINUOUS,
    band_indices,
    basis_matrix,
    bspline_basis,
    parse_spectral,
    target_bands,
)
from inr_lib.spectral import WAVELENGTHS, project
from inr_lib.train import TrainConfig, train

EVEN = [float(w) for w in WAVELENGTHS[::2]]        # 400, 420, ..., 700 nm
FINE = np.arange(400, 701)                         # 1 nm steps
TV_RATIO_BOUND = 1.1
OVERSHOOT_BOUND = 0.05
RANGE_FLOOR = 0.1


def _rgb(b=2, h=12, w=10, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g, dtype=dtype)


# ---------------------------------------------------------------------------- the option
def test_paper_preset_unchanged_and_continuous_is_an_option():
    paper = build_model("paper")
    assert paper.config.spectral == "bands" and paper.num_parameters() == 63_545_439
    assert "spectral" not in paper.config.to_dict()       # band configs are written as before
    cont = build_model("paper", spectral="continuous")
    k = parse_spectral("continuous")[1]
    assert DEFAULT_CONTINUOUS == f"bspline{k}" and cont.config.mlp_widths[-1] == k
    # only the last MLP layer shrinks (64*31+31 -> 64*K+K), hence the head's output channels
    assert cont.config.mlp_params == paper.config.mlp_params - 65 * (31 - k)
    assert cont.num_parameters() == 63_545_439 - 1025 * 65 * (31 - k)
    assert cont.state_dict().keys() == paper.state_dict().keys()
    for bad in ("wiggly", "bspline3", "cosine0", "bspline32"):
        with pytest.raises(ValueError, match="spectral"):
            build_model("tiny", spectral=bad)


@pytest.mark.parametrize("spectral", ["continuous", "cosine12"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spectra_shapes_and_dtypes_for_any_wavelengths(spectral, dtype):
    model = build_model("tiny", spectral=spectral).to(dtype)
    rgb = _rgb(dtype=dtype)
    for wl in ([405.5], [700, 400, 555.25, 555.25], np.linspace(400, 700, 7),
               torch.tensor([410.0, 433.3]), FINE):
        out = model.spectra(rgb, wl)
        assert out.shape == (2, len(wl), 12, 10) and out.dtype == dtype
        assert torch.isfinite(out).all()
    up = model.spectra(rgb, [450, 451.5], size=(25, 7))
    assert up.shape == (2, 2, 25, 7) and up.dtype == dtype
    x = model.spectra(rgb, [500, 510])
    assert torch.equal(x[:, 0], model.spectra(rgb, [500])[:, 0])


@pytest.mark.parametrize("options", [{}, {"linear_prior": True}, {"pixelwise": "readable"},
                                     {"hyper": "shared"}, {"spectral": "cosine12"}])
def test_band_centres_equal_forward_and_render(options):
    model = build_model("tiny", **{"spectral": "continuous", **options}).double()
    if options.get("linear_prior"):
        model.set_linear_prior(torch.rand(31, 4, dtype=torch.float64))
    rgb = _rgb(h=13, w=9, dtype=torch.float64)
    with torch.no_grad():
        bands = model(rgb)
        assert bands.shape == (2, 31, 13, 9)
        torch.testing.assert_close(model.spectra(rgb, WAVELENGTHS), bands, rtol=0, atol=1e-12)
        torch.testing.assert_close(model.spectra(rgb, list(map(float, WAVELENGTHS)), size=(6, 20)),
                                   model.render(rgb, (6, 20)), rtol=0, atol=1e-12)
        # render at the input size is the forward grid
        torch.testing.assert_close(model.spectra(rgb, [415.0], size=(13, 9)),
                                   model.spectra(rgb, [415.0]), rtol=0, atol=1e-10)


def test_spectrum_is_the_basis_expansion_of_the_mlp_output():
    model = build_model("tiny", spectral="continuous").double()
    rgb = _rgb(dtype=torch.float64)
    with torch.no_grad():
        coef = model._raw(rgb)                                        # (B, K, H, W) in [-1, 1]
        wl = np.array([401.0, 487.5, 699.0])
        want = (torch.einsum("nk,bkhw->bnhw", torch.tensor(basis_matrix("continuous", wl)),
                             coef) + 1) / 2
        torch.testing.assert_close(model.spectra(rgb, wl), want)


def test_linear_prior_of_a_continuous_model_fits_the_band_map():
    """With the MLP switched off, the output is the prior: for a band map in the span of the
    basis, exactly that map."""
    model = build_model("tiny", spectral="continuous", hyper="shared", linear_prior=True).double()
    with torch.no_grad():
        model.shared_params.zero_()
    k = model.config.mlp_out
    g = torch.Generator().manual_seed(1)
    basis = torch.tensor(basis_matrix("continuous", WAVELENGTHS))              # (31, K)
    m = basis @ torch.rand(k, 4, generator=g, dtype=torch.float64) / 4          # (31, 4)
    model.set_linear_prior(m)
    rgb = _rgb(dtype=torch.float64)
    want = torch.einsum("oc,bchw->bohw", m[:, :3], rgb) + m[:, 3].view(1, -1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(rgb), want)
    with pytest.raises(ValueError, match=r"\(31, 4\)"):
        model.set_linear_prior(torch.rand(k, 4))


def test_out_of_range_wavelengths_are_refused():
    model = build_model("tiny", spectral="continuous")
    rgb = _rgb()
    for wl in ([399.9], [500, 700.01], [float("nan")], []):
        with pytest.raises(ValueError, match="400..700 nm|finite|at least one"):
            model.spectra(rgb, wl)
    assert model.spectra(rgb, [400, 700]).shape == (2, 2, 12, 10)    # the ends are inside
    assert model.spectra(rgb, [380, 720], extrapolate=True).shape == (2, 2, 12, 10)


def test_band_model_spectra_gives_band_centres_only():
    model = build_model("tiny")
    rgb = _rgb()
    with torch.no_grad():
        torch.testing.assert_close(model.spectra(rgb, [700, 400, 550]),
                                   model(rgb)[:, [30, 0, 15]], rtol=0, atol=0)
    with pytest.raises(ValueError, match="31 bands.*405"):
        model.spectra(rgb, [400, 405])
    with pytest.raises(ValueError, match="400..700 nm"):
        model.spectra(rgb, [390])


def test_checkpoint_round_trip_keeps_spectral(tmp_path):
    model = build_model("tiny", spectral="continuous", seed=4)
    path = save_checkpoint(tmp_path / "c.pt", model, epoch=1)
    assert load_checkpoint(path)["model_config"]["spectral"] == "continuous"
    back = load_model(path)
    assert back.config.spectral == "continuous"
    rgb = _rgb()
    with torch.no_grad():
        torch.testing.assert_close(back.spectra(rgb, [432.1]), model.eval().spectra(rgb, [432.1]))
    old = {k: v for k, v in build_model("tiny").config.to_dict().items()}   # no "spectral" key
    assert "spectral" not in old and ModelConfig.from_dict(old).spectral == "bands"


def test_bspline_basis_is_a_partition_of_unity_and_matches_scipy():
    from scipy.interpolate import BSpline

    x = np.linspace(400, 700, 301)
    for k in (4, 13, 31):
        b = bspline_basis(x, k)
        knots = np.concatenate([[400.0] * 3, np.linspace(400, 700, k - 2), [700.0] * 3])
        np.testing.assert_allclose(b, BSpline.design_matrix(x, knots, 3).toarray(), atol=1e-12)
        np.testing.assert_allclose(b.sum(1), 1, atol=1e-12)
        assert b.min() >= 0 and ((b > 0).sum(1) <= 4).all()


# ---------------------------------------------------------------------------- smoothness
def _smooth_scene(size=32, seed=0):
    """Measured reflectances (colour-science) mixed smoothly over the image, with shading."""
    from inr_lib.data.synthetic import reflectance_library

    rng = np.random.default_rng(seed)
    ends = reflectance_library()[1][rng.choice(80, 4, replace=False)]      # (4, 31)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    w = np.stack([(1 - yy) * (1 - xx), (1 - yy) * xx, yy * (1 - xx), yy * xx]) ** 2
    hsi = np.einsum("kb,khw->bhw", ends, w / w.sum(0)) * (0.5 + 0.5 * xx)
    hsi = torch.tensor(hsi, dtype=torch.float32)[None]
    return project(hsi, "cie1964", normalise="sum").float(), hsi


def _ringing(curve: torch.Tensor, bands: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel: TV(1 nm curve) / TV(31 bands), and the largest excursion of the curve
    outside the two band values around it over the pixel's band range. ``curve (N, 301)``,
    ``bands (N, 31)``."""
    tv = curve.diff(dim=1).abs().sum(1) / bands.diff(dim=1).abs().sum(1).clamp_min(1e-9)
    lo = torch.minimum(bands[:, :-1], bands[:, 1:])
    hi = torch.maximum(bands[:, :-1], bands[:, 1:])
    seg = torch.clamp(torch.arange(301) // 10, max=29)                    # interval of each nm
    over = torch.maximum(curve - hi[:, seg], lo[:, seg] - curve).clamp_min(0).amax(1)
    return tv, over / (bands.amax(1) - bands.amin(1)).clamp_min(1e-9)


def test_trained_curve_does_not_ring():
    rgb, hsi = _smooth_scene()
    torch.manual_seed(0)
    model = build_model("tiny", spectral="continuous", seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss = F.l1_loss(model(rgb) * 2 - 1, hsi * 2 - 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        bands = model(rgb)[0].flatten(1).T.double()                       # (pixels, 31)
        curve = model.spectra(rgb, FINE)[0].flatten(1).T.double()         # (pixels, 301)
        assert (bands.float() - hsi[0].flatten(1).T).abs().mean() < 0.02  # it did learn
    tv, over = _ringing(curve, bands)
    assert tv.max() <= TV_RATIO_BOUND and over.max() <= OVERSHOOT_BOUND, (tv.max(), over.max())
    # the same measure flags a curve that rings: the 31-function B-spline through those bands
    interp = bspline_basis(FINE, 31) @ np.linalg.solve(bspline_basis(WAVELENGTHS, 31),
                                                        bands.numpy().T)
    tv_i, over_i = _ringing(torch.from_numpy(interp.T), bands)
    assert tv_i.max() > TV_RATIO_BOUND and over_i.max() > OVERSHOOT_BOUND


SHARED_CAVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cave"
SHIPPED_CONTINUOUS = [n for n in pretrained.available()
                      if pretrained.card(n)["model_config"].get("spectral", "bands") != "bands"]


@pytest.mark.skipif(not SHIPPED_CONTINUOUS, reason="no shipped continuous model in this version")
@pytest.mark.skipif(not SHARED_CAVE.is_dir(), reason="../shared/data/cave is absent: shipped models' "
                    "curves not checked on real scenes")
@pytest.mark.parametrize("name", SHIPPED_CONTINUOUS)
def test_shipped_continuous_models_do_not_ring(name):
    from inr_lib.data import load_cave
    from inr_lib.data.scene import scene_rgb

    model = pretrained.load(name)
    for scene in load_cave(SHARED_CAVE, pretrained.card(name)["data"]["test_scenes"], strict=True):
        rgb = torch.from_numpy(scene_rgb(scene))[None][..., 192:320, 192:320]
        with torch.no_grad():
            bands = model(rgb).clamp(0, 1)[0].flatten(1).T.double()                # (pixels, 31)
            curve = model.spectra(rgb, FINE).clamp(0, 1)[0].flatten(1).T.double()  # (pixels, 301)
        tv, over = _ringing(curve, bands)
        spread = bands.amax(1) - bands.amin(1)
        over = over * spread.clamp_min(1e-9) / spread.clamp_min(RANGE_FLOOR)   # range >= RANGE_FLOOR
        assert tv.max() <= TV_RATIO_BOUND and over.max() <= OVERSHOOT_BOUND, (scene.name, tv.max(), over.max())


# ---------------------------------------------------------------------------- band subsets
def test_target_band_validation():
    assert band_indices(None) == list(range(31))
    assert band_indices([700, 400.0]) == [0, 30]
    assert TrainConfig.preset("tiny").wavelengths is None
    c = TrainConfig.preset("tiny").replace(wavelengths=list(reversed(EVEN)))
    assert c.wavelengths == EVEN and TrainConfig.from_dict(c.to_dict()) == c
    assert c.with_overrides(["wavelengths=[410, 430]"]).wavelengths == [410.0, 430.0]
    for bad, msg in (([405], "405 nm is not a band centre"), ([400, 400], "once"),
                     ([], "non-empty"), (400, "expected a list"), ("400", "expected a list")):
        with pytest.raises(ValueError, match=msg):
            TrainConfig.preset("tiny").replace(wavelengths=bad)


def test_target_bands_gradient_ignores_other_bands():
    pred = torch.rand(2, 31, 4, 4, requires_grad=True)
    hsi = torch.rand(2, 31, 4, 4)
    p, t = target_bands(pred, hsi, EVEN)
    assert p.shape == t.shape == (2, 16, 4, 4)
    F.l1_loss(p, t).backward()
    assert (pred.grad[:, 1::2] == 0).all() and (pred.grad[:, ::2] != 0).any()
    assert target_bands(pred, hsi, None) == (pred, hsi)


def _scene(name, seed, size=24):
    r = np.random.default_rng(seed)
    ramp = np.linspace(0.2, 1.0, size, dtype=np.float32)
    hsi = (r.random((31, 1, 1)) * ramp[None, None, :] * (0.6 + 0.4 * r.random((1, size, size))))
    hsi = hsi.astype(np.float32)
    rgb = np.stack([hsi[20:].mean(0), hsi[10:20].mean(0), hsi[:10].mean(0)]).astype(np.float32)
    return SimpleNamespace(name=name, hsi=hsi, rgb=rgb, wavelengths=WAVELENGTHS.astype(float))


def _odd_bands_scrambled(s, seed):
    hsi = s.hsi.copy()
    hsi[1::2] = np.random.default_rng(seed).random(hsi[1::2].shape, dtype=np.float32)
    return SimpleNamespace(**{**vars(s), "hsi": hsi})


def test_training_on_even_bands_never_sees_the_odd_ones(tmp_path):
    """Same RGB, same even bands, different odd bands: identical weights after training on
    the even bands, different weights when all 31 bands are targets."""
    scenes = [_scene("s0", 0), _scene("s1", 1)]
    scrambled = [_odd_bands_scrambled(s, 10 + i) for i, s in enumerate(scenes)]
    cfg = TrainConfig.preset("tiny").replace(epochs=1, val_every=0,
                                             model={"spectral": "continuous"})

    def weights(c, data, name):
        res = train(c, data, [], tmp_path / name, device="cpu", progress=False)
        return res.model.state_dict()

    even = cfg.replace(wavelengths=EVEN)
    a, b = weights(even, scenes, "a"), weights(even, scrambled, "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    c, d = weights(cfg, scenes, "c"), weights(cfg, scrambled, "d")
    assert not all(torch.equal(c[k], d[k]) for k in c)


def test_interpolate_bands_linear_and_cubic():
    from inr_lib.model.basis import interpolate_bands

    even, odd = WAVELENGTHS[::2], WAVELENGTHS[1::2]
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 3, 4))
    line = a[None] + b[None] * even[:, None, None]                  # (16, 3, 4), linear in nm
    cube = np.stack([line, 2 * line])                                # (2, 16, 3, 4)
    want = np.stack([a + b * w for w in odd])
    for kind in ("linear", "cubic"):                                 # both reproduce a line
        got = interpolate_bands(torch.from_numpy(cube), even, odd, kind)
        assert got.shape == (2, 15, 3, 4)
        np.testing.assert_allclose(got[0], want, atol=1e-12)
        np.testing.assert_allclose(got[1], 2 * want, atol=1e-12)
    quad = (even ** 2)[:, None, None] * np.ones((1, 2, 2))             # a parabola: cubic exact,
    cubic = interpolate_bands(quad, even, odd, "cubic")[:, 0, 0]       # linear overshoots by h^2/4
    linear = interpolate_bands(quad, even, odd, "linear")[:, 0, 0]
    np.testing.assert_allclose(cubic, odd ** 2, rtol=1e-12)
    np.testing.assert_allclose(linear - odd ** 2, 100.0, rtol=1e-9)
    with pytest.raises(ValueError, match="cover"):
        interpolate_bands(quad, even, [395.0], "linear")
    with pytest.raises(ValueError, match="expected"):
        interpolate_bands(quad, even[1:], odd, "linear")
    with pytest.raises(ValueError, match="kind"):
        interpolate_bands(quad, even, odd, "quadratic")
