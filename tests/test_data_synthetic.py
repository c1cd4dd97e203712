"""The synthetic CAVE-layout dataset, the Scene record, and data-root resolution."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from inr_lib.data import (
    Scene,
    ensure_synthetic_cave,
    list_cave_scenes,
    load_cave_scene,
    make_synthetic_cave,
    resolve_cave_root,
    roots,
    split_available,
    synthetic,
)
from inr_lib.spectral import WAVELENGTHS, get_pipeline, normalise_response, project, render_rgb


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    """The default dataset (8 scenes, 128 x 128, seed 0), made once; also reports its time."""
    root = tmp_path_factory.mktemp("synth") / "a"
    synthetic.reflectance_library()  # colour-science import and tables, not the generator
    t0 = time.perf_counter()
    dirs = make_synthetic_cave(root)
    elapsed = time.perf_counter() - t0
    print(f"\nmake_synthetic_cave(8 scenes, 128x128): {elapsed:.2f} s")
    return root, dirs, elapsed


def test_default_set_layout_and_speed(default_set):
    root, dirs, elapsed = default_set
    assert len(dirs) == 8 and elapsed < 60  # target is ~5 s on one core; generous for shared CI
    assert [s.name for s in list_cave_scenes(root)] == sorted(d.name[:-3] for d in dirs)
    for d in dirs:
        assert d.parent.name == d.name  # nested layout <name>_ms/<name>_ms
        assert len(list(d.glob("*_ms_[0-3][0-9].png"))) == 31
        info = json.loads((d / "synthetic.json").read_text())
        assert info["response"] == "cave-rgb" and info["illuminant"] == "D65"
        assert info["version"] == 2  # RGB through the fitted pipeline: caches of version 1 are rebuilt


def test_bit_for_bit_deterministic(default_set, tmp_path):
    root, _, _ = default_set
    make_synthetic_cave(tmp_path / "b")
    assert tree_digest(tmp_path / "b") == tree_digest(root)
    make_synthetic_cave(tmp_path / "c", n_scenes=2, size=32, seed=1)
    scene_a = load_cave_scene(list_cave_scenes(root)[0].path)
    scene_c = load_cave_scene(list_cave_scenes(tmp_path / "c")[0].path)
    assert scene_c.hsi.shape == (31, 32, 32) and scene_a.hsi.shape == (31, 128, 128)


def test_scenes_are_plausible(default_set):
    root, _, _ = default_set
    for s in list_cave_scenes(root):
        scene = load_cave_scene(s.path)
        assert isinstance(scene, Scene) and scene.meta["band_bitdepths"] == [16]
        assert scene.hsi.max() == 1.0 and 0.005 < scene.hsi.mean() < 0.5
        # the BMP is the "cave-rgb" pipeline of the stored 16-bit cube, rounded to 8 bits
        rgb = render_rgb(scene.hsi, "cave-rgb")
        assert np.abs(rgb - scene.rgb).max() <= 0.5 / 255 + 1e-6
        # gamma-encoded like CAVE's own RGB, not linear: mid-tones are well above a linear projection
        assert scene.rgb.mean() > project(scene.hsi, "cie1964", "sum").mean() * 1.3
        # spectra are smooth-ish mixtures of measured reflectances, not noise
        assert np.abs(np.diff(scene.hsi, axis=0)).mean() < 0.05


def test_metameric_blacks_are_invisible():
    r = normalise_response("cie1964", "sum")
    illum = synthetic._illuminant("D65")
    blacks = synthetic._metameric_blacks(illum, r)
    assert blacks.shape[1] == 31 and np.abs(blacks).max() == 1.0
    np.testing.assert_allclose((illum * blacks) @ r, 0.0, atol=1e-12)


def test_metamers_are_invisible_to_the_fitted_pipeline():
    camera = get_pipeline("cave-rgb")
    illum = synthetic._illuminant("D65")
    blacks = synthetic._metameric_blacks(illum, camera.response)
    np.testing.assert_allclose((illum * blacks) @ camera.response, 0.0, atol=1e-12)


def test_old_linear_rgb_is_kept_by_name(tmp_path):
    """response="cie1964" still makes the version-1 kind of RGB: the linear projection."""
    d = make_synthetic_cave(tmp_path, n_scenes=1, size=32, response="cie1964")[0]
    scene = load_cave_scene(d)
    assert np.abs(project(scene.hsi, "cie1964", "sum") - scene.rgb).max() <= 0.5 / 255 + 1e-6


def test_rgb_does_not_determine_the_spectrum(default_set):
    """Metamers: pixels with (almost) the same RGB but clearly different spectra exist."""
    root, _, _ = default_set
    scene = load_cave_scene(list_cave_scenes(root)[0].path)
    hsi = scene.hsi[:, ::2, ::2].reshape(31, -1).T  # 4096 pixels
    rgb = scene.rgb[:, ::2, ::2].reshape(3, -1).T
    keep = rgb.sum(axis=1) > 0.15  # ignore near-black pixels
    hsi, rgb = hsi[keep].astype(np.float64), rgb[keep].astype(np.float64)
    d_rgb = np.abs(rgb[:, None, :] - rgb[None, :, :]).max(axis=2)
    unit = hsi / np.linalg.norm(hsi, axis=1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(unit @ unit.T, -1, 1)))
    assert np.any((d_rgb < 2 / 255) & (angle > 5.0))


def test_reflectance_library():
    names, spectra = synthetic.reflectance_library()
    assert len(names) == spectra.shape[0] >= 80 and spectra.shape[1] == 31
    assert 0.0 <= spectra.min() and spectra.max() <= 1.0


def test_ensure_reuses_and_replaces(tmp_path):
    root = tmp_path / "syn"
    dirs = ensure_synthetic_cave(root, n_scenes=2, size=24)
    stamp = (dirs[0] / f"{dirs[0].name}_01.png").stat().st_mtime_ns
    again = ensure_synthetic_cave(root, n_scenes=2, size=24)
    assert again == dirs and (dirs[0] / f"{dirs[0].name}_01.png").stat().st_mtime_ns == stamp
    other = ensure_synthetic_cave(root, n_scenes=3, size=24)  # other arguments: remade
    assert len(other) == 3 and len(list_cave_scenes(root)) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left over


def test_resolve_prefers_real_then_synthetic(tmp_path, monkeypatch):
    monkeypatch.setenv("INR_DATA", str(tmp_path))
    monkeypatch.delenv("INR_CAVE", raising=False)
    assert roots.default_data_root() == tmp_path
    got = resolve_cave_root(n_scenes=2, size=16)
    assert got.kind == "synthetic" and got.path == tmp_path / "synthetic_cave"
    assert "synthetic" in str(got)
    with pytest.raises(FileNotFoundError, match="download_cave"):
        resolve_cave_root(kind="cave")
    # a real-looking copy in $INR_DATA/cave wins (the synthetic marker file makes it "synthetic")
    make_synthetic_cave(tmp_path / "cave", n_scenes=1, size=8)
    assert resolve_cave_root(n_scenes=2, size=16).kind == "synthetic"
    (tmp_path / "cave" / "SYNTHETIC.json").unlink()
    real = resolve_cave_root()
    assert real.kind == "cave" and real.path == tmp_path / "cave" and "INR_DATA" in real.source
    assert resolve_cave_root(kind="synthetic", n_scenes=2, size=16).kind == "synthetic"
    parts = split_available(list_cave_scenes(got.path))
    assert parts["split"].startswith("fallback") and len(parts["train"]) == len(parts["test"]) == 1


def test_default_data_root_default(monkeypatch):
    monkeypatch.delenv("INR_DATA", raising=False)
    assert roots.default_data_root() == Path("~/.cache/inr_lib").expanduser()


# --------------------------------------------------------------------------------------------
# Scene validation


def test_scene_validation_messages():
    hsi = np.zeros((31, 4, 5), np.float32)
    s = Scene("x", hsi)
    assert s.rgb is None and s.shape == (4, 5)
    np.testing.assert_array_equal(s.wavelengths, WAVELENGTHS)
    assert "float32(31, 4, 5)" in repr(s)
    with pytest.raises(TypeError, match="float32"):
        Scene("x", hsi.astype(np.float64))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        Scene("x", hsi[0])
    with pytest.raises(ValueError, match="shape \\(31,\\)"):
        Scene("x", hsi, wavelengths=np.arange(30))
    bad = hsi.copy()
    bad[3, 1, 1] = np.nan
    with pytest.raises(ValueError, match="1 NaN"):
        Scene("x", bad)
    bad[3, 1, 1] = 1.5
    with pytest.raises(ValueError, match=r"\[0, 1\].*1\.5"):
        Scene("x", bad)
    with pytest.raises(ValueError, match="same height and width"):
        Scene("x", hsi, rgb=np.zeros((3, 4, 6), np.float32))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        Scene("x", hsi, rgb=np.zeros((4, 4, 5), np.float32))
    with pytest.raises(TypeError, match="numpy"):
        Scene("x", [[0.0]])
