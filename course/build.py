"""Build a cohort's assignment, the teacher's kit and the session slides.

    python -m course.build assignment --seed "$COHORT_SEED" [--out build/course]
    python -m course.build teacher-kit --seed "$COHORT_SEED" [--out build/course]
    python -m course.build slides [--out build/course/slides]

(``make assignment``, ``make teacher-kit`` and ``make slides`` call these.)

**assignment**: fills the public master notebook ``course/master/apply_tile_mlps.ipynb`` with the
cohort's layout specification, a worked example and the hidden tests for the cohort's variant
(``course/cohort.py``), then runs ``otter assign`` (otter-grader), which writes

* ``<out>/assignment-<fingerprint>/student/apply_tile_mlps.ipynb``: what students get (public
  tests only, in the notebook's metadata, so the one file works in Colab);
* ``<out>/assignment-<fingerprint>/autograder/autograder.zip``: the bundle with public and
  hidden tests; grade a submission offline with
  ``otter run -a autograder.zip submission.ipynb`` (or upload it to Gradescope).

**teacher-kit**: the assignment, plus the reference solution generated for the cohort's layout
(checked: it must score full marks with the autograder, else the build fails), the rubric's
answers for the cohort's model variant (B1, B2), the grading notes, the hidden tests as a
readable file, and the last graded variant's fingerprint, in
``<out>/teacher-kit-<fingerprint>.zip``. Keep that zip private (see chapter 12).

The build folder is ignored by git and is not part of the HTML book.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import nbformat
import torch

from course import cohort
from course.cohort import Layout, Variant

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "course" / "master" / "apply_tile_mlps.ipynb"
NAME = "apply_tile_mlps"
DEFAULT_OUT = ROOT / "build" / "course"


# --------------------------------------------------------------------------- the reference
def solution_source(layout: Layout) -> str:
    """The body of ``apply_tile_mlps`` for ``layout`` (for the teacher's kit only)."""
    lines = [
        "widths = [int(c) for c in widths]",
        "if params.dim() != 4 or x.dim() != 4:",
        "    raise ValueError(f'expected params (B, P, h, w) and x (B, C, H, W), got {tuple(params.shape)} and {tuple(x.shape)}')",
        "B, P, h, w = params.shape",
        "t = int(tile)",
        "layers = list(zip(widths[:-1], widths[1:]))",
        "need = sum(cin * cout + cout for cin, cout in layers)",
        "if P != need:",
        "    raise ValueError(f'params has {P} channels, an MLP with widths {widths} needs {need}')",
        "if tuple(x.shape) != (B, widths[0], h * t, w * t):",
        "    raise ValueError(f'x must have shape {(B, widths[0], h * t, w * t)}, got {tuple(x.shape)}')",
        "p = params.permute(0, 2, 3, 1)                      # (B, h, w, P): one vector per tile",
        f"stored = layers{'[::-1]' if layout.layers == 'reversed' else ''}   # layer order in the vector ({layout.layers})",
        "sizes = {}",
    ]
    if layout.order in ("bias-first", "weight-first"):
        first, second = ("b", "W") if layout.order == "bias-first" else ("W", "b")
        lines += ["blocks = []",
                  "for k, (cin, cout) in enumerate(stored):",
                  f"    blocks += [({first!r}, k), ({second!r}, k)]"]
    else:
        first, second = ("b", "W") if layout.order == "biases-block-first" else ("W", "b")
        lines += [f"blocks = [({first!r}, k) for k in range(len(stored))] + [({second!r}, k) for k in range(len(stored))]"]
    lines += [
        "offset, bias, weight = 0, {}, {}",
        "for kind, k in blocks:",
        "    cin, cout = stored[k]",
        "    n = cout if kind == 'b' else cin * cout",
        "    chunk = p[..., offset:offset + n]",
        "    offset += n",
        "    if kind == 'b':",
        "        bias[k] = chunk                                  # (B, h, w, cout)",
        "    else:",
    ]
    if layout.storage == "in-out":
        lines += ["        weight[k] = chunk.reshape(B, h, w, cin, cout)   # W[i, o]: y = v @ W + b"]
    else:
        lines += ["        weight[k] = chunk.reshape(B, h, w, cout, cin).transpose(-1, -2)   # stored W[o, i]"]
    lines += [
        "# the t*t pixels of every tile as the rows of a matrix: (B, h, w, t*t, C)",
        "y = x.reshape(B, widths[0], h, t, w, t).permute(0, 2, 4, 3, 5, 1).reshape(B, h, w, t * t, widths[0])",
        "n_layers = len(layers)",
        "for i in range(n_layers):",
        f"    k = {'n_layers - 1 - i' if layout.layers == 'reversed' else 'i'}    # where layer i sits in the vector",
        "    y = torch.einsum('bhwpc,bhwco->bhwpo', y, weight[k]) + bias[k][..., None, :]",
        "    if i < n_layers - 1:",
        "        y = F.leaky_relu(y, negative_slope)",
        "c_out = widths[-1]",
        "return y.reshape(B, h, w, t, t, c_out).permute(0, 5, 1, 3, 2, 4).reshape(B, c_out, h * t, w * t)",
    ]
    return "\n".join(lines)


def solution_module(v: Variant) -> str:
    """A standalone ``reference_solution.py`` for the cohort (kit only)."""
    body = textwrap.indent(solution_source(v.layout), "    ")
    return (f'"""Reference solution of part A for the cohort variant {v.fingerprint()} (teacher\'s kit; private).\n\n'
            f"Layout: {v.layout.describe()}\n\"\"\"\nimport torch\nimport torch.nn.functional as F\n\n\n"
            f"def apply_tile_mlps(params, x, widths, tile, negative_slope=0.1):\n{body}\n")


# --------------------------------------------------------------------------- the tests
def _helpers(v: Variant) -> str:
    """What every hidden test defines inside itself: the layout writer and the loop reference
    (copied from course/cohort.py) and the copy detection."""
    parts = [f"layout = SimpleNamespace(order={v.layout.order!r}, storage={v.layout.storage!r}, "
             f"layers={v.layout.layers!r})"]
    for fn in (cohort.pack, cohort.random_mlps, cohort.as_params, cohort.mlp_from_weights):
        parts.append(_plain_source(fn))
    parts.append(textwrap.dedent('''
        def not_copied(fn):
            """The function and everything it calls by name come from the notebook, not inr_lib."""
            import types
            assert callable(fn), "apply_tile_mlps is not defined"
            assert not (getattr(fn, "__module__", "") or "").startswith("inr_lib"), \\
                "apply_tile_mlps is inr_lib's function: write your own (copy detected, no points)"
            todo, seen = [getattr(fn, "__code__", None)], set()
            while todo:
                code = todo.pop()
                if code is None or id(code) in seen:
                    continue
                seen.add(id(code))
                assert "inr_lib" not in code.co_filename, "apply_tile_mlps runs inr_lib code (copy detected)"
                for name in code.co_names:
                    assert name != "inr_lib", "apply_tile_mlps imports inr_lib (copy detected, no points)"
                    obj = getattr(fn, "__globals__", {}).get(name)
                    mod = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
                    if isinstance(obj, types.ModuleType):
                        mod = obj.__name__
                    assert not str(mod).startswith("inr_lib"), \\
                        f"apply_tile_mlps uses inr_lib's {name} (copy detected, no points)"
                todo += [c for c in code.co_consts if isinstance(c, types.CodeType)]

        def compare(fn, batch, h, w, widths, tile, seed, slope=0.1, pass_slope=False):
            weights, biases = random_mlps(batch, h, w, widths, seed)
            params = as_params(weights, biases, layout)
            x = torch.randn(batch, widths[0], h * tile, w * tile,
                            generator=torch.Generator().manual_seed(seed + 1000), dtype=torch.float64)
            want = mlp_from_weights(weights, biases, x, tile, slope)
            kwargs = {"negative_slope": slope} if pass_slope else {}
            got = fn(params.clone(), x.clone(), tuple(widths), tile, **kwargs)
            case = f"B={batch}, {h}x{w} tiles of {tile}x{tile}, widths {tuple(widths)}"
            assert torch.is_tensor(got), f"{case}: returned a {type(got).__name__}, expected a tensor"
            assert tuple(got.shape) == tuple(want.shape), \\
                f"{case}: output shape {tuple(got.shape)}, expected {tuple(want.shape)}"
            err = (got.double() - want).abs().max().item()
            assert err <= 1e-9, f"{case}: values differ from the expected ones by up to {err:.3g}"
        '''))
    return "\n".join(parts)


def _plain_source(fn) -> str:
    """``fn``'s source without docstring and annotations (it is defined inside a test function)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    node = tree.body[0]
    if ast.get_docstring(node):
        node.body = node.body[1:]
    node.returns = None
    for a in node.args.args + node.args.kwonlyargs:
        a.annotation = None
    return ast.unparse(tree)


#: (name, points, body using apply_tile_mlps, torch, compare, ...): the hidden tests
def _hidden_bodies(v: Variant) -> list[tuple[str, float, str]]:
    W = v.widths
    return [
        ("one_linear_layer_per_tile", 1.0, "compare(apply_tile_mlps, 1, 1, 1, (3, 4), 2, seed=2)"),
        ("several_layers_square_grid", 1.0, "compare(apply_tile_mlps, 1, 3, 3, (11, 16, 16, 31), 4, seed=3)"),
        ("non_square_grids_and_batches", 2.0,
         "compare(apply_tile_mlps, 3, 2, 5, (11, 12, 9, 31), 4, seed=4)\n"
         "compare(apply_tile_mlps, 2, 5, 2, (7, 6, 5), 4, seed=5)\n"
         "compare(apply_tile_mlps, 2, 1, 3, (5, 4, 4, 4, 3), 4, seed=6)"),
        ("tile_sizes_1_2_8", 1.0,
         "for tile, (h, w) in ((1, (3, 5)), (2, (4, 3)), (8, (1, 2))):\n"
         "    compare(apply_tile_mlps, 2, h, w, (4, 6, 3), tile, seed=10 + tile)"),
        ("leaky_relu_slope", 1.0,
         "for slope in (0.0, 0.3):\n"
         "    compare(apply_tile_mlps, 2, 2, 3, (4, 6, 6, 3), 4, seed=20, slope=slope, pass_slope=True)"),
        ("gradients", 1.5, textwrap.dedent("""\
            widths, tile = (5, 7, 7, 4), 2
            weights, biases = random_mlps(2, 3, 2, widths, 30)
            weights = [w.requires_grad_(True) for w in weights]
            biases = [b.requires_grad_(True) for b in biases]
            x = torch.randn(2, widths[0], 3 * tile, 2 * tile, generator=torch.Generator().manual_seed(31),
                            dtype=torch.float64, requires_grad=True)
            upstream = torch.randn(2, widths[-1], 3 * tile, 2 * tile, generator=torch.Generator().manual_seed(32),
                                   dtype=torch.float64)
            (mlp_from_weights(weights, biases, x, tile) * upstream).sum().backward()
            want_p = as_params([w.grad for w in weights], [b.grad for b in biases], layout)
            want_x = x.grad.clone()
            p = as_params([w.detach() for w in weights], [b.detach() for b in biases], layout).requires_grad_(True)
            xx = x.detach().clone().requires_grad_(True)
            out = apply_tile_mlps(p, xx, widths, tile)
            assert out.requires_grad, "the output does not require grad: the function cut the graph"
            (out * upstream).sum().backward()
            assert p.grad is not None and xx.grad is not None, "no gradient reached params or x"
            ep, ex = (p.grad - want_p).abs().max().item(), (xx.grad - want_x).abs().max().item()
            assert ep <= 1e-9 and ex <= 1e-9, f"gradients differ: params by {ep:.3g}, x by {ex:.3g}"
            tiny = (2, 3, 2)
            tw, tb = random_mlps(1, 1, 2, tiny, 33)
            tp = as_params(tw, tb, layout).requires_grad_(True)
            tx = torch.randn(1, 2, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(34)).requires_grad_(True)
            assert torch.autograd.gradcheck(lambda a, b: apply_tile_mlps(a, b, tiny, 2), (tp, tx),
                                            eps=1e-6, atol=1e-6, raise_exception=False), "gradcheck failed"
            """)),
        ("the_cohort_variant", 0.5,
         f"compare(apply_tile_mlps, 1, 2, 3, {W!r}, {v.tile}, seed=40)"),
    ]


def _test_cell(name: str, points: float, body: str, hidden: bool, helpers: str = "") -> str:
    config = f'""" # BEGIN TEST CONFIG\npoints: {points}\nhidden: {str(hidden).lower()}\n""" # END TEST CONFIG'
    inner = ["import torch", "import torch.nn.functional as F", "from types import SimpleNamespace"]
    if helpers:
        inner += [helpers, "not_copied(apply_tile_mlps)"]
    inner.append(body)
    return f"{config}\ndef test_{name}(apply_tile_mlps):\n" + textwrap.indent("\n".join(inner), "    ") + "\n"


def hidden_tests(v: Variant) -> list[tuple[str, float, str]]:
    """``(name, points, cell source)`` of each hidden test of the cohort."""
    helpers = _helpers(v)
    return [(n, p, _test_cell(n, p, b, True, helpers)) for n, p, b in _hidden_bodies(v)]


def worked_example(v: Variant) -> tuple[str, str]:
    """A tiny example for the student notebook (markdown) and its public test: integer weights
    in the cohort's layout, one 1x2 grid of 1x1 tiles, the expected output printed."""
    widths, tile = (2, 3, 2), 1
    g = torch.Generator().manual_seed(7)
    weights = [torch.randint(-3, 4, (1, 1, 2, cout, cin), generator=g).double()
               for cin, cout in zip(widths[:-1], widths[1:])]
    biases = [torch.randint(-3, 4, (1, 1, 2, cout), generator=g).double() for cout in widths[1:]]
    params = cohort.as_params(weights, biases, v.layout)
    x = torch.tensor([[[[1.0, -2.0]], [[3.0, 0.5]]]], dtype=torch.float64)
    out = cohort.mlp_from_weights(weights, biases, x, tile)
    P = params[0, :, 0, :].T.tolist()
    tolist = lambda t: json.dumps([[round(float(a), 6) for a in row] for row in t])  # noqa: E731
    md = (f"**A worked example.** With `widths = (2, 3, 2)`, `tile = 1` and a grid of 1 x 2 tiles, the two "
          f"tiles' flat vectors (P = {cohort.param_count(widths)} numbers each, in your layout) are\n\n"
          f"```\ntile (0, 0): {[int(a) for a in P[0]]}\ntile (0, 1): {[int(a) for a in P[1]]}\n```\n\n"
          f"For the inputs `x[0, :, 0, 0] = (1, 3)` and `x[0, :, 0, 1] = (-2, 0.5)` the outputs are "
          f"`{[round(float(a), 4) for a in out[0, :, 0, 0]]}` and `{[round(float(a), 4) for a in out[0, :, 0, 1]]}`. "
          f"Work the first one out by hand before you write code.")
    body = textwrap.dedent(f"""\
        params = torch.tensor({tolist(P)}, dtype=torch.float64).T.reshape(1, -1, 1, 2)
        x = torch.tensor([[[[1.0, -2.0]], [[3.0, 0.5]]]], dtype=torch.float64)
        want = torch.tensor({tolist(out[0, :, 0, :].T.tolist())}, dtype=torch.float64).T.reshape(1, 2, 1, 2)
        got = apply_tile_mlps(params, x, (2, 3, 2), 1)
        assert tuple(got.shape) == (1, 2, 1, 2), f"shape {{tuple(got.shape)}}, expected (1, 2, 1, 2)"
        assert torch.allclose(got.double(), want, atol=1e-4), f"got {{got.flatten().tolist()}}, expected {{want.flatten().tolist()}}"
        """)
    return md, body


# --------------------------------------------------------------------------- the master notebook
def cohort_master(v: Variant) -> nbformat.NotebookNode:
    """The public master notebook filled in for the cohort (solution and hidden tests included)."""
    nb = nbformat.read(MASTER, as_version=4)
    md, example_body = worked_example(v)
    b2 = (f"tiles of {v.tile} x {v.tile}, the \"global\" encoding with periods "
          f"{', '.join(f'{p:g}' for p in v.periods)}, and an MLP with {len(v.hidden)} hidden layers of "
          f"{v.hidden[0]} channels")
    subs = {"@@LAYOUT_SPEC@@": v.layout.describe(), "@@FINGERPRINT@@": v.fingerprint(),
            "@@WORKED_EXAMPLE@@": md, "@@B2_VARIANT@@": b2,
            "@@COHORT_WIDTHS@@": str(v.widths), "@@COHORT_TILE@@": str(v.tile)}
    cells = []
    for cell in nb.cells:
        src = cell.source
        if src.strip() == "# @@HIDDEN_TESTS@@":
            for _, _, test in hidden_tests(v):
                cells.append(nbformat.v4.new_code_cell(test))
            continue
        if "@@SOLUTION@@" in src:
            src = src.replace("    @@SOLUTION@@", textwrap.indent(solution_source(v.layout), "    "))
        if "@@EXAMPLE_TEST@@" in src:
            src = src.replace("    @@EXAMPLE_TEST@@", textwrap.indent(example_body, "    "))
        for k, val in subs.items():
            src = src.replace(k, val)
        cell.source = src
        cells.append(cell)
    nb.cells = cells
    for i, c in enumerate(nb.cells):
        c["id"] = f"a{i:03d}"
    leftover = [m for c in nb.cells for m in re.findall(r"@@[A-Z_]+@@", c.source)]
    if leftover:
        raise RuntimeError(f"unfilled placeholders in {MASTER.name}: {sorted(set(leftover))}")
    return nb


def _otter() -> list[str]:
    exe = Path(sys.executable).with_name("otter")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "otter"]


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def build_assignment(seed: str, out: Path = DEFAULT_OUT, previous: list[str] | None = None,
                     verbose: bool = True) -> Path:
    """Write the cohort's student notebook and autograder bundle; returns the folder."""
    v = cohort.variant(seed)
    for prev in previous or []:
        if cohort.variant(prev).layout == v.layout:
            raise SystemExit(f"COHORT_SEED gives the same parameter layout as the previous cohort's seed "
                             f"({v.layout}); choose another seed, so last year's solutions fail")
    dest = Path(out) / f"assignment-{v.fingerprint()}"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        master = Path(tmp) / f"{NAME}.ipynb"
        nbformat.write(cohort_master(v), master)
        run = subprocess.run([*_otter(), "assign", "--no-pdfs", "-v", str(master), str(dest)],
                             capture_output=True, text=True, cwd=tmp)
        if run.returncode:
            raise SystemExit(f"otter assign failed:\n{run.stdout}\n{run.stderr}")
    zips = sorted((dest / "autograder").glob("*.zip"))
    if len(zips) != 1:
        raise SystemExit(f"otter assign wrote {len(zips)} autograder zips in {dest / 'autograder'}")
    zips[0].rename(dest / "autograder" / "autograder.zip")   # a stable name, without otter's time stamp
    student = dest / "student" / f"{NAME}.ipynb"
    for leak in _student_leaks(student, v):
        raise SystemExit(f"the student notebook leaks {leak}")
    (dest / "variant.json").write_text(json.dumps({"fingerprint": v.fingerprint(), "public": {
        "tile": v.tile, "periods": list(v.periods), "hidden": list(v.hidden)}}, indent=2) + "\n")
    if verbose:
        print(f"assignment for cohort variant {v.fingerprint()}:")
        print(f"  students get: {_shown(student)}")
        print(f"  autograder:   {_shown(dest / 'autograder' / 'autograder.zip')}")
    return dest


def _student_leaks(student: Path, v: Variant) -> list[str]:
    text = student.read_text()
    leaks = []
    if "hidden: true" in text or "not_copied" in text or "mlp_from_weights" in text:
        leaks.append("hidden tests")
    if "einsum" in text or "blocks = " in text:
        leaks.append("the reference solution")
    if v.seed in text and len(v.seed) > 3:
        leaks.append("the cohort seed")
    return leaks


def grade(autograder_zip: Path, submission: Path, workdir: Path) -> dict:
    """Grade one submission notebook with ``otter run``; returns otter's results (JSON)."""
    workdir.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([*_otter(), "run", "-a", str(autograder_zip), "-o", str(workdir), str(submission)],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    results = workdir / "results.json"
    if not results.is_file():
        raise RuntimeError(f"otter run wrote no results:\n{run.stdout}\n{run.stderr}")
    return json.loads(results.read_text())


def score(results: dict) -> tuple[float, float, dict]:
    """(score, max score, {question: otter's report}) from the results.json of ``otter run``."""
    got = total = 0.0
    report = {}
    for t in results["tests"]:
        if "score" in t:
            got += t["score"]
            total += t["max_score"]
            report[t["name"]] = t.get("output", "")
    return got, total, report


def submission_with(student_nb: Path, function_source: str, dest: Path) -> Path:
    """A copy of the student notebook whose answer cell holds ``function_source`` (for tests,
    and for graders who receive a .py file instead of a notebook)."""
    nb = nbformat.read(student_nb, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "def apply_tile_mlps" in c.source)
    cell.source = function_source
    nbformat.write(nb, dest)
    return dest


# --------------------------------------------------------------------------- the teacher's kit
def build_teacher_kit(seed: str, out: Path = DEFAULT_OUT, previous: list[str] | None = None) -> Path:
    v = cohort.variant(seed)
    dest = build_assignment(seed, out, previous)
    kit = dest / "kit"
    kit.mkdir()
    (kit / "reference_solution.py").write_text(solution_module(v))
    # the reference must score full marks with the autograder this build wrote
    autograder = dest / "autograder" / "autograder.zip"
    with tempfile.TemporaryDirectory() as tmp:
        sub = submission_with(dest / "student" / f"{NAME}.ipynb", solution_module(v), Path(tmp) / "reference.ipynb")
        got, total, passed = score(grade(autograder, sub, Path(tmp) / "graded"))
    if got != total:
        raise SystemExit(f"the reference solution scores {got} / {total} with the autograder: {passed}")
    (kit / "hidden_tests.py").write_text("# The cohort's hidden tests (otter-grader exception-based tests).\n\n"
                                         + "\n\n".join(t for _, _, t in hidden_tests(v)))
    answers = {"cohort_variant": v.to_dict(), "B2": cohort.b2_answers(v), "B1": b1_answers(),
               "A": {"reference_score": f"{got:g} / {total:g}", "points": {n: p for n, p, _ in hidden_tests(v)}}}
    (kit / "rubric_answers.json").write_text(json.dumps(answers, indent=2) + "\n")
    notes = (ROOT / "course" / "master" / "grading_notes.md").read_text()
    notes = notes.replace("@@LAYOUT@@", v.layout.describe()).replace("@@FINGERPRINT@@", v.fingerprint())
    notes = notes.replace("@@B2@@", "\n".join(f"* {k}: {val}" for k, val in answers["B2"].items()))
    (kit / "GRADING_NOTES.md").write_text(notes)
    (kit / "seed.txt").write_text(f"{seed}\n")
    zpath = Path(out) / f"teacher-kit-{v.fingerprint()}.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(dest.rglob("*")):
            if f.is_file():
                z.write(f, f"teacher-kit-{v.fingerprint()}/{f.relative_to(dest)}")
    print(f"teacher's kit (keep it private): {_shown(zpath)}")
    return zpath


def b1_answers() -> dict:
    """B1's memory argument for the paper's MLP (P = 15,263): numbers per image side."""
    P = cohort.param_count((11, 64, 64, 64, 64, 31))
    assert P == 15_263
    return {f"{s}x{s}": {"predicted_params_mib": round(P * (s // 4) ** 2 * 4 / 2**20, 1),
                         "per_pixel_copy_mib": round(P * s * s * 4 / 2**20, 1)} for s in (64, 128, 256)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("assignment", "teacher-kit"):
        p = sub.add_parser(name)
        p.add_argument("--seed", default=os.environ.get("COHORT_SEED"), help="the cohort seed (or $COHORT_SEED)")
        p.add_argument("--previous", default=os.environ.get("PREVIOUS_COHORT_SEEDS", ""),
                       help="comma-separated seeds of earlier cohorts: refuse a seed with the same layout")
        p.add_argument("--out", default=str(DEFAULT_OUT))
    p = sub.add_parser("slides")
    p.add_argument("--out", default=str(DEFAULT_OUT / "slides"))
    args = ap.parse_args(argv)
    if args.cmd == "slides":
        from course import slides
        slides.build(Path(args.out))
        return 0
    if not args.seed:
        raise SystemExit("set the cohort seed: make assignment COHORT_SEED='a private pass phrase'")
    previous = [s for s in args.previous.split(",") if s.strip()]
    if args.cmd == "assignment":
        build_assignment(args.seed, Path(args.out), previous)
    else:
        build_teacher_kit(args.seed, Path(args.out), previous)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
