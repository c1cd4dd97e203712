"""Reliability of training: crashes between checkpoint writes, a full disk, unusable or damaged run folders.

Every case checks that nothing is corrupted or executed and that the message says what was
expected, what was found and what to do (cases covered elsewhere are listed in
``tests/conftest.py``).
"""
from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from inr_lib import build_model
from inr_lib.checkpoint import load_checkpoint, save_checkpoint
from inr_lib.train import OutputDirError, TrainConfig, train


def _tiny(**kw):
    return TrainConfig.preset("tiny").replace(**{"crops_per_scene": 2, **kw})


def test_crash_between_best_and_last_write_resumes_to_the_same_checkpoints(tmp_path, monkeypatch,
                                                                           train_val):
    """best.pt is written before last.pt: a crash between them resumes from the previous
    last.pt and rewrites the same best.pt (the other order could leave a last.pt whose
    `best` record points at weights that were never saved)."""
    import inr_lib.train as tr

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
    import inr_lib.checkpoint as ck

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


def test_unusable_output_folder_is_reported_before_loading_data(tmp_path, capsys, run_cli):
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
