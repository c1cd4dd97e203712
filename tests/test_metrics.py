"""Tests of inr_lib.evaluation.metrics against scikit-image and direct numpy formulas.

Tolerances: PSNR and SSIM agree with scikit-image to 1e-6 (observed ~1e-12 to 1e-15 in
float64); SAM, RMSE and MRAE agree with the numpy formulas to 1e-9 (relative for MRAE,
degrees for SAM). The real-data test uses one CAVE scene from ../shared/data/cave and
is skipped when that folder is absent.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inr_lib.evaluation import metrics as M

CAVE_DIR = Path(__file__).resolve().parents[1].parent / "shared/data/cave"
TOL_SKIMAGE = 1e-6
TOL_NUMPY = 1e-9


def _sk_ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """scikit-image SSIM of one (C, H, W) image with our settings."""
    return structural_similarity(
        target, pred, channel_axis=0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, K1=0.01, K2=0.03,
    )


def _np_sam(pred: np.ndarray, target: np.ndarray) -> float:
    """Reference SAM (degrees) of one (C, H, W) image, zero-norm pixels excluded."""
    p = pred.reshape(pred.shape[0], -1)
    t = target.reshape(target.shape[0], -1)
    npn, ntn = np.linalg.norm(p, axis=0), np.linalg.norm(t, axis=0)
    ok = (npn > 0) & (ntn > 0)
    cos = np.clip((p * t).sum(0)[ok] / (npn[ok] * ntn[ok]), -1, 1)
    return float(np.degrees(np.arccos(cos)).mean())


def _random_pair(b=2, c=31, h=40, w=36, seed=0, noise=0.05):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(b, c, h, w, generator=g, dtype=torch.float64)
    pred = (target + noise * torch.randn(b, c, h, w, generator=g, dtype=torch.float64)).clamp(0, 1)
    return pred, target


@pytest.fixture(scope="module")
def cave_crop():
    scene = CAVE_DIR / "balloons_ms" / "balloons_ms"
    if not scene.is_dir():
        pytest.skip(
            f"real CAVE data not found at {scene}: this test needs the shared development "
            f"copy of CAVE (scene balloons_ms) in ../shared/data/cave next to the repository."
        )
    from PIL import Image

    bands = []
    for k in range(1, 32):
        with Image.open(scene / f"balloons_ms_{k:02d}.png") as im:
            a = np.array(im)
        if a.ndim == 3:  # some CAVE PNGs are stored with an extra channel axis
            a = a[..., 0]
        bands.append(a[200:328, 200:328].astype(np.float64) / 65535.0)
    target = np.stack(bands)  # (31, 128, 128)
    rng = np.random.default_rng(0)
    # A plausible prediction: smooth band-dependent gain error + noise, clipped.
    gain = 1.0 + 0.05 * np.sin(np.linspace(0, np.pi, 31))[:, None, None]
    pred = np.clip(target * gain + 0.01 * rng.standard_normal(target.shape), 0, 1)
    return torch.from_numpy(pred)[None], torch.from_numpy(target)[None]


# --------------------------------------------------------------------------- skimage
def test_psnr_matches_skimage_random():
    pred, target = _random_pair()
    ours = M.psnr(pred, target)
    for i in range(pred.shape[0]):
        ref = peak_signal_noise_ratio(target[i].numpy(), pred[i].numpy(), data_range=1.0)
        assert abs(ours[i].item() - ref) < TOL_SKIMAGE


def test_ssim_matches_skimage_random():
    pred, target = _random_pair(h=37, w=45)
    ours = M.ssim(pred, target)
    per_band = M.ssim_per_band(pred, target)
    assert per_band.shape == (2, 31)
    for i in range(pred.shape[0]):
        ref = _sk_ssim(pred[i].numpy(), target[i].numpy())
        assert abs(ours[i].item() - ref) < TOL_SKIMAGE
        for c in (0, 15, 30):
            ref_c = structural_similarity(
                target[i, c].numpy(), pred[i, c].numpy(), gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False, data_range=1.0,
            )
            assert abs(per_band[i, c].item() - ref_c) < TOL_SKIMAGE


def test_psnr_ssim_match_skimage_on_real_cave(cave_crop):
    pred, target = cave_crop
    p, t = pred[0].numpy(), target[0].numpy()
    d_psnr = abs(M.psnr(pred, target).item() - peak_signal_noise_ratio(t, p, data_range=1.0))
    d_ssim = abs(M.ssim(pred, target).item() - _sk_ssim(p, t))
    assert d_psnr < TOL_SKIMAGE and d_ssim < TOL_SKIMAGE, (d_psnr, d_ssim)
    # float32 inputs (what a model produces) are computed in float64 internally.
    assert abs(M.ssim(pred.float(), target.float()).item() - _sk_ssim(p, t)) < 1e-5


TOL_SSIM_F64 = 1e-12  # float64 inputs: only round-off separates the two (observed ~1e-15)


@pytest.mark.parametrize(
    "b, c, h, w",
    [(1, 1, 11, 11), (2, 3, 11, 30), (3, 2, 26, 26), (2, 4, 27, 43), (1, 3, 50, 17),
     (2, 2, 64, 64), (1, 2, 101, 73)],
)
def test_ssim_agrees_with_skimage_sizes(b, c, h, w):
    """Random pairs of several sizes, odd ones and those around the 16-row filter blocks
    (H - 10 = 1, 16, 17, 40, 91 ...), B > 1: per image and per band."""
    pred, target = _random_pair(b=b, c=c, h=h, w=w, seed=h * w + c)
    per_band = M.ssim_per_band(pred, target)
    assert per_band.shape == (b, c) and per_band.dtype == torch.float64
    ours = M.ssim(pred, target)
    for i in range(b):
        ref = _sk_ssim(pred[i].numpy(), target[i].numpy())
        assert abs(ours[i].item() - ref) < TOL_SSIM_F64, (ours[i].item(), ref)
        for j in range(c):
            ref_j = structural_similarity(
                target[i, j].numpy(), pred[i, j].numpy(), gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False, data_range=1.0,
            )
            assert abs(per_band[i, j].item() - ref_j) < TOL_SSIM_F64


def test_ssim_agrees_with_skimage_real_batch(cave_crop):
    """A real-ish case with B > 1: four odd-sized CAVE crops (dark background included)
    with a plausible prediction, scored as one batch."""
    pred, target = cave_crop  # (1, 31, 128, 128)
    crops = [(0, 0), (5, 37), (60, 3), (33, 66)]
    p = torch.cat([pred[:, :, r : r + 61, q : q + 59] for r, q in crops])
    t = torch.cat([target[:, :, r : r + 61, q : q + 59] for r, q in crops])
    ours = M.ssim(p, t)
    assert ours.shape == (4,)
    for i in range(4):
        ref = _sk_ssim(p[i].numpy(), t[i].numpy())
        assert abs(ours[i].item() - ref) < TOL_SSIM_F64, (i, ours[i].item(), ref)


def test_ssim_structured_pair_and_extremes():
    """Smooth images with flat regions at 0, 1 and mid-grey (where E[x^2] - E[x]^2
    cancels most) and a prediction of the opposite contrast (negative covariance)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 77, dtype=torch.float64),
                            torch.linspace(0, 1, 90, dtype=torch.float64), indexing="ij")
    target = (0.5 + 0.5 * torch.sin(6 * xx) * torch.cos(4 * yy)).expand(1, 3, 77, 90).clone()
    target[0, 0, :30] = 0.0
    target[0, 1, :, :40] = 1.0
    target[0, 2, 40:] = 0.4
    pred = torch.stack([target, 1.0 - target])[:, 0]  # (2, 3, 77, 90): exact and inverted
    ours = M.ssim(pred, target.expand(2, -1, -1, -1))
    for i in range(2):
        ref = _sk_ssim(pred[i].numpy(), target[0].numpy())
        assert abs(ours[i].item() - ref) < TOL_SSIM_F64
    assert ours[0].item() == pytest.approx(1.0, abs=1e-12) and ours[1].item() < 0.5


def test_ssim_is_differentiable():
    """With inputs that require grad, SSIM keeps its value and has the right gradient
    (autograd against finite differences, over two column blocks of the filter)."""
    pred, target = _random_pair(b=1, c=2, h=12, w=29, seed=11)
    no_grad = M.ssim(pred, target)
    p = pred.clone().requires_grad_(True)
    with_grad = M.ssim(p, target)
    assert with_grad.requires_grad
    assert torch.allclose(with_grad.detach(), no_grad, rtol=0, atol=1e-14)
    with_grad.sum().backward()
    assert p.grad is not None and p.grad.abs().sum() > 0
    small = p.detach()[:, :1].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: M.ssim(x, target[:, :1]), (small,), eps=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- numpy refs
def test_sam_rmse_mrae_match_numpy():
    pred, target = _random_pair(seed=3)
    for i in range(pred.shape[0]):
        p, t = pred[i].numpy(), target[i].numpy()
        assert abs(M.sam(pred, target)[i].item() - _np_sam(p, t)) < TOL_NUMPY
        assert abs(M.rmse(pred, target)[i].item() - np.sqrt(np.mean((p - t) ** 2))) < TOL_NUMPY
        ok = t > 0
        ref_mrae = np.mean(np.abs(p - t)[ok] / t[ok])
        assert abs(M.mrae(pred, target)[i].item() - ref_mrae) < TOL_NUMPY * ref_mrae


def test_real_cave_numpy_refs(cave_crop):
    pred, target = cave_crop
    p, t = pred[0].numpy(), target[0].numpy()
    assert abs(M.sam(pred, target).item() - _np_sam(p, t)) < TOL_NUMPY
    ok = t > 0
    assert abs(M.mrae(pred, target).item() - np.mean(np.abs(p - t)[ok] / t[ok])) < 1e-9


def test_per_band_metrics():
    pred, target = _random_pair(seed=4)
    p, t = pred.numpy(), target.numpy()
    mse_band = ((p - t) ** 2).mean(axis=(2, 3))
    np.testing.assert_allclose(M.rmse_per_band(pred, target).numpy(), np.sqrt(mse_band), rtol=1e-12)
    np.testing.assert_allclose(M.psnr_per_band(pred, target).numpy(), 10 * np.log10(1 / mse_band),
                               rtol=1e-12)
    assert M.mrae_per_band(pred, target).shape == (2, 31)
    np.testing.assert_allclose(M.ssim_per_band(pred, target).mean(1).numpy(),
                               M.ssim(pred, target).numpy(), rtol=1e-12)


# --------------------------------------------------------------------------- edge cases
def test_identical_images():
    _, target = _random_pair()
    assert torch.isinf(M.psnr(target, target)).all()  # documented: +inf
    assert torch.allclose(M.ssim(target, target), torch.ones(2, dtype=torch.float64))
    assert (M.sam(target, target) == 0).all()
    assert (M.rmse(target, target) == 0).all()
    assert (M.mrae(target, target) == 0).all()


def test_sam_zero_spectra_excluded():
    target = torch.rand(1, 31, 4, 4, dtype=torch.float64) + 0.1
    pred = target * 2.0  # same direction -> angle 0 where defined
    pred[0, :, 0, 0] = 0.0  # zero predicted spectrum
    target[0, :, 1, 1] = 0.0  # zero true spectrum
    assert M.sam(pred, target).item() == pytest.approx(0.0, abs=1e-12)
    # A known angle: orthogonal spectra in two pixels, identical elsewhere.
    t = torch.ones(1, 31, 2, 2, dtype=torch.float64)
    p = t.clone()
    p[0, :, 0, 0] = 0.0
    p[0, 0, 0, 0] = 1.0
    t[0, :, 0, 0] = 0.0
    t[0, 1, 0, 0] = 1.0
    assert M.sam(p, t).item() == pytest.approx(90.0 / 4, abs=1e-9)
    # All spectra zero: no pixel defined -> NaN (documented).
    assert torch.isnan(M.sam(torch.zeros(1, 31, 2, 2), torch.zeros(1, 31, 2, 2))).all()


def test_mrae_zero_gt_excluded():
    target = torch.full((1, 2, 1, 2), 0.5, dtype=torch.float64)
    target[0, 0, 0, 0] = 0.0
    pred = torch.full_like(target, 0.6)
    # 3 valid values with |0.6 - 0.5| / 0.5 = 0.2; the gt = 0 value is ignored.
    assert M.mrae(pred, target).item() == pytest.approx(0.2, rel=1e-12)
    assert torch.isnan(M.mrae(pred, torch.zeros_like(target))).all()


def test_batch_independence():
    pred, target = _random_pair(b=3, seed=5)
    batch = M.compute_all(pred, target)
    for i in range(3):
        single = M.compute_all(pred[i : i + 1], target[i : i + 1])
        for name in M.METRICS:
            assert batch[name].shape == (3,)
            assert batch[name][i].item() == pytest.approx(single[name].item(), rel=1e-12, abs=1e-12)


def test_dtypes_and_registry():
    pred, target = _random_pair()
    out32 = M.compute_all(pred.float(), target.float())
    out64 = M.compute_all(pred, target)
    for name in M.METRICS:
        assert out32[name].dtype == torch.float64
        assert torch.allclose(out32[name], out64[name], rtol=1e-5, atol=1e-5)
    assert set(M.HIGHER_IS_BETTER) == set(M.METRICS)
    assert M.HIGHER_IS_BETTER["psnr"] and not M.HIGHER_IS_BETTER["sam"]
    # better predictions score better in the stated direction
    worse, _ = _random_pair(noise=0.2)
    bad = M.compute_all(worse, target)
    for name, higher in M.HIGHER_IS_BETTER.items():
        assert (out64[name] > bad[name]).all() == higher


def test_errors():
    x = torch.rand(1, 31, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        M.psnr(x, torch.rand(1, 31, 16, 15))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        M.ssim(x[0], x[0])
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        M.sam(bad, x)
    for value in (float("inf"), -float("inf")):
        bad[0, 0, 0, 0] = value
        with pytest.raises(ValueError, match="1 non-finite"):
            M.ssim(x, bad)
    with pytest.raises(ValueError, match="at least 11x11"):
        M.ssim(torch.rand(1, 3, 8, 30), torch.rand(1, 3, 8, 30))
    with pytest.raises(TypeError, match="floating-point"):
        M.rmse(torch.ones(1, 3, 4, 4, dtype=torch.int32), torch.ones(1, 3, 4, 4, dtype=torch.int32))
    with pytest.raises(KeyError, match="unknown metric"):
        M.compute_all(x, x, names=["psnr", "lpips"])


def test_ssim_chunking_does_not_change_result(monkeypatch):
    pred, target = _random_pair(b=2, c=5, h=20, w=23, seed=6)
    whole = M.ssim_per_band(pred, target)
    monkeypatch.setattr(M, "_SSIM_CHUNK_ELEMENTS", 3 * 20 * 23)  # 3 bands per chunk
    assert torch.equal(M.ssim_per_band(pred, target), whole)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    pred, target = _random_pair(b=2, seed=7)
    cpu = M.compute_all(pred.float(), target.float())
    gpu = M.compute_all(pred.float().cuda(), target.float().cuda())
    for name in M.METRICS:
        assert gpu[name].device.type == "cuda"
        assert torch.allclose(gpu[name].cpu(), cpu[name], rtol=1e-9, atol=1e-9), name
