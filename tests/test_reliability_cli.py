"""Reliability of the command line and inference: input images of every kind, odd sizes, output
problems, a missing GPU, bounded memory.

Every case checks that nothing is corrupted or executed and that the message says what was
expected, what was found and what to do (cases covered elsewhere are listed in
``tests/conftest.py``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inr_lib import build_model
from inr_lib.cli import main
from inr_lib.data import DataFormatError
from inr_lib.files.images import ImageReadError, read_image

REPO = Path(__file__).resolve().parents[1]


def test_input_images_of_every_kind(tmp_path, write_png):
    rng = np.random.default_rng(0)
    # 16-bit RGBA PNG: 16 bits kept exactly, alpha dropped with a note
    v = rng.integers(0, 65536, (3, 4, 4))
    rgb, notes = read_image(write_png(tmp_path / "rgba16.png", v, 16))
    assert np.array_equal(rgb, (v[..., :3].transpose(2, 0, 1) / 65535).astype(np.float32))
    assert "alpha channel" in notes[0]
    # grey (16-bit TIFF, grey + alpha PNG): refused unless --gray-ok, then exact
    g = rng.integers(0, 65536, (5, 6)).astype(np.uint16)
    Image.fromarray(g).save(tmp_path / "g16.tif")
    with pytest.raises(ImageReadError, match="greyscale image.*--gray-ok"):
        read_image(tmp_path / "g16.tif")
    rgb, _ = read_image(tmp_path / "g16.tif", gray_ok=True)
    assert np.array_equal(rgb, np.repeat((g / 65535).astype(np.float32)[None], 3, 0))
    with pytest.raises(ImageReadError, match="greyscale"):
        read_image(write_png(tmp_path / "la.png", rng.integers(0, 256, (3, 3, 2)), 8))
    # float TIFF: refused, not guessed
    Image.fromarray(rng.random((4, 4)).astype(np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ImageReadError, match=r"unsupported pixel format 'F'.*8- or 16-bit"):
        read_image(tmp_path / "f.tif")
    # CMYK JPEG (print workflows): converted with a note
    Image.fromarray(rng.integers(0, 256, (6, 6, 4), dtype=np.uint8), "CMYK").save(tmp_path / "c.jpg")
    rgb, notes = read_image(tmp_path / "c.jpg")
    assert rgb.shape == (3, 6, 6) and "CMYK" in notes[0]
    # truncated JPEG, empty PNG
    (tmp_path / "t.jpg").write_bytes((tmp_path / "c.jpg").read_bytes()[:150])
    with pytest.raises(ImageReadError, match=r"t\.jpg: not a readable image"):
        read_image(tmp_path / "t.jpg")
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"e\.png: not a readable PNG.*truncated or corrupt"):
        read_image(tmp_path / "e.png")
    # a phone photo stored sideways with an EXIF orientation tag: turned upright
    im = Image.fromarray(rng.integers(0, 256, (10, 20, 3), dtype=np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6   # "rotate 90 CW to display"
    im.save(tmp_path / "phone.jpg", exif=exif)
    rgb, notes = read_image(tmp_path / "phone.jpg")
    assert rgb.shape == (3, 20, 10) and "EXIF orientation (6)" in notes[0]


@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (5, 67)])
def test_reconstruct_images_of_odd_sizes(tmp_path, tiny_ckpt, hw, run_cli):
    img = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, hw + (3,), dtype=np.uint8)).save(img)
    rc, _, err, _ = run_cli(["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", img, "--out",
                             tmp_path / "c.npy", "--device", "cpu"])
    assert rc == 0, err
    cube = np.load(tmp_path / "c.npy")
    assert cube.shape == (31,) + hw and np.isfinite(cube).all()


def test_reconstruct_argument_and_output_problems(tmp_path, tiny_ckpt, capsys, run_cli):
    img = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    base = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", img]
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in base + ["--out", tmp_path / "c.npy", "--tile", "0"]])
    assert e.value.code == 2 and "expected an integer >= 1, got 0" in capsys.readouterr().err
    rc, _, _, errors = run_cli(base + ["--out", tmp_path / "c.npy", "--tile", 4, "--overlap", 4])
    assert rc == 1 and "0 <= overlap < tile" in errors[0] and "smaller overlap" in errors[0]
    (tmp_path / "file").write_text("x")
    rc, _, _, errors = run_cli(base + ["--out", tmp_path / "file" / "c.npy"])
    assert rc == 1 and "cannot create its folder" in errors[0]
    (tmp_path / "dir.npy").mkdir()
    rc, _, _, errors = run_cli(base + ["--out", tmp_path / "dir.npy"])
    assert rc == 1 and "is a folder" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.npy", "file", "in.png"]


def test_cuda_asked_for_on_a_cpu_only_machine(tmp_path, tiny_ckpt, capsys, monkeypatch, run_cli):
    from inr_lib.runtime import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU.*--device cpu.*--allow-cpu-fallback"):
        pick_device("cuda")
    with pytest.warns(UserWarning, match="using the CPU"):
        assert pick_device("cuda:0", allow_fallback=True) == torch.device("cpu")
    img = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    argv = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", img, "--out", tmp_path / "c.npy",
            "--device", "cuda"]
    rc, _, _, errors = run_cli(argv)
    assert rc == 1 and "--allow-cpu-fallback" in errors[0] and not (tmp_path / "c.npy").exists()
    with pytest.warns(UserWarning, match="CUDA is not available; using the CPU"):
        rc, _, err, _ = run_cli(argv + ["--allow-cpu-fallback"])
    assert rc == 0, err
    assert np.load(tmp_path / "c.npy").shape == (31, 8, 8)


def test_predict_rejects_a_nonpositive_tile():
    model = build_model("tiny")
    with pytest.raises(ValueError, match="tile must be a positive integer number of pixels"):
        model.predict(torch.rand(1, 3, 8, 8), tile=0, overlap=0)


def test_float64_image_into_a_float32_model_is_computed_in_float32():
    model = build_model("tiny").eval()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    out = model(x)
    assert out.shape == (1, 31, 8, 8) and out.dtype == torch.float32
    assert torch.equal(out, model(x.float()))


def test_empty_image_is_refused_with_a_message():
    with pytest.raises(ValueError, match="non-empty"):
        build_model("tiny")(torch.rand(1, 3, 0, 8))


MEMORY_SCRIPT = r"""
import json, sys, torch
torch.set_num_threads(1)
from inr_lib import build_model

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024

def reset_peak():  # Linux: writing 5 resets VmHWM to the current RSS
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

model = build_model("tiny", seed=0).eval()
model.predict(torch.rand(1, 3, 160, 160), tile=64, overlap=16)   # warm-up (one-time buffers)
out = {}
for label, n, run in [("tiled", 1024, lambda x: model.predict(x, tile=64, overlap=8)),
                      ("tiled", 512, lambda x: model.predict(x, tile=64, overlap=8)),
                      ("whole", 1024, lambda x: model.predict(x, tile=None))]:
    x = torch.rand(1, 3, n, n)
    reset_peak()
    before = peak()
    y = run(x)
    assert y.shape == (1, 31, n, n)
    out[f"{label}_{n}"] = peak() - before - y.numel() * 4   # beyond the output itself
    del y
print(json.dumps(out))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_tiled_inference_keeps_memory_bounded():
    """Peak resident memory of ``model.predict`` beyond its (unavoidable) output, measured
    in a fresh process: tiled (64 px windows) stays about constant from 512^2 to 1024^2,
    while one whole-image forward pass needs several times more."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "MALLOC_MMAP_THRESHOLD_": "65536",   # large blocks go back to the OS when freed,
           "MALLOC_TRIM_THRESHOLD_": "0"}       # so the peak of each call is its own
    r = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True,
                       env=env, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    mib = {k: v / 2**20 for k, v in json.loads(r.stdout).items()}
    print(f"\npeak memory beyond the output (MiB): {mib}")
    assert mib["tiled_1024"] < 80                                # 16 windows at a time
    assert mib["tiled_1024"] < 1.5 * mib["tiled_512"] + 16       # not ~4x for 4x the pixels
    assert mib["whole_1024"] > 3 * mib["tiled_1024"]
