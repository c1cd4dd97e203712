"""inr_lib.book: the chapters' setup, outside and (simulated) inside Google Colab."""
from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from inr_lib import book
from inr_lib.data import synthetic

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_real_cave(monkeypatch, tmp_path):
    """A data folder without real CAVE (and no development copy): the synthetic data is used."""
    monkeypatch.setenv("INR_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("INR_PROFILE", raising=False)
    monkeypatch.delenv("INR_CAVE", raising=False)            # no development copy either
    monkeypatch.setattr(book, "_ROOTS", {})
    monkeypatch.chdir(REPO / "book")
    return tmp_path


def test_importing_book_imports_nothing_heavy():
    code = ("import sys, inr_lib.book; "
            "print(any(m in sys.modules for m in ('IPython', 'inr_lib.train.loop', 'matplotlib', "
            "'colour', 'skimage')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_setup_outside_colab(no_real_cave, capsys):
    bk = book.setup("07", "quick", gpu=True)
    out = capsys.readouterr().out
    assert bk.profile == "quick" and bk.device == torch.device("cpu" if not torch.cuda.is_available() else "cuda")
    assert bk.data.kind == "synthetic" and bk.source == "synthetic CAVE-layout data" and not bk.real
    assert bk.root == REPO and bk.runs == REPO / "runs" / "book"
    assert bk.run_dir("ch07") == REPO / "runs" / "book" / "ch07-quick" == bk.run_dir("ch07")
    assert "profile: quick" in out and "runs: runs/book" in out
    assert "data: synthetic CAVE-layout data in $INR_DATA/synthetic_cave" in out
    if not torch.cuda.is_available():
        assert "chapter 07 trains models and asks for a GPU" in out
    assert str(no_real_cave) not in out and str(REPO) not in out     # no absolute paths printed
    assert bk.env()["INR_PROFILE"] == "quick"


def test_profile_to_training_preset(no_real_cave):
    bk = book.setup("08", "quick", verbose=False)
    assert bk.config == "quick"
    bk.profile = "full"
    assert bk.config == "paper"
    bk.colab = True
    assert bk.config == "colab"
    with pytest.raises(ValueError, match="INR_PROFILE must be one of"):
        book.setup("08", "fast", verbose=False)


def _fake_colab(monkeypatch, tmp_path, accept: bool):
    """Inject a fake google.colab module whose drive.mount creates MyDrive (or refuses)."""
    mounted = []

    def mount(where):
        if not accept:
            raise RuntimeError("mount declined")
        mounted.append(where)
        (Path(where) / "MyDrive").mkdir(parents=True, exist_ok=True)

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mount)
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setenv("INR_COLAB_CONTENT", str(tmp_path))       # Colab's /content
    monkeypatch.delenv("INR_DATA", raising=False)
    return mounted


def test_colab_keeps_data_and_runs_on_drive_and_downloads_cave_once(no_real_cave, monkeypatch, capsys):
    tmp = no_real_cave
    mounted = _fake_colab(monkeypatch, tmp, accept=True)
    calls = []

    def fake_download(dest, **kw):          # writes a tiny real-layout CAVE once
        calls.append(Path(dest))
        synthetic.make_synthetic_cave(dest, n_scenes=2, size=32)
        (Path(dest) / synthetic._MANIFEST).unlink()
        return Path(dest)

    monkeypatch.setattr("inr_lib.data.download_cave", fake_download)
    drive_home = tmp / "drive" / "MyDrive" / book.DRIVE_FOLDER
    bk7 = book.setup("07", "quick", gpu=True)
    out = capsys.readouterr().out
    assert mounted == [str(tmp / "drive")] and bk7.colab
    assert bk7.runs == drive_home / "runs" and bk7.data.kind == "cave" and bk7.real
    assert bk7.data.path == drive_home / "data" / "cave" and calls == [drive_home / "data" / "cave"]
    assert "runs: $DRIVE/runs (Google Drive)" in out and str(tmp) not in out
    bk8 = book.setup("08", "quick")        # the next chapter: same folders, no second download
    assert calls == [drive_home / "data" / "cave"]
    assert mounted == [str(tmp / "drive")], "Drive already mounted: no second prompt"
    assert bk8.run_dir("ch07") == bk7.run_dir("ch07") == drive_home / "runs" / "ch07-quick"


def test_colab_without_drive_falls_back_to_content(no_real_cave, monkeypatch, capsys):
    _fake_colab(monkeypatch, no_real_cave, accept=False)
    bk = book.setup("03", "quick")
    out = capsys.readouterr().out
    assert "Google Drive not mounted" in out and "lost when the runtime ends" in out
    home = no_real_cave / book.DRIVE_FOLDER
    assert bk.data.kind == "synthetic" and bk.runs == home / "runs"
    assert bk.data.path == home / "data" / "synthetic_cave"


def test_colab_auto_profile_is_full_on_a_gpu(monkeypatch):
    monkeypatch.delenv("INR_PROFILE", raising=False)
    assert book._pick_profile("auto", has_real=False, colab=True, cuda=True) == "full"
    assert book._pick_profile("auto", has_real=False, colab=True, cuda=False) == "quick"
    assert book._pick_profile("auto", has_real=False, colab=False, cuda=True) == "quick"
    monkeypatch.setenv("INR_PROFILE", "quick")
    assert book._pick_profile("auto", has_real=True, colab=True, cuda=True) == "quick"


def test_shown_never_prints_absolute_paths(monkeypatch, tmp_path):
    monkeypatch.setattr(book, "_ROOTS", {"repo": REPO, "data": tmp_path / "d"})
    assert book.shown(REPO / "runs" / "book" / "x") == "runs/book/x"
    assert book.shown(tmp_path / "d" / "cave") == "$INR_DATA/cave"
    assert book.shown(REPO.parent / "shared" / "data") == "../shared/data"
    assert not book.shown("/a/b/c/d/e/f").startswith("/")
    text = f"reading {tmp_path / 'd' / 'cave'} into {REPO / 'runs'}"
    assert book.shorten(text) == "reading $INR_DATA/cave into runs"
    book.alias(tmp_path / "t", "$TMP")
    assert book.shorten(f"no file {tmp_path / 't' / 'x.mat'}") == "no file $TMP/x.mat"
    assert book.shown(tmp_path / "t") == "$TMP"


def test_printed_output_shows_short_paths(no_real_cave, monkeypatch):
    import io

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    bk = book.setup("10", "quick", shorten_output=True)
    book.setup("10", "quick", shorten_output=True, verbose=False)      # wraps only once
    assert isinstance(sys.stdout, book._ShortPaths) and sys.stdout._stream is out
    print("resuming", bk.runs / "ablations" / "reference", "after epoch 12")
    print(f"data in {bk.data.path}", file=sys.stderr)
    assert "resuming runs/book/ablations/reference after epoch 12" in out.getvalue()
    assert err.getvalue() == "data in $INR_DATA/synthetic_cave\n"
    assert str(no_real_cave) not in out.getvalue() and str(REPO) not in out.getvalue()


def test_table_html(monkeypatch):
    html = book.table(["a", "PSNR &uarr;"], [(1, 2.5)], "cap")
    assert html.count("<tr>") == 2 and "<td>2.5</td>" in html and "<caption>cap</caption>" in html
    assert "class='inr-table'" in html


def test_sha256_and_scene_folder(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert book.sha256(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    synthetic.make_synthetic_cave(tmp_path / "src", n_scenes=3, size=32)
    from inr_lib.data import list_cave_scenes
    names = [d.name for d in list_cave_scenes(tmp_path / "src")][:2]
    dest = book.scene_folder(tmp_path / "sub", tmp_path / "src", names)
    assert sorted(d.name for d in list_cave_scenes(dest)) == sorted(names)
    with pytest.raises(FileNotFoundError, match="not in"):
        book.scene_folder(tmp_path / "sub2", tmp_path / "src", ["nope"])


def test_evaluations_reuse_results_of_the_same_checkpoint(tmp_path, monkeypatch):
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"weights v1")
    out = tmp_path / "eval.json"
    ran = []

    def fake_run(cmd, **kw):                # stands for `python -m inr_lib evaluate`
        ran.append(cmd)
        out.write_text(json.dumps({"protocol": {"checkpoint_sha256": book.sha256(ckpt)}}))
        return subprocess.CompletedProcess(cmd, 0, "PSNR 30", "")

    monkeypatch.setattr(book.runs.subprocess, "run", fake_run)
    ev = book.Evaluations(["--data", "synthetic"], parallel=2)
    ev.submit(ckpt, out, "--mode", "tiled")
    assert ev.wait() == (1, 0)
    assert ran[0][1:4] == ["-m", "inr_lib", "evaluate"] and "--mode" in ran[0]
    ev.submit(ckpt, out)
    assert ev.wait() == (0, 1)              # same checkpoint: the result file is reused
    ckpt.write_bytes(b"weights v2")
    ev.submit(ckpt, out)
    assert ev.wait() == (1, 0)              # new weights: evaluated again


def test_failed_command_raises_one_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="python -m inr_lib evaluate .* failed"):
        book.run_cli("evaluate", "--checkpoint", tmp_path / "missing.pt", "--data", "synthetic",
                     json_out=tmp_path / "r.json", cwd=REPO)


def test_run_cli_reuses_a_result_written_by_the_same_command(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r.json"
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        out.write_text('{"ok": 1}')
        return subprocess.CompletedProcess(cmd, 0, "done", "")

    monkeypatch.setattr(book.runs.subprocess, "run", fake_run)
    assert book.run_cli("baseline", "ridge", json_out=out) == {"ok": 1}
    assert book.run_cli("baseline", "ridge", json_out=out) == {"ok": 1}
    assert len(calls) == 1 and "reusing" in capsys.readouterr().out
    book.run_cli("baseline", "physics", json_out=out)
    assert len(calls) == 2


def test_repository_files_are_kept_locally_or_fetched_from_the_install_source(tmp_path, monkeypatch):
    import importlib.metadata
    import json as _json
    import urllib.request

    local = tmp_path / "assignment"
    local.mkdir()
    (local / "a.py").write_text("x = 1\n")
    assert book.repository_files(local, "book/assignment", ["a.py"]) == local   # nothing fetched

    class Dist:   # what pip records for `pip install "inr_lib @ git+URL@main"`
        def read_text(self, name):
            assert name == "direct_url.json"
            return _json.dumps({"url": "https://github.com/someone/the-book.git",
                                "vcs_info": {"vcs": "git", "commit_id": "abc123", "requested_revision": "main"}})

    fetched = []
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Dist())
    monkeypatch.setattr(urllib.request, "urlretrieve",
                        lambda url, path: (fetched.append(url), Path(path).write_text("y = 2\n")))
    colab = tmp_path / "colab"
    book.repository_files(colab, "book/assignment", ["a.py", "b.py"])
    assert fetched == ["https://raw.githubusercontent.com/someone/the-book/abc123/book/assignment/a.py",
                       "https://raw.githubusercontent.com/someone/the-book/abc123/book/assignment/b.py"]
    assert (colab / "b.py").read_text() == "y = 2\n"

    class Wheel:  # an install from a wheel or a checkout records no repository
        def read_text(self, name):
            return None

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Wheel())
    with pytest.raises(FileNotFoundError, match="not installed from a GitHub repository"):
        book.repository_files(tmp_path / "elsewhere", "book/assignment", ["a.py"])
