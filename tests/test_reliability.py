"""Reliability and safety: bad input, interrupted work, untrusted files.

Every case checks that nothing is corrupted or executed and that the message says what was
expected, what was found and what to do. Cases already covered elsewhere are not repeated
here (missing / duplicate / truncated / corrupt / colour bands, bands of different sizes,
RGB of another size, missing and empty folders: ``test_data_cave.py``; MAT keys, shapes,
NaN and range: ``test_data_mat.py``; resume, checksums, zip-slip: ``test_download.py``;
weights-only loading of zip checkpoints: ``test_checkpoint.py``; exact resume, NaN stop,
output folder checks: ``test_train.py``; kill -9 and resume: ``test_kill_resume.py``).
"""
from __future__ import annotations

import errno
import http.server
import io
import json
import os
import pickle
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import png
import pytest
import torch
from PIL import Image

from inr_lib import build_model
from inr_lib.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from inr_lib.cli import main
from inr_lib.io import ImageReadError, read_image
from inr_lib.data import (DataFormatError, DownloadError, download_cave, list_cave_scenes,
                          load_cave_scene, load_ntire2018, load_nus)
from inr_lib.data.download import download_file, safe_extract_zip
from inr_lib.train import OutputDirError, TrainConfig, train

REPO = Path(__file__).resolve().parents[1]



def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    errors = [ln for ln in cap.err.splitlines() if ln.startswith("error:")]
    assert "Traceback" not in cap.err
    return rc, cap.out, cap.err, errors


# ============================================================================ fixtures
def band_pngs(name: str, shape=(2, 3), seed=0) -> dict:
    """{file name: bytes} of one scene: 31 16-bit grey bands + an 8-bit RGB bmp."""
    rng = np.random.default_rng(seed)
    files = {}
    for b in range(1, 32):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 65536, shape).astype(np.uint16)).save(buf, format="PNG")
        files[f"{name}_ms_{b:02d}.png"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape + (3,), dtype=np.uint8)).save(buf, format="BMP")
    files[f"{name}_RGB.bmp"] = buf.getvalue()
    return files


def cave_zip(path: Path, name="tiny") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for fname, data in band_pngs(name).items():
            zf.writestr(f"{name}_ms/{name}_ms/{fname}", data)
    return path


def write_scene(folder: Path, name="toy", shape=(4, 5)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for fname, data in band_pngs(name, shape).items():
        (folder / fname).write_bytes(data)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    """An (untrained) tiny-model checkpoint: enough for every inference path."""
    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    save_checkpoint(path, build_model("tiny", seed=0), epoch=1,
                    train_config={"crop_size": 16, "val_overlap": 4, "rgb_source": "dataset"})
    return path


# ============================================================================ datasets
def test_missing_data_folder_names_the_exact_call(tmp_path, capsys):
    absent = tmp_path / "cave"
    with pytest.raises(FileNotFoundError, match=r"Here: inr_lib\.data\.download_cave\('.*/cave'\)"):
        list_cave_scenes(absent)
    rc, _, _, errors = run_cli(["train", "--config", "tiny", "--data", f"cave:{absent}", "--out",
                                tmp_path / "run"], capsys)
    assert rc == 1 and f"d.download_cave('{absent}')" in errors[0] and "--data synthetic" in errors[0]


def test_cave_root_given_as_the_zip_says_how_to_unpack_it(tmp_path):
    z = cave_zip(tmp_path / "complete_ms_data.zip")
    with pytest.raises(DataFormatError, match=r"is a file, not a folder.*zip archive.*"
                                              r"download_cave\(FOLDER, url='file://") as e:
        list_cave_scenes(z)
    with pytest.raises(DataFormatError, match="is a file, not a folder"):
        load_cave_scene(z)
    # following the advice works, offline
    url = str(e.value).split("url=")[1].split(")")[0].strip("'")
    dest = download_cave(tmp_path / "cave", url=url, progress=False)
    assert [s.name for s in list_cave_scenes(dest)] == ["tiny"]
    assert z.is_file()  # the user's zip is left alone


def test_truncated_rgb_image_is_refused_with_its_name(tmp_path):
    folder = tmp_path / "toy_ms"
    write_scene(folder, shape=(16, 16))
    bmp = folder / "toy_RGB.bmp"
    bmp.write_bytes(bmp.read_bytes()[:100])
    with pytest.raises(DataFormatError, match=r"toy_RGB\.bmp.*not a readable image.*truncated"):
        load_cave_scene(folder)


def _write_mat(path: Path, key: str, cube) -> None:
    import scipy.io

    scipy.io.savemat(path, {key: cube})


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
@pytest.mark.parametrize("loader", ["ntire2018", "nus"])
def test_infinite_values_in_a_mat_cube_are_refused(tmp_path, loader, bad):
    cube = np.random.default_rng(0).random((4, 5, 31)) * 100
    cube[1, 2, 3] = bad
    key, load = ("rad", load_ntire2018) if loader == "ntire2018" else ("tensor", load_nus)
    _write_mat(tmp_path / "x.mat", key, cube)
    with pytest.raises(DataFormatError, match=r"x\.mat.*1 NaN/inf values"):
        load(tmp_path / "x.mat")


@pytest.mark.parametrize("loader", ["ntire2018", "nus"])
def test_empty_mat_cube_is_refused(tmp_path, loader):
    key, load, shape = (("rad", load_ntire2018, (0, 0, 31)) if loader == "ntire2018"
                        else ("tensor", load_nus, (4, 5, 0)))
    _write_mat(tmp_path / "e.mat", key, np.zeros(shape))
    with pytest.raises(DataFormatError, match=r"e\.mat.*has shape.*expected H x W x"):
        load(tmp_path / "e.mat")


# ============================================================================ downloads
class _Server:
    """A localhost HTTP server whose behaviour each test sets (``handler``)."""

    def __init__(self, handler):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/complete_ms_data.zip"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(payload: bytes, behaviour: list):
    """Serves ``payload``; ``behaviour`` holds one entry per request: "cut" (announce the
    whole file, send half, close), "range" (honour Range) or "html" (an error page, 200)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        ranges: list = []

        def do_GET(self):  # noqa: N802
            what = behaviour.pop(0)
            rng = self.headers.get("Range")
            Handler.ranges.append(rng)
            if what == "html":
                body = b"<html><body>Service temporarily unavailable</body></html>"
                self.send_response(200)
            elif rng and what == "range":
                start = int(rng.split("=")[1].split("-")[0])
                body = payload[start:]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
            else:
                body = payload
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if what == "cut" else body)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    return Handler


def test_connection_closed_early_keeps_the_part_file_and_resumes(tmp_path):
    z = cave_zip(tmp_path / "src.zip")
    payload = z.read_bytes()
    handler = _handler(payload, ["cut", "range"])
    server = _Server(handler)
    try:
        target = tmp_path / "dl" / "complete_ms_data.zip"
        part = target.with_name(target.name + ".part")
        with pytest.raises(DownloadError, match=r"stopped after \d+ of \d+ bytes.*kept: call "
                                                r"again to resume"):
            download_file(server.url, target, progress=False)
        assert 0 < part.stat().st_size < len(payload) and not target.exists()
        download_file(server.url, target, progress=False)  # the second call resumes
        assert handler.ranges == [None, f"bytes={len(payload) // 2}-"]
        assert target.read_bytes() == payload and not part.exists()
    finally:
        server.close()


def test_error_page_instead_of_the_zip_is_removed(tmp_path):
    z = cave_zip(tmp_path / "src.zip")
    server = _Server(_handler(z.read_bytes(), ["html", "plain"]))
    dest = tmp_path / "cave"
    try:
        with pytest.raises(DataFormatError, match=r"not a zip archive \(it starts with b'<html>.*"
                                                  r"removed\. Check the URL, then call download_cave"):
            download_cave(dest, url=server.url, progress=False)
        assert list(dest.iterdir()) == []           # nothing kept, nothing extracted
        download_cave(dest, url=server.url, progress=False)  # so a second call just works
        assert [s.name for s in list_cave_scenes(dest)] == ["tiny"]
    finally:
        server.close()


def test_archive_with_a_corrupt_member_is_removed_and_nothing_extracted(tmp_path):
    z = cave_zip(tmp_path / "complete_ms_data.zip")
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[5]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 10] ^= 0xFF  # inside the member's compressed bytes: its CRC fails
    z.write_bytes(bytes(data))
    dest = tmp_path / "cave"
    with pytest.raises(DataFormatError, match="corrupt member.*damaged archive was removed"):
        download_cave(dest, url=z.as_uri(), progress=False)
    assert list(dest.iterdir()) == []


def test_extraction_that_would_fill_the_disk_is_refused_first(tmp_path, monkeypatch):
    import shutil
    from types import SimpleNamespace

    z = cave_zip(tmp_path / "c.zip")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: SimpleNamespace(total=1, used=1, free=100))
    with pytest.raises(DownloadError, match=r"needs \d+ KiB but .* has only 100 bytes free.*"
                                            r"nothing was extracted"):
        safe_extract_zip(z, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_a_link_already_in_the_destination_is_replaced_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    dest = tmp_path / "cave"
    dest.mkdir()
    (dest / "tiny_ms").symlink_to(outside, target_is_directory=True)
    safe_extract_zip(cave_zip(tmp_path / "c.zip"), dest)
    assert not (dest / "tiny_ms").is_symlink() and (dest / "tiny_ms" / "tiny_ms").is_dir()
    assert [p.name for p in outside.iterdir()] == ["keep.txt"]  # untouched


# ============================================================================ training
def _scene(name, seed, size=20):
    from types import SimpleNamespace

    r = np.random.default_rng(seed)
    hsi = (r.random((31, 1, 1)) * (0.3 + 0.6 * r.random((1, size, size)))).astype(np.float32)
    rgb = np.stack([hsi[20:].mean(0), hsi[10:20].mean(0), hsi[:10].mean(0)]).astype(np.float32)
    return SimpleNamespace(name=name, hsi=hsi, rgb=rgb, wavelengths=np.arange(400, 701, 10.0))


TRAIN, VAL = [_scene("a", 0), _scene("b", 1)], [_scene("v", 2)]


def _tiny(**kw):
    return TrainConfig.preset("tiny").replace(**{"crops_per_scene": 2, **kw})


def test_crash_between_best_and_last_write_resumes_to_the_same_checkpoints(tmp_path, monkeypatch):
    """best.pt is written before last.pt: a crash between them resumes from the previous
    last.pt and rewrites the same best.pt (the other order could leave a last.pt whose
    `best` record points at weights that were never saved)."""
    import inr_lib.train as tr

    cfg = _tiny(epochs=3, val_every=1)
    ref = train(cfg, TRAIN, VAL, tmp_path / "ref", device="cpu", progress=False)
    real = tr.ckpt_lib.save_checkpoint

    def crash_at_epoch_2(path, model, **kw):
        if Path(path).name == "last.pt" and kw["epoch"] == 2:
            raise KeyboardInterrupt("power cut between the two writes (simulated)")
        return real(path, model, **kw)

    monkeypatch.setattr(tr.ckpt_lib, "save_checkpoint", crash_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, TRAIN, VAL, tmp_path / "run", device="cpu", progress=False)
    monkeypatch.setattr(tr.ckpt_lib, "save_checkpoint", real)
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["epoch"] == 1 and load_checkpoint(tmp_path / "run" / "best.pt")["epoch"] == 2
    train(cfg, TRAIN, VAL, tmp_path / "run", resume=True, device="cpu", progress=False)
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(ref.out_dir / name), load_checkpoint(tmp_path / "run" / name)
        assert a["epoch"] == b["epoch"] and a["best"]["epoch"] == b["best"]["epoch"]
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), name


def test_disk_full_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
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
        train(_tiny(epochs=3, val_every=0), TRAIN, [], out, device="cpu", progress=False)
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not list(out.glob(".*.tmp"))  # the half-written temporary file was removed


def test_unusable_output_folder_is_reported_before_loading_data(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    missing_data = f"cave:{tmp_path / 'no_such_data'}"   # would fail later, if ever reached
    rc, _, _, errors = run_cli(["train", "--config", "tiny", "--data", missing_data, "--out",
                                tmp_path / "file" / "run"], capsys)
    assert rc == 1 and "output folder" in errors[0] and "choose another --out" in errors[0]
    run = tmp_path / "old"
    run.mkdir()
    save_checkpoint(run / "last.pt", build_model("tiny"), epoch=1)
    rc, _, _, errors = run_cli(["train", "--config", "tiny", "--data", missing_data, "--out", run],
                               capsys)
    assert rc == 1 and "already holds a training run" in errors[0] and "--resume" in errors[0]


def test_resume_from_a_damaged_last_pt_says_what_to_do(tmp_path, capsys):
    data = tmp_path / "cave"
    for i in range(2):
        write_scene(data / f"s{i}_ms", name=f"s{i}", shape=(16, 16))
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "last.pt", build_model("tiny"), epoch=1)
    full = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(full[: len(full) // 2])   # e.g. an interrupted copy
    rc, _, _, errors = run_cli(["train", "--config", "tiny", "--data", f"cave:{data}", "--out", run,
                                "--resume", "--no-progress", "--device", "cpu"], capsys)
    assert rc == 1
    assert "cannot resume" in errors[0] and "truncated" in errors[0]
    assert "copy it over last.pt" in errors[0] and "--overwrite" in errors[0]


# ============================================================================ checkpoints
class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", ["torch-zip", "torch-legacy", "raw-pickle"])
def test_untrusted_pickles_are_refused_without_running_code(tmp_path, kind, capsys):
    marker = tmp_path / "CODE_RAN"
    obj = {"format": "inr_lib.checkpoint", "format_version": 1, "payload": _Payload(marker)}
    path = tmp_path / "stranger.pt"
    if kind == "raw-pickle":
        path.write_bytes(pickle.dumps(obj))
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=kind == "torch-zip")
    with pytest.raises(CheckpointError, match="refused.*could run arbitrary code"):
        load_checkpoint(path)
    rc, _, _, errors = run_cli(["reconstruct", "--checkpoint", path, "--rgb", path, "--out",
                                tmp_path / "c.npy"], capsys)
    assert rc == 1 and "refused" in errors[0]
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:'torch.load' received a zip")
def test_foreign_files_and_folders_give_clear_errors(tmp_path, tiny_ckpt):
    ts = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(ts))
    with pytest.raises(CheckpointError, match="TorchScript model archive.*refused"):
        load_checkpoint(ts)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a torch checkpoint"):
        load_checkpoint(tmp_path / "empty.pt")
    np.save(tmp_path / "cube.npy", np.zeros(3))
    with pytest.raises(CheckpointError, match=r"starts with b'\\x93NUM'"):
        load_checkpoint(tmp_path / "cube.npy")
    with pytest.raises(CheckpointError, match=r"is a folder, not a file.*\(last\.pt\)"):
        load_checkpoint(tiny_ckpt.parent)       # the run folder instead of a file in it


def test_model_config_is_validated_against_this_version(tmp_path, tiny_ckpt):
    ck = torch.load(tiny_ckpt, weights_only=True)
    bad = {**ck, "model_config": {**ck["model_config"], "tile": 3}}
    torch.save(bad, tmp_path / "tile3.pt")
    with pytest.raises(CheckpointError, match="not valid for this inr_lib.*power of two"):
        load_model(tmp_path / "tile3.pt")
    other = {**ck, "model_config": build_model("small").config.to_dict()}  # tiny weights
    torch.save(other, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="weights do not match its model configuration"):
        load_model(tmp_path / "mismatch.pt")
    torch.save({**ck, "arch": "transformer"}, tmp_path / "arch.pt")
    with pytest.raises(CheckpointError, match="unknown arch 'transformer'"):
        load_checkpoint(tmp_path / "arch.pt")


# ============================================================================ CLI and library
def _png(path: Path, values: np.ndarray, bitdepth: int) -> Path:
    h, w, c = values.shape
    with open(path, "wb") as f:
        png.Writer(w, h, greyscale=c in (1, 2), alpha=c in (2, 4), bitdepth=bitdepth).write(
            f, values.reshape(h, w * c).tolist())
    return path


def test_input_images_of_every_kind(tmp_path):
    rng = np.random.default_rng(0)
    # 16-bit RGBA PNG: 16 bits kept exactly, alpha dropped with a note
    v = rng.integers(0, 65536, (3, 4, 4))
    rgb, notes = read_image(_png(tmp_path / "rgba16.png", v, 16))
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
        read_image(_png(tmp_path / "la.png", rng.integers(0, 256, (3, 3, 2)), 8))
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
def test_reconstruct_images_of_odd_sizes(tmp_path, tiny_ckpt, capsys, hw):
    img = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, hw + (3,), dtype=np.uint8)).save(img)
    rc, _, err, _ = run_cli(["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", img, "--out",
                             tmp_path / "c.npy", "--device", "cpu"], capsys)
    assert rc == 0, err
    cube = np.load(tmp_path / "c.npy")
    assert cube.shape == (31,) + hw and np.isfinite(cube).all()


def test_reconstruct_argument_and_output_problems(tmp_path, tiny_ckpt, capsys):
    img = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    base = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", img]
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in base + ["--out", tmp_path / "c.npy", "--tile", "0"]])
    assert e.value.code == 2 and "expected an integer >= 1, got 0" in capsys.readouterr().err
    rc, _, _, errors = run_cli(base + ["--out", tmp_path / "c.npy", "--tile", 4, "--overlap", 4],
                               capsys)
    assert rc == 1 and "0 <= overlap < tile" in errors[0] and "smaller overlap" in errors[0]
    (tmp_path / "file").write_text("x")
    rc, _, _, errors = run_cli(base + ["--out", tmp_path / "file" / "c.npy"], capsys)
    assert rc == 1 and "cannot create its folder" in errors[0]
    (tmp_path / "dir.npy").mkdir()
    rc, _, _, errors = run_cli(base + ["--out", tmp_path / "dir.npy"], capsys)
    assert rc == 1 and "is a folder" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.npy", "file", "in.png"]


def test_cuda_asked_for_on_a_cpu_only_machine(tmp_path, tiny_ckpt, capsys, monkeypatch):
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
    rc, _, _, errors = run_cli(argv, capsys)
    assert rc == 1 and "--allow-cpu-fallback" in errors[0] and not (tmp_path / "c.npy").exists()
    with pytest.warns(UserWarning, match="CUDA is not available; using the CPU"):
        rc, _, err, _ = run_cli(argv + ["--allow-cpu-fallback"], capsys)
    assert rc == 0, err
    assert np.load(tmp_path / "c.npy").shape == (31, 8, 8)


def test_predict_rejects_a_nonpositive_tile():
    model = build_model("tiny")
    with pytest.raises(ValueError, match="tile must be a positive number of pixels"):
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
