"""The course assignment (issue 27): cohort variants from a seed (course/cohort.py), the
otter-grader build (course/build.py: make assignment / make teacher-kit).

What must hold: the student notebook and every public file hold no working answer for a
cohort's variant; the reference solution scores full marks on the hidden tests of three
different cohort seeds; a copy of the library's function fails them; last cohort's solution
fails a new seed; typical mistakes are caught; the expected values of the hidden tests agree
with inr_lib's own implementation (for inr_lib's layout)."""
from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from course import build, cohort

ROOT = Path(__file__).resolve().parents[1]
#: three cohorts (pairwise different layouts, checked below)
SEEDS = ("spring-2026 blue heron", "autumn-2026 red kite", "spring-2027 grey wolf")


# ------------------------------------------------------------------------- helpers
def hidden_suite(seed):
    """{name: (points, test function)} of a cohort's hidden tests, compiled in this process
    from the same cell sources otter puts into the autograder."""
    suite = {}
    for name, points, src in build.hidden_tests(cohort.variant(seed)):
        body = re.sub(r'^""" # BEGIN TEST CONFIG(.|\n)*?""" # END TEST CONFIG\n', "", src)
        ns: dict = {}
        exec(compile(body, f"hidden:{name}", "exec"), ns)
        suite[name] = (points, ns[f"test_{name}"])
    return suite


def hidden_score(fn, seed) -> tuple[float, float, list[str]]:
    got, total, failed = 0.0, 0.0, []
    for name, (points, test) in hidden_suite(seed).items():
        total += points
        try:
            test(fn)
            got += points
        except Exception:                                     # noqa: BLE001 - a failed test
            failed.append(name)
    return got, total, failed


def function_from(source: str, name: str = "apply_tile_mlps"):
    ns = {"torch": torch, "F": F}
    exec(source, ns)
    return ns[name]


def reference(seed):
    return function_from(build.solution_module(cohort.variant(seed)))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The three cohorts' assignments, built as `make assignment` builds them."""
    out = tmp_path_factory.mktemp("course")
    return {seed: build.build_assignment(seed, out) for seed in SEEDS}


# ------------------------------------------------------------------------- the variants
def test_seeds_give_stable_and_different_variants():
    assert cohort.variant(SEEDS[0]) == cohort.variant(SEEDS[0])
    layouts = [cohort.variant(s).layout for s in SEEDS]
    assert len(set(layouts)) == 3, "the test's three cohorts must differ in layout"
    drawn = {cohort.variant(f"seed {i}").layout for i in range(400)}
    assert drawn == set(cohort.LAYOUTS)                      # every layout can be drawn ...
    assert cohort.LIBRARY_LAYOUT not in drawn and cohort.RELEASED_LAYOUT not in drawn   # ... never these
    with pytest.raises(ValueError):
        cohort.variant("  ")


def test_expected_values_agree_with_inr_lib_for_its_own_layout():
    """The hidden tests' oracle (explicit weights -> pack -> loop over tiles) against
    inr_lib's fast path, forward: for inr_lib's layout they must be the same function."""
    from inr_lib.model.pixelwise import apply_mlp_fast

    widths, tile = (5, 7, 6, 4), 2
    weights, biases = cohort.random_mlps(2, 3, 4, widths, seed=1)
    x = torch.randn(2, 5, 6, 8, dtype=torch.float64)
    params = cohort.as_params(weights, biases, cohort.LIBRARY_LAYOUT)
    torch.testing.assert_close(cohort.mlp_from_weights(weights, biases, x, tile, 0.2),
                               apply_mlp_fast(params, x, widths, tile, 0.2), rtol=1e-12, atol=1e-12)


def test_every_layout_holds_the_same_numbers_in_a_different_order():
    widths = (3, 4, 2)
    weights, biases = cohort.random_mlps(1, 1, 1, widths, seed=2)
    packed = {lay: cohort.pack(weights, biases, lay)[0, 0, 0] for lay in cohort.LAYOUTS + (cohort.LIBRARY_LAYOUT,)}
    ref = sorted(packed[cohort.LIBRARY_LAYOUT].tolist())
    for _lay, vec in packed.items():
        assert vec.numel() == cohort.param_count(widths) and sorted(vec.tolist()) == ref
    assert len({tuple(v.tolist()) for v in packed.values()}) == len(packed), "two layouts coincide"


def test_previous_cohorts_layout_is_refused(tmp_path):
    twin = next(f"s{i}" for i in range(1000) if cohort.variant(f"s{i}").layout == cohort.variant(SEEDS[0]).layout
                and f"s{i}" != SEEDS[0])
    with pytest.raises(SystemExit, match="previous cohort"):
        build.build_assignment(twin, tmp_path, previous=[SEEDS[0]])


# ------------------------------------------------------------------------- must show
@pytest.mark.parametrize("seed", SEEDS)
def test_reference_solution_scores_full_marks_with_the_autograder(built, seed, tmp_path):
    """End to end: otter run with the cohort's autograder.zip on a notebook holding the
    generated reference solution."""
    dest = built[seed]
    sub = build.submission_with(dest / "student" / "apply_tile_mlps.ipynb",
                                build.solution_module(cohort.variant(seed)), tmp_path / "ref.ipynb")
    got, total, report = build.score(build.grade(dest / "autograder" / "autograder.zip", sub, tmp_path / "g"))
    assert got == total == 10.0, report
    assert hidden_score(reference(seed), seed)[0] == 8.0       # the same, in process


def test_copy_of_the_library_fails(built, tmp_path):
    """inr_lib's functions, imported or pasted into the notebook, fail every cohort's hidden tests."""
    from inr_lib.model import pixelwise

    # 1. imported: copy detection and values (end to end, one cohort)
    dest = built[SEEDS[0]]
    sub = build.submission_with(dest / "student" / "apply_tile_mlps.ipynb",
                                "from inr_lib.model.pixelwise import apply_mlp_readable as apply_tile_mlps",
                                tmp_path / "copied.ipynb")
    got, total, report = build.score(build.grade(dest / "autograder" / "autograder.zip", sub, tmp_path / "g"))
    assert got <= 2.0, report                                   # at most the public tests' 2 points
    # 2. pasted without importing inr_lib (no copy detection can see it): every multi-layer
    #    value test fails (a single layer cannot tell the layer order apart, so a cohort whose
    #    layout differs from inr_lib's only in the layer order gives that one test's point)
    pasted = "\n\n".join(inspect.getsource(f) for f in (pixelwise.mlp_param_count, pixelwise._check,
                                                          pixelwise.to_tiles, pixelwise.from_tiles,
                                                          pixelwise.apply_mlp_tiles, pixelwise.apply_mlp_fast))
    ns = {"torch": torch, "F": F, "Sequence": object}
    exec("from __future__ import annotations\n" + pasted, ns)
    for seed in SEEDS:
        for fn in (ns["apply_mlp_fast"], pixelwise.apply_mlp_readable, pixelwise.apply_mlp_fast):
            got, total, failed = hidden_score(fn, seed)
            assert got <= 1.0 and got < total, (seed, fn.__name__, failed)
            assert {"several_layers_square_grid", "non_square_grids_and_batches", "gradients",
                    "the_cohort_variant"} <= set(failed), (seed, fn.__name__, failed)


def test_last_cohorts_solution_fails_a_new_seed():
    for old in SEEDS:
        for new in SEEDS:
            if old == new:
                continue
            got, total, failed = hidden_score(reference(old), new)
            assert got <= 1.0, (old, new, got, failed)        # at most 'the one layer' can coincide
            assert "several_layers_square_grid" in failed and "gradients" in failed


def _public_files() -> list[Path]:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in files if f.endswith((".py", ".ipynb", ".md")) and (ROOT / f).is_file()]


def _code_of(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        return [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                for c in json.loads(text)["cells"] if c["cell_type"] == "code"]
    if path.suffix == ".md":
        return re.findall(r"```(?:python)?\n(.*?)```", text, flags=re.S)
    return [text]


def _candidates(code: str):
    """Every function definition in ``code`` that takes widths: (name, source)."""
    try:
        tree = ast.parse(textwrap.dedent(re.sub(r"^\s*[!%].*$", "", code, flags=re.M)))
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and len(node.args.args) >= 4 \
                and any("width" in a.arg for a in node.args.args):
            yield node.name, ast.unparse(node)


def test_no_public_file_holds_a_working_answer(built):
    """Every function in a tracked .py/.ipynb/.md file (and in the built student notebooks) that
    takes layer widths, run alone, fails the value tests of every cohort (the generator has no
    function that reads a layout; the reference is generated into the teacher's kit only)."""
    sources = [(p.relative_to(ROOT), c) for p in _public_files() for c in _code_of(p)]
    sources += [(f"student notebook {s}", c) for s, d in built.items()
                for c in _code_of(d / "student" / "apply_tile_mlps.ipynb")]
    found = 0
    value_tests = ("several_layers_square_grid", "non_square_grids_and_batches", "gradients")
    for where, code in sources:
        for name, src in _candidates(code):
            try:
                fn = function_from("import math\nimport numpy as np\n" + src, name)
            except Exception:                                  # noqa: BLE001 - needs its module's context
                continue
            found += 1
            for seed in SEEDS:
                suite = hidden_suite(seed)
                passed = []
                for t in value_tests:
                    try:
                        suite[t][1](fn)
                        passed.append(t)
                    except Exception:                          # noqa: BLE001
                        pass
                assert len(passed) < len(value_tests), f"{where}: {name} answers cohort {seed}"
    assert found >= 5, "the scan found (almost) no functions: is it still looking?"
    assert not (ROOT / "teacher").exists(), "the teacher's edition is a build artifact now (make teacher-kit)"
    for path in _public_files():
        assert "def " + "released_to_library" not in path.read_text(errors="replace"), path


def test_student_notebook_holds_public_tests_only(built):
    for seed, dest in built.items():
        nb = nbformat.read(dest / "student" / "apply_tile_mlps.ipynb", as_version=4)
        text = json.dumps(nb)
        tests = nb.metadata["otter"]["tests"]["q1"]
        assert tests.count("@test_case(") == 4 and "hidden=True" not in tests
        assert "raise NotImplementedError" in text
        for secret in ("einsum", "mlp_from_weights", "not_copied", "BEGIN SOLUTION", seed):
            assert secret not in text, (seed, secret)
        v = cohort.variant(seed)
        assert v.layout.describe() in text and str(v.widths) in text    # students get their spec
        # the worked example's public test passes with the reference (so the spec is consistent)
        ns = {}
        exec(re.sub(r'^""" # BEGIN TEST CONFIG(.|\n)*?""" # END TEST CONFIG\n', "",
                    tests.split("@test_case(points=0.5, hidden=False)\n")[-1]), ns)
        ns["test_worked_example"](reference(seed))
        with pytest.raises(AssertionError):
            ns["test_worked_example"](reference(SEEDS[(SEEDS.index(seed) + 1) % 3]))


def _wrong(kind, seed):
    good = reference(seed)

    def fn(params, x, widths, tile, negative_slope=0.1):
        if kind == "no_activation":
            negative_slope = 1.0
        if kind == "relu":
            negative_slope = 0.0
        if kind == "swap_tile_axes":
            params = params.transpose(2, 3).reshape(params.shape)
        if kind == "first_image_only":
            params = params[:1].expand_as(params)
        if kind == "detached":
            params, x = params.detach(), x.detach()
        if kind == "hard_coded_tile_4":
            tile = 4
        out = good(params, x, widths, tile, negative_slope)
        if kind == "activation_after_last":
            out = F.leaky_relu(out, negative_slope)
        return out
    return fn


@pytest.mark.parametrize("kind", ["no_activation", "relu", "swap_tile_axes", "first_image_only",
                                  "activation_after_last", "detached", "hard_coded_tile_4"])
def test_typical_mistakes_lose_points(kind):
    got, total, failed = hidden_score(_wrong(kind, SEEDS[1]), SEEDS[1])
    assert got < total, f"{kind} was not caught"


def test_every_other_layout_is_caught_by_the_first_value_tests():
    """A solution for any other layout (a neighbouring cohort's, a transposed weight matrix,
    biases in the wrong place) fails 'several layers' and 'non-square grids'."""
    v = cohort.variant(SEEDS[2])
    suite = hidden_suite(SEEDS[2])
    for lay in cohort.LAYOUTS + (cohort.LIBRARY_LAYOUT, cohort.RELEASED_LAYOUT):
        if lay == v.layout:
            continue
        fn = function_from(build.solution_module(cohort.Variant("x", lay, 4, (4.0, 2.0), (8, 8))))
        for t in ("several_layers_square_grid", "non_square_grids_and_batches"):
            with pytest.raises(AssertionError):
                suite[t][1](fn)


# ------------------------------------------------------------------------- the kit
def test_teacher_kit(tmp_path):
    seed = SEEDS[0]
    zpath = build.build_teacher_kit(seed, tmp_path)
    assert "_build" not in zpath.parts
    v = cohort.variant(seed)
    with zipfile.ZipFile(zpath) as z:
        names = z.namelist()
        prefix = f"teacher-kit-{v.fingerprint()}/"
        for need in ("kit/reference_solution.py", "kit/rubric_answers.json", "kit/GRADING_NOTES.md",
                     "kit/hidden_tests.py", "autograder/autograder.zip", "student/apply_tile_mlps.ipynb"):
            assert prefix + need in names, need
        answers = json.loads(z.read(prefix + "kit/rubric_answers.json"))
        notes = z.read(prefix + "kit/GRADING_NOTES.md").decode()
        solution = z.read(prefix + "kit/reference_solution.py").decode()
    b2 = answers["B2"]
    w = v.widths
    assert b2["mlp_widths"] == list(w) and b2["P"] == sum(a * b + b for a, b in zip(w[:-1], w[1:]))
    assert b2["head_params"] == 1025 * b2["P"] and 0 < b2["head_share_percent"] < 100
    assert answers["A"]["reference_score"] == "10 / 10"
    assert "@@" not in notes and v.layout.describe() in notes
    assert hidden_score(function_from(solution), seed)[0] == 8.0


def test_command_line_needs_a_seed():
    run = subprocess.run([sys.executable, "-m", "course.build", "assignment"], cwd=ROOT, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert run.returncode != 0 and "COHORT_SEED" in (run.stdout + run.stderr)
