"""Reliability of training: crashes between checkpoint writes, a full disk, unusable or damaged run folders.

Every case checks that nothing is corrupted or executed and that the message says what was
expected, what was found and what to do (cases covered elsewhere are listed in
``tests/conftest.py``).
"""
from __future__ import annotations

import errno
import fcntl
import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from inr_lib import build_model
from inr_lib.data import ensure_synthetic_cave
from inr_lib.files.checkpoints import load_checkpoint, save_checkpoint
from inr_lib.train import OutputDirError, TrainConfig, amp_dtype_for, train


def _tiny(**kw):
    return TrainConfig.preset("tiny").replace(**{"crops_per_scene": 2, **kw})


def test_crash_between_best_and_last_write_resumes_to_the_same_checkpoints(tmp_path, monkeypatch,
                                                                           train_val):
    """best.pt is written before last.pt: a crash between them resumes from the previous
    last.pt and rewrites the same best.pt (the other order could leave a last.pt whose
    `best` record points at weights that were never saved)."""
    import inr_lib.train.loop as tr

    cfg = _tiny(epochs=3, val_every=1)
    ref = train(cfg, train_val[0], train_val[1], tmp_path / "ref", device="cpu", progress=False)
    real = tr.ckpt_lib.save_checkpoint

    def crash_at_epoch_2(path, model, **kw):
        if Path(path).name == "last.pt" and kw["epoch"] == 2:
            raise KeyboardInterrupt("power cut between the two writes (simulated)")
        return real(path, model, **kw)

    monkeypatch.setattr(tr.ckpt_lib, "save_checkpoint", crash_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, train_val[0], train_val[1], tmp_path / "run", device="cpu", progress=False)
    monkeypatch.setattr(tr.ckpt_lib, "save_checkpoint", real)
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["epoch"] == 1 and load_checkpoint(tmp_path / "run" / "best.pt")["epoch"] == 2
    train(cfg, train_val[0], train_val[1], tmp_path / "run", resume=True, device="cpu", progress=False)
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(ref.out_dir / name), load_checkpoint(tmp_path / "run" / name)
        assert a["epoch"] == b["epoch"] and a["best"]["epoch"] == b["best"]["epoch"]
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), name


def test_disk_full_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch,
                                                                    train_val):
    import inr_lib.files.checkpoints as ck

    real = torch.save

    def save(obj, f, *a, **k):
        if isinstance(obj, dict) and obj.get("epoch") == 2:
            f.write(b"PK\x03\x04 the first bytes of a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ck.torch, "save", save)
    out = tmp_path / "run"
    with pytest.raises(OutputDirError, match=r"could not write .*last\.pt after epoch 2 \(No "
                                             r"space left on device\); .*last\.pt \(epoch 1\) is "
                                             r"intact.*--resume"):
        train(_tiny(epochs=3, val_every=0), train_val[0], [], out, device="cpu", progress=False)
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not list(out.glob(".*.tmp"))  # the half-written temporary file was removed


def test_unusable_output_folder_is_reported_before_loading_data(tmp_path, run_cli):
    (tmp_path / "file").write_text("not a folder")
    missing_data = f"cave:{tmp_path / 'no_such_data'}"   # would fail later, if ever reached
    rc, _, _, errors = run_cli(["train", "--config", "tiny", "--data", missing_data, "--out",
                                tmp_path / "file" / "run"])
    assert rc == 1 and "output folder" in errors[0] and "choose another --out" in errors[0]
    run = tmp_path / "old"
    run.mkdir()
    save_checkpoint(run / "last.pt", build_model("tiny"), epoch=1)
    rc, _, _, errors = run_cli(["train", "--config", "tiny", "--data", missing_data, "--out", run])
    assert rc == 1 and "already holds a training run" in errors[0] and "--resume" in errors[0]


def test_resume_from_a_damaged_last_pt_says_what_to_do(tmp_path, run_cli, write_cave_scene):
    data = tmp_path / "cave"
    for i in range(2):
        write_cave_scene(data / f"s{i}_ms", name=f"s{i}", shape=(16, 16))
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "last.pt", build_model("tiny"), epoch=1)
    full = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(full[: len(full) // 2])   # e.g. an interrupted copy
    rc, _, _, errors = run_cli(["train", "--config", "tiny", "--data", f"cave:{data}", "--out", run,
                                "--resume", "--no-progress", "--device", "cpu"])
    assert rc == 1
    assert "cannot resume" in errors[0] and "truncated" in errors[0]
    assert "copy it over last.pt" in errors[0] and "--overwrite" in errors[0]


def train_argv(synth, out, *extra):
    return ["train", "--config", "tiny", "--data", synth, "--out", out, "--epochs", "1",
            "--no-progress", "--device", "cpu", *extra]


# ------------------------------------------------------------------- (8) lock
def test_a_second_training_into_a_locked_run_folder_fails_at_once(tmp_path, synth, run_cli):
    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "a+") as held:          # a run in progress holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 12345 on host\n")
        held.flush()
        rc, _, _, errors = run_cli(train_argv(synth, out))
    assert rc == 1 and errors == [f"error: {out} is being written by another training run (pid "
                                  f"12345 on host); wait for it to finish, or choose another --out"]
    assert not (out / "last.pt").exists() and not (out / "log.jsonl").exists()
    assert run_cli(train_argv(synth, out))[0] == 0   # released: a run now works


# ------------------------------------------------------------------- (9) --resume other data
def test_resume_refuses_other_data_unless_told(tmp_path, synth, run_cli):
    out = tmp_path / "run"
    assert run_cli(train_argv(synth, out))[0] == 0
    rec = json.loads((out / "data.json").read_text())
    assert rec["dataset"] == "synthetic" and len(rec["train"]) == 6 and len(rec["test"]) == 2
    other = tmp_path / "other"                   # 5 of the scenes, read as a CAVE folder
    src = Path(synth.split(":", 1)[1])
    for d in sorted(src.glob("*_ms"))[:5]:
        shutil.copytree(d, other / d.name)
    argv = ["train", "--config", "tiny", "--data", f"cave:{other}", "--out", out,
            "--epochs", "2", "--resume", "--no-progress", "--device", "cpu"]
    before = (out / "last.pt").read_bytes()
    rc, _, _, errors = run_cli(argv)
    assert rc == 1 and errors[0].startswith(f"error: cannot resume {out}: it was trained on synthetic")
    assert "now give cave" in errors[0]
    assert "--allow-other-data" in errors[0] and "(different dataset, train, test)" in errors[0]
    assert (out / "last.pt").read_bytes() == before
    assert run_cli(argv + ["--allow-other-data"])[0] == 0


def test_resume_and_overwrite_together_is_an_error(tmp_path, synth, run_cli):
    rc, _, _, errors = run_cli(train_argv(synth, tmp_path / "r", "--resume", "--overwrite"))
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
    ("num_workers=-1", "num_workers must be an integer >= 0 or null"),   # grad_clip was retired
])
def test_config_values_out_of_range_name_the_key(item, message):
    with pytest.raises(ValueError, match="invalid training configuration: .*" + _re(message)):
        TrainConfig.load("tiny").with_overrides([item])


def _re(text):
    import re

    return re.escape(text)


def test_set_gamma_negative_is_refused_on_the_command_line(tmp_path, synth, run_cli):
    rc, _, _, errors = run_cli(train_argv(synth, tmp_path / "r", "--set", "gamma=-1"))
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


def test_a_single_scene_can_be_trained_with_split_all(tmp_path, run_cli):
    root = tmp_path / "one"
    ensure_synthetic_cave(root, n_scenes=1, size=32)
    out = tmp_path / "run"
    argv = ["train", "--config", "tiny", "--data", f"cave:{root}", "--out", out, "--epochs", "1",
            "--no-progress", "--device", "cpu"]
    rc, _, _, errors = run_cli(argv)
    assert rc == 1 and "leaves 0 train and 1 test scenes" in errors[0]
    assert run_cli(argv + ["--split", "all"])[0] == 0
    assert (out / "last.pt").is_file() and not (out / "best.pt").exists()
    assert len(json.loads((out / "data.json").read_text())["train"]) == 1
