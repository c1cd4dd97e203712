"""Reliability of the dataset loaders: missing, damaged and foreign files give clear errors.

Every case checks that nothing is corrupted or executed and that the message says what was
expected, what was found and what to do (cases covered elsewhere are listed in
``tests/conftest.py``).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from inr_lib import build_model
from inr_lib.cli import main
from inr_lib.data import (
    DataFormatError,
    download_cave,
    ensure_synthetic_cave,
    list_cave_scenes,
    load_cave_scene,
    load_ntire2018,
    load_nus,
)
from inr_lib.files.checkpoints import save_checkpoint


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


# ------------------------------------------------------------------- (2) synthetic:DIR
def test_evaluate_on_synthetic_dir_never_deletes_an_unrelated_folder(tmp_path, capsys):
    thesis = tmp_path / "work" / "thesis.tex"
    thesis.parent.mkdir()
    thesis.write_text("years of work")
    ck = tmp_path / "best.pt"
    save_checkpoint(ck, build_model("tiny", seed=0), epoch=1, train_config={"crop_size": 16})
    rc = main(["evaluate", "--checkpoint", str(ck), "--data",
               f"synthetic:{thesis.parent}", "--json", str(tmp_path / "r.json"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 1 and thesis.read_text() == "years of work"
    assert sorted(p.name for p in thesis.parent.iterdir()) == ["thesis.tex"]
    assert f"error: {thesis.parent} is in the way and inr_lib cannot prove it is a synthetic" in err


def test_synthetic_dataset_refuses_foreign_folders_and_fills_empty_or_own_ones(tmp_path):
    work = tmp_path / "work"
    (work / "cave_copy").mkdir(parents=True)
    (work / "cave_copy" / "x.png").write_bytes(b"data")
    with pytest.raises(FileExistsError, match=r"cannot prove it is a synthetic dataset it wrote "
                                              r"\(it has no SYNTHETIC.json; it holds cave_copy\); "
                                              r"it is left untouched"):
        ensure_synthetic_cave(work, n_scenes=1, size=16)
    assert (work / "cave_copy" / "x.png").read_bytes() == b"data"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(ensure_synthetic_cave(empty, n_scenes=1, size=16)) == 1
    # a synthetic dataset it wrote with other arguments is regenerated
    assert len(ensure_synthetic_cave(empty, n_scenes=2, size=16)) == 2


# ------------------------------------------------------------------- (6) download_cave(file://)
def test_download_cave_from_the_users_own_zip_keeps_the_zip(tmp_path, make_cave_zip):
    dest = tmp_path / "cave"
    dest.mkdir()
    z = make_cave_zip(dest / "complete_ms_data.zip", shape=(2, 3))
    before = z.read_bytes()
    download_cave(dest, url=z.as_uri(), progress=False)
    assert [s.name for s in list_cave_scenes(dest)] == ["tiny"]
    assert z.read_bytes() == before


def test_a_damaged_user_zip_is_kept_and_the_message_claims_no_refetch(tmp_path, make_cave_zip):
    dest = tmp_path / "cave"
    dest.mkdir()
    z = make_cave_zip(dest / "complete_ms_data.zip", shape=(2, 3))
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])   # truncated: no central directory
    before = z.read_bytes()
    with pytest.raises(DataFormatError) as e:
        download_cave(dest, url=z.as_uri(), progress=False)
    assert z.read_bytes() == before
    msg = str(e.value)
    assert "truncated or damaged zip archive" in msg and "left untouched" in msg
    assert "afresh" not in msg and "error page" not in msg


def test_a_zip_with_a_corrupt_member_given_by_the_user_is_kept(tmp_path, make_cave_zip):
    dest = tmp_path / "cave"
    dest.mkdir()
    z = make_cave_zip(dest / "complete_ms_data.zip", shape=(2, 3))
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[5]
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 10] ^= 0xFF
    z.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="corrupt member.*is left as it is") as e:
        download_cave(dest, url=z.as_uri(), progress=False)
    assert "afresh" not in str(e.value)
    assert z.read_bytes() == bytes(data)
