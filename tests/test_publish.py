"""Publish mode: the build manifest (inr_lib.book.manifest), its check (tools/check_publish.py)
and the publish workflow's data step (tools/fetch_data.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from inr_lib import book
from inr_lib.book import manifest

REPO = Path(__file__).resolve().parents[1]
#: the development copy of real CAVE scenes (not part of the repository)
SHARED_CAVE = REPO.parent / "shared" / "data" / "cave"


def _entry(chapter: str, real: bool) -> dict:
    return {"chapter": chapter, "real": real, "data": "cave" if real else "synthetic",
            "found": "from INR_DATA", "path": "$INR_DATA/cave", "scenes": ["balloons"],
            "split": "dev8", "train": [], "test": [], "profile": "quick"}


def _write_manifest(folder: Path, entries: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for e in entries:
        with open(folder / f"{e['chapter']}.jsonl", "a") as f:
            f.write(json.dumps(e) + "\n")
    return folder


def test_check_accepts_real_and_rejects_synthetic(tmp_path):
    real = _write_manifest(tmp_path / "real", [_entry("00", True), _entry("06", True)])
    assert manifest.check(real, ["00", "06"]) is None
    synth = _write_manifest(tmp_path / "synth", [_entry("00", True), _entry("06", False)])
    line = manifest.check(synth, ["00", "06", "09"])
    assert line is not None and "\n" not in line
    assert "chapters 06 fell back to synthetic data" in line and "chapters 09 recorded no data" in line
    assert "00" not in line.split("synthetic data")[0].replace("not publishable", "")


def test_a_later_run_of_a_chapter_counts(tmp_path):
    """A chapter executed twice (e.g. rebuilt after data arrived): its last entry decides."""
    folder = _write_manifest(tmp_path / "m", [_entry("00", False), _entry("00", True)])
    assert manifest.check(folder, ["00"]) is None


def test_book_chapters_are_the_notebooks_that_call_setup():
    chapters = manifest.book_chapters(REPO / "book")
    assert {"00", "06", "09", "11"} <= set(chapters) and "A" in chapters


def test_check_publish_tool_fails_in_one_line(tmp_path):
    tool = [sys.executable, str(REPO / "tools" / "check_publish.py")]
    chapters = manifest.book_chapters(REPO / "book")
    synth = _write_manifest(tmp_path / "s", [_entry(c, c != "06") for c in chapters])
    r = subprocess.run([*tool, str(synth)], capture_output=True, text=True, check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "chapters 06 fell back to synthetic data" in r.stderr
    real = _write_manifest(tmp_path / "r", [_entry(c, True) for c in chapters])
    r = subprocess.run([*tool, str(real)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr


def test_setup_records_the_data_only_when_asked(tmp_path, monkeypatch, write_cave_scene):
    write_cave_scene(tmp_path / "real" / "toy_ms" / "toy_ms", name="toy")
    monkeypatch.setenv("INR_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("INR_CAVE", str(tmp_path / "real"))
    monkeypatch.delenv(manifest.ENV, raising=False)
    book.setup("06", "quick", verbose=False, shorten_output=False)
    assert not (tmp_path / "m").exists()
    monkeypatch.setenv(manifest.ENV, str(tmp_path / "m"))
    book.setup("06", "quick", verbose=False, shorten_output=False)
    e = manifest.read(tmp_path / "m")["06"]
    assert e["real"] and e["data"] == "cave" and e["scenes"] == ["toy"]
    assert e["found"] == "from INR_CAVE" and e["profile"] == "quick"


def test_workflow_fetches_caches_and_publishes():
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())
    steps = wf["jobs"]["build"]["steps"]
    runs = [s.get("run", "") for s in steps]
    fetch = next(i for i, r in enumerate(runs) if "tools/fetch_data.py" in r)
    publish = next(i for i, r in enumerate(runs) if "make book-publish" in r)
    cache = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("actions/cache"))
    assert cache < fetch < publish
    assert steps[cache]["with"]["path"].endswith("inr-data/cave")        # = $INR_DATA/cave
    assert "CAVE_DATA_VERSION" in steps[cache]["with"]["key"]
    assert any("INR_DATA=$RUNNER_TEMP/inr-data" in r for r in runs[:fetch])


def test_data_step_puts_real_scenes_where_the_book_looks(tmp_path):
    """The workflow's data step, offline: a file:// zip of 2 real scenes lands in
    $INR_DATA/cave, and the book finds real CAVE there with no INR_CAVE and no ../shared."""
    if not SHARED_CAVE.is_dir():
        pytest.skip(f"real CAVE scenes not found at {SHARED_CAVE} (development data)")
    names = ["balloons", "fake_and_real_peppers"]
    archive = tmp_path / "complete_ms_data.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # the official layout: NAME_ms/NAME_ms/files
        for name in names:
            for f in sorted((SHARED_CAVE / f"{name}_ms" / f"{name}_ms").iterdir()):
                zf.write(f, f"{name}_ms/{name}_ms/{f.name}")
    env = {k: v for k, v in os.environ.items() if k not in ("INR_CAVE", manifest.ENV)}
    env.update(INR_DATA=str(tmp_path / "data"), INR_CAVE_URL=archive.as_uri())
    r = subprocess.run([sys.executable, str(REPO / "tools" / "fetch_data.py")], env=env,
                       capture_output=True, text=True, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr
    assert "2 scenes" in r.stdout and archive.exists()       # the given zip is left alone
    probe = ("from inr_lib.data import resolve_cave_root, list_cave_scenes;"
             "r = resolve_cave_root(); print(r.kind, r.path, [s.name for s in list_cave_scenes(r.path)])")
    r = subprocess.run([sys.executable, "-c", probe], env=env | {"PYTHONPATH": str(REPO)},
                       capture_output=True, text=True, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:2] == ["cave", str(tmp_path / "data" / "cave")]
    assert "['balloons', 'fake_and_real_peppers']" in r.stdout


def test_cards_print_a_runnable_command_without_development_paths(capsys):
    """Cards keep their recorded provenance; what is printed names $INR_DATA/cave, the split
    and the scenes, never the folders of the machine that trained the model."""
    from inr_lib import pretrained
    from inr_lib.cli import main

    for name in pretrained.available():
        recorded = pretrained.card(name)["command"]
        shown = pretrained.runnable_command(recorded)
        assert "cave:$INR_DATA/cave" in shown and "../" not in shown and "#" not in shown
        assert shown.split("--data")[0] == recorded.split("--data")[0]   # the rest is as recorded
    assert "../shared" in pretrained.card("small")["data"]["folders"]   # provenance untouched
    assert main(["models", "--card", "small"]) == 0
    out = capsys.readouterr().out
    assert "../shared" not in out and "--data cave:$INR_DATA/cave --split dev18" in out
    assert "split dev18: 16 training scenes, test scenes chart_and_stuffed_toy, fake_and_real_peppers" in out
    assert pretrained.wall_time("small") in pretrained.label("small")
