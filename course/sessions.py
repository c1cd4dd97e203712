"""The four sessions of the two-week module (and an optional fifth), as data.

One definition feeds the session scripts (``course/sessions/session-N.md``, written by
``python -m course.sessions``), the slides (``make slides``, ``course/slides.py``) and chapter
12's table of measured times. Run times come from ``course/timings/cpu2.json`` (measured with
``course/measure.py`` on the 2-core CPU that builds the book, quick profile); a time that was
not measured is never printed as a measurement.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = ROOT / "course" / "timings" / "cpu2.json"
OUT = ROOT / "course" / "sessions"

#: Colab's free CPU runtime was not available to measure on; say so wherever times appear
COLAB_NOTE = ("Colab CPU runtime: not measured (no Colab session was available to the build); expect "
              "the same order of magnitude, 2 vCPUs shared, plus about 1-2 minutes for the first "
              "cell's install and, for real data, 5-10 minutes for downloading CAVE once (an estimate).")

SESSIONS = [
    {
        "n": 1, "when": "Week 1, Monday", "title": "Spectra, RGB and metamers",
        "chapters": ["01_hyperspectral"],
        "live": {"01_hyperspectral": ("all cells (run top to bottom while you talk through the figures)", None)},
        "plan": [
            (0, 5, "Welcome; the module in one slide: what is graded (concept checks pass/fail, assignment A and B, group project)."),
            (5, 20, "Slides: the spectral cube, 31 bands from 400 to 700 nm, how a camera makes RGB (R^T s)."),
            (20, 35, "Live: chapter 1 from the top (setup, every band as an image, true and false colour). Students follow in Colab or on their laptop."),
            (35, 55, "Students work: chapter 1's exercises 2 and 3 in pairs; walk around."),
            (55, 70, "Live: the metamer section; discussion: why is RGB -> spectrum ill-posed (null space of dimension 28)?"),
            (70, 85, "Concept checks of chapter 1 in class (the forms at the end of the chapter); discuss the most missed question."),
            (85, 90, "Homework: read and run chapter 2. Explain the hand-in."),
        ],
        "hand_in": "By Friday (with session 2's): the line `quiz.results()` prints at the end of chapter 1's concept checks (pass/fail).",
        "points": [
            "A hyperspectral image: 31 bands per pixel, 400-700 nm in steps of 10 nm.",
            "A camera projects each spectrum onto 3 response curves: RGB = R^T s.",
            "R^T has a null space of dimension 28: metamers, different spectra with the same colour.",
            "So RGB -> spectrum is ill-posed: every method needs a prior learned from data.",
        ],
    },
    {
        "n": 2, "when": "Week 1, Thursday", "title": "Coordinate networks and periodic encodings",
        "chapters": ["02_inr", "03_encoding"],
        "live": {"02_inr": ("all cells; start 'The comparison' (the longest) before you explain it", None),
                 "03_encoding": ("all cells", None)},
        "plan": [
            (0, 10, "Recap; the most missed concept check of chapter 1."),
            (10, 25, "Slides: an image as a function; spectral bias; Fourier features and SIREN."),
            (25, 45, "Live: chapter 2's spectral-bias figure and the comparison of the three networks (start the comparison cell first; it is the longest)."),
            (45, 60, "Live: chapter 3, the encoding with periods 4 and 2; 'global' versus 'tile'; what a per-tile MLP can express."),
            (60, 75, "Concept checks of chapters 2 and 3."),
            (75, 90, "Group project: groups of two formed, each picks one comparison; every group checks that real CAVE is in its runtime (`inr_lib.data.download_cave`, see chapter 12)."),
        ],
        "hand_in": "Friday: concept checks of chapters 1-3 (the `quiz.results()` lines); each group's chosen comparison (one line) and a screenshot of `python -m inr_lib models` run where the group will train.",
        "points": [
            "An INR stores an image as a function f(x, y) computed by a small MLP.",
            "Spectral bias: ReLU MLPs learn low frequencies first.",
            "Remedies: Fourier features of the coordinates, or sine activations (SIREN).",
            "The paper's encoding: cos and sin of the position with periods 4 and 2, 8 channels, 11 MLP inputs with RGB.",
            "Fitting the pixels is not generalising: INR-HSISR learns a prior over many images instead.",
        ],
    },
    {
        "n": 3, "when": "Week 2, Monday", "title": "Hypernetworks and the model; part A",
        "chapters": ["04_hypernetwork", "05_model"],
        "live": {"04_hypernetwork": ("all cells; start 'A short training run' at minute 10", None),
                 "05_model": ("setup, 'Shapes through the network', 'Parameters and FLOPs', 'Readable and fast "
                              "per-pixel paths'; the training and rendering sections are reading",
                              ["c001", "c002", "c002-imports", "c004", "c006", "c008", "c010", "c012"])},
        "plan": [
            (0, 10, "Recap; start chapter 4's short training cell so that it is done when you need it."),
            (10, 30, "Slides and live: learning weights versus predicting them; the P = 15,263 numbers of one tile; reading one tile's MLP by hand."),
            (30, 50, "Live: chapter 5, the architecture diagram, the shapes through the network, the readable and the fast per-pixel path."),
            (50, 60, "Concept checks of chapters 4 and 5."),
            (60, 85, "Part A handed out (the cohort's notebook from `make assignment`): pairs work the worked example by hand, then write a first version and run `grader.check(\"q1\")`."),
            (85, 90, "Homework: part A due Wednesday; groups start their training runs (45 minutes of CPU each, see chapter 12)."),
        ],
        "hand_in": "Wednesday: part A, the notebook `apply_tile_mlps.ipynb` (graded by the autograder). Groups: their runs started.",
        "points": [
            "A hypernetwork (a CNN) predicts the weights of a small MLP for every 4 x 4 tile.",
            "The paper's per-pixel MLP: widths 11, 64, 64, 64, 64, 31; P = 15,263 numbers per tile.",
            "The readable path copies P numbers to every pixel (16 x); the fast path keeps one vector per tile.",
            "model.predict runs large images as windows of the training crop size (instance normalisation).",
        ],
    },
    {
        "n": 4, "when": "Week 2, Thursday", "title": "Training and honest evaluation; the groups' tables",
        "chapters": ["07_training", "08_evaluation", "10_ablations"],
        "live": {"07_training": ("all cells ('Train, get cut off, resume' is the point)", None),
                 "08_evaluation": ("all cells; start 'Baselines under the same protocol' (the longest), then talk", None),
                 "10_ablations": ("setup and 'The shipped ablations' (it reads the shipped models' cards); the "
                                  "normalisation table from the built page, since its training cell takes ~10 min",
                                  ["c001", "c002", "c002-imports", "c10-zoo-table", "c10-zoo-figure"])},
        "plan": [
            (0, 10, "Part A: the autograder's summary for the cohort; the two most common mistakes."),
            (10, 30, "Live: chapter 7, train, get cut off, resume exactly; the log and its curves."),
            (30, 50, "Live: chapter 8, one protocol for every method; start the baselines cell, explain PSNR, SAM and the protocol while it runs."),
            (50, 60, "Chapter 10's inference-mode table: crops versus whole images versus tiled windows (B4)."),
            (60, 85, "Groups show their tables (3 minutes each): same data (dev18), same budget, three seeds; is the difference larger than the spread?"),
            (85, 90, "Part B and the project report: due Sunday."),
        ],
        "hand_in": "Sunday: part B (at most two pages) and the group's one-page table with its protocol.",
        "points": [
            "Exact resume: a run cut off and resumed gives the same numbers as one that was not.",
            "One protocol for every method: data, split, inference mode, clamping, metrics.",
            "A difference between two designs means something only if it is larger than the spread between seeds.",
            "Scores on random crops and on whole images are different numbers: say which one you report.",
        ],
    },
    {
        "n": 5, "when": "Optional (a fifth session, or a project topic)", "title": "Continuous in wavelength",
        "chapters": ["11_continuous"],
        "live": {"11_continuous": ("every cell except the held-out-band experiment's two training cells (about 15 min "
                                   "on a shared 2-core CPU): run the chapter once before class, show their figures "
                                   "from the built page", ['ec825b95', '875b1388', '55b1c44b', '9a4e0e5b', '19513d50', '14635624', '3b9691da', 'e099f34e', 'af9893de', '604347dd', 'd658561f', '24b864c3', '5f026dc4', '72ae5e9b', 'c78828f9'])},
        "plan": [
            (0, 15, "Slides: a spectrum as a function of wavelength; B-spline and cosine bases."),
            (15, 45, "Live: chapter 11, the smooth bases, cost per pixel, the shipped held-out-band model against linear and cubic fills; the short training runs from the page (run before class)."),
            (45, 75, "Groups that chose it as their project topic present; the others discuss what 'never-seen bands' can and cannot show."),
            (75, 90, "Discussion: what would a fair test of 1 nm spectra need?"),
        ],
        "hand_in": "As a project topic: the same one-page table, comparing the continuous model with the 31-band model on held-out bands, three seeds.",
        "points": [
            "The MLP can output coefficients of a smooth basis instead of 31 band values.",
            "Trained on 16 even bands only, it is tested on the 15 it never saw.",
            "Compare with the simplest alternative: interpolating the kept bands.",
        ],
    },
]


def timings() -> dict:
    return json.loads(TIMINGS.read_text()) if TIMINGS.is_file() else {"chapters": {}}


def live_seconds(session: dict, chapter: str, data: dict | None = None) -> float | None:
    """Measured time of the cells of ``chapter`` that run live in ``session`` (None: not measured)."""
    data = data or timings()
    r = data["chapters"].get(chapter)
    if r is None:
        return None
    ids = session["live"][chapter][1]
    return r["total_s"] if ids is None else sum(r["cells_s"].get(i, 0.0) for i in ids)


def measured_seconds(session: dict, data: dict | None = None) -> float | None:
    """What the session's live cells take, measured (None if a chapter was not measured)."""
    data = data or timings()
    parts = [live_seconds(session, ch, data) for ch in session["chapters"]]
    return None if any(p is None for p in parts) else sum(parts)


def sections(chapter: str) -> dict:
    """Cell id -> the heading of the section it is in."""
    nb = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text())
    out, cur = {}, ""
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            for line in "".join(c["source"]).splitlines():
                if line.startswith("#"):
                    cur = line.lstrip("# ").strip()
        out[c.get("id")] = cur
    return out


def _fmt(s: float | None) -> str:
    if s is None:
        return "not measured"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def title_of(chapter: str) -> str:
    nb = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text())
    first = "".join(nb["cells"][0]["source"]).splitlines()[0]
    return first.lstrip("# ").strip()


def script(session: dict, data: dict | None = None) -> str:
    """The session script in Markdown."""
    data = data or timings()
    lines = [f"# Session {session['n']}: {session['title']}", "",
             f"*{session['when']}, 90 minutes. Generated by `python -m course.sessions` from "
             f"`course/sessions.py`; run times measured with `course/measure.py`.*", "",
             "## Minute by minute", "", "| minutes | what happens |", "|---|---|"]
    lines += [f"| {a}-{b} | {text} |" for a, b, text in session["plan"]]
    lines += ["", "## What runs live, and how long it takes", "",
              "| chapter | cells run live | live cells, measured | whole chapter, measured | longest cells, measured |",
              "|---|---|---|---|---|"]
    for ch in session["chapters"]:
        r = data["chapters"].get(ch)
        if r:
            top = sorted(r["cells_s"].items(), key=lambda kv: -kv[1])[:3]
            where = sections(ch)
            longest = ", ".join(f"{t:.0f} s in '{where.get(cid, '?')}'" for cid, t in top)
        else:
            longest = "not measured"
        lines.append(f"| {ch} ({title_of(ch)}) | {session['live'][ch][0]} | {_fmt(live_seconds(session, ch, data))} | "
                     f"{_fmt(r['total_s'] if r else None)} | {longest} |")
    lines += ["", f"The live cells of this session together: **{_fmt(measured_seconds(session, data))}** on "
              f"{data.get('machine', 'the build machine')} (quick profile; measured "
              f"{', '.join(sorted({r['measured'] for c, r in data['chapters'].items() if c in session['chapters']})) or '-'}; "
              "the machine was shared with two training runs, so an idle laptop is faster).", "",
              f"{COLAB_NOTE}", "",
              "Times are wall-clock seconds of executing the cells in order in a fresh kernel "
              "(`python -m course.measure`); the first run in Colab adds the install and, with real data, "
              "the download.", "",
              "## What students hand in", "", session["hand_in"], "",
              "## Key points (the slides)", ""]
    lines += [f"* {p}" for p in session["points"]]
    return "\n".join(lines) + "\n"


def write(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for s in SESSIONS:
        p = out / f"session-{s['n']}.md"
        p.write_text(script(s))
        written.append(p)
    return written


if __name__ == "__main__":
    for p in write():
        print(p.relative_to(ROOT))
