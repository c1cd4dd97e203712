"""Issue 15, NTIRE 2018 / MAT readers: a cube already in [0, 1] is not divided by 4095 again,
a scene stored transposed is turned to match its RGB image (both with a warning and recorded
in ``meta``), a truncated v7.3 file is named."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image
from test_data_mat import write_v73

from inr_lib.data import DataFormatError, load_ntire2018
from inr_lib.spectral import WAVELENGTHS


def square_scene(n=12, seed=0):
    """(n, n, 31) 12-bit cube, MATLAB order, bright on the left, dark on the right (so it is
    not symmetric under transposition), and its 8-bit RGB (H, W, 3)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(4000, 100, n)[None, :, None] * np.ones((n, 1, 31))
    cube = np.round(ramp * rng.uniform(0.9, 1.0, (n, n, 31)))
    rgb = (cube[..., ::10][..., :3] / 4095 * 255).astype(np.uint8)
    return cube, rgb


def test_a_cube_already_in_0_1_is_not_divided_again(tmp_path):
    cube = np.random.default_rng(0).uniform(0, 1, (5, 7, 31))
    write_v73(tmp_path / "s.mat", {"rad": cube})
    with pytest.warns(UserWarning, match=r"already lies in \[0, 1\].*not divided by 4095"):
        scene = load_ntire2018(tmp_path / "s.mat")
    np.testing.assert_allclose(scene.hsi, cube.transpose(2, 0, 1), atol=1e-6)
    assert scene.meta["white_level"] == 1.0 and "already normalised" in scene.meta["scale_rule"]


def test_12bit_data_are_divided_by_4095_without_a_warning(tmp_path):
    cube, _ = square_scene()
    write_v73(tmp_path / "s.mat", {"rad": cube})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scene = load_ntire2018(tmp_path / "s.mat")
    np.testing.assert_allclose(scene.hsi, cube.transpose(2, 0, 1) / 4095, atol=1e-6)
    assert scene.meta["scale_rule"] == "divided by white_level 4095"
    assert scene.meta["orientation"].startswith("as stored (not checked")


@pytest.mark.parametrize("stored_transposed", [False, True])
def test_a_square_scene_stored_transposed_is_turned_to_match_its_rgb(tmp_path, stored_transposed):
    cube, rgb = square_scene()
    write_v73(tmp_path / "s.mat", {"rad": cube.transpose(1, 0, 2) if stored_transposed else cube})
    Image.fromarray(rgb).save(tmp_path / "s_clean.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scene = load_ntire2018(tmp_path / "s.mat")
    np.testing.assert_allclose(scene.hsi, cube.transpose(2, 0, 1) / 4095, atol=1e-6)
    said = [str(w.message) for w in caught if "stored transposed" in str(w.message)]
    assert bool(said) == stored_transposed
    assert scene.meta["orientation"].startswith("transposed" if stored_transposed else "as stored (checked")


def test_a_nonsquare_scene_stored_transposed_is_turned_too(tmp_path):
    cube, rgb = square_scene()
    cube, rgb = cube[:8], rgb[:8]                                 # 8 x 12
    write_v73(tmp_path / "s.mat", {"rad": cube.transpose(1, 0, 2)})   # stored 12 x 8
    Image.fromarray(rgb).save(tmp_path / "s_clean.png")
    with pytest.warns(UserWarning, match="stored transposed"):
        scene = load_ntire2018(tmp_path / "s.mat")
    assert scene.hsi.shape == (31, 8, 12)
    np.testing.assert_allclose(scene.hsi, cube.transpose(2, 0, 1) / 4095, atol=1e-6)


def test_a_truncated_v73_file_is_named(tmp_path):
    cube, _ = square_scene()
    write_v73(tmp_path / "s.mat", {"rad": cube, "bands": WAVELENGTHS[None, :].astype(float)})
    data = (tmp_path / "s.mat").read_bytes()
    (tmp_path / "s.mat").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"s\.mat"):
        load_ntire2018(tmp_path / "s.mat")


def test_a_nus_cube_stored_bands_first_gets_a_message_that_says_so(tmp_path):
    from inr_lib.data import load_nus

    cube = np.random.default_rng(0).uniform(0, 1, (31, 6, 20))      # bands-first, MATLAB order
    write_v73(tmp_path / "n.mat", {"hsi": cube})
    with pytest.raises(DataFormatError, match=r"n\.mat: 'hsi' has shape \(31, 6, 20\).*last axis "
                                              r"\(20 values\).*ending at 590 nm.*bands-first.*"
                                              r"pass wavelengths="):
        load_nus(tmp_path / "n.mat")
    scene = load_nus(tmp_path / "n.mat", wavelengths=WAVELENGTHS)   # the advice works
    assert scene.hsi.shape == (31, 6, 20)
