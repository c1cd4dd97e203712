"""CPU rehearsal of benchmarks/gpu_check.py, the one-command GPU check, so that it cannot rot.

* the orchestration end to end with every step's command replaced by a no-op (``--stub``):
  every stage is in the JSON with its steps, and only the promised files land in --out;
* the commands it builds, run in-process against the real CLI and bench.py on tiny fake CAVE
  scenes, and its parsers applied to what those write;
* the GPU plan's options exist in ``bench.py --help`` / ``python -m inr_lib train --help``;
* timeouts and the overall budget; the scene selection of ``--stage-data``.
"""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inr_lib import cli

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gc = _load("gpu_check")


def _fake_cave(root: Path, size: int = 32) -> Path:
    """Six CAVE-layout scenes of ``size`` x ``size`` px: 4 of dev8 (train or test), 1 not in it."""
    for i, name in enumerate(["balloons", "face", "flowers", "chart_and_stuffed_toy",
                              "fake_and_real_peppers", "cd"]):
        d = root / f"{name}_ms" / f"{name}_ms"
        d.mkdir(parents=True)
        r = np.random.default_rng(i)
        base = r.random((size, size))
        for b in range(1, 32):
            band = (base * (0.3 + 0.7 * b / 31) * 60000).astype(np.uint16)
            Image.fromarray(band).save(d / f"{name}_ms_{b:02d}.png")
        Image.fromarray((r.random((size, size, 3)) * 255).astype(np.uint8)).save(d / f"{name}_RGB.bmp")
    return root


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_check")
    src = _fake_cave(tmp / "src")
    dest = tmp / "gpu_data"
    assert gc.main(["--stage-data", "--source", str(src), "--dest", str(dest), "--no-wheels"]) == 0
    return dest


def test_stage_data_copies_one_test_scene_and_dev8_training_scenes(staged):
    man = json.loads((staged / "MANIFEST.json").read_text())
    assert man["split"] == "dev8" and len(man["test"]) == 1
    assert man["test"][0] in ("chart_and_stuffed_toy", "fake_and_real_peppers")
    assert sorted(man["train"]) == ["balloons", "face", "flowers"]
    copied = sorted(p.name for p in (staged / "cave").iterdir())
    assert copied == sorted(f"{n}_ms" for n in man["train"] + man["test"])   # "cd" is not in dev8
    assert man["total_mib"] <= man["limit_mib"] == 63.0


def test_choose_scenes_fits_the_budget_smallest_first():
    mib = 2**20
    sizes = {"t1": 13 * mib, "t2": 12 * mib, "a": 14 * mib, "b": 12 * mib, "c": 13 * mib, "x": 1 * mib}
    pick = gc.choose_scenes(sizes, ["t1", "t2"], ["a", "b", "c", "nope"], 40 * mib)
    assert pick == {"test": ["t2"], "train": ["b", "c"], "bytes": 37 * mib}
    with pytest.raises(ValueError, match="need one test scene"):
        gc.choose_scenes(sizes, ["t1"], ["a"], 20 * mib)


def test_stub_dry_run_writes_every_stage(staged, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry-run", "--stub",
                           "--data", str(staged), "--out", str(out), "--work", str(work)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads((out / "gpu_check.json").read_text())
    assert set(res["stages"]) == set(gc.STAGES)
    assert res["dry_run"] and res["stub"] and res["date"].endswith("Z")
    assert res["assumed_peak_tflops"]["bf16_dense"] == 989.0
    assert {"python", "cpus", "platform"} <= set(res["environment"])
    assert {"device_name", "versions", "summary", "wall_s"} <= set(res) and res["warnings"] == []
    cmds = {}
    for name in gc.STAGES:
        stage = res["stages"][name]
        assert stage["status"] in ("ok", "partial", "all skipped"), (name, stage)
        for step in stage["steps"]:
            assert {"name", "status"} <= set(step)
            if step["status"] != "skipped":
                assert {"cmd", "rc", "seconds", "timeout_s", "tail"} <= set(step)
                assert "stub of:" in step["tail"]
                cmds[step["name"]] = step["cmd"]
    assert "tests/test_cuda.py" in cmds["pytest_cuda"] and "--junitxml" in cmds["pytest_cuda"]
    assert "benchmarks/bench.py" in cmds["bench_tiny_train"]
    assert "-m inr_lib train --config tiny" in cmds["train"]
    assert "--mode tiled" in cmds["evaluate_tiled"] and "--mode whole" in cmds["evaluate_whole"]
    # only the promised files come back from $OUT (the device tool returns at most 8)
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_check.log"]


def test_only_runs_the_named_stages(staged, tmp_path):
    out = tmp_path / "out"
    assert gc.main(["--dry-run", "--stub", "--only", "train", "evaluate", "--data", str(staged),
                    "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    res = json.loads((out / "gpu_check.json").read_text())
    assert res["summary"] == {"install": "partial", "cuda_tests": "skipped", "bench": "skipped",
                              "train": "ok", "evaluate": "ok"}


def test_commands_run_with_the_real_tools_and_parse(staged, tmp_path):
    a = gc.parse_args(["--dry-run", "--data", str(staged), "--out", str(tmp_path / "out"),
                       "--work", str(tmp_path / "work")])
    py = sys.executable
    # training: the command's arguments through the real CLI, then the summary and projections
    argv = [str(x) for x in gc.train_cmd(a, py)]
    assert argv[:4] == [py, "-m", "inr_lib", "train"]
    assert cli.main(argv[3:]) == 0
    t = gc.train_result(a.work / "run")
    assert t["epochs_done"] == a.epochs == 2 and t["samples_per_s"] > 0
    assert math.isfinite(t["final_val"]["val_psnr"]) and t["val_seconds_per_pass"] > 0
    assert t["train_config"]["model_preset"] == "tiny"
    p = t["projection"]
    assert (p["paper"]["epochs"], p["colab"]["epochs"]) == (1000, 150)
    # hours are rounded to 2 decimals in the JSON: allow that rounding on top of 2 %
    assert p["paper"]["train_hours"] == pytest.approx(p["colab"]["train_hours"] * 1000 / 150, rel=0.02, abs=0.04)
    # evaluation, tiled and whole
    for mode in ("tiled", "whole"):
        js = a.work / f"eval_{mode}.json"
        argv = [str(x) for x in gc.eval_cmd(a, py, mode, js)]
        assert cli.main(argv[3:]) == 0
        e = gc.eval_result(js)
        assert e["protocol"]["inference"]["mode"] == mode and e["protocol"]["device"] == "cpu"
        assert e["scenes"] == json.loads((staged / "MANIFEST.json").read_text())["test"]
        assert math.isfinite(e["mean"]["psnr"])
    # bench.py: the dry-run case, its rows tagged with the fraction of the bf16 peak
    bench = _load("bench")
    name, args, _ = gc.bench_plan(a)[0]
    js = tmp_path / "bench.json"
    bench.main(args + ["--json", str(js)])
    meta, rows = gc.bench_rows(js, name)
    assert meta["device"] == "cpu" and len(rows) == 1 and rows[0]["status"] == "ok", rows
    assert rows[0]["fraction_of_bf16_peak"] == pytest.approx(rows[0]["tflops_achieved"] / 989.0)
    s = gc.bench_summary(rows)["tiny"]
    assert s["best_train"]["samples_per_s"] > 0 and s["train"]["fast_bf16_seconds"] is None
    assert gc.bench_projection(rows, "tiny") is None            # no bf16 row on the CPU
    gpu_like = dict(rows[0], dtype="bf16", samples_per_s=1008 / 3.6)
    proj = gc.bench_projection([gpu_like], "tiny")
    assert (proj["paper_train_hours"], proj["colab_train_hours"]) == (1.0, 0.15)


def test_the_gpu_plan_uses_options_that_exist(capsys):
    a = gc.parse_args(["--work", "/tmp/unused"])
    assert a.device == "cuda" and a.train_config == "paper" and a.epochs == 30

    def flags(cmd):
        return {str(x) for x in cmd if str(x).startswith("--")}

    def help_of(call):
        with pytest.raises(SystemExit):
            call()
        return capsys.readouterr().out

    bench_help = help_of(lambda: _load("bench").main(["--help"]))
    plan = gc.bench_plan(a)
    assert [n for n, *_ in plan] == ["bench_paper_train", "bench_paper_infer", "bench_small",
                                     "bench_compile_paper", "bench_compile_small"]
    for _, args, _timeout in plan:
        assert all(f in bench_help for f in flags(args)), args
        assert "--batch" not in args            # bench.py's CUDA default: 56, the paper's batch
    # the budget (<= 8 minutes) cuts the later benchmarks; the stages before them fit in it
    # with ~40 s for installing
    assert a.budget <= 480
    assert a.t_tests + plan[0][2] + a.t_train + 2 * a.t_eval <= a.budget - 40
    train_help = help_of(lambda: cli.main(["train", "--help"]))
    assert all(f in train_help for f in flags(gc.train_cmd(a, "python"))), train_help
    eval_help = help_of(lambda: cli.main(["evaluate", "--help"]))
    assert all(f in eval_help for f in flags(gc.eval_cmd(a, "python", "whole", Path("x.json"))))


def test_timeouts_and_budget_are_recorded_and_the_check_goes_on(tmp_path):
    r = gc.Runner(tmp_path, budget_s=30, env=None)
    slow = r.run("slow", [sys.executable, "-c", "import time; time.sleep(60)"], timeout_s=1, min_s=0.5)
    assert slow["status"] == "timeout" and slow["seconds"] < 20
    ok = r.run("next", [sys.executable, "-c", "print('fine')"], timeout_s=20, min_s=0.5)
    assert ok["status"] == "ok" and "fine" in ok["tail"]
    bad = r.run("bad", [sys.executable, "-c", "raise SystemExit(3)"], timeout_s=20, min_s=0.5)
    assert bad["status"] == "failed" and bad["rc"] == 3
    r.deadline = r.t0                               # budget spent: later steps are skipped
    assert r.run("late", [sys.executable, "-c", "pass"], timeout_s=20)["status"] == "skipped"
    assert gc._worst([slow, ok]) == "timeout" and gc._worst([ok, {"status": "skipped"}]) == "partial"

    def broken_stage(runner):
        raise KeyError("no such field")

    rec = gc._guard(broken_stage, r)             # an orchestration bug is recorded, not fatal
    assert rec["status"] == "error" and "no such field" in rec["error"]


def test_junit_report_is_read(tmp_path):
    root = ET.Element("testsuites")
    s = ET.SubElement(root, "testsuite", tests="3", failures="1", errors="0", skipped="1")
    ET.SubElement(s, "testcase", classname="tests.test_cuda", name="test_a", time="0.5")
    f = ET.SubElement(ET.SubElement(s, "testcase", classname="tests.test_cuda", name="test_b", time="1"),
                      "failure", message="assert 1 == 2")
    f.text = "trace"
    ET.SubElement(ET.SubElement(s, "testcase", classname="tests.test_cuda", name="test_c", time="0"),
                  "skipped", message="no CUDA")
    path = tmp_path / "r.xml"
    ET.ElementTree(root).write(path)
    j = gc.junit_result(path)
    assert j["counts"] == {"tests": 3, "failures": 1, "errors": 0, "skipped": 1}
    assert [c["outcome"] for c in j["cases"]] == ["passed", "failure", "skipped"]
    assert j["cases"][1]["message"] == "assert 1 == 2"
