"""The course assignment (book/assignment) and its teacher's edition (teacher/): the checker
passes the teacher's reference solution, fails the unfilled starter, code copied from inr_lib
(the library's parameter layout) and typical wrong solutions; the public files hold no
solution of the graded task."""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = ROOT / "book" / "assignment"
TEACHER = ROOT / "teacher"
REFERENCE = TEACHER / "reference_solution.py"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"assignment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checker = _load(ASSIGNMENT / "check_assignment.py")
reference = _load(REFERENCE)


def test_checker_uses_the_teachers_reference():
    assert checker.reference_source() == str(REFERENCE)


def test_reference_solution_passes_every_check():
    report = checker.check_file(REFERENCE, verbose=False)
    failed = [(r["name"], r["detail"]) for r in report["checks"] if not r["passed"]]
    assert not failed, failed
    assert report["score"] == report["max_score"] == 10.0


def test_reference_solution_is_the_released_layout_of_the_paper_mlp():
    """Released layout (bias, then W as (c_in, c_out)) rearranged == inr_lib's fast path."""
    from inr_lib.model.pixelwise import apply_mlp_fast

    widths = (11, 64, 64, 64, 64, 31)
    g = torch.Generator().manual_seed(0)
    params = torch.randn(2, 15_263, 3, 5, generator=g) * 0.1
    x = torch.randn(2, 11, 12, 20, generator=g)
    library_params = checker.released_to_library(params, widths)
    torch.testing.assert_close(reference.apply_tile_mlps(params, x, widths, 4),
                               apply_mlp_fast(library_params, x, widths, 4), rtol=1e-4, atol=1e-5)


def test_library_fallback_agrees_with_the_teachers_reference():
    """A student's checker without teacher/ expects the same values."""
    params, x = checker._inputs(2, 2, 3, (5, 7, 4), 4, seed=3)
    torch.testing.assert_close(checker._library_reference(params, x, (5, 7, 4), 4, 0.2),
                               reference.apply_tile_mlps(params, x, (5, 7, 4), 4, 0.2))


def test_code_copied_from_inr_lib_fails():
    """The library's (and chapters 4-5's) layout is not the graded one."""
    from inr_lib.model.pixelwise import apply_mlp_fast, apply_mlp_readable

    for fn in (apply_mlp_readable, apply_mlp_fast):
        report = checker.check_function(fn, verbose=False)
        assert report["score"] <= 0.5 * report["max_score"], (fn.__name__, report["score"])
        assert not report["checks"][1]["passed"]              # "one linear layer per tile"


def _public_text_files():
    book = ROOT / "book"
    files = sorted(p for p in book.rglob("*") if p.suffix in {".py", ".md", ".ipynb"}
                   and "_build" not in p.parts)
    assert files
    return files


def _text_of(path: Path) -> str:
    """A file's text; for a notebook, the sources of all its cells, one after the other."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells)
    return path.read_text()


def _defined_functions(text: str, name: str) -> list[str]:
    """Source of every ``def name(...)`` in ``text`` (Python, or code inside Markdown)."""
    bodies = []
    for m in re.finditer(rf"^[ \t]*def {name}\(", text, flags=re.M):
        block = textwrap.dedent(text[m.start():].split("```")[0]).splitlines()
        for end in range(len(block), 0, -1):              # the longest prefix that parses
            try:
                tree = ast.parse("\n".join(block[:end]))
            except SyntaxError:
                continue
            bodies.append(ast.unparse(tree.body[0]))
            break
        else:
            bodies.append("\n".join(block))
    return bodies


def test_public_book_holds_no_solution_of_the_graded_task():
    assert not (ASSIGNMENT / "reference_solution.py").exists(), "the reference belongs in teacher/"
    found = 0
    for path in _public_text_files():
        for body in _defined_functions(_text_of(path), "apply_tile_mlps"):
            found += 1
            assert "NotImplementedError" in body, f"{path.relative_to(ROOT)} defines a working apply_tile_mlps"
    assert found >= 1                                   # the starter itself
    course = (ROOT / "book" / "12_course.ipynb").read_text()
    for answer in ("15,644,575", "15644575", "1025 * 15_263"):
        assert answer not in course, f"chapter 12 shows the rubric answer {answer}"


def test_teacher_folder_is_out_of_the_book():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "teacher" in config["exclude_patterns"]
    assert "teacher" not in (ROOT / "_toc.yml").read_text()


def test_teachers_edition_answers_are_computed_right():
    """teacher/rubric_answers.py recomputes the numbers the rubric expects."""
    run = subprocess.run([sys.executable, str(TEACHER / "rubric_answers.py")], capture_output=True,
                         text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all rubric answers checked" in run.stdout


def test_starter_scores_zero_without_crashing():
    report = checker.check_file(ASSIGNMENT / "pixelwise_assignment.py", verbose=False)
    assert report["score"] == 0
    assert all("not implemented" in r["detail"] for r in report["checks"])


def test_files_importing_inr_lib_are_refused(tmp_path):
    cheat = tmp_path / "cheat.py"
    cheat.write_text("from inr_lib.model.pixelwise import apply_mlp_readable as apply_tile_mlps\n")
    report = checker.check_file(cheat, verbose=False)
    assert report["refused"] and report["score"] == 0


def _wrong(kind):
    """Typical mistakes, each a small change of the reference solution."""
    def fn(params, x, widths, tile, negative_slope=0.1):
        if kind == "no_activation":
            negative_slope = 1.0                                   # LeakyReLU forgotten
        if kind == "relu":
            negative_slope = 0.0                                   # ReLU instead of LeakyReLU(0.1)
        if kind == "swap_tile_axes":                               # tiles taken column-major
            params = params.transpose(2, 3).reshape(params.shape)
        if kind == "first_image_only":                             # batch ignored for the weights
            params = params[:1].expand_as(params)
        out = reference.apply_tile_mlps(params, x, widths, tile, negative_slope)
        if kind == "activation_after_last":
            out = F.leaky_relu(out, negative_slope)
        return out

    def transposed_weights(params, x, widths, tile, negative_slope=0.1):
        # reads each weight block as (c_out, c_in) instead of (c_in, c_out)
        chunks, offset = [], 0
        for cin, cout in zip(widths[:-1], widths[1:]):
            chunks.append(params[:, offset:offset + cout])
            offset += cout
            w = params[:, offset:offset + cin * cout]
            B, _, h, wd = w.shape
            chunks.append(w.reshape(B, cout, cin, h, wd).transpose(1, 2).reshape(B, cin * cout, h, wd))
            offset += cin * cout
        return reference.apply_tile_mlps(torch.cat(chunks, 1), x, widths, tile, negative_slope)

    def weights_first(params, x, widths, tile, negative_slope=0.1):
        # weight block before the bias (as inr_lib), W still (c_in, c_out)
        chunks, offset = [], 0
        for cin, cout in zip(widths[:-1], widths[1:]):
            w = params[:, offset:offset + cin * cout]
            b = params[:, offset + cin * cout:offset + cin * cout + cout]
            chunks += [b, w]
            offset += cin * cout + cout
        return reference.apply_tile_mlps(torch.cat(chunks, 1), x, widths, tile, negative_slope)

    def detached(params, x, widths, tile, negative_slope=0.1):
        return reference.apply_tile_mlps(params.detach(), x.detach(), widths, tile, negative_slope)

    return {"transposed_weights": transposed_weights, "weights_first": weights_first,
            "detached": detached}.get(kind, fn)


@pytest.mark.parametrize("kind", ["no_activation", "relu", "swap_tile_axes", "first_image_only",
                                  "activation_after_last", "transposed_weights", "weights_first",
                                  "detached"])
def test_checker_catches_typical_mistakes(kind):
    report = checker.check_function(_wrong(kind), verbose=False)
    assert report["score"] < report["max_score"], f"{kind} was not caught"


def test_checker_command_line(tmp_path):
    script = ASSIGNMENT / "check_assignment.py"
    ok = subprocess.run([sys.executable, str(script), str(REFERENCE),
                         "--json", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "automatic score: 10.0 / 10.0" in ok.stdout and (tmp_path / "r.json").is_file()
    bad = subprocess.run([sys.executable, str(script), str(ASSIGNMENT / "pixelwise_assignment.py")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "automatic score: 0.0 / 10.0" in bad.stdout
