"""Automatic checker for the pixelwise assignment (``pixelwise_assignment.py``).

Compares a student's ``apply_tile_mlps(params, x, widths, tile, negative_slope=0.1)`` with a
reference for the **released INR-HSISR code's parameter layout** (per layer: the bias, then
the weight matrix stored as ``(c_in, c_out)``), on random inputs (float64, fixed seeds):
output shapes, values for one and several layers, square and non-square grids of tiles,
batches of more than one image, tile sizes 1/2/4/8, the LeakyReLU slope, gradients with
respect to both inputs, dtype and in-place safety, and the error for a parameter vector of
the wrong length. Each check is worth points (10 in total).

The reference is the teacher's solution, ``teacher/reference_solution.py`` at the root of the
book's repository, when that file exists (or the file named by the environment variable
``INR_ASSIGNMENT_REFERENCE``). Without it (a student's copy of this file), the checker
rearranges the parameters into ``inr_lib``'s layout and calls
``inr_lib.model.pixelwise.apply_mlp_readable``, so ``inr_lib`` must be installed. Either way the
expected values are the same.

Usage::

    python check_assignment.py my_solution.py            # prints a report, exit status 0 if all pass
    python check_assignment.py my_solution.py --json report.json

or from Python::

    from check_assignment import check_file, check_function
    report = check_file("my_solution.py")                # dict: score, max_score, checks, ...

A file that imports ``inr_lib`` is refused (score 0): the point is to write the function, not
to call the library's. This is a plain source check for honest mistakes, not a sandbox:
the checker runs the submitted code, so only run it on files you are willing to execute.

The file is named ``check_*.py``, not ``test_*.py``, so that ``pytest`` does not collect it
(``tests/test_assignment.py`` runs it against the teacher's reference solution instead).
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Callable

import torch

FUNCTION = "apply_tile_mlps"


def _teacher_reference_path() -> Path | None:
    """``teacher/reference_solution.py`` of the repository (or $INR_ASSIGNMENT_REFERENCE), if present."""
    named = os.environ.get("INR_ASSIGNMENT_REFERENCE")
    if named:
        if not Path(named).is_file():
            raise FileNotFoundError(f"INR_ASSIGNMENT_REFERENCE={named}: no such file; unset it or fix the path")
        return Path(named)
    here = Path(__file__).resolve().parent                   # book/assignment
    candidate = here.parents[1] / "teacher" / "reference_solution.py" if len(here.parents) > 1 else None
    return candidate if candidate is not None and candidate.is_file() else None


_REFERENCE: Callable | None = None


def reference_source() -> str:
    """Where the expected values come from: the teacher's file or the library fallback."""
    path = _teacher_reference_path()
    return str(path) if path else "inr_lib.model.pixelwise.apply_mlp_readable on rearranged parameters"


def released_to_library(params, widths):
    """Reorder ``(B, P, h, w)`` released-layout vectors (bias, then W as (c_in, c_out)) into
    ``inr_lib``'s layout (W as (c_out, c_in) row by row, then bias)."""
    chunks, offset = [], 0
    B, _, h, w = params.shape
    for cin, cout in zip(widths[:-1], widths[1:]):
        bias = params[:, offset:offset + cout]
        offset += cout
        weight = params[:, offset:offset + cin * cout].reshape(B, cin, cout, h, w)
        offset += cin * cout
        chunks += [weight.transpose(1, 2).reshape(B, cin * cout, h, w), bias]
    return torch.cat(chunks, dim=1)


def _library_reference(params, x, widths, tile, negative_slope=0.1):
    from inr_lib.model.pixelwise import apply_mlp_readable

    return apply_mlp_readable(released_to_library(params, widths), x, widths, tile, negative_slope)


def _reference(params, x, widths, tile, negative_slope=0.1):
    global _REFERENCE
    if _REFERENCE is None:
        path = _teacher_reference_path()
        if path is None:
            _REFERENCE = _library_reference
        else:
            spec = importlib.util.spec_from_file_location("_assignment_reference", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _REFERENCE = module.apply_tile_mlps
    return _REFERENCE(params, x, widths, tile, negative_slope)


def _count(widths) -> int:
    return sum(cin * cout + cout for cin, cout in zip(widths[:-1], widths[1:]))


def _inputs(batch, h, w, widths, tile, seed, dtype=torch.float64):
    """Random parameters and inputs of a realistic scale (weights ~ 1/sqrt(c_in))."""
    g = torch.Generator().manual_seed(seed)
    params = torch.randn(batch, _count(widths), h, w, generator=g, dtype=dtype)
    params = params * (1.0 / max(widths[:-1]) ** 0.5)
    x = torch.randn(batch, widths[0], h * tile, w * tile, generator=g, dtype=dtype)
    return params, x


def _compare(student, batch, h, w, widths, tile, seed, slope=0.1, pass_slope=False):
    params, x = _inputs(batch, h, w, widths, tile, seed)
    want = _reference(params, x, widths, tile, slope)
    kwargs = {"negative_slope": slope} if pass_slope else {}
    got = student(params.clone(), x.clone(), tuple(widths), tile, **kwargs)
    case = f"B={batch}, {h}x{w} tiles of {tile}x{tile}, widths {tuple(widths)}"
    if not torch.is_tensor(got):
        return False, f"{case}: returned a {type(got).__name__}, expected a tensor"
    if tuple(got.shape) != tuple(want.shape):
        return False, f"{case}: output shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    err = (got.double() - want).abs().max().item()
    if not err <= 1e-9:
        where = tuple(int(i) for i in torch.nonzero((got.double() - want).abs() == err)[0])
        return False, f"{case}: values differ from the reference by up to {err:.3g} (first at index {where})"
    return True, f"{case}: max difference {err:.1e}"


# ------------------------------------------------------------------------------- the checks
def check_shapes(student):
    params, x = _inputs(2, 2, 3, (5, 8, 6), 4, seed=1)
    out = student(params, x, (5, 8, 6), 4)
    if not torch.is_tensor(out):
        return False, f"returned a {type(out).__name__}, expected a tensor"
    if tuple(out.shape) != (2, 6, 8, 12):
        return False, f"B=2, C_in=5, 2x3 tiles of 4x4, C_out=6: got shape {tuple(out.shape)}, expected (2, 6, 8, 12)"
    return True, "(2, 5, 8, 12) -> (2, 6, 8, 12)"


def check_one_layer(student):
    # a single layer is a plain linear map per tile: catches inr_lib's layout (weights first,
    # (c_out, c_in)) and a transposed weight matrix early
    return _compare(student, 1, 1, 1, (3, 4), 2, seed=2)


def check_square(student):
    return _compare(student, 1, 3, 3, (11, 16, 16, 31), 4, seed=3)


def check_nonsquare_batch(student):
    ok, detail = _compare(student, 3, 2, 5, (11, 12, 9, 31), 4, seed=4)
    if not ok:
        return ok, detail
    ok2, detail2 = _compare(student, 2, 5, 2, (7, 6, 5), 4, seed=5)
    return ok2, (detail + "; " + detail2) if ok2 else detail2


def check_tile_sizes(student):
    details = []
    for tile, (h, w) in ((1, (3, 5)), (2, (4, 3)), (8, (1, 2))):
        ok, detail = _compare(student, 2, h, w, (4, 6, 3), tile, seed=10 + tile)
        if not ok:
            return False, detail
        details.append(f"tile {tile} ok")
    return True, ", ".join(details)


def check_slope(student):
    for slope in (0.0, 0.3):
        ok, detail = _compare(student, 2, 2, 3, (4, 6, 6, 3), 4, seed=20, slope=slope, pass_slope=True)
        if not ok:
            return False, f"negative_slope={slope}: {detail}"
    return True, "negative_slope=0.0 (ReLU) and 0.3 honoured"


def check_gradients(student):
    widths, tile = (5, 7, 7, 4), 2
    params, x = _inputs(2, 3, 2, widths, tile, seed=30)
    g = torch.Generator().manual_seed(31)
    upstream = torch.randn(2, widths[-1], 3 * tile, 2 * tile, generator=g, dtype=torch.float64)
    grads = []
    for fn in (_reference, student):
        p, xx = params.clone().requires_grad_(True), x.clone().requires_grad_(True)
        out = fn(p, xx, widths, tile)
        if not out.requires_grad:
            return False, "the output does not require grad: the function cut the graph (.detach(), numpy, ...)"
        (out * upstream).sum().backward()
        if p.grad is None or xx.grad is None:
            return False, "no gradient reached " + ("params" if p.grad is None else "x")
        grads.append((p.grad, xx.grad))
    ep = (grads[0][0] - grads[1][0]).abs().max().item()
    ex = (grads[0][1] - grads[1][1]).abs().max().item()
    if not (ep <= 1e-9 and ex <= 1e-9):
        return False, f"gradients differ from the reference: params by {ep:.3g}, x by {ex:.3g}"
    # and a finite-difference check of the function itself on a tiny case
    tiny_w = (2, 3, 2)
    p, xx = _inputs(1, 1, 2, tiny_w, 2, seed=32)
    ok = torch.autograd.gradcheck(lambda a, b: student(a, b, tiny_w, 2),
                                  (p.requires_grad_(True), xx.requires_grad_(True)),
                                  eps=1e-6, atol=1e-6, raise_exception=False)
    if not ok:
        return False, "torch.autograd.gradcheck failed (analytic and numerical gradients differ)"
    return True, f"max difference params {ep:.1e}, x {ex:.1e}; gradcheck passed"


def check_dtype_and_inputs(student):
    params, x = _inputs(2, 2, 2, (4, 5, 3), 4, seed=40, dtype=torch.float32)
    p0, x0 = params.clone(), x.clone()
    out = student(params, x, (4, 5, 3), 4)
    if out.dtype != torch.float32:
        return False, f"float32 inputs gave a {out.dtype} output"
    if not (torch.equal(params, p0) and torch.equal(x, x0)):
        return False, "the function changed its inputs in place"
    want = _reference(p0.double(), x0.double(), (4, 5, 3), 4)
    err = (out.double() - want).abs().max().item()
    if not err <= 1e-4:
        return False, f"float32 result differs from the float64 reference by {err:.3g}"
    return True, "float32 kept, inputs unchanged"


def check_errors(student):
    params, x = _inputs(1, 2, 2, (4, 5, 3), 4, seed=50)
    try:
        student(params[:, :-1], x, (4, 5, 3), 4)
    except ValueError:
        return True, "a parameter vector one number short raises ValueError"
    except NotImplementedError:
        raise
    except Exception as e:  # noqa: BLE001 - any other exception is reported
        return False, f"a parameter vector one number short raised {type(e).__name__}, expected ValueError"
    return False, "a parameter vector one number short was accepted silently; raise ValueError"


#: (name, points, check)
CHECKS: list[tuple[str, float, Callable]] = [
    ("output shape", 1.0, check_shapes),
    ("one linear layer per tile", 1.0, check_one_layer),
    ("several layers, square grid of tiles", 1.0, check_square),
    ("non-square grids, batch > 1", 2.0, check_nonsquare_batch),
    ("tile sizes 1, 2 and 8", 1.0, check_tile_sizes),
    ("LeakyReLU slope", 1.0, check_slope),
    ("gradients", 2.0, check_gradients),
    ("float32 and inputs unchanged", 0.5, check_dtype_and_inputs),
    ("error for a wrong parameter count", 0.5, check_errors),
]


# ------------------------------------------------------------------------------- running
def imports_inr_lib(source: str) -> list[str]:
    """Lines of ``source`` that import ``inr_lib`` (a plain syntax-tree scan)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        if any(n == "inr_lib" or n.startswith("inr_lib.") for n in names):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def check_function(student: Callable, verbose: bool = True) -> dict:
    """Run every check on ``student`` and return the report (and print it if ``verbose``)."""
    torch.manual_seed(0)
    results = []
    for name, points, fn in CHECKS:
        try:
            passed, detail = fn(student)
        except NotImplementedError:
            passed, detail = False, "not implemented yet"
        except Exception as e:  # noqa: BLE001 - a crash fails the check, with the reason
            tb = traceback.extract_tb(e.__traceback__)
            where = f" ({Path(tb[-1].filename).name}, line {tb[-1].lineno})" if tb else ""
            passed, detail = False, f"raised {type(e).__name__}: {str(e)[:200]}{where}"
        results.append({"name": name, "passed": bool(passed), "points": points if passed else 0.0,
                        "max_points": points, "detail": detail})
    report = {"score": sum(r["points"] for r in results),
              "max_score": sum(p for _, p, _ in CHECKS), "checks": results, "refused": None}
    if verbose:
        print_report(report)
    return report


def check_file(path, verbose: bool = True) -> dict:
    """Import ``apply_tile_mlps`` from the file at ``path`` and check it."""
    path = Path(path)
    source = path.read_text()
    bad = imports_inr_lib(source)
    if bad:
        report = {"score": 0.0, "max_score": sum(p for _, p, _ in CHECKS), "checks": [],
                  "refused": f"{path.name} imports inr_lib ({'; '.join(bad)}); write the function "
                             f"with torch only"}
        if verbose:
            print_report(report)
        return report
    spec = importlib.util.spec_from_file_location(f"_student_{abs(hash(str(path.resolve())))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    student = getattr(module, FUNCTION, None)
    if not callable(student):
        raise AttributeError(f"{path} defines no function {FUNCTION}(params, x, widths, tile)")
    report = check_function(student, verbose=False)
    report["file"] = str(path)
    if verbose:
        print_report(report)
    return report


def print_report(report: dict) -> None:
    if report.get("refused"):
        print(f"REFUSED: {report['refused']}")
    for r in report["checks"]:
        mark = "PASS" if r["passed"] else "FAIL"
        print(f"[{mark}] {r['name']:<38s} {r['points']:>4.1f}/{r['max_points']:.1f}  {r['detail']}")
    print(f"automatic score: {report['score']:.1f} / {report['max_score']:.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Check an apply_tile_mlps implementation.")
    ap.add_argument("file", help="the Python file that defines apply_tile_mlps")
    ap.add_argument("--json", default=None, help="also write the report to this JSON file")
    args = ap.parse_args(argv)
    report = check_file(args.file)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["score"] == report["max_score"] else 1


if __name__ == "__main__":
    sys.exit(main())
