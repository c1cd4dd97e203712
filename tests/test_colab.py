"""The chapters in Google Colab: Markdown that Colab renders, numbers printed by the cells, the
setup's Drive and profile rules, and a simulated Colab run of chapters 0 and 7."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

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


# ----------------------------------------------------------------------------- chapters 10 and 11: the ticks

#: chapter -> (its form cell, the cell defining its runs, the variable holding its variants)
FORMS = {"10": ("c10-train-form", "c004", "VARIANTS"), "11": ("c11-train-form", "3a9597b8", "RUNS_SPEC")}
FIELD = re.compile(r'^(TRAIN_\w+) = (True|False)  # @param \{type:"boolean"\}$', re.MULTILINE)


def _chapter(chapter: str) -> nbformat.NotebookNode:
    return nbformat.read(next(p for p in NOTEBOOKS if p.name.startswith(chapter + "_")), as_version=4)


def _cell(nb, cell_id: str) -> str:
    return next(c.source for c in nb.cells if c.get("id") == cell_id)


def _selection_cells(chapter: str, profile: str, auto: bool, form: str | None = None) -> dict:
    """Run the chapter's cell that defines its runs, then its form cell (``form``: another source),
    with ``profile`` forced and the data replaced by stand-ins: nothing is loaded or trained."""
    import numpy as np

    from inr_lib import data, spectral
    from inr_lib.book import zoo
    from inr_lib.train import TrainConfig

    dev18 = {**data.cave_split("dev18"), "split": "dev18"}
    scenes = lambda path, names, strict=True: [SimpleNamespace(name=n, shape=(512, 512)) for n in names]  # noqa: E731
    fake_data = SimpleNamespace(split_available=lambda *a, **k: dev18, list_cave_scenes=lambda p: [],
                                load_cave=scenes)
    bk = SimpleNamespace(chapter=chapter, profile=profile, auto=auto, root=REPO, split=lambda: dev18)
    ns = {"profile": profile, "bk": bk, "book": book, "data": fake_data, "TrainConfig": TrainConfig,
          "data_root": SimpleNamespace(path="cave"), "SOURCE": "real CAVE", "shown": str,
          "RUNS": Path("runs"), "ABL": zoo.ablation_table(), "parts": dev18,
          "EVEN": np.asarray(spectral.WAVELENGTHS[0::2]), "train_scenes": [None] * len(dev18["train"])}
    nb = _chapter(chapter)
    cell_id, runs_id, _ = FORMS[chapter]
    exec(_cell(nb, runs_id), ns)
    exec(form or _cell(nb, cell_id), ns)
    return ns


@pytest.mark.parametrize("chapter", sorted(FORMS))
def test_chapters_10_and_11_have_a_tick_per_variant(chapter):
    nb = _chapter(chapter)
    cell_id, _, variants = FORMS[chapter]
    fields = dict(FIELD.findall(_cell(nb, cell_id)))
    ns = _selection_cells(chapter, "quick", auto=False)
    from inr_lib.book import selection
    assert sorted(fields) == sorted(selection.field(v) for v in ns[variants]), "one form field per variant"
    if chapter == "10":
        assert set(fields.values()) == {"False"}, "chapter 10: nothing ticked by default (an hour a run)"


@pytest.mark.parametrize("chapter", sorted(FORMS))
def test_the_quick_profile_trains_every_run_whatever_the_ticks(chapter):
    nb = _chapter(chapter)
    all_ticked = FIELD.sub(r"\1 = True  # @param {type:\"boolean\"}", _cell(nb, FORMS[chapter][0]))
    for form in (None, all_ticked):
        ns = _selection_cells(chapter, "quick", auto=False, form=form)
        assert ns["PLAN"].present == ns["RUN_LIST"] and all(ns["PLAN"].trains(r) for r in ns["RUN_LIST"])


@pytest.mark.parametrize("chapter", sorted(FORMS))
def test_default_ticks_train_at_most_half_an_hour_in_the_full_profile(chapter, monkeypatch):
    from inr_lib.book.selection import NO_COUNTERPART, NOT_SHIPPED, SHIPPED, TRAINED

    full = book.chapter_times()["chapters"][chapter]["full"]
    for auto in (True, False):
        plan = _selection_cells(chapter, "full", auto=auto)["PLAN"]
        assert plan.minutes <= book.AUTO_LIMIT_MINUTES
        assert round(plan.minutes) == full["train_minutes"], "chapter_times.json: the default ticks"
        assert not plan.notes, "the default ticks are all followed"
        for run, choice in plan.choices.items():
            assert choice.source in (TRAINED, SHIPPED, NOT_SHIPPED, NO_COUNTERPART), run
            assert (choice.source == SHIPPED) == (plan.shipped(run) is not None)
    monkeypatch.delenv("INR_PROFILE", raising=False)
    assert book._pick_profile("auto", has_real=True, colab=True, cuda=True, chapter=chapter) == "full"


def test_chapter_10_full_profile_takes_every_variant_it_can_from_the_zoo():
    from inr_lib import pretrained

    plan = _selection_cells("10", "full", auto=True)["PLAN"]
    assert plan.minutes == 0
    assert plan.shipped(("reference", 0)) == "abl-reference" and plan.shipped(("reference", 1)) == "abl-reference-s1"
    for (variant, seed), choice in plan.choices.items():
        name = f"abl-{variant}" + (f"-s{seed}" if seed else "")
        assert choice.model in (name, None)
        if name in pretrained.available():
            assert plan.shipped((variant, seed)) == name


def test_a_tick_trains_the_variant_only_when_asked_for_the_full_profile():
    form = _cell(_chapter("10"), "c10-train-form").replace("TRAIN_SHARED_MLP = False", "TRAIN_SHARED_MLP = True")
    asked = _selection_cells("10", "full", auto=False, form=form)["PLAN"]
    run_minutes = book.chapter_times()["chapters"]["10"]["full"]["run_minutes"]
    assert asked.trains(("shared-mlp", 0)) and asked.minutes == run_minutes
    auto = _selection_cells("10", "full", auto=True, form=form)["PLAN"]      # an hour > auto's limit
    assert not auto.trains(("shared-mlp", 0)) and auto.shipped(("shared-mlp", 0)) == "abl-shared-mlp"
    assert auto.notes and 'PROFILE = "full"' in auto.notes[0]


def test_the_setup_states_the_full_profile_time_of_the_default_ticks():
    for chapter in FORMS:
        line = book._times_line(chapter)
        assert "quick profile" in line and "with the default ticks" in line and "each run ticked" in line
    assert "ticks" not in book._times_line("07")
