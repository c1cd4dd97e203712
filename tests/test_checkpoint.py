"""Checkpoints: atomic writes, weights-only loading, clear errors, model rebuilding."""
from __future__ import annotations

import os

import pytest
import torch

from inr_lib import build_model
from inr_lib.files.atomic import atomic_write, sha256_file
from inr_lib.files.checkpoints import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    load_model,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from inr_lib.model.baselines import SmallResCNN


class Arbitrary:
    """A class a weights-only loader must refuse to unpickle."""

    def __reduce__(self):
        return (print, ("code ran while loading",))


@pytest.fixture
def model():
    return build_model("tiny", seed=1)


def _optim(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.rand(1, 3, 8, 8)).mean().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    return opt, sched


def test_round_trip_with_weights_only(tmp_path, model):
    opt, sched = _optim(model)
    path = save_checkpoint(tmp_path / "last.pt", model, epoch=3, optimizer=opt, scheduler=sched,
                           train_config={"lr": 1e-3}, history=[{"epoch": 1, "loss": 0.5}])
    ck = load_checkpoint(path)
    assert ck["epoch"] == 3 and ck["arch"] == "inr" and ck["format_version"] == FORMAT_VERSION
    assert ck["model_config"] == model.config.to_dict()
    assert ck["history"] == [{"epoch": 1, "loss": 0.5}]
    torch.load(path, weights_only=True)  # everything is tensors / plain values
    loaded = load_model(path)
    assert not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert loaded.checkpoint_info["sha256"] == sha256_file(path)
    opt2, sched2 = _optim(build_model("tiny", seed=1))
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])


def test_cnn_baseline_round_trip(tmp_path):
    cnn = SmallResCNN(channels=8, num_blocks=1, seed=2)
    save_checkpoint(tmp_path / "c.pt", cnn, epoch=1)
    loaded = load_model(tmp_path / "c.pt")
    assert isinstance(loaded, SmallResCNN) and loaded.config == cnn.config
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(loaded(x), cnn.eval()(x))


def test_rng_state_round_trip():
    state = rng_state()
    a = (torch.rand(3), __import__("numpy").random.rand(3).tolist(), __import__("random").random())
    set_rng_state(state)
    b = (torch.rand(3), __import__("numpy").random.rand(3).tolist(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_atomic_write_survives_a_crash_midway(tmp_path, model, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", model, epoch=1)
    before = sha256_file(path)

    def crashing_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, model, epoch=2)
    assert sha256_file(path) == before
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_atomic_write_replaces_content(tmp_path):
    p = tmp_path / "x.txt"
    atomic_write(p, lambda f: f.write(b"one"))
    atomic_write(p, lambda f: f.write(b"two"))
    assert p.read_bytes() == b"two" and os.listdir(tmp_path) == ["x.txt"]


def test_pickled_objects_are_refused(tmp_path, capsys):
    p = tmp_path / "evil.pt"
    torch.save({"format": "inr_lib.checkpoint", "payload": Arbitrary()}, p)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(p)
    assert "code ran" not in capsys.readouterr().out


def test_truncated_and_foreign_files(tmp_path, model):
    good = save_checkpoint(tmp_path / "good.pt", model, epoch=1)
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a checkpoint|truncated"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an inr_lib checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_newer_format_and_bad_model_config_are_clear_errors(tmp_path, model):
    path = save_checkpoint(tmp_path / "a.pt", model, epoch=1)
    ck = torch.load(path, weights_only=True)
    torch.save({**ck, "format_version": FORMAT_VERSION + 1}, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "newer.pt")
    torch.save({**ck, "model_config": {**ck["model_config"], "wings": 2}}, tmp_path / "unk.pt")
    with pytest.raises(CheckpointError, match="unknown model config keys"):
        load_model(tmp_path / "unk.pt")
    torch.save({**ck, "model_config": {**ck["model_config"], "config_version": 99}},
               tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_model(tmp_path / "v99.pt")
