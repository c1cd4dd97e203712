"""The chapters' prose carries no number the build did not compute.

Two rules, checked on every markdown cell of every notebook (book/*.ipynb) and on the book's
markdown pages:

1. no stale phrasing that dates a number to an earlier run ("when the chapter was written",
   "at the time of writing", ...);
2. every decimal number written in prose (digits, a point, digits) comes from the run: the
   cell that computes it prints it (``book.say`` fills a sentence with the run's values, so the
   number is in a cell's output, not in a Markdown cell), or it is a constant of the method,
   listed below with its reason, or it is quoted in a paragraph that cites its source
   ("(Author et al., 2022)"). Math (``$...$``), code spans and code blocks are not prose and are
   not scanned. Integers are not scanned: counts such as 31 bands or 15,263 parameters are
   asserted by the cells that print them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("*.ipynb"))                  # chapters and appendix notebooks
PAGES = sorted(BOOK.glob("*.md"))

STALE = re.compile(r"when\s+(this|the)\s+(chapter|book|page)\s+was\s+(written|built)|at\s+the\s+time\s+"
                   r"of\s+writing|as\s+of\s+(this\s+)?writing|when\s+we\s+wrote|in\s+our\s+"
                   r"(earlier|last)\s+run", re.I)             # \s+: phrases broken across lines
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]*\d)")
#: a citation in the text: "(Zhang et al., 2022)", "(Ha et al., 2017; Shaham et al., 2021)",
#: "Zhang et al. (2022)", "(INR-HSISR authors, n.d.)"
CITED = re.compile(r"[A-Z][\w-]+(?: [\w-]+)?(?: et al\.| and [A-Z][\w-]+)?(?:, | \()(?:\d{4}[a-z]?\b|n\.d\.)")
#: a code cell that prints a sentence of the prose with this run's values
SAY = re.compile(r'book\.say\(r?"""(.*?)"""', re.S)

#: decimal constants of the method or the data, allowed in prose (value: reason)
ALLOWED = {
    "0.1": "LeakyReLU slope of the per-pixel MLP (ModelConfig.negative_slope)",
    "0.5": "a fixed fraction of a recipe (learning-rate factor, saturated pixels of the synthetic data)",
    "1.0": "the top of the [0, 1] value range",
    "0.01": "a threshold set by an exercise",
    "63.5": "the paper preset's parameters in millions (asserted 63,545,439 in chapters 4 and 5)",
    "0.7": "the small preset's parameters in millions (679,039, drawn in chapters 4 and 5)",
    "7.5": "the CUDA compute capability of the T4 GPU (a hardware fact)",
    "1.5": "the largest input value model.predict accepts (inr_lib.model.tiling's input check)",
}


def _prose(markdown: str) -> str:
    """The prose of a markdown text: code blocks, math, code spans and glue roles removed."""
    t = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    t = re.sub(r"\$\$.*?\$\$", " ", t, flags=re.S)
    t = re.sub(r"\{glue(:\w+)?\}`[^`]*`", " GLUED ", t)
    t = re.sub(r"`[^`]*`", " ", t)
    t = re.sub(r"\$[^$]*\$", " ", t)
    t = re.sub(r"\]\([^)]*\)", "]", t)                       # link targets
    return t


def _markdown_cells():
    for path in CHAPTERS:
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "markdown":
                yield f"{path.name} cell {i}", "".join(cell["source"])
    for path in PAGES:
        # a table that a script writes from a result file (tools/time_chapters.py) is computed
        yield path.name, re.sub(r"<!-- chapter-times: written by .*?<!-- /chapter-times -->", " ",
                                path.read_text(), flags=re.S)


def test_the_book_has_chapters():
    assert len(CHAPTERS) >= 12


def test_no_stale_phrasing():
    found = [(where, m.group(0)) for where, text in _markdown_cells() for m in STALE.finditer(text)]
    assert not found, f"prose dates numbers to an earlier run; glue them from this run: {found}"


def test_decimal_numbers_in_prose_are_computed():
    found = []
    for where, text in _markdown_cells():
        for paragraph in re.split(r"\n\s*\n", _prose(text)):
            if CITED.search(paragraph):                     # a quoted, cited source
                continue
            found += [(where, m.group(0)) for m in DECIMAL.finditer(paragraph)
                      if m.group(0) not in ALLOWED]
    assert not found, ("decimal numbers in prose that the build did not compute; print them "
                       f"from the cell that computes them (book.say) or assert them: {found}")


def test_a_cited_paragraph_may_quote_numbers():
    for text in ("The paper reports 34.2 dB (Zhang et al., 2022).", "Zhang et al. (2022) report 34.2 dB.",
                 "The log printed 25.3 s (INR-HSISR authors, n.d.)."):
        assert CITED.search(_prose(text)), text
    assert not CITED.search("It scored 26.9 dB in 2022.")


@pytest.mark.parametrize("bad", ["It scored 26.9 dB.", "When this chapter was written it was fine.",
                                 "measured when the chapter\nwas written"])
def test_the_rules_catch_stale_numbers(bad):
    prose = _prose(bad)
    assert DECIMAL.search(prose) or STALE.search(bad)


def test_glued_and_math_numbers_pass():
    text = "PSNR {glue:text}`psnr:.2f` dB, with $\\sigma = 1.5$ and `lr=3.0`."
    assert not [m.group(0) for m in DECIMAL.finditer(_prose(text)) if m.group(0) not in ALLOWED]


def test_every_value_a_sentence_names_is_glued_before_it():
    """A ``{name}`` in a ``book.say`` sentence is glued by an earlier code cell of the chapter,
    so running the chapter top to bottom (Colab's "Run all") fills in every sentence."""
    missing = []
    for path in CHAPTERS:
        glued: list = []
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            for text in SAY.findall(source):
                for name in re.findall(r"(?<!\{)\{(\w+)(?::[^{}]*)?\}(?!\})", text):
                    if not any(p.match(name) for p in glued):
                        missing.append((path.name, name))
            for g in re.findall(r"glue\(\s*f?[\"']([\w{}]+)[\"']", source):
                glued.append(re.compile("^" + re.sub(r"\\\{\w+\\\}", r"\\w+", re.escape(g)) + "$"))
    assert not missing, f"book.say names values no earlier cell glues: {missing}"


def test_glue_md_roles_use_a_known_format():
    """myst-nb 1.x: {glue:md}`name` or `name:FORMAT` with FORMAT commonmark, gfm or myst."""
    bad = [(where, m.group(0)) for where, text in _markdown_cells()
           for m in re.finditer(r"\{glue:md\}`\w+:(\w+)`", text)
           if m.group(1) not in ("commonmark", "gfm", "myst")]
    assert not bad, f"unknown glue:md format (the build warns): {bad}"
