"""CUDA paths: fast == readable, mixed-precision training, CPU == CUDA results, exact resume.

Every test here needs a CUDA device and is skipped (with the reason) without one; they run
on the GPU machine through ``benchmarks/gpu_check.py`` (see ``benchmarks/README.md``).
Tolerances are stated next to each comparison; TF32 is switched off wherever fp32 results
are compared (``fp32`` fixture), since TF32 matmuls round inputs to 10 mantissa bits.
"""
from __future__ import annotations

import math
import os

# cuBLAS needs this before its first use to have deterministic matmuls (exact-resume test)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from inr_lib import build_model  # noqa: E402
from inr_lib.evaluation import evaluate  # noqa: E402
from inr_lib.files.checkpoints import load_checkpoint  # noqa: E402
from inr_lib.train import TrainConfig, train  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device on this machine (run benchmarks/gpu_check.sh "
                                       "on a GPU machine)")

#: fp32 on CUDA vs fp32 on CPU / readable vs fast on CUDA (TF32 off): summation order only
FP32_ATOL = 1e-4
#: bf16 autocast (8-bit mantissa, relative step 2**-8 = 0.0039): outputs in [0, 1]
BF16_MEAN_ATOL, BF16_MAX_ATOL = 5e-3, 6e-2


@pytest.fixture
def fp32():
    """Full fp32 matmuls and convolutions on CUDA (TF32 off), restored afterwards."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.fixture
def deterministic():
    """Deterministic cuDNN/cuBLAS kernels (needed for bitwise-equal runs), restored afterwards."""
    old = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
           torch.are_deterministic_algorithms_enabled())
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old[:2]
    torch.use_deterministic_algorithms(old[2])


def _rgb(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth random RGB ``(b, 3, h, w)`` in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, h // 8 + 2, w // 8 + 2, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def scenes(smooth_scene):
    """``(train, val)``: three smooth 40 x 40 training scenes and one validation scene."""
    return [smooth_scene(f"s{i}", i, 40) for i in range(3)], [smooth_scene("v0", 5, 40)]


# ------------------------------------------------------------------ fast == readable on CUDA
@pytest.mark.parametrize("preset", ["small", "paper"])
def test_fast_equals_readable_on_cuda_fp32(preset, fp32):
    x = _rgb(2, 64, 64).cuda()
    outs = {}
    for path in ("readable", "fast"):
        model = build_model(preset, seed=0, pixelwise=path).cuda().eval()
        with torch.no_grad():
            outs[path] = model(x).float()
        del model
    assert outs["fast"].shape == (2, 31, 64, 64)
    torch.testing.assert_close(outs["fast"], outs["readable"], atol=FP32_ATOL, rtol=0)


@pytest.mark.parametrize("preset", ["small", "paper"])
def test_fast_equals_readable_under_bf16_autocast(preset, fp32):
    x = _rgb(2, 64, 64, seed=1).cuda()
    outs = {}
    for path in ("readable", "fast"):
        model = build_model(preset, seed=0, pixelwise=path).cuda().eval()
        with torch.no_grad():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                outs[path] = model(x).float()
            outs[path + "_fp32"] = model(x).float()
        del model
    for path in ("readable", "fast"):
        assert torch.isfinite(outs[path]).all(), path
    for a, b in (("fast", "readable"), ("fast", "fast_fp32"), ("readable", "readable_fp32")):
        diff = (outs[a] - outs[b]).abs()
        print(f"{preset} {a} vs {b}: mean |diff| {diff.mean():.2e}, max {diff.max():.2e}")
        assert diff.mean() <= BF16_MEAN_ATOL and diff.max() <= BF16_MAX_ATOL, (a, b)


# ------------------------------------------------------------------ mixed-precision training
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_training_gives_finite_decreasing_losses(scenes, tmp_path, amp):
    TRAIN, VAL = scenes
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no native bf16")
    cfg = TrainConfig.preset("tiny").replace(epochs=8, crops_per_scene=16, batch_size=8,
                                             lr=1e-3, milestones=[100], val_every=4, amp=amp)
    res = train(cfg, TRAIN, VAL, tmp_path / amp, device="cuda", progress=False)
    losses = [r["loss"] for r in res.history]
    print(amp, [f"{v:.4f}" for v in losses])
    assert len(losses) == 8 and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-2:]) < 0.9 * np.mean(losses[:2])
    assert math.isfinite(res.history[-1]["val_psnr"])
    state = load_checkpoint(res.last_path)
    if amp == "fp16":
        # the gradient scaler ran and its state is in the checkpoint (for exact resume)
        assert state["scaler"] and state["scaler"]["scale"] > 0
    assert next(res.model.parameters()).device.type == "cuda"


# ------------------------------------------------------------------ CUDA == CPU
def test_predict_and_render_on_cuda_equal_cpu(fp32):
    model = build_model("small", seed=0).eval()
    x = _rgb(1, 80, 72, seed=2)
    cpu_pred = model.predict(x, tile=32, overlap=8)
    cpu_render = model.render(x, (100, 90))
    model.cuda()
    gpu_pred = model.predict(x.cuda(), tile=32, overlap=8)
    with torch.no_grad():
        gpu_render = model.render(x.cuda(), (100, 90))
    assert gpu_pred.device.type == "cuda" and gpu_render.device.type == "cuda"
    torch.testing.assert_close(gpu_pred.cpu(), cpu_pred, atol=FP32_ATOL, rtol=0)
    torch.testing.assert_close(gpu_render.cpu(), cpu_render.detach(), atol=FP32_ATOL, rtol=0)
    # a CPU image with a CUDA model: the result comes back on the CPU
    back = model.predict(x, tile=32, overlap=8)
    assert back.device.type == "cpu"
    torch.testing.assert_close(back, cpu_pred, atol=FP32_ATOL, rtol=0)


@pytest.mark.parametrize("mode", ["tiled", "whole"])
def test_evaluate_on_cuda_equals_cpu(scenes, mode, fp32):
    """Metrics agree within 0.01 dB PSNR, 1e-4 SSIM, 0.01 deg SAM, 1e-5 RMSE and a relative
    1e-4 in MRAE (it divides by the target, which is near 0 in some bands)."""
    TRAIN, VAL = scenes
    model = build_model("small", seed=0)
    kw = dict(mode=mode, tile=32, overlap=8, progress=False)
    cpu = evaluate(model, VAL + TRAIN[:1], device="cpu", **kw)
    gpu = evaluate(model, VAL + TRAIN[:1], device="cuda", **kw)
    assert gpu["protocol"]["device"].startswith("cuda") and cpu["protocol"]["device"] == "cpu"
    tol = {"psnr": 1e-2, "ssim": 1e-4, "sam": 1e-2, "rmse": 1e-5}
    for a, b in zip(cpu["per_scene"], gpu["per_scene"]):
        for k, t in tol.items():
            assert abs(a[k] - b[k]) <= t, (a["scene"], k, a[k], b[k])
        assert abs(a["mrae"] - b["mrae"]) <= 1e-4 * max(1.0, abs(a["mrae"])), (a["scene"], a["mrae"], b["mrae"])


# ------------------------------------------------------------------ exact resume on CUDA
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_resume_on_cuda_is_exact(scenes, tmp_path, amp, deterministic):
    TRAIN, VAL = scenes
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no native bf16")
    cfg = TrainConfig.preset("tiny").replace(epochs=4, val_every=2, milestones=[3], amp=amp)
    full = train(cfg, TRAIN, VAL, tmp_path / "full", device="cuda", progress=False)
    train(cfg.replace(epochs=2), TRAIN, VAL, tmp_path / "part", device="cuda", progress=False)
    resumed = train(cfg, TRAIN, VAL, tmp_path / "part", resume=True, device="cuda", progress=False)
    a, b = load_checkpoint(full.last_path), load_checkpoint(resumed.last_path)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [r["loss"] for r in full.history] == [r["loss"] for r in resumed.history]
    if amp == "fp16":
        assert a["scaler"] == b["scaler"]
