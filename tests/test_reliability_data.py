"""Data-loss cases of issue 15 in the data helpers: a folder the library did not create is
never deleted, and a zip it did not download is never deleted."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inr_lib import build_model
from inr_lib.checkpoint import save_checkpoint
from inr_lib.cli import main
from inr_lib.data import DataFormatError, download_cave, ensure_synthetic_cave, list_cave_scenes


def cave_zip(path: Path, name="tiny") -> Path:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for b in range(1, 32):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 65536, (2, 3)).astype(np.uint16)).save(buf, format="PNG")
            zf.writestr(f"{name}_ms/{name}_ms/{name}_ms_{b:02d}.png", buf.getvalue())
    return path


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
    assert f"error: {thesis.parent} is a non-empty folder that does not hold a synthetic" in err


def test_synthetic_dataset_refuses_foreign_folders_and_fills_empty_or_own_ones(tmp_path):
    work = tmp_path / "work"
    (work / "cave_copy").mkdir(parents=True)
    (work / "cave_copy" / "x.png").write_bytes(b"data")
    with pytest.raises(FileExistsError, match=r"non-empty folder that does not hold a synthetic "
                                              r"dataset written by inr_lib; it is left untouched"):
        ensure_synthetic_cave(work, n_scenes=1, size=16)
    assert (work / "cave_copy" / "x.png").read_bytes() == b"data"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(ensure_synthetic_cave(empty, n_scenes=1, size=16)) == 1
    # a synthetic dataset it wrote with other arguments is regenerated
    assert len(ensure_synthetic_cave(empty, n_scenes=2, size=16)) == 2


# ------------------------------------------------------------------- (6) download_cave(file://)
def test_download_cave_from_the_users_own_zip_keeps_the_zip(tmp_path):
    dest = tmp_path / "cave"
    dest.mkdir()
    z = cave_zip(dest / "complete_ms_data.zip")
    before = z.read_bytes()
    download_cave(dest, url=z.as_uri(), progress=False)
    assert [s.name for s in list_cave_scenes(dest)] == ["tiny"]
    assert z.read_bytes() == before


def test_a_damaged_user_zip_is_kept_and_the_message_claims_no_refetch(tmp_path):
    dest = tmp_path / "cave"
    dest.mkdir()
    z = cave_zip(dest / "complete_ms_data.zip")
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])   # truncated: no central directory
    before = z.read_bytes()
    with pytest.raises(DataFormatError) as e:
        download_cave(dest, url=z.as_uri(), progress=False)
    assert z.read_bytes() == before
    msg = str(e.value)
    assert "truncated or damaged zip archive" in msg and "left untouched" in msg
    assert "afresh" not in msg and "error page" not in msg


def test_a_zip_with_a_corrupt_member_given_by_the_user_is_kept(tmp_path):
    dest = tmp_path / "cave"
    dest.mkdir()
    z = cave_zip(dest / "complete_ms_data.zip")
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[5]
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 10] ^= 0xFF
    z.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="corrupt member.*is left as it is") as e:
        download_cave(dest, url=z.as_uri(), progress=False)
    assert "afresh" not in str(e.value)
    assert z.read_bytes() == bytes(data)
