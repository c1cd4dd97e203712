"""The course module's materials (issue 27): session scripts (course/sessions.py), slides
(make slides), measured run times, and the Makefile / CI wiring of the course targets."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from course import sessions, slides

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("session", sessions.SESSIONS, ids=lambda s: f"session-{s['n']}")
def test_session_plan_fills_90_minutes_and_names_live_cells_that_exist(session):
    plan = session["plan"]
    assert plan[0][0] == 0 and plan[-1][1] == 90
    assert all(a < b for a, b, _ in plan) and all(p[1] == q[0] for p, q in zip(plan, plan[1:]))
    for ch in session["chapters"]:
        ids = session["live"][ch][1]
        cells = {c.get("id") for c in json.loads((ROOT / "book" / f"{ch}.ipynb").read_text())["cells"]}
        assert ids is None or set(ids) <= cells, (ch, set(ids) - cells)
    assert session["hand_in"].strip()


def test_four_sessions_and_chapter_11_has_a_place():
    assert [s["n"] for s in sessions.SESSIONS[:4]] == [1, 2, 3, 4]
    assert any("11_continuous" in s["chapters"] for s in sessions.SESSIONS)
    taught = {ch for s in sessions.SESSIONS for ch in s["chapters"]}
    assert {"01_hyperspectral", "02_inr", "03_encoding", "04_hypernetwork", "05_model"} <= taught


def test_every_taught_chapter_was_measured():
    data = sessions.timings()
    assert "2 cores" in data["machine"] and "INR_PROFILE=quick" in data["machine"]
    for s in sessions.SESSIONS:
        for ch in s["chapters"]:
            r = data["chapters"].get(ch)
            assert r and r["total_s"] > 0 and r["cells_s"], f"{ch} has no measurement: python -m course.measure"
        assert sessions.measured_seconds(s, data) is not None


def test_session_scripts_are_up_to_date():
    """course/sessions/*.md are generated; regenerate with `python -m course.sessions`."""
    for s in sessions.SESSIONS:
        path = ROOT / "course" / "sessions" / f"session-{s['n']}.md"
        assert path.read_text() == sessions.script(s), f"{path.name} is stale: python -m course.sessions"
        text = path.read_text()
        assert "measured" in text and "Colab CPU runtime: not measured" in text


def test_plain_markdown_removes_myst():
    text = ("See [](02_inr.ipynb) and [the model](05_model.ipynb#parameters) "
            "{cite}`zhang2022implicit,tancik2020fourier`; {glue:text}`ch5_gflop:.1f` GFLOP; "
            "{download}`starter <assignment/x.py>`.\n\n:::{dropdown} Solution\nsecret\n:::\n")
    out = slides.plain_markdown(text)
    assert not slides.RAW_MYST.search(out), out
    assert "chapter 2 (Implicit neural representations)" in out and "the model" in out
    assert "[zhang2022implicit, tancik2020fourier]" in out and "secret" not in out and "`starter`" in out


def test_make_slides_builds_one_deck_per_session_without_raw_myst(tmp_path):
    files = slides.build(tmp_path)
    assert [f.name for f in files] == [f"session-{s['n']}.slides.html" for s in sessions.SESSIONS]
    for f, s in zip(files, sessions.SESSIONS):
        html = f.read_text()
        assert "reveal" in html.lower() and html.count("<section") >= 6
        for raw in ("{glue", "{cite", ":::{", "{download}", ".ipynb)"):
            assert raw not in html, (f.name, raw)
        assert s["title"].replace("'", "&#39;") in html or s["title"] in html
        for ch in s["chapters"]:
            for qid, _, _ in slides.questions(ch):
                assert qid in html                      # the concept checks are on the slides ...
        assert "digest" not in html                     # ... without their digests


def test_makefile_and_ci_run_the_course_targets():
    make = (ROOT / "Makefile").read_text()
    for target in ("assignment", "teacher-kit", "slides"):
        assert re.search(rf"^{target}:", make, flags=re.M), target
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make book" in ci
    for target in ("assignment", "teacher-kit", "slides"):
        assert re.search(rf"make[^\n]*\b{target}\b", ci), target
    ignored = subprocess.run(["git", "check-ignore", "build/course/x.zip"], cwd=ROOT, capture_output=True, text=True)
    assert ignored.returncode == 0, "the course build folder must be git-ignored"
