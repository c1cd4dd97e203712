"""Trust no file blindly: the "poor" cases of reliability round 3, one group per section. Each
case must end in one clear line that names the file (or option) and says what to do, never a
traceback, a wrong result or a message that blames the wrong thing."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from inr_lib import build_model, pretrained
from inr_lib.data import download_cave, list_cave_scenes, load_cave_scene
from inr_lib.files import readers
from inr_lib.files.checkpoints import CheckpointError, load_model, save_checkpoint
from inr_lib.files.readers import DataFormatError, TooLargeError, read_mat, read_png
from inr_lib.pretrained import PretrainedError

sys.path.insert(0, str(Path(__file__).parent))
from test_pretrained import _tiny_zoo  # the toy zoo those tests use
from test_reliability_ownership import TINY  # the tiny training preset


@pytest.fixture
def toy_zoo(tmp_path, monkeypatch):
    name = _tiny_zoo(tmp_path / "zoo")
    monkeypatch.setattr(pretrained, "_root", lambda: tmp_path / "zoo")
    return tmp_path / "zoo", name


def _rgb_png(tmp_path, write_png) -> Path:
    return write_png(tmp_path / "in.png", np.full((8, 8, 3), 100, np.uint8), 8)


# ------------------------------------------------------------------- reconstruct re-run
def test_reconstruct_may_replace_its_own_npy_but_not_a_foreign_one(tmp_path, tiny_ckpt, run_cli,
                                                                   write_png):
    rgb, out = _rgb_png(tmp_path, write_png), tmp_path / "cube.npy"
    argv = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", rgb, "--out", out, "--device", "cpu"]
    assert run_cli(argv)[0] == 0
    rc, _, _, errors = run_cli(argv)                    # the same command again: allowed
    assert rc == 0 and not errors
    np.save(out, np.zeros((31, 8, 8), np.float32))      # now the .npy is not the one it wrote
    rc, _, _, errors = run_cli(argv)
    assert rc == 1 and "not written by inr_lib" in errors[0]


# ------------------------------------------------------------------- outputs inside --data
def test_no_output_inside_the_data_folder_even_with_force(tmp_path, run_cli, synth):
    root = Path(synth.split(":", 1)[1])
    band = next(root.rglob("*_ms_01.png"))
    before = band.read_bytes()
    rc, _, _, errors = run_cli(["baseline", "ridge", "--data", synth, "--json", band, "--force",
                                "--device", "cpu", "--no-progress"])
    assert rc == 1 and band.read_bytes() == before
    assert "inside the --data folder" in errors[0] and str(band) in errors[0]
    rc, _, _, errors = run_cli(["train", "--config", TINY, "--data", synth, "--out",
                                band.parent / "run", "--device", "cpu", "--no-progress"])
    assert rc == 1 and "inside the --data folder" in errors[0]
    assert not (band.parent / "run").exists()


# ------------------------------------------------------------------- sizes before memory
def test_a_png_too_large_for_the_free_memory_is_refused_before_decoding(tmp_path, write_png,
                                                                        monkeypatch):
    path = write_png(tmp_path / "big.png", np.zeros((40, 50, 3), np.uint16), 16)
    monkeypatch.setattr(readers, "available_memory", lambda: 1000)
    with pytest.raises(TooLargeError, match=r"big.png: the 50x40 image is too large for this "
                                            r"machine \(0.01 MB needed, 0.00 MB free\)") as e:
        read_png(path)
    assert "corrupt" not in str(e.value) and "download" not in str(e.value)


def test_a_memory_error_while_decoding_is_not_called_corruption(tmp_path, write_png, monkeypatch):
    path = write_png(tmp_path / "big.png", np.zeros((4, 5, 3), np.uint16), 16)

    def no_memory(*a, **k):
        raise MemoryError

    monkeypatch.setattr(readers, "_read_png_pypng", no_memory)
    with pytest.raises(TooLargeError, match="too large for this machine") as e:
        read_png(path)
    assert "corrupt" not in str(e.value)


@pytest.mark.parametrize("fmt", ["v7.3", "v5"])
def test_a_mat_variable_too_large_for_the_free_memory_is_refused(tmp_path, monkeypatch, fmt):
    path = tmp_path / "scene.mat"
    if fmt == "v7.3":
        import h5py

        with h5py.File(path, "w") as f:
            f.create_dataset("rad", shape=(31, 600, 500), dtype="f8")   # declared, not written
    else:
        import scipy.io

        scipy.io.savemat(path, {"rad": np.zeros((50, 40, 31))})
    monkeypatch.setattr(readers, "available_memory", lambda: 10_000)
    with pytest.raises(TooLargeError, match=r"variable 'rad' .* is too large for this machine"):
        read_mat(path, ["rad"])


def test_a_card_asking_for_an_absurd_model_is_refused_before_allocating(toy_zoo):
    root, name = toy_zoo
    card = root / "cards" / f"{name}.json"
    c = json.loads(card.read_text())
    c["model_config"]["hyper_width"] = 200_000
    card.write_text(json.dumps(c))
    with pytest.raises(PretrainedError, match=r"toy.json describes a model of [\d,]+ parameters "
                                              r"\(.* GB in float32\) but its weights file"):
        pretrained.load(name)


# ------------------------------------------------------------------- --pretrained
@pytest.mark.parametrize("bad", ["", "../cards/toy", "/etc/passwd", "..", "cards/../toy"])
def test_pretrained_takes_only_shipped_names(toy_zoo, bad, run_cli, tmp_path, write_png):
    with pytest.raises(PretrainedError, match=r"no shipped model named .*available: \['toy'\]"):
        pretrained.load(bad)
    rc, _, _, errors = run_cli(["reconstruct", "--pretrained", bad, "--rgb",
                                _rgb_png(tmp_path, write_png), "--out", tmp_path / "c.npy"])
    assert rc == 1 and len(errors) == 1 and "no shipped model named" in errors[0]


def test_weights_outside_the_weights_folder_are_refused(toy_zoo):
    root, name = toy_zoo
    card = root / "cards" / f"{name}.json"
    c = json.loads(card.read_text())
    c["weights"]["file"] = "../cards/toy.json"
    card.write_text(json.dumps(c))
    with pytest.raises(PretrainedError, match="outside the weights folder"):
        pretrained.load(name)


def test_a_malformed_safetensors_header_is_one_line_naming_the_file(toy_zoo):
    from inr_lib.files.atomic import sha256_file

    root, name = toy_zoo
    w = root / "weights" / f"{name}.safetensors"
    w.write_bytes((10**6).to_bytes(8, "little") + b"{not json")
    card = root / "cards" / f"{name}.json"
    c = json.loads(card.read_text())
    c["weights"]["sha256"] = sha256_file(w)
    card.write_text(json.dumps(c))
    with pytest.raises(PretrainedError, match=f"the weights {w} cannot be read as safetensors"):
        pretrained.load(name)


def test_a_card_without_weights_says_so(toy_zoo):
    root, name = toy_zoo
    card = root / "cards" / f"{name}.json"
    c = json.loads(card.read_text())
    del c["weights"]
    card.write_text(json.dumps(c))
    with pytest.raises(PretrainedError, match=r"toy.json has no valid 'weights' entry"):
        pretrained.load(name)


# ------------------------------------------------------------------- checkpoints
def _ckpt_with(tmp_path, **changes) -> Path:
    path = tmp_path / "c.pt"
    save_checkpoint(path, build_model("tiny", seed=0), epoch=1)
    state = torch.load(path, weights_only=True)
    state.update(changes)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("key,value", [("model", "weights"), ("format_version", "1"),
                                       ("epoch", "three"), ("model_config", [1, 2])])
def test_checkpoint_fields_of_the_wrong_type_name_the_file_and_key(tmp_path, key, value):
    path = _ckpt_with(tmp_path, **{key: value})
    with pytest.raises(CheckpointError, match=f"{path}: '{key}' is .*, expected"):
        load_model(path)


def test_integer_weights_are_refused(tmp_path):
    state = {k: v.to(torch.int32) if v.is_floating_point() else v
             for k, v in build_model("tiny", seed=0).state_dict().items()}
    path = _ckpt_with(tmp_path, model=state)
    with pytest.raises(CheckpointError, match=r"weight '.*' is a torch.int32 tensor, expected a "
                                              r"floating point tensor"):
        load_model(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="POSIX")
@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_a_special_file_as_checkpoint_is_named_as_such(tmp_path, kind):
    path = tmp_path / "best.pt"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is not a regular file"):
        load_model(path)


# ------------------------------------------------------------------- names and full disks
def test_a_name_over_255_bytes_names_the_option(tmp_path, run_cli, synth):
    out = tmp_path / ("r" * 300 + ".json")
    rc, _, _, errors = run_cli(["baseline", "ridge", "--data", synth, "--json", out,
                                "--device", "cpu", "--no-progress"])
    assert rc == 1 and errors[0].startswith("error: --json: the name rrrr")
    assert "305 bytes long, more than the 255" in errors[0]


def test_a_failed_preview_removes_the_cube_it_belongs_to(tmp_path, tiny_ckpt, run_cli, write_png,
                                                         monkeypatch):
    import errno

    from inr_lib.files import images

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(images, "write_preview", full)
    out = tmp_path / "cube.h5"
    rc, _, _, errors = run_cli(["reconstruct", "--checkpoint", tiny_ckpt, "--rgb",
                                _rgb_png(tmp_path, write_png), "--out", out, "--device", "cpu"])
    assert rc == 1 and not out.exists() and sorted(tmp_path.iterdir()) == [tmp_path / "in.png"]
    assert "could not write the preview" in errors[0] and "the cube was removed too" in errors[0]


# ------------------------------------------------------------------- data
def test_a_greyscale_rgb_image_of_a_scene_is_refused(tmp_path, write_cave_scene):
    from PIL import Image

    folder = tmp_path / "toy_ms"
    write_cave_scene(folder, "toy", shape=(4, 5))
    Image.fromarray(np.full((4, 5), 90, np.uint8)).save(folder / "toy_RGB.bmp")
    with pytest.raises(DataFormatError, match=r"toy_RGB.bmp: is a greyscale image, but a scene's "
                                              r"RGB image must have three colour channels"):
        load_cave_scene(folder)


def test_the_summary_says_how_many_scenes_each_mean_covers(tmp_path, run_cli, write_cave_scene):
    from PIL import Image

    root = tmp_path / "cave"
    for name in ("aaa", "bbb", "ccc", "ddd"):
        write_cave_scene(root / f"{name}_ms" / f"{name}_ms", name, shape=(12, 12))
    zero = root / "ddd_ms" / "ddd_ms"
    for p in zero.glob("*.png"):
        Image.fromarray(np.zeros((12, 12), np.uint16)).save(p)
    rc, out, _, errors = run_cli(["baseline", "ridge", "--data", f"cave:{root}", "--split", "all",
                                  "--json", tmp_path / "r.json", "--device", "cpu", "--no-progress"])
    assert rc == 0, errors
    assert out.startswith("4 scenes:") and "mean over 3 of 4 scenes" in out
    assert "SAM" in out.split("mean over")[0].rsplit("(", 1)[1]


def test_a_cave_folder_given_twice_says_so(tmp_path, write_cave_scene):
    root = tmp_path / "cave"
    write_cave_scene(root / "toy_ms" / "toy_ms", "toy")
    with pytest.raises(ValueError, match=r"the CAVE folder .*cave is given twice; give each folder once"):
        list_cave_scenes([root, Path(str(root) + "/")])


def test_nus_values_beyond_float32_are_one_line(tmp_path):
    import warnings

    import scipy.io

    from inr_lib.data.nus import load_nus

    path = tmp_path / "scene.mat"
    cube = np.ones((4, 5, 31))
    cube[0, 0, :] = 1e303
    scipy.io.savemat(path, {"rad": cube, "bands": np.arange(400, 710, 10)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataFormatError, match=r"'rad' has values up to 1e\+303, beyond the "
                                                  r"float32 range"):
            load_nus(path)


def test_an_empty_mat_file_is_one_line(tmp_path):
    path = tmp_path / "scene.mat"
    path.write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"scene.mat is empty \(0 bytes\), not a MAT file"):
        read_mat(path, ["rad"])


def test_download_cave_with_a_bad_url_or_dest_is_one_line(tmp_path):
    from inr_lib.data.download import DownloadError

    with pytest.raises(DownloadError, match="does not name a zip file"):
        download_cave(tmp_path / "d", url="https://example.org/x/..", progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DownloadError, match="dest .*file is a file, not a folder"):
        download_cave(tmp_path / "file", url="file:///nowhere/c.zip", progress=False)
    assert (tmp_path / "file").read_text() == "x"


# ------------------------------------------------------------------- the model API
@pytest.fixture(scope="module")
def tiny():
    return build_model("tiny", seed=0).eval()


def test_predict_refuses_0_255_images(tiny):
    with pytest.raises(ValueError, match=r"input values range from 0 to 255, expected \[0, 1\]; "
                                         r"divide 8-bit images by 255"):
        tiny.predict(torch.linspace(0, 255, 192).reshape(1, 3, 8, 8))
    tiny.predict(torch.full((1, 3, 8, 8), 1.02))      # resampling overshoot: accepted


def test_predict_refuses_nan_and_inf(tiny):
    x = torch.rand(1, 3, 10, 10)
    x[0, 0, 0, 0] = float("nan")
    x[0, 1, 2, 2] = float("inf")
    with pytest.raises(ValueError, match=r"the input holds 2 NaN/Inf values \(0.67% of them\)"):
        tiny.predict(x)


def test_predict_explains_numpy_images(tiny):
    img = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(TypeError, match=r"got a ndarray of shape \(8, 8, 3\) \(H, W, channels\); "
                                        r"convert it with torch.from_numpy"):
        tiny.predict(img)
    with pytest.raises(ValueError, match=r"looks like one \(H, W, channels\) image"):
        tiny.predict(torch.zeros(8, 8, 3))


@pytest.mark.parametrize("tile", [1.5, "64", True])
def test_predict_refuses_a_tile_that_is_not_an_integer(tiny, tile):
    with pytest.raises(ValueError, match=r"tile must be a positive integer number of pixels"):
        tiny.predict(torch.rand(1, 3, 8, 8), tile=tile)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_predict_on_a_missing_gpu_is_one_line(tiny):
    from inr_lib.model.tiling import predict_image

    for call in (lambda: tiny.predict(torch.rand(1, 3, 8, 8), device="cuda"),
                 lambda: predict_image(tiny, torch.rand(1, 3, 8, 8), device="cuda")):
        with pytest.raises(RuntimeError, match=r"device 'cuda' was asked for, but this machine "
                                               r"has no usable CUDA GPU"):
            call()
