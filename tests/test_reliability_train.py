"""Issue 15, wrong results with exit 0 in training: a locked run folder, --resume on other
data, config values out of range (each message names the key)."""
from __future__ import annotations

import fcntl
import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from inr_lib.cli import main
from inr_lib.data import ensure_synthetic_cave
from inr_lib.train import TrainConfig, amp_dtype_for


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return rc, [ln for ln in cap.err.splitlines() if ln.startswith("error:")]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("data") / "synthetic"
    ensure_synthetic_cave(root)
    return f"synthetic:{root}"


def train_argv(synth, out, *extra):
    return ["train", "--config", "tiny", "--data", synth, "--out", out, "--epochs", "1",
            "--no-progress", "--device", "cpu", *extra]


# ------------------------------------------------------------------- (8) lock
def test_a_second_training_into_a_locked_run_folder_fails_at_once(tmp_path, synth, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "a+") as held:          # a run in progress holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 12345 on host\n")
        held.flush()
        rc, errors = run_cli(train_argv(synth, out), capsys)
    assert rc == 1 and errors == [f"error: {out} is being written by another training run (pid "
                                  f"12345 on host); wait for it to finish, or choose another --out"]
    assert not (out / "last.pt").exists() and not (out / "log.jsonl").exists()
    assert run_cli(train_argv(synth, out), capsys)[0] == 0   # released: a run now works


# ------------------------------------------------------------------- (9) --resume other data
def test_resume_refuses_other_data_unless_told(tmp_path, synth, capsys):
    out = tmp_path / "run"
    assert run_cli(train_argv(synth, out), capsys)[0] == 0
    rec = json.loads((out / "data.json").read_text())
    assert rec["dataset"] == "synthetic" and len(rec["train"]) == 6 and len(rec["test"]) == 2
    other = tmp_path / "other"                   # 5 of the scenes, read as a CAVE folder
    src = Path(synth.split(":", 1)[1])
    for d in sorted(src.glob("*_ms"))[:5]:
        shutil.copytree(d, other / d.name)
    argv = ["train", "--config", "tiny", "--data", f"cave:{other}", "--out", out,
            "--epochs", "2", "--resume", "--no-progress", "--device", "cpu"]
    before = (out / "last.pt").read_bytes()
    rc, errors = run_cli(argv, capsys)
    assert rc == 1 and errors[0].startswith(f"error: cannot resume {out}: it was trained on synthetic")
    assert "now give cave" in errors[0]
    assert "--allow-other-data" in errors[0] and "(different dataset, train, test)" in errors[0]
    assert (out / "last.pt").read_bytes() == before
    assert run_cli(argv + ["--allow-other-data"], capsys)[0] == 0


def test_resume_and_overwrite_together_is_an_error(tmp_path, synth, capsys):
    rc, errors = run_cli(train_argv(synth, tmp_path / "r", "--resume", "--overwrite"), capsys)
    assert rc == 1 and "--resume and --overwrite contradict each other" in errors[0]


# ------------------------------------------------------------------- (10) config ranges
@pytest.mark.parametrize("item, message", [
    ("gamma=-1", "gamma must be a number in (0, 1]"),
    ("gamma=2", "gamma must be a number in (0, 1]"),
    ("lr=abc", "lr must be a number in (0, 1], got 'abc'"),
    ("lr=-1e-3", "lr must be a number in (0, 1]"),
    ("weight_decay=-1", "weight_decay must be a number >= 0"),
    ("betas=[0.9, 1.5]", "betas must be two numbers in [0, 1)"),
    ("epochs=2.5", "epochs must be an integer >= 1, got 2.5"),
    ("crop_size=abc", "crop_size must be an integer >= 1, got 'abc'"),
    ("milestones=[a]", "milestones must be a list of integers >= 0"),
    ("val_every=-1", "val_every must be an integer >= 0"),
    ("grad_clip=0", "grad_clip must be a positive number or null"),
])
def test_config_values_out_of_range_name_the_key(item, message):
    with pytest.raises(ValueError, match="invalid training configuration: .*" + _re(message)):
        TrainConfig.load("tiny").with_overrides([item])


def _re(text):
    import re

    return re.escape(text)


def test_set_gamma_negative_is_refused_on_the_command_line(tmp_path, synth, capsys):
    rc, errors = run_cli(train_argv(synth, tmp_path / "r", "--set", "gamma=-1"), capsys)
    assert rc == 1 and "gamma must be a number in (0, 1]" in errors[0]
    assert not (tmp_path / "r").exists()


def test_presets_still_load_unchanged():
    paper = TrainConfig.load("paper")
    assert paper.lr == 1e-4 and paper.gamma == 0.5 and paper.betas == (0.9, 0.999)
    assert TrainConfig.from_dict(paper.to_dict()) == paper


def test_fp16_asked_for_on_cpu_warns():
    with pytest.warns(UserWarning, match="amp=fp16 applies to CUDA only"):
        assert amp_dtype_for(torch.device("cpu"), "fp16") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert amp_dtype_for(torch.device("cpu"), "auto") is None


def test_a_single_scene_can_be_trained_with_split_all(tmp_path, capsys):
    root = tmp_path / "one"
    ensure_synthetic_cave(root, n_scenes=1, size=32)
    out = tmp_path / "run"
    argv = ["train", "--config", "tiny", "--data", f"cave:{root}", "--out", out, "--epochs", "1",
            "--no-progress", "--device", "cpu"]
    rc, errors = run_cli(argv, capsys)
    assert rc == 1 and "leaves 0 train and 1 test scenes" in errors[0]
    assert run_cli(argv + ["--split", "all"], capsys)[0] == 0
    assert (out / "last.pt").is_file() and not (out / "best.pt").exists()
    assert len(json.loads((out / "data.json").read_text())["train"]) == 1
