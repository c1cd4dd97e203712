"""One reveal.js deck per session (``make slides``), through nbconvert's slides exporter.

Each deck is assembled from the session's definition (``course/sessions.py``) and the book's
own cells: the chapters' learning objectives (their first cell, with MyST roles and
directives turned into plain Markdown, since reveal.js does not know MyST), the key points,
the concept-check questions of the chapters (question and choices only: the answers are
stored as digests), the cells that run live with their measured times, and what students
hand in. The build needs no network: the decks load reveal.js from ``--reveal-prefix`` (a CDN
by default, or a local copy for a classroom without internet: see chapter 12).
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat

from course import sessions

ROOT = Path(__file__).resolve().parents[1]
#: MyST that must not survive into a deck
RAW_MYST = re.compile(r"\{glue|\{cite|\{download\}|\{doc\}|\{ref\}|\{numref\}|:::\{|```\{"
                      r"|\]\([^)]*\.ipynb\)|\{bibliography\}")


def plain_markdown(text: str) -> str:
    """MyST -> Markdown that reveal.js shows as intended."""
    titles = {}

    def chapter(m):
        target = m.group(2).split("#")[0]
        stem = Path(target).stem
        if stem not in titles:
            path = ROOT / "book" / f"{stem}.ipynb"
            titles[stem] = sessions.title_of(stem) if path.is_file() else stem
        label = m.group(1) or f"chapter {stem.split('_')[0].lstrip('0') or '0'} ({titles[stem]})"
        return label

    text = re.sub(r"\[([^\]]*)\]\(([^)]*\.ipynb(?:#[^)]*)?)\)", chapter, text)
    text = re.sub(r"\{cite(?::\w+)?\}`([^`]*)`", lambda m: "[" + m.group(1).replace(",", ", ") + "]", text)
    text = re.sub(r"\{glue(?::\w+)?\}`[^`]*`", "(a number computed when the book is built)", text)
    text = re.sub(r"\{download\}`([^<`]*?)\s*<[^>]*>`", r"`\1`", text)
    text = re.sub(r"\{(?:doc|ref|numref)\}`([^<`]*?)(?:\s*<[^>]*>)?`", r"\1", text)
    text = re.sub(r"^:::\{[^}]*\}[^\n]*\n.*?^:::\s*$", "", text, flags=re.M | re.S)     # dropdowns, notes
    text = re.sub(r"^```\{[^}]*\}[^\n]*\n.*?^```\s*$", "", text, flags=re.M | re.S)
    return text.strip()


def objectives(chapter: str) -> str:
    first = "".join(json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text())["cells"][0]["source"])
    m = re.search(r"\*\*Learning objectives\.\*\*(.*?)(?:\n\n|\Z)", first, flags=re.S)
    return plain_markdown(m.group(1).strip()) if m else ""


def questions(chapter: str) -> list[tuple[str, str, list[str] | None]]:
    """(id, text, choices) of the chapter's concept checks, read from its quiz cell (no answers there)."""
    nb = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text())
    found = []
    for c in nb["cells"]:
        src = "".join(c["source"]) if c["cell_type"] == "code" else ""
        if "quiz.ask(" not in src:
            continue
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "ask":
                qid, text = (ast.literal_eval(a) for a in node.args[:2])
                kw = {k.arg: k.value for k in node.keywords}
                choices = ast.literal_eval(kw["choices"]) if "choices" in kw else None
                found.append((qid, text, choices))
    return found


def deck(session: dict, data: dict | None = None) -> nbformat.NotebookNode:
    data = data or sessions.timings()
    cells = []

    def slide(md: str, kind: str = "slide"):
        cell = nbformat.v4.new_markdown_cell(md.strip())
        cell.metadata["slideshow"] = {"slide_type": kind}
        cells.append(cell)

    slide(f"# Session {session['n']}\n\n## {session['title']}\n\n{session['when']}, 90 minutes\n\n"
          f"Implicit Neural Representations for Hyperspectral Imaging")
    slide("## Plan\n\n| minutes | |\n|---|---|\n" + "\n".join(f"| {a}-{b} | {t} |" for a, b, t in session["plan"]))
    for ch in session["chapters"]:
        obj = objectives(ch)
        title = f"## {sessions.title_of(ch)}"
        slide(f"{title}\n\nAfter this part you can\n\n{obj}" if obj else title)
    slide("## Key points\n\n" + "\n".join(f"* {plain_markdown(p)}" for p in session["points"]))
    live = []
    for ch in session["chapters"]:
        r = data["chapters"].get(ch)
        t = sessions.live_seconds(session, ch, data)
        live.append(f"* **{sessions.title_of(ch)}**: {plain_markdown(session['live'][ch][0])} "
                    f"({sessions._fmt(t) + ' measured on a 2-core CPU' if r else 'not measured'})")
    slide("## Live in this session\n\n" + "\n".join(live)
          + "\n\nOpen the chapters in Colab (rocket icon) or on your laptop.")
    for ch in session["chapters"]:
        for qid, text, choices in questions(ch):
            body = f"### Concept check `{qid}`\n\n{text}"
            if choices:
                body += "\n\n" + "\n".join(f"{chr(ord('a') + i)}. {c}" for i, c in enumerate(choices))
            body += f"\n\nAnswer in the chapter's form, or `quiz.check(\"{qid}\", answer)`."
            slide(body)
    slide(f"## Hand in\n\n{plain_markdown(session['hand_in'])}")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    nb.cells = cells
    for i, c in enumerate(nb.cells):
        c["id"] = f"s{i:03d}"
    return nb


def build(out: Path, reveal_prefix: str | None = None) -> list[Path]:
    """Write ``session-N.slides.html`` for every session into ``out``; returns the files."""
    from nbconvert import SlidesExporter

    out.mkdir(parents=True, exist_ok=True)
    exporter = SlidesExporter()
    if reveal_prefix:
        exporter.reveal_url_prefix = reveal_prefix
    written = []
    for s in sessions.SESSIONS:
        nb = deck(s)
        left = [m.group(0) for c in nb.cells for m in RAW_MYST.finditer(c.source)]
        if left:
            raise SystemExit(f"session {s['n']}: raw MyST left in the deck: {sorted(set(left))}")
        html, _ = exporter.from_notebook_node(nb)
        path = out / f"session-{s['n']}.slides.html"
        path.write_text(html)
        written.append(path)
        print(f"slides: {path}")
    return written
