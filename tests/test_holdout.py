"""Validation on training scenes held out (``TrainConfig.val_holdout``): early stopping that
never looks at the test scenes.

The choice (:func:`inr_lib.data.hold_out`) is checked for determinism; a tiny run through
:func:`inr_lib.train.train` for which scenes reach a training batch and which are validated on;
the command line for ``data.json``, a refused resume with another hold-out and a refused count
that leaves nothing to train on. ``val_holdout: 0`` (the default) leaves training as it was:
``test_train.py``, ``test_kill_resume.py`` and ``test_reliability_train.py`` are unchanged.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import inr_lib.train.loop as loop
from inr_lib.data import hold_out
from inr_lib.data.patches import PatchDataset
from inr_lib.train import TrainConfig, train

NAMES = [f"scene_{i:02d}" for i in range(16)]


# ---------------------------------------------------------------------------- the choice
def test_the_choice_follows_seed_and_names_only():
    kept, held = hold_out(NAMES, 3, seed=0)
    assert len(held) == 3 and sorted(kept + held) == NAMES
    assert kept == [n for n in NAMES if n not in held] and held == [n for n in NAMES if n in held]
    assert hold_out(NAMES, 3, seed=0) == (kept, held)                      # deterministic
    back_kept, back_held = hold_out(NAMES[::-1], 3, seed=0)                # order: kept as given
    assert sorted(back_held) == sorted(held) and back_held == held[::-1]
    assert set(hold_out(NAMES, 2, seed=0)[1]) < set(held)                  # one more: one added
    assert len({tuple(hold_out(NAMES, 3, seed=s)[1]) for s in range(6)}) > 1   # the seed matters
    assert hold_out(NAMES, 0, seed=0) == (NAMES, [])
    # the digests are fixed: the same scenes on every machine and Python version
    assert held == ["scene_07", "scene_08", "scene_09"]


@pytest.mark.parametrize("count", [16, 17, -1])
def test_a_count_that_leaves_nothing_to_train_on_is_refused(count):
    with pytest.raises(ValueError, match=f"val_holdout {count}: cannot hold out .* of the 16 "
                                         f"training scenes.*use val_holdout 0 to 15"):
        hold_out(NAMES, count)


def test_config_field_is_checked_and_round_trips():
    cfg = TrainConfig.preset("tiny")
    assert cfg.val_holdout == 0
    assert TrainConfig.from_dict(cfg.replace(val_holdout=2).to_dict()).val_holdout == 2
    with pytest.raises(ValueError, match="val_holdout must be an integer >= 0, got -1"):
        cfg.with_overrides(["val_holdout=-1"])


# ---------------------------------------------------------------------------- the loop
def test_held_out_scenes_are_validated_on_and_never_trained_on(tmp_path, smooth_scene, monkeypatch):
    scenes = [smooth_scene(f"s{i}", i) for i in range(4)]
    tests = [smooth_scene("t0", 9)]
    batches: list = []      # the scene of every crop that reaches a training batch
    validated: list = []    # the scenes of every validation

    class Recording(PatchDataset):
        def __getitem__(self, index):
            batches.append(self.names[self.params(index).scene])
            return super().__getitem__(index)

    def evaluate(model, val_scenes, **kw):
        validated.append([s.name for s in val_scenes])
        return real_evaluate(model, val_scenes, **kw)

    real_evaluate = loop.evaluate
    monkeypatch.setattr(loop, "PatchDataset", Recording)
    monkeypatch.setattr(loop, "evaluate", evaluate)
    cfg = TrainConfig.preset("tiny").replace(epochs=2, val_holdout=2)
    res = train(cfg, scenes, tests, tmp_path / "run", device="cpu", progress=False)
    _, held = hold_out([s.name for s in scenes], 2, cfg.seed)
    assert len(batches) == 2 * 2 * cfg.crops_per_scene                      # 2 scenes, 2 epochs
    assert set(batches) == {s.name for s in scenes} - set(held)
    assert validated == [held, held]                   # the test scene: never trained, never validated
    assert all(np.isfinite(r["val_psnr"]) for r in res.history)
    assert res.best_path is not None and res.best["epoch"] in (1, 2)       # the early-stopping choice
    with pytest.raises(ValueError, match=r"cannot resume from .*last\.pt: its validation scenes were "
                                         r"chosen by \(val_holdout, seed\) \(2, 0\), now \(0, None\)"):
        train(cfg.replace(epochs=3, val_holdout=0), scenes, tests, tmp_path / "run", device="cpu",
              progress=False, resume=True)
    with pytest.raises(ValueError, match="val_holdout 4: cannot hold out 4 of the 4 training scenes"):
        train(cfg.replace(val_holdout=4), scenes, tests, tmp_path / "other", device="cpu",
              progress=False)
    assert not (tmp_path / "other" / "last.pt").exists()


def test_a_run_from_before_val_holdout_resumes(tmp_path, smooth_scene):
    """A checkpoint whose recorded config has no val_holdout (an older version's run) validated
    on the test scenes: it resumes with the default, as before."""
    scenes, tests = [smooth_scene(f"s{i}", i) for i in range(2)], [smooth_scene("t0", 9)]
    cfg = TrainConfig.preset("tiny").replace(epochs=1)
    train(cfg, scenes, tests, tmp_path / "run", device="cpu", progress=False)
    last = tmp_path / "run" / "last.pt"
    state = torch.load(last, weights_only=False)
    del state["train_config"]["val_holdout"]
    torch.save(state, last)
    res = train(cfg.replace(epochs=2), scenes, tests, tmp_path / "run", device="cpu", progress=False,
                resume=True)
    assert [r["epoch"] for r in res.history][-1] == 2


# ---------------------------------------------------------------------------- command line
def _argv(synth, out, *extra):
    return ["train", "--config", "tiny", "--data", synth, "--out", out, "--epochs", "1",
            "--no-progress", "--device", "cpu", *extra]


def test_data_json_records_the_hold_out_and_resume_refuses_another(tmp_path, synth, run_cli):
    out = tmp_path / "run"
    rc, _, err, _ = run_cli(_argv(synth, out, "--set", "val_holdout=2"))
    assert rc == 0
    rec = json.loads((out / "data.json").read_text())
    assert rec["val_holdout"] == 2 and rec["val_seed"] == 0 and len(rec["val"]) == 2
    assert len(rec["train"]) == 4 and len(rec["test"]) == 2            # synthetic: 6 train / 2 test
    assert not set(rec["val"]) & set(rec["train"]) and not set(rec["val"]) & set(rec["test"])
    assert rec["val"] == hold_out(rec["train"] + rec["val"], 2, 0)[1]
    assert f"validating on 2 held out of the training scenes ({', '.join(rec['val'])})" in err
    before = (out / "last.pt").read_bytes()
    for change in (["--set", "val_holdout=1"], [], ["--set", "val_holdout=2", "--set", "seed=1"]):
        rc, _, _, errors = run_cli(_argv(synth, out, "--resume", "--epochs", "2", *change))
        assert rc == 1 and len(errors) == 1 and errors[0].startswith(
            f"error: cannot resume {out}: {out / 'data.json'} records validation on 2 training "
            f"scenes held out with seed 0 ({', '.join(rec['val'])}; val_holdout 2), but the "
            f"config now asks for "), errors
        assert "--allow-other-data" not in errors[0]
    assert (out / "last.pt").read_bytes() == before
    assert run_cli(_argv(synth, out, "--resume", "--epochs", "2", "--set", "val_holdout=2"))[0] == 0


def test_default_records_the_test_scenes_as_validation(tmp_path, synth, run_cli):
    out = tmp_path / "run"
    assert run_cli(_argv(synth, out))[0] == 0
    rec = json.loads((out / "data.json").read_text())
    assert rec["val"] == rec["test"] and rec["val_holdout"] == 0 and rec["val_seed"] is None
    rc, _, _, errors = run_cli(_argv(synth, out, "--resume", "--epochs", "2", "--set", "val_holdout=1"))
    assert rc == 1 and "records validation on the test scenes (val_holdout 0), but the config now " \
                       "asks for 1 training scenes held out with seed 0" in errors[0]


def test_holding_out_every_training_scene_is_refused_before_training(tmp_path, synth, run_cli):
    out = tmp_path / "run"
    rc, _, _, errors = run_cli(_argv(synth, out, "--set", "val_holdout=6"))
    assert rc == 1 and errors == ["error: val_holdout 6: cannot hold out 6 of the 6 training scenes "
                                  "for validation and still train on one; use val_holdout 0 to 5"]
    assert not (out / "last.pt").exists() and not (out / "data.json").exists()
