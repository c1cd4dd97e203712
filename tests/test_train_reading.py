"""How much of the training package one has to read to follow a run.

A ``tiny`` training through the command line, one epoch, then resumed for one more epoch:
every named function of ``inr_lib.train`` that either run enters is counted (with
``sys.setprofile``; comprehensions, lambdas and generator expressions are not functions one
reads separately). The loop was once spread over 48 such functions; the budget is 24.
"""
from __future__ import annotations

import sys
from pathlib import Path

import inr_lib.train
from inr_lib.cli import main

PACKAGE = str(Path(inr_lib.train.__file__).parent)
BUDGET = 24


def _entered(argv: list, seen: set) -> None:
    def profile(frame, event, arg):
        code = frame.f_code
        if event == "call" and code.co_filename.startswith(PACKAGE) and not code.co_name.startswith("<"):
            name = getattr(code, "co_qualname", code.co_name)   # Python 3.11+; else the name
            seen.add(f"{Path(code.co_filename).stem}.{name}:{code.co_firstlineno}")

    sys.setprofile(profile)
    try:
        assert main(argv) == 0
    finally:
        sys.setprofile(None)


def test_a_resumed_tiny_run_enters_few_training_functions(tmp_path, synth, capsys):
    argv = ["train", "--config", "tiny", "--data", synth, "--out", str(tmp_path / "run"),
            "--device", "cpu"]
    seen: set = set()
    _entered(argv + ["--epochs", "1"], seen)
    _entered(argv + ["--epochs", "2", "--resume"], seen)
    assert "resuming" in capsys.readouterr().out
    with capsys.disabled():
        print(f"\n{len(seen)} functions of inr_lib.train entered (budget {BUDGET}): "
              + ", ".join(sorted(seen)))
    names = {s.split(":")[0] for s in seen}
    assert {"loop.train", "loop.train_step", "rundir.claim"} <= names   # the counter sees them
    assert len(seen) <= BUDGET, sorted(seen)
