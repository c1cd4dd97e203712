"""Tests of inr_lib.model.baselines: ridge, physics-based upsampling, small residual CNN."""
import numpy as np
import pytest
import torch

from inr_lib.model import baselines as BL


def _linear_data(n_images=3, h=20, w=24, seed=0, noise=0.0):
    """RGB images and spectra related by a known affine map (31, 3) + bias (31,)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 0.3, size=(31, 3))
    bias = rng.uniform(0.0, 0.1, size=31)
    rgbs, hsis = [], []
    for _ in range(n_images):
        rgb = rng.uniform(0.0, 1.0, size=(3, h, w))
        hsi = np.einsum("ck,khw->chw", a, rgb) + bias[:, None, None]
        hsis.append(hsi + noise * rng.standard_normal(hsi.shape))
        rgbs.append(rgb)
    return rgbs, hsis, a, bias


# --------------------------------------------------------------------------- ridge
def test_ridge_recovers_known_linear_map():
    rgbs, hsis, a, bias = _linear_data()
    m = BL.fit_linear_map(rgbs, hsis, alpha=0.0, max_pixels=None)
    assert m.shape == (31, 4)
    assert np.abs(m[:, :3].numpy() - a).max() < 1e-5
    assert np.abs(m[:, 3].numpy() - bias).max() < 1e-5

    model = BL.RidgeBaseline().fit(rgbs, hsis, alpha=0.0, max_pixels=1000, seed=1)
    x = torch.as_tensor(np.stack(rgbs), dtype=torch.float32)
    y = torch.as_tensor(np.stack(hsis), dtype=torch.float32)
    out = model(x)
    assert out.shape == (3, 31, 20, 24)
    assert (out - y).abs().max().item() < 1e-5
    # the default tiny ridge penalty changes the fit by far less than any real error
    default = BL.RidgeBaseline().fit(rgbs, hsis)
    assert (default(x) - y).abs().max().item() < 1e-4


def test_ridge_polynomial_and_state_dict():
    rgbs, hsis, _, _ = _linear_data(noise=0.01)
    x = torch.as_tensor(np.stack(rgbs), dtype=torch.float32)
    for degree, n_feat in ((1, 4), (2, 10), (3, 20)):
        model = BL.build_baseline("ridge", degree=degree).fit(rgbs, hsis, alpha=1e-4)
        assert model.weight.shape == (31, n_feat)
        clone = BL.RidgeBaseline(degree=degree)
        clone.load_state_dict(model.state_dict())
        assert torch.equal(clone(x), model(x))
    with pytest.raises(RuntimeError, match="not fitted"):
        BL.RidgeBaseline()(x)
    with pytest.raises(ValueError, match=r"\(31, H, W\)"):
        BL.RidgeBaseline().fit(rgbs, [h[:30] for h in hsis])


def test_ridge_beats_physics_on_linear_data():
    rgbs, hsis, _, _ = _linear_data(seed=2)
    x = torch.as_tensor(np.stack(rgbs), dtype=torch.float32)
    y = torch.as_tensor(np.stack(hsis), dtype=torch.float32)
    ridge = BL.RidgeBaseline().fit(rgbs, hsis)
    physics = BL.PhysicsUpsampling().fit(rgbs, hsis)
    err_ridge = (ridge(x) - y).pow(2).mean().sqrt().item()
    err_physics = (physics(x) - y).pow(2).mean().sqrt().item()
    assert err_ridge < 1e-4 < err_physics


# --------------------------------------------------------------------------- physics
def test_physics_shape_range_and_grey():
    model = BL.build_baseline("physics")
    assert model.basis.shape == (31, 3)
    x = torch.rand(2, 3, 7, 9, generator=torch.Generator().manual_seed(0))
    out = model(x)
    assert out.shape == (2, 31, 7, 9)
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0
    grey = torch.full((1, 3, 2, 2), 0.4)
    spec = model(grey)
    assert (spec - 0.4).abs().max().item() < 1e-4  # flat at the grey level
    # sRGB decoding: a grey stays flat, at the linearised level
    spec_srgb = BL.PhysicsUpsampling(rgb_encoding="srgb")(grey)
    lin = ((0.4 + 0.055) / 1.055) ** 2.4
    assert (spec_srgb - lin).abs().max().item() < 1e-4


def test_physics_gain_fit_and_state_dict():
    rng = np.random.default_rng(0)
    rgbs = [rng.uniform(0, 1, size=(3, 8, 8)) for _ in range(2)]
    ref = BL.PhysicsUpsampling()
    hsis = [0.5 * ref(torch.as_tensor(r, dtype=torch.float32)[None])[0].numpy() for r in rgbs]
    model = BL.PhysicsUpsampling().fit(rgbs, hsis)
    assert float(model.gain) == pytest.approx(0.5, rel=1e-5)
    clone = BL.PhysicsUpsampling()
    clone.load_state_dict(model.state_dict())
    assert float(clone.gain) == pytest.approx(0.5, rel=1e-5)


# --------------------------------------------------------------------------- CNN
def test_cnn_shapes_seed_and_gradient():
    model = BL.build_baseline("cnn", channels=16, num_blocks=2, seed=3)
    for b, h, w in ((1, 37, 45), (3, 8, 5)):
        x = torch.rand(b, 3, h, w)
        assert model(x).shape == (b, 31, h, w)

    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = BL.SmallResCNN(channels=16, num_blocks=2, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    b = BL.SmallResCNN(BL.SmallResCNNConfig(channels=16, num_blocks=2, seed=3))
    c = BL.SmallResCNN(channels=16, num_blocks=2, seed=4)
    for (k, va), vb, _vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.head.weight, c.head.weight)

    x = torch.rand(2, 3, 12, 12)
    out = a(x)
    assert 0.0 < out.mean().item() < 1.0  # untrained output is centred near 0.5
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in a.parameters())
    assert a.head.weight.grad.abs().sum() > 0


def test_cnn_default_parameter_count_and_config():
    model = BL.SmallResCNN()
    assert sum(p.numel() for p in model.parameters()) == 462_815
    assert model.config.to_dict() == {
        "in_channels": 3, "out_channels": 31, "channels": 64, "num_blocks": 6, "seed": 0,
    }
    with pytest.raises(TypeError, match="unknown option"):
        BL.SmallResCNN(width=3)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(3, 8, 8))


def test_registry():
    assert set(BL.BASELINES) == {"ridge", "physics", "cnn"}
    with pytest.raises(ValueError, match="unknown baseline"):
        BL.build_baseline("svm")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_baselines_run_on_cuda():
    rgbs, hsis, _, _ = _linear_data(n_images=1, h=16, w=16)
    x = torch.as_tensor(np.stack(rgbs), dtype=torch.float32)
    for name in ("ridge", "physics", "cnn"):
        model = BL.build_baseline(name)
        if hasattr(model, "fit"):
            model.fit(rgbs, hsis)
        ref = model(x)
        model = model.cuda()
        if hasattr(model, "fit"):
            model.fit(rgbs, hsis)  # fitting works with the module on the GPU
        out = model(x.cuda())
        assert out.device.type == "cuda"
        assert torch.allclose(out.cpu(), ref, atol=1e-4), name


def _stacked_pixels(rgb_list, hsi_list, max_pixels, seed):
    """The readable version: stack every pixel, then draw the subset."""
    x = torch.cat([torch.as_tensor(r, dtype=torch.float64).reshape(3, -1).T for r in rgb_list])
    y = torch.cat([torch.as_tensor(h, dtype=torch.float64).reshape(31, -1).T for h in hsi_list])
    if max_pixels is not None and x.shape[0] > max_pixels:
        idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:max_pixels]
        x, y = x[idx], y[idx]
    return x, y


def test_training_pixels_gathers_the_same_rows_as_stacking_everything():
    from inr_lib.model.baselines import _training_pixels

    rng = np.random.default_rng(0)
    shapes = [(7, 9), (5, 4), (12, 3)]
    rgb = [rng.random((3, h, w)).astype(np.float32) for h, w in shapes]
    hsi = [torch.rand(31, h, w) for h, w in shapes]              # numpy and torch inputs
    for max_pixels, seed in ((None, 0), (40, 0), (40, 3), (150, 1), (1000, 0)):
        got = _training_pixels(rgb, hsi, max_pixels, seed)
        ref = _stacked_pixels(rgb, hsi, max_pixels, seed)
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1]), (max_pixels, seed)
    with pytest.raises(ValueError, match="image pair 1: RGB is \\(5, 4\\) pixels but HSI is \\(4, 5\\)"):
        _training_pixels(rgb, [hsi[0], torch.rand(31, 4, 5), hsi[2]], None, 0)
    with pytest.raises(ValueError, match="channels first"):
        _training_pixels([rgb[0].transpose(1, 2, 0)], [hsi[0]], None, 0)
