"""Training loop: presets, exact resume, NaN stop, output-folder checks, logs, CNN arch."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from inr_lib.files.atomic import sha256_file
from inr_lib.files.checkpoints import load_checkpoint
from inr_lib.train import (
    NonFiniteLossError,
    OutputDirError,
    TrainConfig,
    amp_dtype_for,
    build_for_config,
    grad_scaler,
    list_presets,
    train,
    train_step,
)


def tiny(**changes) -> TrainConfig:
    return TrainConfig.preset("tiny").replace(**changes)


def test_paper_preset_is_the_paper_recipe():
    c = TrainConfig.preset("paper")
    assert (c.model_preset, c.arch, c.lr, c.epochs, c.batch_size, c.crop_size, c.crops_per_scene) == \
        ("paper", "inr", 1e-4, 1000, 56, 64, 56)
    assert c.milestones == (200, 400, 600, 800) and c.gamma == 0.5 and c.augment
    assert set(list_presets()) >= {"paper", "colab", "quick", "tiny"}
    colab = TrainConfig.preset("colab")
    assert colab.model_preset == "paper" and colab.epochs < 1000
    assert all(m < colab.epochs for m in colab.milestones)
    q = TrainConfig.preset("quick")
    assert q.model_preset == "small-paper" and q.lr == 1e-3


def test_paper_recipe_is_defined_once_by_the_defaults():
    from inr_lib.train.config import CONFIG_DIR

    assert TrainConfig.preset("paper") == TrainConfig()
    shipped = sorted((CONFIG_DIR.parents[1] / "pretrained" / "configs").glob("*.yaml"))
    assert shipped and all(TrainConfig.from_yaml(p).epochs >= 1 for p in shipped)
    # configs saved by earlier versions still load; a retired option with an effect is refused
    old = {**TrainConfig().to_dict(), "grad_clip": None, "tensorboard": False, "best_metric": "psnr"}
    assert TrainConfig.from_dict(old) == TrainConfig()
    with pytest.raises(ValueError, match="'grad_clip' is no longer supported"):
        TrainConfig.from_dict({**old, "grad_clip": 1.0})


def _reference_step(model, rgb, hsi, optimizer, scaler):
    """The loop body as it was written inline before train_step existed (fp32, CPU)."""
    pred = model(rgb)
    loss = torch.nn.functional.l1_loss(pred.float() * 2 - 1, hsi * 2 - 1)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def test_train_step_is_bit_identical_to_the_former_inline_loop():
    """Resuming a run started before the refactor stays exact: same losses, same weights."""
    g = torch.Generator().manual_seed(3)
    batches = [(torch.rand(4, 3, 16, 16, generator=g), torch.rand(4, 31, 16, 16, generator=g))
               for _ in range(4)]
    runs = []
    for step in (train_step, None):
        cfg = tiny()
        model = build_for_config(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)
        scaler = grad_scaler(enabled=False)
        losses = [step(model, b, opt, scaler, None) if step else
                  _reference_step(model, *b, opt, scaler) for b in batches]
        runs.append((torch.stack(losses), model.state_dict(), opt.state_dict()["state"]))
    (la, wa, oa), (lb, wb, ob) = runs
    assert torch.equal(la, lb) and la[-1] < la[0]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert all(torch.equal(oa[i]["exp_avg_sq"], ob[i]["exp_avg_sq"]) for i in oa)


def test_config_yaml_overrides_and_errors(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("base: tiny\nlr: 0.01\nmodel: {encoding: tile}\n")
    c = TrainConfig.load(p)
    assert c.lr == 0.01 and c.model == {"encoding": "tile"} and c.crop_size == 16
    c2 = c.with_overrides(["epochs=7", "model.norm=none", "milestones=[2, 5]"])
    assert c2.epochs == 7 and c2.model == {"encoding": "tile", "norm": "none"}
    assert c2.milestones == (2, 5)
    assert TrainConfig.from_dict(c2.to_dict()) == c2
    with pytest.raises(ValueError, match="unknown key 'lrr'"):
        c.with_overrides(["lrr=1"])
    p.write_text("lr: 0.1\nbatchsize: 3\n")
    with pytest.raises(ValueError, match="unknown training config keys.*batchsize"):
        TrainConfig.from_yaml(p)
    with pytest.raises(ValueError, match="neither a preset"):
        TrainConfig.load(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="val_mode"):
        tiny(val_mode="sometimes")
    assert amp_dtype_for(torch.device("cpu")) is None


def _weights(path):
    return load_checkpoint(path)["model"]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, train_val):
    cfg = tiny(epochs=4, val_every=2, milestones=[3])
    full = train(cfg, train_val[0], train_val[1], tmp_path / "full", device="cpu", progress=False)
    train(cfg.replace(epochs=2), train_val[0], train_val[1], tmp_path / "part", device="cpu", progress=False)
    resumed = train(cfg, train_val[0], train_val[1], tmp_path / "part", resume=True, device="cpu", progress=False)
    a, b = _weights(full.last_path), _weights(resumed.last_path)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["loss"] for r in full.history] == [r["loss"] for r in resumed.history]
    # the log has one line per epoch, with loss, lr, timing and validation metrics
    lines = [json.loads(s) for s in resumed.log_path.read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]
    assert {"loss", "lr", "seconds", "samples_per_s"} <= set(lines[0])
    assert "val_psnr" in lines[1] and "val_psnr" not in lines[2] and "val_ssim" in lines[3]
    assert lines[3]["lr"] == pytest.approx(5e-4)          # halved after epoch 3
    assert full.best_path is not None and load_checkpoint(full.best_path)["best"] is not None
    assert np.isfinite(full.best["val_psnr"])
    # an existing run is not overwritten by accident; resuming a finished run trains nothing
    with pytest.raises(FileExistsError, match="already holds a training run"):
        train(cfg, train_val[0], train_val[1], tmp_path / "full", device="cpu", progress=False)
    again = train(cfg, train_val[0], train_val[1], tmp_path / "full", resume=True, device="cpu", progress=False)
    assert again.history == full.history
    assert all(torch.equal(v, a[k]) for k, v in again.model.state_dict().items())
    with pytest.raises(ValueError, match="different model.*hyper_width"):
        train(cfg.replace(model={"hyper_width": 4}), train_val[0], train_val[1], tmp_path / "full", resume=True,
              device="cpu", progress=False)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, train_val):
    out = tmp_path / "run"
    saved = {}

    def poison(record, model):
        if record["epoch"] == 1:
            saved["sha"] = sha256_file(out / "last.pt")
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))

    with pytest.raises(NonFiniteLossError, match="epoch 2.*last good checkpoint"):
        train(tiny(epochs=3, val_every=0), train_val[0], [], out, device="cpu", progress=False,
              callback=poison)
    ck = load_checkpoint(out / "last.pt")
    assert ck["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert not (out / "best.pt").exists()
    assert sha256_file(out / "last.pt") == saved["sha"]  # untouched


def test_output_folder_checks(tmp_path, monkeypatch, train_val):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputDirError, match="not writable"):
        train(tiny(epochs=1), train_val[0], [], blocker / "run", device="cpu", progress=False)
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: SimpleNamespace(total=1, used=1, free=1000))
    with pytest.raises(OutputDirError, match="MiB free"):
        train(tiny(epochs=1), train_val[0], [], tmp_path / "run", device="cpu", progress=False)


def test_cnn_baseline_and_crop_validation_use_the_same_loop(tmp_path, train_val):
    cfg = tiny(arch="cnn", model={"channels": 8, "num_blocks": 1}, epochs=1, val_mode="both")
    res = train(cfg, train_val[0], train_val[1], tmp_path, device="cpu", progress=False)
    rec = res.history[-1]
    assert np.isfinite(rec["loss"]) and "val_psnr" in rec and "val_crops_psnr" in rec
    ck = load_checkpoint(res.last_path)
    assert ck["arch"] == "cnn" and ck["model_config"]["channels"] == 8


def test_stop_request_from_callback(tmp_path, train_val):
    res = train(tiny(epochs=5, val_every=0), train_val[0], [], tmp_path, device="cpu", progress=False,
                callback=lambda record, model: record["epoch"] == 2)
    assert res.stopped_early and len(res.history) == 2
    assert load_checkpoint(res.last_path)["epoch"] == 2 and res.best_path is None


def test_dataloader_workers_give_the_same_crops(tmp_path, train_val):
    """Crops are a pure function of (seed, epoch, index): worker processes change nothing."""
    cfg = tiny(epochs=2, val_every=0)
    a = train(cfg, train_val[0], [], tmp_path / "w0", device="cpu", progress=False)
    b = train(cfg.replace(num_workers=2), train_val[0], [], tmp_path / "w2", device="cpu", progress=False)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
