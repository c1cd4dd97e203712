"""NTIRE 2018 and NUS MAT-file loaders, on small non-square fixtures written in the exact
layouts (MATLAB v7.3 = HDF5 seen through h5py with reversed axes, and MATLAB v5)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from inr_lib.data import DataFormatError, load_ntire2018, load_nus
from inr_lib.data.nus import resample_bands
from inr_lib.spectral import WAVELENGTHS

H, W = 5, 7  # non-square: a transposition bug cannot pass


def write_v73(path: Path, variables: dict) -> None:
    """Write like MATLAB's save -v7.3: a 512-byte user block, arrays stored with reversed axes
    (an H x W x B MATLAB array is an HDF5 dataset of shape (B, W, H))."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for k, v in variables.items():
            f.create_dataset(k, data=np.asarray(v).T)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")


def ntire_cube(seed=0) -> np.ndarray:
    """(H, W, 31) 12-bit integers, MATLAB order; value encodes (y, x, band) for orientation."""
    rng = np.random.default_rng(seed)
    cube = rng.integers(0, 4096, size=(H, W, 31)).astype(np.float64)
    cube[0, 0, :] = 4095  # make the orientation and range unambiguous
    cube[H - 1, 0, :] = 0
    return cube


def expected(cube, scale):
    return (cube.transpose(2, 0, 1).astype(np.float32) / np.float32(scale)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# NTIRE 2018


def test_ntire_v73_orientation_and_scaling(tmp_path):
    cube = ntire_cube()
    mat = tmp_path / "BGU_HS_00001.mat"
    write_v73(mat, {"rad": cube, "bands": WAVELENGTHS[None, :].astype(float)})
    with h5py.File(mat, "r") as f:  # the fixture really has MATLAB's on-disk layout
        assert f["rad"].shape == (31, W, H)
    scene = load_ntire2018(mat)
    assert scene.name == "BGU_HS_00001" and scene.hsi.shape == (31, H, W)
    np.testing.assert_allclose(scene.hsi, expected(cube, 4095), rtol=0, atol=1e-7)
    assert scene.hsi[:, 0, 0].min() == 1.0 and scene.hsi[:, H - 1, 0].max() == 0.0
    assert scene.rgb is None and scene.meta["mat_format"] == "v7.3"
    np.testing.assert_array_equal(scene.wavelengths, WAVELENGTHS)


def test_ntire_v5_same_result(tmp_path):
    cube = ntire_cube(1)
    write_v73(tmp_path / "a.mat", {"rad": cube})
    scipy.io.savemat(tmp_path / "b.mat", {"rad": cube, "bands": WAVELENGTHS.astype(float)})
    a, b = load_ntire2018(tmp_path / "a.mat"), load_ntire2018(tmp_path / "b.mat")
    assert b.meta["mat_format"] == "v5"
    np.testing.assert_array_equal(a.hsi, b.hsi)


def test_ntire_rgb_pairing(tmp_path):
    cube = ntire_cube()
    write_v73(tmp_path / "s1.mat", {"rad": cube})
    clean = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(clean).save(tmp_path / "s1_clean.png")
    Image.fromarray(255 - clean).save(tmp_path / "s1_camera.jpg", quality=95)
    scene = load_ntire2018(tmp_path / "s1.mat")
    assert scene.meta["rgb_path"].endswith("s1_clean.png")
    np.testing.assert_array_equal(scene.rgb, clean.transpose(2, 0, 1).astype(np.float32) / 255)
    real = load_ntire2018(tmp_path / "s1.mat", track="realworld")
    assert real.meta["rgb_path"].endswith("s1_camera.jpg") and real.rgb.shape == (3, H, W)
    given = load_ntire2018(tmp_path / "s1.mat", rgb_path=tmp_path / "s1_camera.jpg")
    np.testing.assert_array_equal(given.rgb, real.rgb)
    Image.fromarray(clean[:, :-1]).save(tmp_path / "bad.png")
    with pytest.raises(DataFormatError, match="expected the same size"):
        load_ntire2018(tmp_path / "s1.mat", rgb_path=tmp_path / "bad.png")


def test_ntire_wrong_key_lists_keys(tmp_path):
    write_v73(tmp_path / "x.mat", {"cube": ntire_cube(), "bands": WAVELENGTHS.astype(float)})
    with pytest.raises(DataFormatError, match=r"no variable 'rad'.*\['bands', 'cube'\]"):
        load_ntire2018(tmp_path / "x.mat")
    assert load_ntire2018(tmp_path / "x.mat", key="cube").hsi.shape == (31, H, W)
    scipy.io.savemat(tmp_path / "y.mat", {"img": ntire_cube()})
    with pytest.raises(DataFormatError, match=r"\['img'\]"):
        load_ntire2018(tmp_path / "y.mat")


@pytest.mark.parametrize("bad, match", [(4096.0, r"\[0, 4096\].*white_level"),
                                        (-1.0, r"\[-1, "), (np.nan, "NaN")])
def test_ntire_bad_values(tmp_path, bad, match):
    cube = ntire_cube()
    cube[1, 2, 3] = bad
    write_v73(tmp_path / "v.mat", {"rad": cube})
    with pytest.raises(DataFormatError, match=match):
        load_ntire2018(tmp_path / "v.mat")


def test_ntire_wrong_shape_and_bands(tmp_path):
    write_v73(tmp_path / "s.mat", {"rad": np.zeros((H, W, 30))})
    with pytest.raises(DataFormatError, match="H x W x 31"):
        load_ntire2018(tmp_path / "s.mat")
    write_v73(tmp_path / "b.mat", {"rad": ntire_cube(), "bands": np.arange(410, 711, 10.0)})
    with pytest.raises(DataFormatError, match="410..710"):
        load_ntire2018(tmp_path / "b.mat")


def test_not_a_mat_file(tmp_path):
    (tmp_path / "junk.mat").write_bytes(b"hello, not matlab" * 20)
    with pytest.raises(DataFormatError, match="not a readable MAT file"):
        load_ntire2018(tmp_path / "junk.mat")
    with pytest.raises(FileNotFoundError):
        load_ntire2018(tmp_path / "missing.mat")


# --------------------------------------------------------------------------------------------
# NUS


def nus_cube(n_bands, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((H, W, n_bands)) * 3.0


@pytest.mark.parametrize("fmt", ["v5", "v7.3"])
def test_nus_400_720_selects_400_700(tmp_path, fmt):
    cube = nus_cube(33)
    wl = np.arange(400, 721, 10.0)
    variables = {"tensor": cube, "bands": wl, "illumination": np.linspace(1, 2, 33)}
    path = tmp_path / "scene.mat"
    if fmt == "v5":
        scipy.io.savemat(path, variables)
    else:
        write_v73(path, variables)
    scene = load_nus(path)
    sel = cube[:, :, :31]
    np.testing.assert_allclose(scene.hsi, expected(sel, sel.max()), rtol=1e-6, atol=1e-7)
    assert scene.hsi.max() == 1.0 and scene.meta["mat_format"] == fmt
    assert scene.meta["wavelength_source"] == "file variable 'bands'"
    np.testing.assert_allclose(scene.meta["illumination"], np.linspace(1, 2, 33)[:31], atol=1e-6)


def test_nus_rgb_pairing_reads_and_checks_size(tmp_path):
    scipy.io.savemat(tmp_path / "s.mat", {"tensor": nus_cube(31)})
    rgb = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "s.png")
    scene = load_nus(tmp_path / "s.mat", rgb_path=tmp_path / "s.png")
    np.testing.assert_array_equal(scene.rgb, rgb.transpose(2, 0, 1).astype(np.float32) / 255)
    assert scene.meta["rgb_path"] == str(tmp_path / "s.png")
    Image.fromarray(rgb[:, :-1]).save(tmp_path / "bad.png")  # 6 wide, 5 high
    with pytest.raises(DataFormatError, match=r"bad\.png: RGB image is 6x5 \(WxH\) but the spectra "
                       r"are 7x5; expected the same size"):
        load_nus(tmp_path / "s.mat", rgb_path=tmp_path / "bad.png")


def test_nus_420_720_needs_explicit_extrapolation(tmp_path):
    cube = nus_cube(31)
    scipy.io.savemat(tmp_path / "s.mat", {"tensor": cube, "bands": np.arange(420, 721, 10.0)})
    with pytest.raises(DataFormatError, match=r"420-720 nm.*missing: \[400.0, 410.0\].*extrapolate=True"):
        load_nus(tmp_path / "s.mat")
    scene = load_nus(tmp_path / "s.mat", extrapolate=True)
    assert scene.meta["extrapolated_nm"] == [400.0, 410.0]
    np.testing.assert_array_equal(scene.hsi[0], scene.hsi[2])  # 400 and 410 repeat 420
    np.testing.assert_array_equal(scene.hsi[1], scene.hsi[2])


def test_nus_linear_resampling_is_correct():
    # a cube linear in wavelength is reproduced exactly by linear resampling
    wl = np.array([395.0, 405.0, 433.0, 512.0, 600.0, 650.0, 702.5])
    yy, xx = np.mgrid[0:H, 0:W]
    slope, offset = 1.0 + yy + 0.1 * xx, 2.0 * xx
    cube = np.stack([offset + slope * (w - 395.0) / 100 for w in wl])  # (B, H, W)
    out, extra = resample_bands(cube, wl)
    assert extra == []
    truth = np.stack([offset + slope * (w - 395.0) / 100 for w in WAVELENGTHS])
    np.testing.assert_allclose(out, truth, rtol=1e-6)
    shuffled = np.array([3, 0, 6, 1, 5, 2, 4])  # any band order is sorted first
    out2, _ = resample_bands(cube[shuffled], wl[shuffled])
    np.testing.assert_array_equal(out, out2)


def test_nus_exact_copy_when_grids_coincide():
    cube = np.random.default_rng(0).random((33, 2, 3)).astype(np.float32)
    out, _ = resample_bands(cube, np.arange(400, 721, 10.0))
    np.testing.assert_array_equal(out, cube[:31])


def test_nus_keys_assumptions_and_errors(tmp_path):
    cube = nus_cube(31)
    scipy.io.savemat(tmp_path / "k.mat", {"hyper": cube, "illum": np.ones(31)})
    with pytest.raises(DataFormatError, match=r"none of the cube variables.*\['hyper', 'illum'\].*keys="):
        load_nus(tmp_path / "k.mat")
    scene = load_nus(tmp_path / "k.mat", keys=["hyper"])
    assert "assumed 400 + 10 k nm" in scene.meta["wavelength_source"]
    np.testing.assert_allclose(scene.hsi, expected(cube, cube.max()), rtol=1e-6, atol=1e-7)
    # an explicit wavelength vector overrides the assumption
    shifted = load_nus(tmp_path / "k.mat", keys=["hyper"], wavelengths=np.arange(410, 711, 10),
                       extrapolate=True)
    assert shifted.meta["extrapolated_nm"] == [400.0]
    # white level instead of the maximum
    wl = load_nus(tmp_path / "k.mat", keys=["hyper"], white_level=4.0)
    np.testing.assert_allclose(wl.hsi, expected(cube, 4.0), rtol=1e-6, atol=1e-7)
    with pytest.raises(DataFormatError, match="above white_level"):
        load_nus(tmp_path / "k.mat", keys=["hyper"], white_level=1.0)


def test_nus_negative_and_nan(tmp_path):
    cube = nus_cube(31)
    cube[0, 1, 2] = -0.5
    scipy.io.savemat(tmp_path / "n.mat", {"tensor": cube})
    with pytest.raises(DataFormatError, match="negative.*clip_negative=True"):
        load_nus(tmp_path / "n.mat")
    assert load_nus(tmp_path / "n.mat", clip_negative=True).hsi[2, 0, 1] == 0.0
    cube[0, 1, 2] = np.nan
    scipy.io.savemat(tmp_path / "m.mat", {"tensor": cube})
    with pytest.raises(DataFormatError, match="NaN"):
        load_nus(tmp_path / "m.mat")


def test_nus_band_axis_from_wavelength_vector(tmp_path):
    cube = nus_cube(31)  # (H, W, 31) stored as (31, H, W): band axis first
    scipy.io.savemat(tmp_path / "t.mat", {"tensor": cube.transpose(2, 0, 1),
                                         "wavelengths": WAVELENGTHS.astype(float)})
    scene = load_nus(tmp_path / "t.mat")
    np.testing.assert_allclose(scene.hsi, expected(cube, cube.max()), rtol=1e-6, atol=1e-7)
