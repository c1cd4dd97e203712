"""The chapters in Google Colab: Markdown that Colab renders, numbers printed by the cells, the
setup's Drive and profile rules, and a simulated Colab run of chapters 0 and 7."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

from inr_lib import book

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "book").glob("*.ipynb"))
STUB = Path(__file__).resolve().parent / "colab_stub"
DEV_CAVE = REPO.parent / "shared" / "data" / "cave"

#: MyST-only syntax that Colab shows as raw text (roles, directives, empty cross-reference links)
MYST_ONLY = re.compile(r"\{glue|\{cite|\{numref|\{ref|\{doc|\{eq|\{term|\{download|:::\{|```\{|"
                       r"^\(\w[\w-]*\)=\s*$|\[\]\(", re.MULTILINE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_markdown_that_colab_shows_has_no_myst_only_syntax(path):
    nb = nbformat.read(path, as_version=4)
    found = [(i, m.group(0)) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
             for m in MYST_ONLY.finditer(_without_code(c.source))]
    assert not found, (f"{path.name}: Markdown cells use MyST-only syntax that Colab shows raw "
                       f"(cell, text): {found}; print numbers with book.say, cite as "
                       f"(Author, year), use <details> for solutions")


def _without_code(markdown: str) -> str:
    """``markdown`` without code blocks and code spans, which Colab shows as code (a text may
    name the syntax, as in ``{cite}``); a role's own backticks (``{cite}`key```) stay."""
    text = re.sub(r"^```(?!\{).*?^```", " ", markdown, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"(?<![}`])`[^`\n]+`", " ", text)


def test_code_that_names_the_syntax_is_not_flagged():
    assert not MYST_ONLY.search(_without_code("no raw MyST (`{glue}`, `{cite}`, `:::{...}`) left"))
    assert MYST_ONLY.search(_without_code("see {cite}`zhang2022implicit` and `code`"))


@pytest.mark.parametrize("text", ["a {glue:text}`x:.2f` dB", "see {cite}`zhang2022implicit`",
                                  ":::{dropdown} Solution\nx\n:::", "```{bibliography}\n```",
                                  "[](02_inr.ipynb)", "{numref}`fig`"])
def test_the_myst_check_catches(text):
    assert MYST_ONLY.search(text)


def test_solutions_are_html_details_and_each_chapter_lists_what_it_cites():
    for path in NOTEBOOKS:
        md = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                       if c.cell_type == "markdown")
        assert md.count("<details>") == md.count("</details>") == md.count("<summary>"), path.name
        cited = set(re.findall(r"([A-Z][\w-]+)(?: et al\.| and [A-Z][\w-]+)?, (\d{4})[a-z]?[;)]", md))
        if cited:
            refs = md[md.rindex("## References"):]
            for name, year in cited:
                assert re.search(rf"^\* .*{name}.*\({year}[a-z]?\)", refs, re.MULTILINE), (path.name, name, year)


# ----------------------------------------------------------------------------- book.say


def test_say_fills_a_sentence_with_glued_values(monkeypatch, capsys):
    monkeypatch.setattr(book.display, "GLUED", {})
    monkeypatch.setitem(sys.modules, "myst_nb", None)              # as in Colab: no myst-nb
    assert book.glue("psnr", 34.0812) == 34.0812 and book.display.GLUED == {"psnr": 34.0812}
    monkeypatch.setitem(sys.modules, "IPython.display", None)      # outside IPython: printed
    md = book.say("A PSNR of {psnr:.2f} dB on {scene}, {{not a field}}.", scene="`balloons`")
    assert md == "A PSNR of 34.08 dB on `balloons`, {not a field}."
    assert capsys.readouterr().out.strip().endswith(md)


def test_say_names_the_missing_value(monkeypatch):
    monkeypatch.setattr(book.display, "GLUED", {"a": 1})
    with pytest.raises(KeyError, match="no value named 'psnr'; run the cell that computes it"):
        book.say("{psnr:.2f}")


def test_say_displays_markdown_in_a_notebook(monkeypatch):
    shown = []
    import IPython.display as disp
    monkeypatch.setattr(disp, "display", lambda obj: shown.append(obj))
    book.say("**{x}**", x=3)
    assert isinstance(shown[0], disp.Markdown) and shown[0].data == "**3**"


# ----------------------------------------------------------------------------- setup in Colab


@pytest.fixture
def colab(monkeypatch, tmp_path):
    """A simulated Colab runtime: COLAB_RELEASE_TAG set, /content in a temporary folder, the
    stub google.colab importable, no data and no profile chosen in advance."""
    monkeypatch.setenv("COLAB_RELEASE_TAG", "simulated")
    monkeypatch.setenv("INR_COLAB_CONTENT", str(tmp_path / "content"))
    monkeypatch.setenv("INR_TEST_DRIVE_LOG", str(tmp_path / "mounts.log"))
    for var in ("INR_DATA", "INR_PROFILE", "INR_CAVE"):
        monkeypatch.setenv(var, "")                  # recorded, so the setup's own setdefault
        monkeypatch.delenv(var)                      # of INR_DATA is undone after the test
    monkeypatch.syspath_prepend(str(STUB))
    for name in [m for m in sys.modules if m == "google.colab" or m.startswith("google.colab.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(book, "_ROOTS", {})
    monkeypatch.chdir(REPO / "book")
    yield tmp_path
    for name in [m for m in sys.modules if m == "google.colab" or m.startswith("google.colab.")]:
        del sys.modules[name]                        # imported by the setup: not Colab afterwards


def _mounts(tmp) -> list:
    log = tmp / "mounts.log"
    return log.read_text().split() if log.is_file() else []


def test_drive_is_mounted_once_per_runtime(colab):
    home = book._colab_home(True)
    assert home == colab / "content" / "drive" / "MyDrive" / book.DRIVE_FOLDER and home.is_dir()
    assert book._colab_home(True) == home                     # a second chapter: no new prompt
    assert _mounts(colab) == [str(colab / "content" / "drive")]
    assert book.in_colab()


def test_without_drive_the_setup_says_where_the_data_go(colab, capsys):
    home = book._colab_home(False)
    out = capsys.readouterr().out
    assert home == colab / "content" / book.DRIVE_FOLDER and _mounts(colab) == []
    assert "USE_DRIVE is off" in out and "lost when the runtime ends" in out
    assert os.environ["INR_DATA"] == str(home / "data")


def test_download_message_gives_size_and_labelled_time(monkeypatch, tmp_path, capsys):
    from inr_lib import data
    monkeypatch.setenv("INR_DATA", str(tmp_path))
    monkeypatch.delenv("INR_CAVE", raising=False)
    calls = []
    monkeypatch.setattr(data, "download_cave", lambda dest: calls.append(dest))
    monkeypatch.setattr(data, "resolve_cave_root", lambda kind=None: data.DataRoot(tmp_path, "synthetic", "x")
                        if kind is None else data.DataRoot(tmp_path / "cave", "cave", "x"))
    book._find_data(download=True)
    out = capsys.readouterr().out
    assert calls == [tmp_path / "cave"]
    assert f"about {book.CAVE_DOWNLOAD_MB} MB" in out and "an estimate" in out


def test_auto_never_starts_a_long_full_profile(monkeypatch):
    monkeypatch.delenv("INR_PROFILE", raising=False)
    times = book.chapter_times()["chapters"]
    for chapter, entry in times.items():
        picked = book._pick_profile("auto", has_real=True, colab=True, cuda=True, chapter=chapter)
        long = entry["full"]["train_minutes"] > book.AUTO_LIMIT_MINUTES
        assert picked == ("quick" if long else "full"), chapter
    assert book._pick_profile("full", has_real=True, colab=True, cuda=True, chapter="10") == "full"


def test_every_chapter_has_a_quick_time_and_a_labelled_full_time():
    times = book.chapter_times()
    chapters = {p.name.split("_")[0] for p in NOTEBOOKS if p.name[:2].isdigit()}
    assert chapters <= set(times["chapters"]), chapters - set(times["chapters"])
    for key, entry in times["chapters"].items():
        assert entry["quick"]["seconds"] > 0 and entry["quick"]["passed"], key
        full = entry["full"]
        assert full["minutes"] >= full["train_minutes"] >= 0 and full["label"] and full["basis"], key
        assert "estimate" in full["label"] or "measured" in full["label"], key
    assert "nbval" in times["quick_protocol"]


# ----------------------------------------------------------------------------- simulated run


def _run(path: Path, env: dict, timeout: int = 1800) -> nbformat.NotebookNode:
    """Execute a chapter as Colab's "Run all" does, in a fresh kernel with ``env``."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def _text(nb) -> str:
    out = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            out.append(o.get("text", "") or "".join(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


@pytest.mark.skipif(not DEV_CAVE.is_dir(), reason=f"real CAVE development copy not at {DEV_CAVE} "
                    "(a simulated runtime has no network to download CAVE)")
def test_simulated_colab_run_of_chapters_0_and_7(tmp_path):
    """Chapters 0 and 7, one after the other on one simulated Colab runtime (no GPU), with
    ``PROFILE = "auto"`` as a reader leaves it: Drive is mounted once, the install cell is
    pinned, auto starts no long training, and each chapter prints its data and split."""
    content = tmp_path / "content"
    env = {**os.environ, "COLAB_RELEASE_TAG": "simulated", "INR_COLAB_CONTENT": str(content),
           "INR_TEST_DRIVE_LOG": str(tmp_path / "mounts.log"), "INR_CAVE": str(DEV_CAVE),
           "PYTHONPATH": os.pathsep.join([str(STUB), str(REPO)]), "OMP_NUM_THREADS": "1",
           "PYTHONHASHSEED": "0"}
    for var in ("INR_PROFILE", "INR_DATA"):
        env.pop(var, None)
    nb0 = _run(REPO / "book" / "00_quickstart.ipynb", env)
    nb7 = _run(REPO / "book" / "07_training.ipynb", env)

    assert _mounts(tmp_path) == [str(content / "drive")], "one Drive prompt for both chapters"
    home = content / "drive" / "MyDrive" / book.DRIVE_FOLDER
    for nb in (nb0, nb7):
        install = nb.cells[next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")]
        assert re.search(r'%pip install -q "inr_lib @ git\+https://\S+@([0-9a-f]{40}|v[\w.]+)"',
                         install.source), "the install names a commit or tag, not a branch"
        out = _text(nb)
        assert "profile: quick" in out and "time: quick profile" in out
        assert "data: real CAVE in" in out and "(Google Drive)" in out
    out7 = _text(nb7)
    assert re.search(r"real CAVE, split '(dev8|dev18)': \d+ training scenes, 2 test scenes", out7)
    runs = sorted(p.name for p in (home / "runs").iterdir())
    assert runs and all(name.endswith("-quick") for name in runs), runs   # no colab/paper run
