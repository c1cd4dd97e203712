"""Ownership before deletion, integrity before use: the data-loss and wrong-result cases of
reliability round 3. Each test reproduces one case end to end (the command line where a user
would meet it) and checks that the user's files are intact and the message says what to do."""
from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from inr_lib import build_model
from inr_lib.data import download_cave, ensure_synthetic_cave, list_cave_scenes
from inr_lib.files.checkpoints import CheckpointError, load_model, save_checkpoint

TINY = "tiny"    # the tiny training preset


def files_of(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# ------------------------------------------------------------------- (1) SYNTHETIC.json alone
def test_a_folder_with_a_bare_synthetic_manifest_is_not_deleted(tmp_path, run_cli):
    u = tmp_path / "u"
    u.mkdir()
    (u / "thesis.tex").write_text("x")
    (u / "SYNTHETIC.json").write_text("{}")
    rc, _, _, errors = run_cli(["baseline", "ridge", "--data", f"synthetic:{u}", "--json",
                                tmp_path / "r.json", "--device", "cpu", "--no-progress"])
    assert rc == 1 and (u / "thesis.tex").read_text() == "x"
    assert sorted(p.name for p in u.iterdir()) == ["SYNTHETIC.json", "thesis.tex"]
    assert len(errors) == 1 and "thesis.tex" in errors[0] and "left untouched" in errors[0]


# ------------------------------------------------------------------- (2) damaged + user files
@pytest.mark.parametrize("damage", ["outdated", "missing band"])
def test_a_synthetic_dataset_holding_user_files_is_not_regenerated_over_them(tmp_path, damage):
    root = tmp_path / "synth"
    ensure_synthetic_cave(root, n_scenes=1, size=16)
    (root / "notes.txt").write_text("my notes")
    (root / "run").mkdir()
    (root / "run" / "best.pt").write_bytes(b"weights")
    if damage == "missing band":
        next(root.rglob("*_ms_07.png")).unlink()
    before = files_of(root)
    with pytest.raises(FileExistsError, match=r"left untouched") as e:
        ensure_synthetic_cave(root, n_scenes=2 if damage == "outdated" else 1, size=16)
    assert files_of(root) == before
    assert "notes.txt" in str(e.value) and "run" in str(e.value)


def test_an_outdated_synthetic_dataset_that_is_all_ours_is_regenerated(tmp_path):
    root = tmp_path / "synth"
    ensure_synthetic_cave(root, n_scenes=1, size=16)
    assert len(ensure_synthetic_cave(root, n_scenes=2, size=16)) == 2
    next(root.rglob("*_ms_07.png")).unlink()          # damaged, still only our files
    assert len(ensure_synthetic_cave(root, n_scenes=2, size=16)) == 2
    manifest = json.loads((root / "SYNTHETIC.json").read_text())
    del manifest["entries"]                            # a manifest written before it listed them:
    (root / "SYNTHETIC.json").write_text(json.dumps(manifest))   # its scenes imply the entries
    assert len(ensure_synthetic_cave(root, n_scenes=1, size=16)) == 1


# ------------------------------------------------------------------- (3) run files, no last.pt
@pytest.mark.parametrize("here", [False, True])
def test_train_refuses_an_out_folder_with_run_files_but_no_last_pt(tmp_path, run_cli, synth,
                                                                   monkeypatch, here):
    out = tmp_path / "project"
    out.mkdir()
    (out / "config.yaml").write_text("my: settings\n")
    (out / "log.jsonl").write_text('{"my": "log"}\n')
    before = files_of(out)
    if here:
        monkeypatch.chdir(out)
    rc, _, _, errors = run_cli(["train", "--config", TINY, "--data", synth, "--epochs", "1",
                                "--out", "." if here else out, "--device", "cpu", "--no-progress"])
    assert rc == 1 and files_of(out) == before
    assert len(errors) == 1 and "config.yaml" in errors[0] and "--overwrite" in errors[0]


def test_a_run_killed_before_its_first_checkpoint_starts_again_without_overwrite(tmp_path):
    from inr_lib.files.outputs import RUN_CONFIG_MARKER, check_run_folder

    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(RUN_CONFIG_MARKER + "epochs: 1\n")   # what a run writes
    (out / "log.jsonl").write_text("")                                    # no epoch finished
    for resume in (False, True):
        check_run_folder(out, resume=resume)                              # provably ours: allowed
    (out / "log.jsonl").write_text('{"epoch": 1}\n')                      # a finished epoch
    with pytest.raises(FileExistsError, match="no last.pt"):
        check_run_folder(out, resume=True)


def test_a_run_writes_the_marker_it_is_recognised_by(tmp_path, train_val):
    from inr_lib.files.outputs import RUN_CONFIG_MARKER
    from inr_lib.train import TrainConfig, train

    train_scenes, val_scenes = train_val
    cfg = TrainConfig.preset("tiny").replace(epochs=1, crop_size=16, batch_size=2)
    train(cfg, train_scenes, val_scenes, tmp_path / "run", device="cpu", progress=False)
    assert (tmp_path / "run" / "config.yaml").read_text().startswith(RUN_CONFIG_MARKER)
    assert TrainConfig.load(tmp_path / "run" / "config.yaml").epochs == 1


# ------------------------------------------------------------------- (4) --json onto the run
@pytest.mark.parametrize("name", ["last.pt", "config.yaml", "best.pt", "log.jsonl"])
def test_baseline_cnn_json_onto_its_own_run_file_is_refused_before_training(tmp_path, run_cli,
                                                                            synth, name):
    run = tmp_path / "R"
    rc, _, _, errors = run_cli(["baseline", "cnn", "--data", synth, "--config", TINY,
                                "--epochs", "1", "--out", run, "--json", run / name, "--force",
                                "--device", "cpu", "--no-progress"])
    assert rc == 1 and not (run / "last.pt").exists()
    assert len(errors) == 1 and "run folder" in errors[0] and name in errors[0]


# ------------------------------------------------------------------- (5) download_cave rmtree
def test_download_cave_keeps_an_existing_folder_of_the_same_name(tmp_path, make_cave_zip):
    dest = tmp_path / "cave"
    mine = dest / "complete_ms_data"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    z = make_cave_zip(tmp_path / "complete_ms_data.zip", shape=(2, 3), wrapper="complete_ms_data/")
    with pytest.raises(FileExistsError, match="cannot prove it is a folder it extracted") as e:
        download_cave(dest, url=z.as_uri(), progress=False)
    assert (mine / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert str(mine) in str(e.value)


def test_download_cave_may_replace_what_it_extracted_itself(tmp_path, make_cave_zip):
    dest = tmp_path / "cave"
    z = make_cave_zip(tmp_path / "complete_ms_data.zip", shape=(2, 3))
    download_cave(dest, url=z.as_uri(), progress=False)
    download_cave(dest, url=z.as_uri(), progress=False, force=True)   # all ours: replaced
    assert [s.name for s in list_cave_scenes(dest)] == ["tiny"]
    (dest / "tiny_ms" / "my_notes.txt").write_text("mine")              # now it is not all ours
    with pytest.raises(FileExistsError, match="my_notes.txt"):
        download_cave(dest, url=z.as_uri(), progress=False, force=True)
    assert (dest / "tiny_ms" / "my_notes.txt").read_text() == "mine"


# ------------------------------------------------------------------- (6) only regular files
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_force_never_replaces_what_is_not_a_regular_file(tmp_path, run_cli, synth):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    rc, _, _, errors = run_cli(["baseline", "ridge", "--data", synth, "--json", fifo, "--force",
                                "--device", "cpu", "--no-progress"])
    assert rc == 1 and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert len(errors) == 1 and "not a regular file" in errors[0] and str(fifo) in errors[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_atomic_write_itself_never_replaces_a_special_file(tmp_path):
    from inr_lib.files.atomic import atomic_write

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        atomic_write(fifo, lambda f: f.write(b"x"))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]     # no temporary file left


# ------------------------------------------------------------------- (7) a flipped bit
def _flip_bit_in_a_weight(path: Path) -> str:
    """Flip one bit in the middle of the largest tensor's bytes; returns its zip member."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    # local header: 30 bytes + name + extra (read from the local header itself)
    h = info.header_offset
    n, m = int.from_bytes(data[h + 26:h + 28], "little"), int.from_bytes(data[h + 28:h + 30], "little")
    data[h + 30 + n + m + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))
    return info.filename


def test_a_flipped_bit_in_a_weight_is_detected(tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint(path, build_model("tiny", seed=0), epoch=1, train_config={"crop_size": 16})
    load_model(path)                                   # the intact file loads
    member = _flip_bit_in_a_weight(path)
    with pytest.raises(CheckpointError, match="CRC") as e:
        load_model(path)
    assert str(path) in str(e.value) and member.rsplit("/", 1)[-1] in str(e.value)


def test_a_flipped_bit_is_one_line_on_the_command_line(tmp_path, run_cli, write_png):
    import numpy as np

    path = tmp_path / "best.pt"
    save_checkpoint(path, build_model("tiny", seed=0), epoch=1, train_config={"crop_size": 16})
    _flip_bit_in_a_weight(path)
    rgb = write_png(tmp_path / "in.png", np.full((8, 8, 3), 100, np.uint8), 8)
    rc, _, _, errors = run_cli(["reconstruct", "--checkpoint", path, "--rgb", rgb,
                                "--out", tmp_path / "cube.npy", "--device", "cpu"])
    assert rc == 1 and not (tmp_path / "cube.npy").exists()
    assert len(errors) == 1 and "CRC" in errors[0] and str(path) in errors[0]
