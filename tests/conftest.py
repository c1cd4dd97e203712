"""Shared test fixtures: data on disk and in memory, checkpoints, the command line.

Reliability cases (bad input, interrupted work, untrusted files) live next to the module they
exercise: ``test_reliability_{data,download,train,checkpoint,cli}.py``; cases covered in the
main test of a module are not repeated there (missing / duplicate / truncated / corrupt /
colour bands, bands of different sizes, RGB of another size, missing and empty folders:
``test_data_cave.py``; MAT keys, shapes, NaN and range: ``test_data_mat.py``; resume,
checksums, zip-slip: ``test_download.py``; weights-only loading of zip checkpoints:
``test_checkpoint.py``; exact resume, NaN stop, output folder checks: ``test_train.py``;
kill -9 and resume: ``test_kill_resume.py``).
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
#: the development copy of 8 real CAVE scenes (not part of the repository)
SHARED_CAVE = REPO.parent / "shared" / "data" / "cave"

os.environ.setdefault("INR_PROFILE", "quick")


@pytest.fixture(scope="session")
def cave_root() -> Path:
    """Folder of real CAVE scenes; the test is skipped (with the reason) when absent."""
    if not SHARED_CAVE.is_dir():
        pytest.skip(f"real CAVE scenes not found at {SHARED_CAVE} (development data; "
                    f"not shipped with the repository)")
    return SHARED_CAVE


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one torch thread: the models in tests are tiny, and two threads on a
    busy 2-core machine are ~10x slower than one (spin-waiting). Restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ------------------------------------------------------------------ scenes in memory
def _smooth_scene(name: str, seed: int, size: int = 24) -> SimpleNamespace:
    r = np.random.default_rng(seed)
    ramp = np.linspace(0.2, 1.0, size, dtype=np.float32)
    hsi = (r.random((31, 1, 1)) * ramp[None, None, :] * (0.6 + 0.4 * r.random((1, size, size))))
    hsi = hsi.astype(np.float32)
    rgb = np.stack([hsi[20:].mean(0), hsi[10:20].mean(0), hsi[:10].mean(0)]).astype(np.float32)
    return SimpleNamespace(name=name, hsi=hsi, rgb=rgb, wavelengths=np.arange(400, 701, 10.0))


@pytest.fixture(scope="session")
def smooth_scene():
    """``smooth_scene(name, seed, size=24)``: a learnable scene-like record (``hsi`` (31, s, s)
    spectra times a horizontal ramp, ``rgb`` (3, s, s) band means), for training tests."""
    return _smooth_scene


def _random_scene(name: str, seed: int, h: int = 24, w: int = 20, rgb: bool = True):
    r = np.random.default_rng(seed)
    hsi = (0.1 + 0.8 * r.random((31, h, w))).astype(np.float32)
    return SimpleNamespace(name=name, hsi=hsi, rgb=hsi[[25, 15, 5]].copy() if rgb else None,
                           wavelengths=np.arange(400, 701, 10.0))


@pytest.fixture(scope="session")
def random_scene():
    """``random_scene(name, seed, h=24, w=20, rgb=True)``: a scene-like record of random spectra
    in [0.1, 0.9] (``hsi`` (31, h, w)), ``rgb`` = bands 25, 15, 5 (or None)."""
    return _random_scene


@pytest.fixture(scope="session")
def train_val(smooth_scene):
    """Two training scenes and one validation scene (24 x 24)."""
    return [smooth_scene("s0", 0), smooth_scene("s1", 1)], [smooth_scene("v0", 5)]


# ------------------------------------------------------------------ files on disk
def _png_bytes(values: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(values).save(buf, format="PNG")
    return buf.getvalue()


def _cave_files(name: str, shape=(2, 3), seed=0) -> dict:
    from PIL import Image

    rng = np.random.default_rng(seed)
    files = {f"{name}_ms_{b:02d}.png": _png_bytes(rng.integers(0, 65536, shape).astype(np.uint16))
             for b in range(1, 32)}
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, tuple(shape) + (3,), dtype=np.uint8)).save(buf, format="BMP")
    files[f"{name}_RGB.bmp"] = buf.getvalue()
    return files


@pytest.fixture(scope="session")
def cave_files():
    """``cave_files(name, shape=(2, 3), seed=0) -> {file name: bytes}``: one CAVE scene, 31
    16-bit grey band PNGs and an 8-bit RGB bmp of random values."""
    return _cave_files


@pytest.fixture(scope="session")
def write_cave_scene():
    """``write_cave_scene(folder, name="toy", shape=(4, 5))``: one scene's files in ``folder``."""
    def write(folder: Path, name: str = "toy", shape=(4, 5)) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for fname, data in _cave_files(name, shape).items():
            (folder / fname).write_bytes(data)
    return write


@pytest.fixture(scope="session")
def make_cave_zip():
    """``make_cave_zip(path, scenes=("tiny",), shape=(4, 6), wrapper="")``: a miniature
    ``complete_ms_data.zip`` (nested ``NAME_ms/NAME_ms/`` layout, a folder entry and a
    ``Thumbs.db`` per scene, as in the official archive); returns ``path``."""
    def make(path: Path, scenes=("tiny",), shape=(4, 6), wrapper: str = "") -> Path:
        with zipfile.ZipFile(path, "w") as zf:
            for i, name in enumerate(scenes):
                base = f"{wrapper}{name}_ms/{name}_ms/"
                zf.writestr(f"{wrapper}{name}_ms/", "")
                for fname, data in _cave_files(name, shape, seed=i).items():
                    zf.writestr(base + fname, data)
                zf.writestr(f"{base}Thumbs.db", b"\0" * 16)
        return path
    return make


@pytest.fixture(scope="session")
def write_png():
    """``write_png(path, values (H, W, C) ints, bitdepth, palette=None) -> path``, written
    exactly by pypng; C = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA."""
    import png

    def write(path: Path, values: np.ndarray, bitdepth: int, palette=None) -> Path:
        h, w, c = values.shape
        if palette is not None:
            writer = png.Writer(width=w, height=h, palette=palette, bitdepth=bitdepth)
        else:
            writer = png.Writer(width=w, height=h, greyscale=c in (1, 2), alpha=c in (2, 4),
                                bitdepth=bitdepth)
        with open(path, "wb") as f:
            writer.write(f, values.reshape(h, w * c).tolist())
        return path
    return write


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> str:
    """``--data synthetic:DIR`` of the default synthetic dataset (8 scenes of 128 x 128, 6
    train / 2 test), generated once per test session; tests only read it."""
    from inr_lib.data import ensure_synthetic_cave

    root = tmp_path_factory.mktemp("data") / "synthetic_cave"
    ensure_synthetic_cave(root)
    return f"synthetic:{root}"


# ------------------------------------------------------------------ models and the CLI
@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """An (untrained) tiny-model checkpoint: enough for every inference path."""
    from inr_lib import build_model
    from inr_lib.files.checkpoints import save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    save_checkpoint(path, build_model("tiny", seed=0), epoch=1,
                    train_config={"crop_size": 16, "val_overlap": 4, "rgb_source": "dataset"})
    return path


@pytest.fixture
def run_cli(capsys):
    """``run_cli(argv) -> (status, stdout, stderr, error lines)``: the command line run
    in-process; a traceback on stderr fails the test."""
    from inr_lib.cli import main

    def run(argv):
        rc = main([str(a) for a in argv])
        cap = capsys.readouterr()
        assert "Traceback" not in cap.err
        return rc, cap.out, cap.err, [ln for ln in cap.err.splitlines() if ln.startswith("error:")]
    return run
