"""Reliability of the dataset loaders: missing, damaged and foreign files give clear errors.

Every case checks that nothing is corrupted or executed and that the message says what was
expected, what was found and what to do (cases covered elsewhere are listed in
``tests/conftest.py``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inr_lib.data import (DataFormatError, download_cave, list_cave_scenes, load_cave_scene, load_ntire2018, load_nus)


def test_missing_data_folder_names_the_exact_call(tmp_path, run_cli):
    absent = tmp_path / "cave"
    with pytest.raises(FileNotFoundError, match=r"Here: inr_lib\.data\.download_cave\('.*/cave'\)"):
        list_cave_scenes(absent)
    rc, _, _, errors = run_cli(["train", "--config", "tiny", "--data", f"cave:{absent}", "--out",
                                tmp_path / "run"])
    assert rc == 1 and f"d.download_cave('{absent}')" in errors[0] and "--data synthetic" in errors[0]


def test_cave_root_given_as_the_zip_says_how_to_unpack_it(tmp_path, make_cave_zip):
    z = make_cave_zip(tmp_path / "complete_ms_data.zip", shape=(2, 3))
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


def test_truncated_rgb_image_is_refused_with_its_name(tmp_path, write_cave_scene):
    folder = tmp_path / "toy_ms"
    write_cave_scene(folder, shape=(16, 16))
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
