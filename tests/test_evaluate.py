"""Full-image evaluation: tiled vs whole, blending, self-ensemble, protocol and JSON."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from inr_lib import build_model
from inr_lib.evaluation import evaluate, reconstruct, write_results
from inr_lib.files.atomic import sha256_file
from inr_lib.files.checkpoints import load_model, save_checkpoint
from inr_lib.model.tiling import predict_image, self_ensemble, tiled_apply


@pytest.fixture(scope="module")
def scenes(random_scene):
    return [random_scene("alpha", 0, 28, 24), random_scene("beta", 1, 28, 24)]


class Pointwise(nn.Module):
    """A per-pixel linear map: its output does not depend on where the pixel is."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 31, 1)
        torch.nn.init.uniform_(self.conv.weight, 0, 0.3)

    def forward(self, x):
        return self.conv(x)


def test_tiled_with_tile_at_least_the_image_equals_whole(scenes):
    model = build_model("tiny", seed=0)
    whole = evaluate(model, scenes, mode="whole", progress=False)
    tiled = evaluate(model, scenes, mode="tiled", tile=32, overlap=8, progress=False)
    assert whole["mean"] == tiled["mean"]
    assert whole["per_scene"] == tiled["per_scene"]
    # with a smaller tile the INR's windows see less context: a different, finite result
    small = evaluate(model, scenes, mode="tiled", tile=16, overlap=4, progress=False)
    assert all(math.isfinite(v) for v in small["mean"].values())


def test_generic_tiling_blends_windows_exactly_for_a_pointwise_model():
    torch.manual_seed(0)
    model = Pointwise().eval()
    x = torch.rand(2, 3, 37, 29)
    with torch.no_grad():
        ref = model(x)
    for tile, overlap in [(8, 0), (16, 5), (11, 7), (64, 16)]:
        out = tiled_apply(model, x, tile, overlap, batch_size=3)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    # a pointwise model commutes with flips/transposes: the self-ensemble changes nothing
    torch.testing.assert_close(self_ensemble(model, x), ref, rtol=1e-5, atol=1e-6)


def test_self_ensemble_maps_every_transform_back():
    x = torch.arange(2 * 3 * 5 * 4, dtype=torch.float32).reshape(2, 3, 5, 4)
    # identity "model": each inverse must undo its transform exactly, or the mean differs from x
    torch.testing.assert_close(self_ensemble(lambda t: t, x), x)


def test_baselines_work_tiled_and_whole(scenes):
    model = Pointwise()
    r1 = evaluate(model, scenes, mode="tiled", tile=16, overlap=4, progress=False)
    r2 = evaluate(model, scenes, mode="whole", progress=False)
    for k in r1["mean"]:
        assert r1["mean"][k] == pytest.approx(r2["mean"][k], rel=1e-5, abs=1e-6)


def test_results_json_has_metrics_curves_and_protocol(tmp_path, scenes):
    model = build_model("tiny", seed=0)
    path = save_checkpoint(tmp_path / "best.pt", model, epoch=1)
    loaded = load_model(path)
    res = evaluate(loaded, scenes, mode="tiled", tile=16, overlap=4, border=2,
                   self_ensemble=True, rgb_source="cie1964", progress=False,
                   dataset="synthetic", split="test")
    out = write_results(res, tmp_path / "results" / "eval.json")
    data = json.loads(out.read_text())
    assert set(data["mean"]) == {"psnr", "ssim", "sam", "rmse", "mrae"}
    assert [s["scene"] for s in data["per_scene"]] == ["alpha", "beta"]
    assert len(data["per_band"]["psnr"]) == 31 and len(data["per_band"]["rmse"]) == 31
    assert data["per_band"]["wavelengths"][0] == 400 and data["per_band"]["wavelengths"][-1] == 700
    assert len(data["per_scene"][0]["psnr_per_band"]) == 31
    p = data["protocol"]
    assert p["dataset"] == "synthetic" and p["split"] == "test"
    assert p["scenes"] == ["alpha", "beta"] and p["border"] == 2
    assert p["rgb"]["response"] == "cie1964"
    assert p["inference"] == {"mode": "tiled", "tile": 16, "overlap": 4, "self_ensemble": True}
    assert p["checkpoint_sha256"] == sha256_file(path)
    assert p["value_scale"].startswith("[0, 1]") and p["inr_lib_version"] and p["date"]
    assert p["model_config"] == model.config.to_dict()


def test_non_finite_values_become_null_and_bad_arguments_are_errors(tmp_path, scenes):
    write_results({"mean": {"psnr": float("inf")}, "x": [float("nan"), 1.0]}, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {"mean": {"psnr": None}, "x": [None, 1.0]}
    model = Pointwise()
    with pytest.raises(ValueError, match="mode"):
        evaluate(model, scenes, mode="sliding", progress=False)
    with pytest.raises(ValueError, match="border"):
        evaluate(model, scenes, border=14, progress=False)
    with pytest.raises(ValueError, match="at least one scene"):
        evaluate(model, [], progress=False)


def test_one_inference_entry_point_for_whole_tiled_and_self_ensemble():
    model = build_model("tiny", seed=0).eval()
    x = torch.rand(1, 3, 20, 18, generator=torch.Generator().manual_seed(0))
    ref = self_ensemble(lambda t: predict_image(model, t, tile=16, overlap=4), x)
    assert torch.equal(predict_image(model, x, tile=16, overlap=4, self_ensemble=True), ref)
    assert torch.equal(reconstruct(model, x, tile=16, overlap=4, self_ensemble=True),
                       ref.clamp(0, 1))
    assert torch.equal(predict_image(model, x, mode="whole"), model.predict(x, tile=None))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))])
def test_evaluate_scores_on_the_model_device(scenes, monkeypatch, device):
    import inr_lib.evaluation.scoring as ev

    seen, real = [], ev.M.compute_all
    monkeypatch.setattr(ev.M, "compute_all", lambda p, t: seen.append((p.device, t.device)) or real(p, t))
    res = evaluate(build_model("tiny", seed=0), scenes, tile=16, overlap=4, device=device,
                   progress=False)
    assert len(seen) == len(scenes) and all(p.type == t.type == device for p, t in seen)
    assert np.isfinite(res["mean"]["psnr"])
