"""Command line: round trip on synthetic data, --help of every command, clear errors."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from inr_lib.cli import main
from inr_lib.files.images import ImageReadError, read_image

COMMANDS = ("train", "evaluate", "reconstruct", "baseline")


@pytest.fixture(scope="module")
def run_dir(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny"
    torch.set_num_threads(1)
    rc = main(["train", "--config", "tiny", "--data", synth, "--out", str(out), "--epochs", "1",
               "--set", "crops_per_scene=2", "--no-progress"])
    assert rc == 0
    return out


def test_train_writes_checkpoints_log_and_config(run_dir):
    assert {"last.pt", "best.pt", "log.jsonl", "config.yaml"} <= set(os.listdir(run_dir))
    rec = json.loads((run_dir / "log.jsonl").read_text().splitlines()[0])
    assert rec["epoch"] == 1 and np.isfinite(rec["loss"]) and "val_psnr" in rec


def test_evaluate_writes_json_with_protocol(run_dir, synth, tmp_path, run_cli, monkeypatch):
    from pathlib import Path

    out, reads, real = tmp_path / "eval.json", [], Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda p: reads.append(p.name) or real(p))
    rc, stdout, _, _ = run_cli(["evaluate", "--checkpoint", run_dir / "best.pt", "--data", synth,
                                "--json", out, "--no-progress"])
    assert rc == 0 and "PSNR" in stdout
    assert reads.count("best.pt") == 1          # the checkpoint is read once (weights and hash)
    res = json.loads(out.read_text())
    p = res["protocol"]
    assert p["split"].endswith(":test") and len(p["scenes"]) == len(res["per_scene"]) == 2
    assert p["inference"]["mode"] == "tiled" and p["inference"]["tile"] == 16  # training crop
    assert p["checkpoint_sha256"] and p["dataset"].startswith("synthetic")
    assert set(res["mean"]) == {"psnr", "ssim", "sam", "rmse", "mrae"}
    rc, _, _, _ = run_cli(["evaluate", "--checkpoint", run_dir / "last.pt", "--data", synth,
                           "--split", "train", "--mode", "whole", "--json", out, "--no-progress"])
    res = json.loads(out.read_text())
    assert rc == 0 and res["protocol"]["split"].endswith(":train") and len(res["per_scene"]) == 6
    assert res["protocol"]["inference"]["mode"] == "whole"


@pytest.mark.parametrize("ext", [".h5", ".npy"])
def test_reconstruct_writes_cube_and_preview(run_dir, tmp_path, ext, run_cli):
    from PIL import Image

    img = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((20, 28, 4)) * 255).astype(np.uint8)).save(img)
    out = tmp_path / f"cube{ext}"
    rc, stdout, err, _ = run_cli(["reconstruct", "--checkpoint", run_dir / "last.pt", "--rgb", img,
                                  "--out", out])
    assert rc == 0, err
    assert "alpha" in err  # the dropped alpha channel is mentioned
    if ext == ".npy":
        cube = np.load(out)
    else:
        import h5py

        with h5py.File(out) as f:
            cube = f["hsi"][()]
            assert len(f["wavelengths"]) == 31 and f.attrs["checkpoint_sha256"]
    assert cube.shape == (31, 20, 28) and cube.dtype == np.float32
    assert 0 <= cube.min() and cube.max() <= 1
    assert Image.open(out.with_name("cube.preview.png")).size[1] == 20
    # --size resizes the input first
    rc, _, _, _ = run_cli(["reconstruct", "--checkpoint", run_dir / "last.pt", "--rgb", img,
                           "--size", 12, 16, "--out", tmp_path / "small.npy"])
    assert rc == 0 and np.load(tmp_path / "small.npy").shape == (31, 12, 16)


def test_baseline_ridge(synth, tmp_path, run_cli):
    out = tmp_path / "ridge.json"
    rc, stdout, _, _ = run_cli(["baseline", "ridge", "--data", synth, "--json", out, "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["baseline"]["name"] == "ridge" and len(res["baseline"]["fitted_on"]) == 6
    assert res["protocol"]["inference"]["mode"] == "tiled" and res["mean"]["psnr"] > 15


def test_baseline_cnn_trains_with_the_training_loop(synth, tmp_path, run_cli):
    out = tmp_path / "cnn.json"
    rc, _, err, _ = run_cli(["baseline", "cnn", "--data", synth, "--config", "tiny", "--epochs", 1,
                             "--set", "crops_per_scene=1", "--set", "model.channels=4",
                             "--set", "model.num_blocks=1", "--json", out, "--no-progress"])
    assert rc == 0, err
    res = json.loads(out.read_text())
    assert res["baseline"]["name"] == "cnn" and res["baseline"]["options"]["config"]["arch"] == "cnn"
    assert (tmp_path / "cnn_cnn_run" / "last.pt").is_file()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"python -m inr_lib {command}" in out


def test_every_option_has_help_and_the_console_script_its_name(monkeypatch):
    from inr_lib.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}"
               for name, p in subs.choices.items() for a in p._actions if not a.help]
    assert not missing, missing
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/inr-hsisr", "--help"])
    assert build_parser().format_usage().startswith("usage: inr-hsisr ")
    assert "  inr-hsisr train --config quick" in build_parser().format_help()
    monkeypatch.setattr(sys, "argv", ["/x/inr_lib/__main__.py"])
    assert build_parser().format_usage().startswith("usage: python -m inr_lib ")


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "inr_lib", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "train" in r.stdout and "--data" in r.stdout


def test_bad_inputs_give_one_line_errors(run_dir, synth, tmp_path, run_cli):
    cases = [
        (["evaluate", "--checkpoint", tmp_path / "nope.pt", "--data", synth, "--json", tmp_path / "x.json"],
         "does not exist"),
        (["evaluate", "--checkpoint", run_dir / "log.jsonl", "--data", synth, "--json", tmp_path / "x.json"],
         "not a torch checkpoint"),
        (["train", "--data", "s3://bucket", "--out", tmp_path / "r"], "expected 'synthetic'"),
        (["train", "--data", f"cave:{tmp_path / 'missing'}", "--out", tmp_path / "r"], "does not exist"),
        (["train", "--config", "huge", "--data", synth, "--out", tmp_path / "r"], "neither a preset"),
        (["train", "--config", "tiny", "--data", synth, "--out", tmp_path / "r", "--set", "lrr=1"],
         "unknown key"),
        (["train", "--config", "tiny", "--data", synth, "--split", "nosuch", "--out", tmp_path / "r"],
         "unknown CAVE split"),
        (["train", "--config", "tiny", "--data", synth, "--out", run_dir], "--resume"),
        (["reconstruct", "--checkpoint", run_dir / "last.pt", "--rgb", tmp_path / "no.png",
          "--out", tmp_path / "c.h5"], "file not found"),
        (["reconstruct", "--checkpoint", run_dir / "last.pt", "--rgb", run_dir / "log.jsonl",
          "--out", tmp_path / "c.txt"], "expected a cube file name ending in .h5"),
    ]
    if not torch.cuda.is_available():
        cases.append((["evaluate", "--checkpoint", run_dir / "last.pt", "--data", synth, "--json",
                       tmp_path / "x.json", "--device", "cuda"], "--allow-cpu-fallback"))
    for argv, expected in cases:
        rc, _, err, _ = run_cli(argv)
        lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
        assert rc == 1, (argv, err)
        assert len(lines) == 1 and expected in lines[0], (argv, err)
        assert "Traceback" not in err
    with pytest.raises(SystemExit) as e:  # malformed arguments: argparse's usage error
        main(["evaluate", "--checkpoint", "x.pt"])
    assert e.value.code == 2


def test_debug_shows_the_traceback(tmp_path):
    from inr_lib.files.checkpoints import CheckpointError

    with pytest.raises(CheckpointError):
        main(["reconstruct", "--checkpoint", str(tmp_path / "nope.pt"), "--rgb", __file__,
              "--out", str(tmp_path / "c.npy"), "--debug"])


def test_read_image_formats(tmp_path):
    import png
    from PIL import Image

    # 16-bit RGB PNG: all 16 bits kept
    vals = np.array([[[0, 1, 65535], [1000, 40000, 65534]]], dtype=np.uint16)  # (1, 2, 3)
    with open(tmp_path / "rgb16.png", "wb") as f:
        png.Writer(2, 1, greyscale=False, bitdepth=16).write(f, vals.reshape(1, -1).tolist())
    rgb, notes = read_image(tmp_path / "rgb16.png")
    assert rgb.shape == (3, 1, 2) and notes == []
    np.testing.assert_allclose(rgb, vals.transpose(2, 0, 1) / 65535, rtol=0, atol=1e-7)
    # 8-bit JPEG / BMP
    im = (np.random.default_rng(0).random((6, 5, 3)) * 255).astype(np.uint8)
    Image.fromarray(im).save(tmp_path / "a.bmp")
    rgb, _ = read_image(tmp_path / "a.bmp")
    np.testing.assert_allclose(rgb, im.transpose(2, 0, 1) / 255, atol=1e-7)
    Image.fromarray(im).save(tmp_path / "a.jpg")
    assert read_image(tmp_path / "a.jpg")[0].shape == (3, 6, 5)
    # greyscale: refused unless gray_ok
    Image.fromarray(im[..., 0]).save(tmp_path / "g.png")

    with pytest.raises(ImageReadError, match="--gray-ok"):
        read_image(tmp_path / "g.png")
    rgb, notes = read_image(tmp_path / "g.png", gray_ok=True)
    assert rgb.shape == (3, 6, 5) and np.array_equal(rgb[0], rgb[2]) and "replicated" in notes[0]
