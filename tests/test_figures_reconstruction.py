"""inr_lib.book.figures, chapter 9's figures: reconstructions against ground truth draw the values given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from inr_lib.book import figures  # noqa: E402
from inr_lib.evaluation import metrics
from inr_lib.spectral import WAVELENGTHS, srgb_preview  # noqa: E402


def _scene(h=48, w=40, seed=0):
    """Smooth random spectra (31, h, w) in [0, 1] and two predictions: a noisy one (numpy)
    and a scaled one (torch, (1, 31, h, w))."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.1, 0.9, (4, h, w))
    ramp = np.linspace(0, 1, 31)[:, None, None]
    gt = (base[0] * (1 - ramp) + base[1] * ramp) * base[2] + 0.05 * base[3]
    gt = np.clip(gt, 0, 1).astype(np.float32)
    noisy = np.clip(gt + rng.normal(0, 0.03, gt.shape), 0, 1).astype(np.float32)
    scaled = torch.from_numpy(gt * 0.8)[None]
    return gt, {"noisy": noisy, "scaled": scaled}


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_error_maps_average_to_the_library_metrics():
    gt, preds = _scene()
    gt[:, 3, 5] = 0.0                                   # a black pixel: SAM undefined there
    m = figures.error_maps(preds["noisy"], gt)
    assert m["rmse"].shape == m["sam"].shape == gt.shape[1:]
    assert np.isnan(m["sam"][3, 5]) and np.isfinite(np.delete(m["sam"].ravel(), 3 * gt.shape[2] + 5)).all()
    p, t = torch.from_numpy(preds["noisy"])[None], torch.from_numpy(gt)[None]
    assert np.nanmean(m["sam"]) == pytest.approx(metrics.sam(p, t).item(), rel=1e-9)
    assert np.sqrt(np.mean(m["rmse"] ** 2)) == pytest.approx(metrics.rmse(p, t).item(), rel=1e-9)
    same = figures.error_maps(gt, gt)
    assert np.nanmax(same["sam"]) == 0.0 and same["rmse"].max() == 0.0
    # a scaled spectrum has the same shape: zero angle, non-zero RMSE
    scaled = figures.error_maps(preds["scaled"], gt)
    assert np.nanmax(scaled["sam"]) < 1e-5 and scaled["rmse"].min() >= 0 and scaled["rmse"].max() > 0


def test_error_maps_refuse_mismatched_shapes():
    gt, preds = _scene()
    with pytest.raises(ValueError, match="differ in shape"):
        figures.error_maps(preds["noisy"][:, :10], gt)
    with pytest.raises(ValueError, match=r"\(31, H, W\)"):
        figures.error_maps(preds["noisy"][:3], gt[:3])


def test_band_comparison_draws_ground_truth_then_each_method_on_one_scale_per_band():
    gt, preds = _scene()
    fig, info = figures.band_comparison(gt, preds, wavelengths=(450, 650), title="t")
    assert info["bands"] == [5, 25] and WAVELENGTHS[info["bands"]].tolist() == [450, 650]
    assert info["columns"] == ["ground truth", "noisy", "scaled"]
    assert len(fig.axes) == 2 * 3
    imgs = [ax.get_images()[0] for ax in fig.axes]
    np.testing.assert_array_equal(imgs[0].get_array(), gt[5])      # row 450 nm, ground truth
    np.testing.assert_allclose(imgs[5].get_array(), preds["scaled"][0, 25].numpy(), rtol=1e-6)
    for r in range(2):
        assert {im.get_clim() for im in imgs[3 * r:3 * r + 3]} == {(0.0, info["vmax"][r])}
    assert info["vmax"][0] == pytest.approx(np.percentile(gt[5], 99.5))
    with pytest.raises(ValueError, match="455 nm"):
        figures.band_comparison(gt, preds, wavelengths=(455,))


def test_srgb_comparison_shows_the_library_rendering_of_each_cube():
    gt, preds = _scene()
    fig, info = figures.srgb_comparison(gt, preds)
    assert len(fig.axes) == 3 and info["columns"] == ["ground truth", "noisy", "scaled"]
    np.testing.assert_allclose(info["images"][0], srgb_preview(gt.astype(np.float64)), atol=1e-6)
    for img in info["images"]:
        assert img.shape == (48, 40, 3) and np.isfinite(img).all() and 0 <= img.min() <= img.max() <= 1
    assert not np.allclose(info["images"][0], info["images"][2])   # darker prediction, darker image


def test_distinct_pixels_finds_one_pixel_per_distinct_spectrum():
    h = w = 64
    quads = np.zeros((31, h, w), np.float32)
    shapes = [np.linspace(0.2, 0.9, 31), np.linspace(0.9, 0.2, 31),
              0.5 + 0.4 * np.sin(np.linspace(0, np.pi, 31)), np.full(31, 0.6)]
    for k, s in enumerate(shapes):
        r, c = divmod(k, 2)
        quads[:, r * 32:(r + 1) * 32, c * 32:(c + 1) * 32] = s[:, None, None]
    px = figures.distinct_pixels(quads, n=4, stride=4, margin=4, min_distance=8)
    assert len(set(px)) == 4
    assert sorted((r // 32, c // 32) for r, c in px) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(4 <= r < h - 4 and 4 <= c < w - 4 for r, c in px)
    assert px == figures.distinct_pixels(quads, n=4, stride=4, margin=4, min_distance=8)   # deterministic
    dark = quads.copy()
    dark[:, :32, :32] = 0.001                     # too dark to be chosen
    assert all(not (r < 32 and c < 32)
               for r, c in figures.distinct_pixels(dark, n=3, stride=4, margin=4, min_distance=8))


def test_distinct_pixels_keeps_the_markers_apart():
    gt, _ = _scene(h=96, w=96)
    px = figures.distinct_pixels(gt, n=4, stride=4, margin=4, min_brightness=0.0, min_distance=30)
    assert len(px) == 4
    assert all(max(abs(a[0] - b[0]), abs(a[1] - b[1])) >= 30 for i, a in enumerate(px) for b in px[i + 1:])
    with pytest.raises(ValueError, match="min_distance"):
        figures.distinct_pixels(gt, n=4, stride=4, margin=4, min_brightness=0.0, min_distance=90)


def test_spectra_at_pixels_plots_the_values_at_those_pixels():
    gt, preds = _scene()
    pixels = [(3, 4), (40, 30)]
    fig, info = figures.spectra_at_pixels(gt, preds, pixels)
    assert len(fig.axes) == 1 + len(pixels)
    assert list(info["curves"]) == ["ground truth", "noisy", "scaled"]
    np.testing.assert_array_equal(info["curves"]["ground truth"][1], gt[:, 40, 30])
    lines = fig.axes[2].get_lines()                           # panel of pixel 2
    assert len(lines) == 3 and len(fig.axes[2].get_yticks()) > 0     # a spectrum has a value axis
    np.testing.assert_array_equal(lines[0].get_xdata(), WAVELENGTHS)
    np.testing.assert_allclose(lines[1].get_ydata(), preds["noisy"][:, 40, 30])
    np.testing.assert_allclose(lines[2].get_ydata(), preds["scaled"][0, :, 40, 30].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="not inside"):
        figures.spectra_at_pixels(gt, preds, [(48, 0)])


def test_error_map_figure_shares_a_scale_per_metric_and_reports_the_means():
    gt, preds = _scene()
    fig, info = figures.error_map_figure(gt, preds, title="scene")
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 2 * 2                                # 2 metrics x 2 methods
    assert len(fig.axes) == 4 + 2                              # and one colour bar per metric
    for ax in panels:
        assert not np.isnan(np.asarray(ax.get_images()[0].get_array())).all()
    clims = [ax.get_images()[0].get_clim() for ax in panels]
    assert clims[0] == clims[1] == (0.0, info["vmax"]["rmse"])
    assert clims[2] == clims[3] == (0.0, info["vmax"]["sam"])
    p, t = torch.from_numpy(preds["noisy"])[None], torch.from_numpy(gt)[None]
    assert info["mean"]["sam"]["noisy"] == pytest.approx(metrics.sam(p, t).item(), rel=1e-9)
    assert info["mean"]["sam"]["scaled"] < 1e-4 < info["mean"]["sam"]["noisy"]
    assert f"{info['mean']['rmse']['noisy']:.4f}" in panels[0].get_title()
    with pytest.raises(ValueError, match="empty"):
        figures.error_map_figure(gt, {})
