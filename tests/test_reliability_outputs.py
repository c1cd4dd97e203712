"""Data-loss cases of issue 15 through the command line: every output path is checked before
the work starts (inr_lib.files.outputs.check_outputs), and nothing the user did not name as an
output is replaced or deleted."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inr_lib import build_model
from inr_lib.cli import main
from inr_lib.files.atomic import sha256_file as digest
from inr_lib.files.checkpoints import save_checkpoint


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def old_run(tmp_path_factory, synth) -> Path:
    """A finished one-epoch tiny training run (kept pristine; tests copy it)."""
    out = tmp_path_factory.mktemp("runs") / "old"
    assert main(["train", "--config", "tiny", "--data", synth, "--out", str(out), "--epochs", "1",
                 "--no-progress", "--device", "cpu"]) == 0
    return out


@pytest.fixture
def nan_output(monkeypatch):
    """``load_model`` gives models whose output is NaN although their weights are finite
    (as an fp16 overflow would)."""
    import torch

    import inr_lib.files.checkpoints as ckmod

    real = ckmod.load_model

    def nan_model(*a, **k):
        model = real(*a, **k)
        model.register_forward_hook(lambda m, i, o: torch.full_like(o, float("nan")))
        return model

    monkeypatch.setattr(ckmod, "load_model", nan_model)


def photo(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path)
    return path


# ------------------------------------------------------------------- (1) reconstruct preview
def test_reconstruct_preview_never_replaces_the_input_photo(tmp_path, tiny_ckpt, run_cli):
    src = photo(tmp_path / "photo.png")
    before = digest(src)
    argv = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src, "--out", tmp_path / "photo.h5",
            "--device", "cpu"]
    rc, _, _, errors = run_cli(argv + ["--preview", src])
    assert rc == 1 and digest(src) == before
    assert errors == [f"error: --preview {src} is the same file as --rgb; writing it would destroy "
                      f"the input: choose another output path"]
    assert not (tmp_path / "photo.h5").exists()
    # even --overwrite does not allow replacing an input
    assert run_cli(argv + ["--preview", src, "--overwrite"])[0] == 1
    assert digest(src) == before
    # the default preview name is the cube's with .preview.png: never the input
    assert run_cli(argv)[0] == 0 and digest(src) == before
    assert (tmp_path / "photo.preview.png").is_file()


def test_reconstruct_refuses_a_foreign_png_but_replaces_its_own_preview(tmp_path, tiny_ckpt,
                                                                        run_cli):
    src = photo(tmp_path / "in.jpg")
    other = photo(tmp_path / "cube.preview.png")   # the user's file, not a preview
    before = digest(other)
    argv = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src, "--out", tmp_path / "cube.h5",
            "--device", "cpu"]
    rc, _, _, errors = run_cli(argv)
    assert rc == 1 and digest(other) == before and "--overwrite" in errors[0]
    other.unlink()
    assert run_cli(argv)[0] == 0           # writes cube.h5 + its preview cube.preview.png
    assert run_cli(argv)[0] == 0           # a re-run replaces the library's own files
    photo(other)
    assert run_cli(argv + ["--overwrite"])[0] == 0  # and --overwrite replaces a foreign one


# ------------------------------------------------------------------- (3) --json = checkpoint
def test_evaluate_json_pointing_at_the_checkpoint_is_an_error(tmp_path, tiny_ckpt, synth, run_cli):
    ck = tmp_path / "best.pt"
    shutil.copy(tiny_ckpt, ck)
    before = digest(ck)
    rc, _, _, errors = run_cli(["evaluate", "--checkpoint", ck, "--data", synth, "--json", ck,
                                "--device", "cpu", "--no-progress"])
    assert rc == 1 and digest(ck) == before
    assert errors == [f"error: --json {ck} is the same file as --checkpoint; writing it would "
                      f"destroy the input: choose another output path"]


def test_evaluate_json_unwritable_or_foreign_is_refused_before_evaluating(tmp_path, tiny_ckpt,
                                                                          run_cli):
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}\n')
    # --data names a folder that does not exist: the output check must come first
    argv = ["evaluate", "--checkpoint", tiny_ckpt, "--data", f"cave:{tmp_path / 'absent'}",
            "--device", "cpu"]
    rc, _, _, errors = run_cli(argv + ["--json", notes])
    assert rc == 1 and "already exists and was not written by inr_lib; pass --overwrite" in errors[0]
    assert notes.read_text() == '{"mine": 1}\n'
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, _, errors = run_cli(argv + ["--json", blocker / "r.json"])
    assert rc == 1 and errors == [f"error: --json {blocker / 'r.json'}: cannot create its folder "
                                  f"{blocker} ({blocker} is a file, not a folder); choose another "
                                  f"output path"]


# ------------------------------------------------------------------- (4) baseline cnn --out
def test_baseline_cnn_does_not_replace_an_existing_run(tmp_path, old_run, synth, run_cli):
    run = tmp_path / "run"
    shutil.copytree(old_run, run)
    before = tree(run)
    argv = ["baseline", "cnn", "--data", synth, "--config", "tiny", "--epochs", "1", "--out", run,
            "--json", tmp_path / "cnn.json", "--device", "cpu", "--no-progress"]
    rc, _, _, errors = run_cli(argv)
    assert rc == 1 and tree(run) == before
    assert errors == [f"error: {run} already holds a training run ({run / 'last.pt'}); continue it "
                      f"with --resume (resume=True), replace it with --overwrite (overwrite=True), "
                      f"or choose another output folder"]
    assert run_cli(argv + ["--overwrite"])[0] == 0
    assert digest(run / "last.pt") != before["last.pt"]


def test_baseline_cnn_resume_reuses_a_finished_run(tmp_path, synth, run_cli):
    run = tmp_path / "cnn_run"
    argv = ["baseline", "cnn", "--data", synth, "--config", "tiny", "--epochs", "1", "--out", run,
            "--device", "cpu", "--no-progress"]
    assert run_cli(argv + ["--resume", "--json", tmp_path / "a.json"])[0] == 0   # no run yet: starts
    before = tree(run)
    rc, _, _, errors = run_cli(argv + ["--resume", "--json", tmp_path / "b.json"])
    assert rc == 0 and tree(run) == before                    # finished: nothing trained again
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["mean"] == b["mean"] and a["per_scene"] == b["per_scene"]
    rc, _, _, errors = run_cli(argv + ["--resume", "--overwrite", "--json", tmp_path / "c.json"])
    assert rc == 1 and "--resume and --overwrite contradict each other" in errors[0]


# ------------------------------------------------------------------- (5) train --overwrite
@pytest.mark.parametrize("bad", ["crop_size=200", "rgb_source=foo", "lr=1e9"])
def test_train_overwrite_keeps_the_old_run_when_the_new_settings_fail(tmp_path, old_run, synth,
                                                                      bad, run_cli):
    run = tmp_path / "run"
    shutil.copytree(old_run, run)
    before = tree(run)
    rc, _, _, errors = run_cli(["train", "--config", "tiny", "--data", synth, "--out", run,
                                "--overwrite", "--set", bad, "--epochs", "1", "--no-progress",
                                "--device", "cpu"])
    assert rc == 1 and len(errors) == 1
    assert tree(run) == before                   # last.pt, best.pt, log.jsonl, config.yaml


def test_train_overwrite_replaces_the_run_once_the_new_one_has_started(tmp_path, old_run, synth,
                                                                       run_cli):
    run = tmp_path / "run"
    shutil.copytree(old_run, run)
    old_last = digest(run / "last.pt")
    assert run_cli(["train", "--config", "tiny", "--data", synth, "--out", run, "--overwrite",
                    "--set", "seed=1", "--epochs", "1", "--no-progress", "--device", "cpu"])[0] == 0
    assert digest(run / "last.pt") != old_last
    assert "seed: 1" in (run / "config.yaml").read_text()
    assert len((run / "log.jsonl").read_text().splitlines()) == 1


# ------------------------------------------------------------------- (7) NaN weights
def test_nan_weights_are_an_error_not_a_cube(tmp_path, run_cli):
    model = build_model("tiny", seed=0)
    name, p = next(iter(model.named_parameters()))
    with __import__("torch").no_grad():
        p.view(-1)[0] = float("nan")
    ck = tmp_path / "nan.pt"
    save_checkpoint(ck, model, epoch=1, train_config={"crop_size": 16, "val_overlap": 4})
    src = photo(tmp_path / "in.png")
    rc, _, _, errors = run_cli(["reconstruct", "--checkpoint", ck, "--rgb", src,
                                "--out", tmp_path / "cube.h5", "--device", "cpu"])
    assert rc == 1 and errors == [f"error: {ck}: weight {name!r} contains NaN/Inf values, so the "
                                  f"model cannot give a usable result (did the run diverge?); use "
                                  f"another checkpoint (e.g. an earlier best.pt) or retrain"]
    assert not (tmp_path / "cube.h5").exists() and not (tmp_path / "cube.preview.png").exists()


# ------------------------------------------------------------------- (15) only test scenes
@pytest.mark.parametrize("split", [None, "test", "all", "default:test"])
def test_evaluate_on_a_folder_of_test_scenes_only(tmp_path, tiny_ckpt, split, run_cli):
    """Scenes named as CAVE test scenes (tiny fake content): evaluation needs no train scenes."""
    from inr_lib.data import cave_split

    rng = np.random.default_rng(0)
    names = cave_split("default")["test"][:2]
    for n in names:
        folder = tmp_path / "new" / f"{n}_ms" / f"{n}_ms"
        folder.mkdir(parents=True)
        for b in range(1, 32):
            Image.fromarray(rng.integers(0, 65536, (20, 20)).astype(np.uint16)).save(
                folder / f"{n}_ms_{b:02d}.png")
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{n}_RGB.bmp")
    argv = ["evaluate", "--checkpoint", tiny_ckpt, "--data", f"cave:{tmp_path / 'new'}", "--json",
            tmp_path / "r.json", "--device", "cpu", "--no-progress"]
    rc, out, _, errors = run_cli(argv + (["--split", split] if split else []))
    assert rc == 0 and errors == [] and out.startswith("2 scenes: PSNR")
    import json

    assert sorted(s["scene"] for s in json.loads((tmp_path / "r.json").read_text())["per_scene"]) \
        == sorted(names)


# ------------------------------------------------------------------- (14) full disk
def test_reconstruct_on_a_full_disk_says_so_before_working(tmp_path, tiny_ckpt, monkeypatch,
                                                           run_cli):
    import collections

    src = photo(tmp_path / "in.jpg")
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    rc, _, _, errors = run_cli(["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src,
                                "--out", tmp_path / "cube.h5", "--device", "cpu"])
    assert rc == 1 and len(errors) == 1
    assert errors[0].startswith(f"error: --out {tmp_path / 'cube.h5'}: {tmp_path} has 0.0 MiB free")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jpg"]


def test_an_h5_write_failing_midway_gives_one_line_and_leaves_nothing(tmp_path, tiny_ckpt,
                                                                      monkeypatch, run_cli):
    import h5py

    def full(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(h5py.Group, "create_dataset", full)
    src = photo(tmp_path / "in.jpg")
    rc, _, _, errors = run_cli(["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src,
                                "--out", tmp_path / "cube.h5", "--device", "cpu"])
    assert rc == 1 and len(errors) == 1
    assert "could not write the cube" in errors[0] and "No space left on device" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jpg"]


# ------------------------------------------------------------------- tampered train_config
@pytest.mark.parametrize("tc, key", [({"crop_size": "64"}, "crop_size"),
                                     ({"crop_size": 16, "val_overlap": -3}, "val_overlap"),
                                     ({"crop_size": 10**9}, "crop_size")])
def test_tampered_checkpoint_train_config_names_the_key(tmp_path, tc, key, run_cli):
    ck = tmp_path / "t.pt"
    save_checkpoint(ck, build_model("tiny", seed=0), epoch=1, train_config=tc)
    src = photo(tmp_path / "in.jpg")
    rc, _, _, errors = run_cli(["reconstruct", "--checkpoint", ck, "--rgb", src,
                                "--out", tmp_path / "c.npy", "--device", "cpu"])
    assert rc == 1 and errors[0].startswith(f"error: {ck}: train_config {key!r} is ")
    rc, _, _, errors = run_cli(["evaluate", "--checkpoint", ck, "--data", f"cave:{tmp_path / 'no'}",
                                "--json", tmp_path / "r.json", "--device", "cpu"])
    assert rc == 1 and errors[0].startswith(f"error: {ck}: train_config {key!r} is ")


def test_a_checkpoint_config_naming_a_huge_model_is_refused_without_allocating(tmp_path, run_cli):
    import torch

    ck = tmp_path / "big.pt"
    save_checkpoint(ck, build_model("tiny", seed=0), epoch=1, train_config={"crop_size": 16})
    state = torch.load(ck, weights_only=True)
    state["model_config"]["hyper_deep_width"] = 200000      # ~360e9 parameters, ~1.4 TB
    torch.save(state, ck)
    src = photo(tmp_path / "in.jpg")
    rc, _, _, errors = run_cli(["reconstruct", "--checkpoint", ck, "--rgb", src,
                                "--out", tmp_path / "c.h5", "--device", "cpu"])
    assert rc == 1 and "describes 360,159,002,727 parameters but the file holds only 37,383" in errors[0]


def test_nan_reconstructions_are_an_error_not_a_results_file(nan_output, tmp_path, tiny_ckpt,
                                                             synth, run_cli):
    """Finite weights can still give NaN (e.g. an fp16 overflow): simulated by a model whose
    output is NaN; scoring refuses it and no JSON is written (already so before issue 15)."""
    rc, _, _, errors = run_cli(["evaluate", "--checkpoint", tiny_ckpt, "--data", synth, "--json",
                                tmp_path / "r.json", "--device", "cpu", "--no-progress"])
    assert rc == 1 and "non-finite values (NaN or inf)" in errors[0]
    assert not (tmp_path / "r.json").exists()


def test_a_nan_cube_from_finite_weights_is_not_written(nan_output, tmp_path, tiny_ckpt, run_cli):
    src = photo(tmp_path / "in.jpg")
    rc, _, _, errors = run_cli(["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src,
                                "--out", tmp_path / "c.h5", "--device", "cpu"])
    assert rc == 1 and "contains NaN/Inf values; nothing was written" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jpg"]
