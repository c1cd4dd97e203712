"""CAVE loading (real development scenes when present, small fixtures for every format),
scene discovery, and the shipped splits."""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import png
import pytest
from PIL import Image

from inr_lib.data import (
    CAVE_SCENES,
    DataFormatError,
    Scene,
    cave_split,
    list_cave_scenes,
    list_cave_splits,
    load_cave,
    load_cave_scene,
    split_available,
)
from inr_lib.spectral import WAVELENGTHS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL_CAVE = SHARED / "cave"
DEV8 = ["balloons", "beads", "chart_and_stuffed_toy", "cloth", "face", "fake_and_real_peppers",
        "flowers", "superballs"]


@pytest.fixture(scope="module")
def real_cave() -> Path:
    if not REAL_CAVE.is_dir():
        pytest.skip(f"real CAVE development scenes not found at {REAL_CAVE} (they live in "
                    "../shared/data/cave next to the checkout and are not in the repository)")
    return REAL_CAVE


# --------------------------------------------------------------------------------------------
# fixture writers


@pytest.fixture
def make_scene(write_png):
    """``make_scene(folder, name="toy", shape=(6, 9), bitdepth=16, channels=1, rgb=True, seed=0,
    skip=(), rgb_shape=None)``: write scene ``name`` (files <name>_ms_NN.png, <name>_RGB.bmp);
    returns (expected hsi float32 (31,H,W), expected rgb or None)."""
    def make(folder: Path, name="toy", shape=(6, 9), bitdepth=16, channels=1, rgb=True,
             seed=0, skip=(), rgb_shape=None) -> tuple:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        maxval = 2**bitdepth - 1
        raw = rng.integers(0, maxval + 1, size=(31,) + shape)
        for b in range(31):
            if b + 1 in skip:
                continue
            grey = raw[b][:, :, None]
            if channels == 1:
                vals = grey
            elif channels == 2:
                vals = np.concatenate([grey, rng.integers(0, maxval + 1, grey.shape)], axis=2)
            elif channels == 3:
                vals = np.repeat(grey, 3, axis=2)
            else:
                vals = np.concatenate([np.repeat(grey, 3, axis=2), np.full(grey.shape, maxval)], axis=2)
            write_png(folder / f"{name}_ms_{b + 1:02d}.png", vals, bitdepth)
        expected_rgb = None
        if rgb:
            rgb_arr = rng.integers(0, 256, size=(rgb_shape or shape) + (3,), dtype=np.uint8)
            Image.fromarray(rgb_arr).save(folder / f"{name}_RGB.bmp")
            expected_rgb = rgb_arr.transpose(2, 0, 1).astype(np.float32) / 255
        return raw.astype(np.float32) / np.float32(maxval), expected_rgb
    return make


# --------------------------------------------------------------------------------------------
# real scenes


def test_real_scenes_listed(real_cave):
    names = [s.name for s in list_cave_scenes(real_cave)]
    assert names == DEV8


def test_real_scene_exact_values_and_orientation(real_cave):
    t0 = time.perf_counter()
    scene = load_cave_scene(real_cave / "balloons_ms")  # outer folder of the nested layout
    elapsed = time.perf_counter() - t0
    print(f"\nload_cave_scene(balloons): {elapsed:.2f} s")
    assert scene.name == "balloons"
    assert scene.hsi.shape == (31, 512, 512) and scene.hsi.dtype == np.float32
    assert scene.rgb.shape == (3, 512, 512) and scene.rgb.dtype == np.float32
    np.testing.assert_array_equal(scene.wavelengths, WAVELENGTHS)
    inner = real_cave / "balloons_ms" / "balloons_ms"
    for band, nm in [(1, 400), (16, 550), (31, 700)]:
        f = inner / f"balloons_ms_{band:02d}.png"
        with Image.open(f) as im:  # direct 16-bit read with Pillow
            assert im.mode == "I;16"
            direct = np.asarray(im).astype(np.float32) / np.float32(65535)
        np.testing.assert_array_equal(scene.hsi[band - 1], direct)
        assert scene.wavelengths[band - 1] == nm
    # an independent decoder (pypng) agrees on band 01 (= 400 nm)
    w, h, rows, info = png.Reader(filename=str(inner / "balloons_ms_01.png")).read()
    ref = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows])
    assert info["bitdepth"] == 16
    np.testing.assert_array_equal(scene.hsi[0], ref.astype(np.float32) / np.float32(65535))
    with Image.open(inner / "balloons_RGB.bmp") as im:
        bmp = np.asarray(im.convert("RGB")).transpose(2, 0, 1).astype(np.float32) / 255
    np.testing.assert_array_equal(scene.rgb, bmp)
    assert scene.meta["band_bitdepths"] == [16]


@pytest.mark.parametrize("name", DEV8)
def test_every_real_scene_loads(real_cave, name):
    scene = load_cave(real_cave, [name])[0]
    assert scene.name == name and scene.hsi.shape == (31, 512, 512) and scene.rgb is not None
    assert 0.0 <= scene.hsi.min() and scene.hsi.max() <= 1.0


# --------------------------------------------------------------------------------------------
# band formats


@pytest.mark.parametrize(
    "bitdepth, channels",
    [(16, 1), (8, 1), (4, 1), (2, 1), (16, 2), (8, 2), (16, 3), (8, 3), (16, 4), (8, 4)],
    ids=lambda v: str(v),
)
def test_band_formats_are_exact(tmp_path, bitdepth, channels, make_scene):
    hsi, rgb = make_scene(tmp_path / "toy_ms", bitdepth=bitdepth, channels=channels)
    scene = load_cave_scene(tmp_path / "toy_ms")
    np.testing.assert_array_equal(scene.hsi, hsi)
    np.testing.assert_array_equal(scene.rgb, rgb)
    assert scene.meta["band_bitdepths"] == [bitdepth]
    assert scene.meta["band_channels"] == [channels]


def test_16bit_rgb_band_is_not_reduced_to_8_bits(tmp_path, make_scene):
    folder = tmp_path / "toy_ms"
    hsi, _ = make_scene(folder, bitdepth=16, channels=3)
    # Pillow would reduce these values to 8 bits; the loader must not
    scene = load_cave_scene(folder)
    values = np.round(scene.hsi * 65535).astype(np.int64)
    assert np.any(values % 257 != 0)
    np.testing.assert_array_equal(scene.hsi, hsi)


def test_mixed_bit_depths_each_normalised_by_own_depth(tmp_path, make_scene, write_png):
    folder = tmp_path / "mix_ms"
    make_scene(folder, name="mix", bitdepth=16)
    write_png(folder / "mix_ms_07.png", np.full((6, 9, 1), 255), 8)
    write_png(folder / "mix_ms_08.png", np.full((6, 9, 3), 128), 8)
    scene = load_cave_scene(folder)
    assert scene.meta["band_bitdepths"] == [8, 16]
    assert np.all(scene.hsi[6] == 1.0)
    assert np.all(scene.hsi[7] == np.float32(128) / np.float32(255))


def test_palette_band_with_grey_entries(tmp_path, make_scene, write_png):
    folder = tmp_path / "pal_ms"
    make_scene(folder, name="pal", bitdepth=16)
    palette = [(v, v, v) for v in range(0, 256, 17)]  # 16 grey entries
    idx = np.arange(54).reshape(6, 9, 1) % 16
    write_png(folder / "pal_ms_03.png", idx, 4, palette=palette)
    scene = load_cave_scene(folder)
    np.testing.assert_array_equal(scene.hsi[2], (idx[:, :, 0] * 17).astype(np.float32) / 255)


# --------------------------------------------------------------------------------------------
# refused inputs


def test_colour_band_refused(tmp_path, make_scene, write_png):
    folder = tmp_path / "toy_ms"
    make_scene(folder)
    vals = np.zeros((6, 9, 3), dtype=np.int64)
    vals[2, 4] = (100, 200, 100)
    write_png(folder / "toy_ms_05.png", vals, 16)
    with pytest.raises(DataFormatError, match=r"toy_ms_05\.png.*colour channels differ at 1 pixels"):
        load_cave_scene(folder)


def test_missing_band_refused(tmp_path, make_scene):
    make_scene(tmp_path / "toy_ms", skip=(5, 31))
    with pytest.raises(DataFormatError, match=r"missing band\(s\) \[5, 31\]"):
        load_cave_scene(tmp_path / "toy_ms")


def test_duplicate_band_refused(tmp_path, make_scene):
    folder = tmp_path / "toy_ms"
    make_scene(folder)
    (folder / "toy_ms_5.png").write_bytes((folder / "toy_ms_05.png").read_bytes())
    with pytest.raises(DataFormatError, match="duplicate band numbers"):
        load_cave_scene(folder)


def test_extra_band_number_refused(tmp_path, make_scene):
    folder = tmp_path / "toy_ms"
    make_scene(folder)
    (folder / "toy_ms_32.png").write_bytes((folder / "toy_ms_01.png").read_bytes())
    with pytest.raises(DataFormatError, match=r"unexpected band number\(s\) \[32\]"):
        load_cave_scene(folder)


def test_bands_of_different_sizes_refused(tmp_path, make_scene, write_png):
    folder = tmp_path / "toy_ms"
    make_scene(folder)
    write_png(folder / "toy_ms_12.png", np.zeros((9, 6, 1), dtype=np.int64), 16)
    with pytest.raises(DataFormatError, match="band 12 is 6x9.*band 01 is 9x6"):
        load_cave_scene(folder)


@pytest.mark.parametrize("damage", ["truncate", "crc", "garbage"])
def test_corrupt_png_refused(tmp_path, damage, make_scene):
    folder = tmp_path / "toy_ms"
    make_scene(folder, shape=(40, 40))
    f = folder / "toy_ms_09.png"
    data = bytearray(f.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "crc":
        data[60] ^= 0xFF  # inside the IDAT chunk
    else:
        data = bytearray(b"not a png at all")
    f.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"toy_ms_09\.png.*(truncated or corrupt)"):
        load_cave_scene(folder)


def test_rgb_of_other_size_refused(tmp_path, make_scene):
    make_scene(tmp_path / "toy_ms", rgb_shape=(6, 8))
    with pytest.raises(DataFormatError, match="RGB image is 8x6"):
        load_cave_scene(tmp_path / "toy_ms")


def test_missing_rgb_gives_none(tmp_path, make_scene):
    hsi, _ = make_scene(tmp_path / "toy_ms", rgb=False)
    scene = load_cave_scene(tmp_path / "toy_ms")
    assert scene.rgb is None and scene.meta["rgb_path"] is None
    np.testing.assert_array_equal(scene.hsi, hsi)


def test_missing_scene_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_cave"):
        load_cave_scene(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no band images"):
        load_cave_scene(tmp_path / "empty")


# --------------------------------------------------------------------------------------------
# discovery


def test_nested_flat_and_stray_files(tmp_path, make_scene):
    root = tmp_path / "cave"
    make_scene(root / "aa_ms" / "aa_ms", name="aa", seed=1)  # nested (official zip)
    make_scene(root / "bb_ms", name="bb", seed=2)  # flattened
    (root / "Thumbs.db").write_bytes(b"\0" * 10)
    (root / "aa_ms" / "aa_ms" / "Thumbs.db").write_bytes(b"\0" * 10)
    (root / ".DS_Store").write_bytes(b"x")
    (root / "complete_ms_data.zip").write_bytes(b"PK")
    (root / "notes").mkdir()
    found = list_cave_scenes(root)
    assert [s.name for s in found] == ["aa", "bb"]
    assert found[0].path == root / "aa_ms" / "aa_ms" and found[1].path == root / "bb_ms"
    scenes = load_cave(root)
    assert [s.name for s in scenes] == ["aa", "bb"] and all(isinstance(s, Scene) for s in scenes)


def test_wrapper_folder_and_single_scene_root(tmp_path, make_scene):
    make_scene(tmp_path / "complete_ms_data" / "cc_ms" / "cc_ms", name="cc")
    assert [s.name for s in list_cave_scenes(tmp_path)] == ["cc"]
    inner = tmp_path / "complete_ms_data" / "cc_ms" / "cc_ms"
    assert list_cave_scenes(inner) == [("cc", inner)]


def test_scene_named_after_its_band_files(tmp_path, make_scene):
    make_scene(tmp_path / "renamed_folder", name="ee")
    assert [s.name for s in list_cave_scenes(tmp_path)] == ["ee"]
    assert load_cave(tmp_path, ["ee"])[0].name == "ee"


def test_missing_and_empty_root(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"inr_lib\.data\.download_cave\(dest\)"):
        list_cave_scenes(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no CAVE scenes.*empty folder.*download_cave"):
        list_cave_scenes(tmp_path / "empty")


def test_scene_found_twice_refused(tmp_path, make_scene):
    make_scene(tmp_path / "dd_ms" / "dd_ms", name="dd")
    make_scene(tmp_path / "dd" , name="dd")
    with pytest.raises(DataFormatError, match="found twice"):
        list_cave_scenes(tmp_path)


def test_load_cave_reports_missing(tmp_path, make_scene):
    make_scene(tmp_path / "balloons_ms" / "balloons_ms", name="balloons")
    with pytest.warns(UserWarning, match=r"1 of 2 requested CAVE scenes.*\['beads'\]"):
        scenes = load_cave(tmp_path, ["balloons", "beads"])
    assert [s.name for s in scenes] == ["balloons"]
    with pytest.raises(FileNotFoundError, match="beads"):
        load_cave(tmp_path, ["balloons", "beads"], strict=True)
    with pytest.raises(FileNotFoundError, match="download_cave"):
        load_cave(tmp_path, ["cd"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [s.name for s in load_cave(tmp_path, "train")] == ["balloons"]  # default train


# --------------------------------------------------------------------------------------------
# splits


def test_official_scene_names():
    assert len(CAVE_SCENES) == 32 and len(set(CAVE_SCENES)) == 32
    assert set(DEV8) <= set(CAVE_SCENES)
    for name in ("fake_and_real_lemon_slices", "real_and_fake_apples", "watercolors",
                 "chart_and_stuffed_toy", "egyptian_statue", "thread_spools"):
        assert name in CAVE_SCENES


def test_default_split():
    s = cave_split()
    assert len(s["train"]) == 20 and len(s["test"]) == 12
    assert not set(s["train"]) & set(s["test"])
    assert sorted(s["train"] + s["test"]) == sorted(CAVE_SCENES)
    assert "unseeded" in s["note"] or s["note"]


def test_dev8_split_is_restriction_of_default():
    d, dev = cave_split("default"), cave_split("dev8")
    assert sorted(dev["train"] + dev["test"]) == DEV8
    assert len(dev["train"]) == 6 and len(dev["test"]) == 2
    assert set(dev["train"]) <= set(d["train"]) and set(dev["test"]) <= set(d["test"])
    assert set(list_cave_splits()) >= {"default", "dev8"}
    with pytest.raises(KeyError, match="available"):
        cave_split("random")


def test_split_available():
    auto = split_available(DEV8)
    assert auto["split"] == "dev8" and auto["test"] == ["chart_and_stuffed_toy", "fake_and_real_peppers"]
    assert split_available(CAVE_SCENES)["split"] == "default"
    part = split_available(["balloons", "cd", "face", "feathers"])
    assert part["split"] == "default"
    assert part["train"] == ["balloons", "face"] and part["test"] == ["cd", "feathers"]
    assert len(part["missing"]) == 28
    synth = split_available([f"synth{i:02d}" for i in range(8)])
    assert synth["test"] == ["synth03", "synth07"] and len(synth["train"]) == 6
    custom = split_available(["a", "b", "c"], {"train": ["a", "b"], "test": ["c", "z"]})
    assert custom["missing"] == ["z"] and custom["test"] == ["c"]
    with pytest.raises(ValueError, match="0 test"):
        split_available(["balloons", "beads"], "default")


def test_dev18_split_is_restriction_of_default_and_extends_dev8():
    d, dev8, dev18 = cave_split("default"), cave_split("dev8"), cave_split("dev18")
    assert len(dev18["train"]) == 16 and dev18["test"] == dev8["test"]
    assert set(dev8["train"]) <= set(dev18["train"])
    assert set(dev18["train"]) <= set(d["train"]) and set(dev18["test"]) <= set(d["test"])
    assert not set(dev18["train"]) & set(dev18["test"])
    assert len(set(dev18["train"])) == 16
    assert "dev18" in list_cave_splits()


@pytest.mark.skipif(not (SHARED / "cave_extra").is_dir(), reason="../shared/data/cave_extra is absent")
def test_dev18_scenes_present_in_the_two_development_folders():
    found = list_cave_scenes([SHARED / "cave", SHARED / "cave_extra"])
    auto = split_available(found)
    assert auto["split"] == "dev18" and not auto["missing"] and not auto["unassigned"]


def test_several_roots_list_together_and_refuse_duplicates(tmp_path, make_scene):
    a, b = tmp_path / "a", tmp_path / "b"
    for root, name in ((a, "balloons"), (b, "beads"), (b, "cloth")):
        make_scene(root / f"{name}_ms", name, shape=(4, 4))
    names = [s.name for s in list_cave_scenes([a, b])]
    assert names == ["balloons", "beads", "cloth"]
    make_scene(b / "balloons_ms", "balloons", shape=(4, 4))
    with pytest.raises(DataFormatError, match="two CAVE folders") as e:
        list_cave_scenes([a, b])
    assert str(a) in str(e.value) and str(b) in str(e.value)
