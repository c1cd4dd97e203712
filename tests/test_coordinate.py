"""The wavelength as an input coordinate (``spectral="coordinate"``, NeSR's approach).

Tolerances: the fast path (first layer split into ``W_x x + b`` and ``W_l e(l)``, batched over
pixels x wavelengths) and the readable path (the full MLP on ``[x; e(l)]``, once per wavelength)
add the same terms in another order, so in float64 they agree to rounding: outputs (of order 1)
within 1e-12 absolute; gradients, sums over many pixels and wavelengths (up to ~1e4 here), within
1e-10 relative plus 1e-12 absolute (measured: 4e-16 relative). The training step at the target
bands only against all 31 bands with the targets kept: the loss (a mean of order 1) within 1e-12
relative, the gradients as above (measured: the loss bit-equal, the gradients 2e-15 relative).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inr_lib import build_model
from inr_lib.files.checkpoints import load_checkpoint, load_model, save_checkpoint
from inr_lib.model import ModelConfig, coordinate
from inr_lib.model.basis import target_bands
from inr_lib.model.coordinate import (
    WAVELENGTH_CHANNELS,
    apply_coordinate_fast,
    apply_coordinate_readable,
    wavelength_codes,
    wavelength_encoding,
)
from inr_lib.model.pixelwise import mlp_param_count, mlp_param_slices
from inr_lib.spectral import WAVELENGTHS
from inr_lib.train import TrainConfig, grad_scaler, train, train_step

EVEN = [float(w) for w in WAVELENGTHS[::2]]        # 400, 420, ..., 700 nm
ATOL = 1e-12
GRAD_TOL = dict(rtol=1e-10, atol=1e-12)


def _rgb(b=2, h=12, w=10, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g, dtype=dtype)


def _pair(**options):
    """The same coordinate model (tiny, float64) with the fast and the readable path."""
    fast = build_model("tiny", spectral="coordinate", seed=3, **options).double()
    readable = build_model("tiny", spectral="coordinate", seed=3, pixelwise="readable",
                           **options).double()
    readable.load_state_dict(fast.state_dict())
    return fast, readable


# ---------------------------------------------------------------------------- the option
def test_mlp_takes_rgb_position_and_wavelength_and_outputs_one_value():
    assert WAVELENGTH_CHANNELS == wavelength_encoding([500.0]).shape[1] == 7
    for preset in ("tiny", "small", "paper"):
        base = build_model(preset).config
        cfg = build_model(preset, spectral="coordinate").config
        assert cfg.mlp_widths[0] == 11 + WAVELENGTH_CHANNELS == base.mlp_widths[0] + 7
        assert cfg.mlp_widths[-1] == cfg.mlp_out == 1
        assert cfg.mlp_widths[1:-1] == base.mlp_widths[1:-1]
        assert cfg.mlp_params == mlp_param_count(cfg.mlp_widths)
    small = build_model("small", spectral="coordinate")
    h = small.config.mlp_hidden
    assert small.config.mlp_params == 18 * h[0] + h[0] + h[0] * h[1] + h[1] + h[1] + 1 == 1697
    # only the head's output channels change: (deep width + 1) per MLP parameter
    assert small.num_parameters() == build_model("small").num_parameters() - 129 * (2463 - 1697)
    assert "spectral=coordinate" in repr(small) and "+7 wavelength input channels" in repr(small)
    # the predicted MLP's first layer really reads the 7 wavelength channels
    w_sl, _, cin, cout = mlp_param_slices(small.config.mlp_widths)[0]
    assert (cin, cout) == (18, h[0]) and small.hypernet.head.out_channels == 1697


def test_encoding_spans_the_range_monotonically():
    e = wavelength_encoding(np.array([400.0, 550.0, 700.0]))
    np.testing.assert_allclose(e[:, 0], [-1, 0, 1])
    np.testing.assert_allclose(e[0, 1:3], [-1, 0], atol=1e-15)      # cos(-pi), sin(-pi)
    codes = wavelength_codes(WAVELENGTHS, torch.float32, "cpu")
    assert codes.shape == (31, 7) and codes.dtype == torch.float32
    assert torch.equal(codes, torch.tensor(wavelength_encoding(WAVELENGTHS)).float())


def test_config_validation_names_the_option_and_round_trips():
    cfg = ModelConfig(spectral="coordinate")
    d = cfg.to_dict()
    assert d["spectral"] == "coordinate" and ModelConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="linear_prior.*spectral='coordinate'"):
        build_model("tiny", spectral="coordinate", linear_prior=True)
    with pytest.raises(ValueError, match="out_channels"):
        ModelConfig(spectral="coordinate", out_channels=16)
    with pytest.raises(ValueError, match="unknown spectral 'coordinates'.*'coordinate'"):
        build_model("tiny", spectral="coordinates")


# ---------------------------------------------------------------------------- the two paths
@pytest.mark.parametrize("hidden", [(16, 16), (8,), ()])
def test_fast_and_readable_functions_agree_forward_and_backward(hidden):
    g = torch.Generator().manual_seed(0)
    widths = (11 + WAVELENGTH_CHANNELS, *hidden, 1)
    p1 = (torch.randn(2, mlp_param_count(widths), 3, 2, generator=g, dtype=torch.float64) * 0.3
          ).requires_grad_()
    x1 = torch.randn(2, 11, 12, 8, generator=g, dtype=torch.float64).requires_grad_()
    codes = wavelength_codes([400.0, 433.3, 700.0], torch.float64, "cpu")
    p2, x2 = p1.detach().clone().requires_grad_(), x1.detach().clone().requires_grad_()
    a = apply_coordinate_fast(p1, x1, codes, widths, tile=4)
    b = apply_coordinate_readable(p2, x2, codes, widths, tile=4)
    assert a.shape == (2, 3, 12, 8)
    torch.testing.assert_close(a, b, rtol=0, atol=ATOL)
    a.sin().sum().backward()
    b.sin().sum().backward()
    torch.testing.assert_close(p1.grad, p2.grad, **GRAD_TOL)
    torch.testing.assert_close(x1.grad, x2.grad, **GRAD_TOL)
    with pytest.raises(ValueError, match="coordinate MLP"):
        apply_coordinate_fast(p1, x1, codes[:, :5], widths, tile=4)


def test_groups_of_tiles_give_the_same_function(monkeypatch):
    """The fast path runs the tiles in groups bounded in memory: one tile per group and all tiles
    in one group agree, forward and backward."""
    g = torch.Generator().manual_seed(2)
    widths = (11 + WAVELENGTH_CHANNELS, 8, 1)
    params = torch.randn(2, mlp_param_count(widths), 2, 3, generator=g, dtype=torch.float64)
    x = torch.randn(2, 11, 8, 12, generator=g, dtype=torch.float64)
    codes = wavelength_codes(np.linspace(400, 700, 9), torch.float64, "cpu")
    results = []
    for budget in (1, 2**40):
        monkeypatch.setattr(coordinate, "_GROUP_NUMBERS", {"cpu": budget})
        p = params.clone().requires_grad_()
        out = apply_coordinate_fast(p, x, codes, widths, tile=4)
        out.sin().sum().backward()
        results.append((out.detach(), p.grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=ATOL)
    torch.testing.assert_close(results[0][1], results[1][1], **GRAD_TOL)


@pytest.mark.parametrize("options", [{}, {"hyper": "shared"}])
def test_fast_and_readable_models_agree_forward_and_backward(options):
    fast, readable = _pair(**options)
    rgb = _rgb(h=13, w=9)
    a, b = fast(rgb), readable(rgb)
    torch.testing.assert_close(a, b, rtol=0, atol=ATOL)
    a.square().sum().backward()
    b.square().sum().backward()
    for (name, p), q in zip(fast.named_parameters(), readable.parameters()):
        torch.testing.assert_close(p.grad, q.grad, **GRAD_TOL, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(fast.spectra(rgb, [455.5, 612.0]),
                                   readable.spectra(rgb, [455.5, 612.0]), rtol=0, atol=ATOL)


# ---------------------------------------------------------------------------- queries
@pytest.mark.parametrize("pixelwise", ["fast", "readable"])
def test_forward_is_spectra_at_the_band_centres_exactly(pixelwise):
    model = build_model("tiny", spectral="coordinate", pixelwise=pixelwise).double()
    rgb = _rgb()
    with torch.no_grad():
        bands = model(rgb)
        assert torch.equal(model.spectra(rgb, WAVELENGTHS), bands)
        assert torch.equal(model.spectra(rgb, list(map(float, WAVELENGTHS))), bands)


def test_subset_of_wavelengths_is_the_matching_columns():
    model = build_model("tiny", spectral="coordinate").double()
    rgb = _rgb()
    fine = np.arange(400.0, 701.0, 2.5)
    with torch.no_grad():
        full = model.spectra(rgb, fine)
        for idx in ([0], [3, 7, 120], list(range(0, 121, 8)), [50, 10, 50]):
            torch.testing.assert_close(model.spectra(rgb, fine[idx]), full[:, idx], rtol=0, atol=ATOL)
        torch.testing.assert_close(model.spectra(rgb, EVEN), model(rgb)[:, ::2], rtol=0, atol=ATOL)


@pytest.mark.parametrize("hw", [(1, 1), (5, 7), (13, 9), (17, 3)])
def test_output_shapes_for_odd_sizes(hw):
    model = build_model("tiny", spectral="coordinate")
    rgb = _rgb(b=3, h=hw[0], w=hw[1], dtype=torch.float32)
    with torch.no_grad():
        assert model(rgb).shape == (3, 31, *hw)
        assert model.spectra(rgb, [405.0, 690.5]).shape == (3, 2, *hw)
        assert model.spectra(rgb, [390.0], extrapolate=True).shape == (3, 1, *hw)
        assert model.render(rgb, (7, 4)).shape == (3, 31, 7, 4)
    with pytest.raises(ValueError, match="400..700 nm"):
        model.spectra(rgb, [399.0])


def test_render_at_the_input_grid_is_forward():
    model = build_model("tiny", spectral="coordinate").double()
    rgb = _rgb(h=13, w=9)
    with torch.no_grad():
        torch.testing.assert_close(model.render(rgb, (13, 9)), model(rgb), rtol=0, atol=1e-10)
        torch.testing.assert_close(model.spectra(rgb, WAVELENGTHS, size=(6, 20)),
                                   model.render(rgb, (6, 20)), rtol=0, atol=ATOL)


def test_gradient_reaches_the_hypernetwork():
    model = build_model("tiny", spectral="coordinate")
    model.spectra(_rgb(dtype=torch.float32), [432.0, 655.5]).sum().backward()
    for name, p in model.hypernet.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # the wavelength columns of the head's output (first-layer W_l of every tile) get gradient
    w_sl, _, cin, cout = mlp_param_slices(model.config.mlp_widths)[0]
    head_w = model.hypernet.head.weight.grad.flatten(1)[w_sl].view(cout, cin, -1)
    assert head_w[:, cin - WAVELENGTH_CHANNELS:].abs().sum() > 0


# ---------------------------------------------------------------------------- files, training
def test_checkpoint_round_trip(tmp_path):
    model = build_model("tiny", spectral="coordinate", seed=4)
    path = save_checkpoint(tmp_path / "c.pt", model, epoch=1)
    assert load_checkpoint(path)["model_config"]["spectral"] == "coordinate"
    back = load_model(path)
    assert back.config == model.config
    rgb = _rgb(dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(back.spectra(rgb, [432.1, 598.0]), model.eval().spectra(rgb, [432.1, 598.0]))


def test_one_epoch_on_the_even_bands(tmp_path, smooth_scene):
    scenes = [smooth_scene("s0", 0), smooth_scene("s1", 1)]
    cfg = TrainConfig.preset("tiny").replace(epochs=1, val_every=0, wavelengths=EVEN,
                                             model={"spectral": "coordinate"})
    res = train(cfg, scenes, [], tmp_path / "run", device="cpu", progress=False)
    assert res.model.config.spectral == "coordinate" and np.isfinite(res.history[-1]["loss"])
    start = build_model(res.model.config, seed=cfg.seed)
    assert any(not torch.equal(a, b) for a, b in zip(res.model.state_dict().values(),
                                                    start.state_dict().values()))
    back = load_model(res.last_path)
    rgb = torch.from_numpy(scenes[0].rgb)[None]
    with torch.no_grad():
        out = back.spectra(rgb, [410.0, 555.0])
    assert out.shape == (1, 2, 24, 24) and torch.isfinite(out).all()


def _spy_wavelengths(model) -> list:
    """Record how many wavelengths each forward pass of ``model`` evaluates (None: the 31 band
    centres, as ``model(rgb)``)."""
    seen: list = []
    raw = model._raw

    def spy(rgb, wavelengths=None):
        seen.append(None if wavelengths is None else len(wavelengths))
        return raw(rgb, wavelengths)
    model._raw = spy
    return seen


def test_the_training_step_evaluates_the_target_bands_only():
    """A coordinate model's step runs its MLP at the 16 target wavelengths, not at 31 with the
    targets kept afterwards; loss and gradients are those of the old way (float64)."""
    g = torch.Generator().manual_seed(7)
    rgb, hsi = _rgb(h=16, w=12), torch.rand(2, 31, 16, 12, generator=g, dtype=torch.float64)
    model = build_model("tiny", spectral="coordinate", seed=5).double()
    old = F.l1_loss(*target_bands(model(rgb) * 2 - 1, hsi * 2 - 1, EVEN))     # 31, then keep 16
    old.backward()
    old_grads = [p.grad.clone() for p in model.parameters()]
    seen = _spy_wavelengths(model)
    step = torch.optim.SGD(model.parameters(), lr=0.0)      # the gradients, weights unchanged
    loss = train_step(model, (rgb, hsi), step, grad_scaler(False), None, EVEN)
    assert seen == [16]
    torch.testing.assert_close(loss, old.detach(), rtol=1e-12, atol=0)
    for (name, p), before in zip(model.named_parameters(), old_grads):
        torch.testing.assert_close(p.grad, before, **GRAD_TOL, msg=name)
    # all bands as targets, and the other heads: model(rgb) at the 31 band centres, as before
    assert train_step(model, (rgb, hsi), step, grad_scaler(False), None, None) is not None
    bspline = build_model("tiny", spectral="continuous").double()
    seen_b = _spy_wavelengths(bspline)
    train_step(bspline, (rgb, hsi), torch.optim.SGD(bspline.parameters(), lr=0.0),
               grad_scaler(False), None, EVEN)
    assert seen == [16, None] and seen_b == [None]
