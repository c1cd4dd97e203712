"""Concept checks of chapters 1-5 (inr_lib.book.quiz): 3-5 questions per concept chapter, each
answerable (one right choice, numeric answers equal to what the library computes), no answer
or explanation in the notebook's source, and the same verdict from the Python check, the
ipywidgets form and the static page's script (run in node when it is installed)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import torch

from inr_lib.book import quiz

ROOT = Path(__file__).resolve().parents[1]
CONCEPT_CHAPTERS = ["01_hyperspectral", "02_inr", "03_encoding", "04_hypernetwork", "05_model"]


def _quiz_cells(chapter: str) -> list[str]:
    nb = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and "quiz.ask(" in c.source]


def _ask_all() -> dict[str, quiz.Question]:
    quiz._REGISTRY.clear()
    for ch in CONCEPT_CHAPTERS:
        for src in _quiz_cells(ch):
            exec(compile(src, ch, "exec"), {"__name__": "quiz_cell"})     # prints the questions
    return quiz.registered()


@pytest.fixture(scope="module")
def questions():
    return _ask_all()


def _numeric_answers() -> dict:
    """The numeric answers, derived from the library (not an answer key)."""
    from inr_lib.model import INRHSISR, ModelConfig
    from inr_lib.model.pixelwise import mlp_param_count
    from inr_lib.spectral import WAVELENGTHS, get_response

    R = torch.as_tensor(get_response(), dtype=torch.float64)
    R = R if R.shape[0] == len(WAVELENGTHS) else R.T                     # (31, 3)
    cfg = ModelConfig()
    with torch.device("meta"):
        head = sum(p.numel() for p in INRHSISR(ModelConfig()).hypernet.head.parameters())
    return {
        "ch1-nullspace": len(WAVELENGTHS) - int(torch.linalg.matrix_rank(R)),
        "ch1-band": float(WAVELENGTHS[10]),
        "ch2-fourier": 2 * 16,
        "ch3-channels": cfg.mlp_widths[0] - cfg.in_channels,
        "ch3-inputs": cfg.mlp_widths[0],
        "ch4-params": mlp_param_count(cfg.mlp_widths),
        "ch4-tiles": (64 // cfg.tile) ** 2,
        "ch5-copy": cfg.tile ** 2,
        "ch5-head": head,
    }


@pytest.mark.parametrize("chapter", CONCEPT_CHAPTERS)
def test_every_concept_chapter_asks_three_to_five_questions(chapter):
    cells = _quiz_cells(chapter)
    assert len(cells) == 1, "one concept-check cell per chapter"
    n = len(re.findall(r"\bquiz\.ask\(", cells[0]))
    assert 3 <= n <= 5, f"{chapter}: {n} questions"
    assert "from inr_lib.book import quiz" in cells[0]


def test_question_ids_are_unique_and_every_question_has_one_right_answer(questions):
    total = sum(len(re.findall(r"\bquiz\.ask\(", s)) for ch in CONCEPT_CHAPTERS for s in _quiz_cells(ch))
    assert len(questions) == total, "two questions share an id"
    numeric = _numeric_answers()
    for qid, q in questions.items():
        if q.choices:
            right = [i for i in range(len(q.choices)) if quiz.is_correct(qid, i)]
            assert len(right) == 1, f"{qid}: {len(right)} right choices"
            assert quiz.is_correct(qid, chr(ord("a") + right[0])) and quiz.is_correct(qid, q.choices[right[0]])
        else:
            assert qid in numeric, f"{qid}: add how the library computes its answer to this test"
            assert quiz.is_correct(qid, numeric[qid]), f"{qid}: the stored answer is not the library's {numeric[qid]}"
            assert not quiz.is_correct(qid, numeric[qid] + 1) and not quiz.is_correct(qid, numeric[qid] - 1)
    positions = [next(i for i in range(len(q.choices)) if quiz.is_correct(qid, i))
                 for qid, q in questions.items() if q.choices]
    assert len(set(positions)) >= 3, "the right choice should not always be in the same place"


def test_the_source_shows_neither_answers_nor_explanations(questions):
    numeric = _numeric_answers()
    for ch in CONCEPT_CHAPTERS:
        src = "\n".join(_quiz_cells(ch))
        for qid, q in questions.items():
            if f"'{qid}'" not in src:
                continue
            if not q.choices:
                value = numeric[qid]
                for shown in {f"{value}", f"{value:,}", f"{int(value)}"}:
                    stored = src.split(qid, 1)[1].split("quiz.ask(")[0].split("digest=")[1]
                    assert not re.search(rf"(?<![\w.]){re.escape(shown)}(?![\w.])", stored), \
                        f"{ch}: {qid}'s answer {shown} appears in its stored fields"
            answer = numeric.get(qid, next((i for i in range(len(q.choices or [])) if quiz.is_correct(qid, i)), None))
            explanation = quiz._open(q, quiz._canonical(q, answer))
            assert explanation and explanation not in src, f"{qid}: explanation in plain text"
            assert explanation not in quiz.html_form(q) and explanation not in quiz.plain(q)
        assert "quiz.check(" not in src, f"{ch}: the cell must not check (and so show) an answer"


def test_check_prints_the_explanation_only_when_right(questions, capsys):
    qid, q = next((k, v) for k, v in questions.items() if v.choices)
    right = next(i for i in range(len(q.choices)) if quiz.is_correct(qid, i))
    wrong = (right + 1) % len(q.choices)
    capsys.readouterr()
    assert quiz.check(qid, wrong) is False
    assert "not yet" in capsys.readouterr().out
    assert quiz.check(qid, right) is True
    out = capsys.readouterr().out
    assert "correct" in out and quiz._open(q, f"choice:{right}") in out
    assert quiz.check(qid, "z") is False                     # not a choice: told, not crashed
    assert qid in quiz.results()


def test_widget_form_checks_the_answer(questions, capsys):
    pytest.importorskip("ipywidgets")
    qid, q = "ch4-params", questions["ch4-params"]
    box = quiz.widget(q)
    entry, _, _, on_click = box._quiz_parts
    entry.value = "15262"
    on_click(None)
    entry.value = str(_numeric_answers()[qid])
    on_click(None)
    out = capsys.readouterr().out
    assert "not yet" in out and "correct." in out


_NODE_HARNESS = r"""
const html = require("fs").readFileSync(0, "utf8");
const script = html.split("<script>")[1].split("</script>")[0];
const answer = process.argv[2];
const isChoice = html.includes('type="radio"');
let handler = null;
const out = { textContent: "", style: {} };
const root = {
  dataset: {},
  querySelector(sel) {
    if (sel === "button") return { addEventListener: (ev, fn) => { handler = fn; } };
    if (sel === ".quiz-out") return out;
    if (sel === "input[type=radio]:checked") return { value: answer };
    if (sel === "input[type=text]") return { value: answer };
    return null;
  },
};
globalThis.document = { getElementById: () => root };
eval(script);
handler().then(() => console.log(JSON.stringify(out.textContent)));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_static_pages_script_agrees_with_python(questions, tmp_path):
    """The book's HTML form (what a reader of the web book uses) run in node: the same
    verdicts and the same decrypted explanation as quiz.check."""
    harness = tmp_path / "harness.js"
    harness.write_text(_NODE_HARNESS)
    numeric = _numeric_answers()
    cases = []
    for qid in ("ch1-nullspace", "ch5-head", "ch3-tileform"):
        q = questions[qid]
        if q.choices:
            right = next(i for i in range(len(q.choices)) if quiz.is_correct(qid, i))
            cases += [(q, str(right), True), (q, str((right + 1) % len(q.choices)), False)]
        else:
            cases += [(q, f"{numeric[qid]:,}", True), (q, str(numeric[qid] + 3), False)]
    for q, answer, ok in cases:
        run = subprocess.run(["node", str(harness), answer], input=quiz.html_form(q), capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        text = json.loads(run.stdout.strip().splitlines()[-1])
        if ok:
            canonical = quiz._canonical(q, int(answer) if q.choices else answer)
            assert text == "Correct. " + quiz._open(q, canonical), (q.qid, text)
        else:
            assert text.startswith("Not yet"), (q.qid, answer, text)
