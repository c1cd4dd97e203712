"""The course assignment (book/assignment): the checker passes the reference solution, fails
the unfilled starter, and catches typical wrong solutions."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ASSIGNMENT = Path(__file__).resolve().parents[1] / "book" / "assignment"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"assignment_{name}", ASSIGNMENT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checker = _load("check_assignment")
reference = _load("reference_solution")


def test_reference_solution_passes_every_check():
    report = checker.check_file(ASSIGNMENT / "reference_solution.py", verbose=False)
    failed = [(r["name"], r["detail"]) for r in report["checks"] if not r["passed"]]
    assert not failed, failed
    assert report["score"] == report["max_score"] == 10.0


def test_reference_solution_matches_the_library_on_the_paper_mlp():
    from inr_lib.pixelwise import apply_mlp_fast

    widths = (11, 64, 64, 64, 64, 31)
    g = torch.Generator().manual_seed(0)
    params = torch.randn(2, 15_263, 3, 5, generator=g) * 0.1
    x = torch.randn(2, 11, 12, 20, generator=g)
    torch.testing.assert_close(reference.apply_tile_mlps(params, x, widths, 4),
                               apply_mlp_fast(params, x, widths, 4), rtol=1e-4, atol=1e-5)


def test_starter_scores_zero_without_crashing():
    report = checker.check_file(ASSIGNMENT / "pixelwise_assignment.py", verbose=False)
    assert report["score"] == 0
    assert all("not implemented" in r["detail"] for r in report["checks"])


def test_files_importing_inr_lib_are_refused(tmp_path):
    cheat = tmp_path / "cheat.py"
    cheat.write_text("from inr_lib.pixelwise import apply_mlp_readable as apply_tile_mlps\n")
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
        # reads each weight block as (c_in, c_out) instead of (c_out, c_in)
        chunks, offset = [], 0
        for cin, cout in zip(widths[:-1], widths[1:]):
            w = params[:, offset:offset + cin * cout]
            B, _, h, wd = w.shape
            chunks.append(w.reshape(B, cin, cout, h, wd).transpose(1, 2).reshape(B, cin * cout, h, wd))
            offset += cin * cout
            chunks.append(params[:, offset:offset + cout])
            offset += cout
        return reference.apply_tile_mlps(torch.cat(chunks, 1), x, widths, tile, negative_slope)

    def detached(params, x, widths, tile, negative_slope=0.1):
        return reference.apply_tile_mlps(params.detach(), x.detach(), widths, tile, negative_slope)

    return {"transposed_weights": transposed_weights, "detached": detached}.get(kind, fn)


@pytest.mark.parametrize("kind", ["no_activation", "relu", "swap_tile_axes", "first_image_only",
                                  "activation_after_last", "transposed_weights", "detached"])
def test_checker_catches_typical_mistakes(kind):
    report = checker.check_function(_wrong(kind), verbose=False)
    assert report["score"] < report["max_score"], f"{kind} was not caught"


def test_checker_command_line(tmp_path):
    script = ASSIGNMENT / "check_assignment.py"
    ok = subprocess.run([sys.executable, str(script), str(ASSIGNMENT / "reference_solution.py"),
                         "--json", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "automatic score: 10.0 / 10.0" in ok.stdout and (tmp_path / "r.json").is_file()
    bad = subprocess.run([sys.executable, str(script), str(ASSIGNMENT / "pixelwise_assignment.py")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "automatic score: 0.0 / 10.0" in bad.stdout
