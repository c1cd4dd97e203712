"""One prepared check of the CUDA paths on a GPU machine, with numbers for the book.

Run from the repository root (``benchmarks/gpu_check.sh`` does that)::

    python benchmarks/gpu_check.py --out OUT_DIR            # on the GPU machine, <= 8 minutes
    python benchmarks/gpu_check.py --stage-data             # beforehand, where the data is
    python benchmarks/gpu_check.py --dry-run --out DIR      # CPU rehearsal with tiny sizes

Stages, in order of priority (each step has its own timeout inside an overall ``--budget``;
a step that fails or times out is recorded and the check goes on; the JSON is rewritten
after every step so that a run cut short still leaves its results):

0. ``install``: the carried wheels (``gpu_data/wheels``: packages the GPU image lacks) and
   ``pip install --no-deps --no-build-isolation -e .`` (offline; the machine's CUDA torch is
   kept), then versions, device name and date;
1. ``cuda_tests``: ``pytest tests/test_cuda.py`` plus the other CUDA tests (``-k cuda``),
   with a JUnit XML report;
2. ``bench``: ``benchmarks/bench.py`` for ``paper`` and ``small``: training step (batch 56 of
   64x64 crops) and 512x512 inference, bf16 / tf32 / fp32, readable and fast paths, then
   ``torch.compile`` where time allows; every row gets its fraction of the bf16 peak;
3. ``train``: the paper model with the paper recipe on the carried CAVE scenes for
   ``--epochs`` epochs (``python -m inr_lib train``), samples/s and projected times for the
   paper's 1000 epochs and the ``colab`` schedule;
4. ``evaluate``: ``python -m inr_lib evaluate`` of that run on the carried test scene,
   tiled and whole.

Files written to ``--out``: ``gpu_check.json`` (everything), ``gpu_check.log`` (the output
of every step) and ``pytest_cuda.xml``. Bulky files (checkpoints) stay in ``--work``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: dense bf16 peak assumed for the "fraction of peak" column (H100 SXM and H200 data sheets)
BF16_PEAK_TFLOPS = 989.0
#: the development CAVE scenes (not part of the repository) and their split
SOURCE_CAVE = REPO.parent / "shared" / "data" / "cave"
SPLIT = "dev8"
#: packages of pyproject.toml that the GPU image lacks (see benchmarks/README.md)
WHEELS = ("pypng", "colour-science")
#: what one `run` call may carry (working tree + carried folders)
CARRY_LIMIT_MIB = 64
#: the paper's epoch: 56 crops from each of 18 training scenes
PAPER_CROPS_PER_EPOCH = 56 * 18
STAGES = ("install", "cuda_tests", "bench", "train", "evaluate")


# ------------------------------------------------------------------------------ steps
class Runner:
    """Runs commands with timeouts inside an overall budget; logs output to one file."""

    def __init__(self, out: Path, budget_s: float, env: dict, stub: bool = False):
        self.out, self.env, self.stub = out, env, stub
        self.t0 = time.monotonic()
        self.deadline = self.t0 + budget_s
        self.log_path = out / "gpu_check.log"

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, cmd: list, timeout_s: float, min_s: float = 10.0) -> dict:
        """Run ``cmd``; returns ``{name, cmd, status (ok|failed|timeout|skipped), rc,
        seconds, timeout_s, tail}``. The timeout is cut to what the budget leaves (minus
        5 s for writing results); with less than ``min_s`` left the step is skipped."""
        cmd = [str(c) for c in cmd]
        rec = {"name": name, "cmd": " ".join(cmd)}
        timeout = min(timeout_s, self.left() - 5.0)
        if timeout < min_s:
            return {**rec, "status": "skipped", "reason": f"budget: {max(0.0, self.left()):.0f} s left"}
        rec["timeout_s"] = round(timeout, 1)
        with open(self.log_path, "a") as log:
            log.write(f"\n===== {name} (timeout {timeout:.0f} s): {rec['cmd']}\n")
            log.flush()
            start = log.tell()
            t = time.monotonic()
            run = [sys.executable, "-c", "import sys; print('stub of:', *sys.argv[1:])"] + cmd \
                if self.stub else cmd
            proc = subprocess.Popen(run, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
                status = "ok" if rc == 0 else "failed"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)     # the step's own process group
                rc = proc.wait()
                status = "timeout"
            secs = time.monotonic() - t
            log.write(f"===== {name}: {status} (rc {rc}) in {secs:.1f} s\n")
        with open(self.log_path, "rb") as f:
            f.seek(max(start, os.path.getsize(self.log_path) - 3000))
            tail = f.read().decode("utf-8", "replace")
        print(f"[gpu_check] {name}: {status} in {secs:.0f} s", flush=True)
        return {**rec, "status": status, "rc": rc, "seconds": round(secs, 1), "tail": tail[-1500:]}


def _worst(steps: list) -> str:
    """Status of a stage from its steps: ``skipped`` (all), ``timeout``, ``failed``,
    ``partial`` (some skipped) or ``ok``."""
    statuses = [s["status"] for s in steps] or ["skipped"]
    if all(x == "skipped" for x in statuses):
        return "skipped"
    for s in ("timeout", "failed"):
        if s in statuses:
            return s
    return "partial" if "skipped" in statuses else "ok"


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------ stage 0
ENV_SCRIPT = r"""
import json, os, platform, sys
from importlib import metadata
info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
pk = {}
for name in ("torch", "numpy", "scipy", "h5py", "pillow", "pypng", "colour-science", "scikit-image",
             "matplotlib", "tqdm", "PyYAML", "safetensors", "pytest", "triton", "inr_lib"):
    try:
        pk[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pk[name] = None
info["packages"] = pk
info["missing"] = [n for n, v in pk.items() if v is None and n != "triton"]
try:
    import inr_lib
    info["inr_lib_file"] = inr_lib.__file__
except Exception as e:
    info["inr_lib_error"] = repr(e)
import torch
info["torch"] = torch.__version__
info["torch_cuda"] = torch.version.cuda
info["cuda_available"] = torch.cuda.is_available()
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(device_name=p.name, capability=f"{p.major}.{p.minor}",
                gpu_memory_gib=round(p.total_memory / 2**30, 1), sm_count=p.multi_processor_count,
                bf16_supported=torch.cuda.is_bf16_supported(),
                cudnn=torch.backends.cudnn.version(), device_count=torch.cuda.device_count())
else:
    info["device_name"] = "cpu (" + (platform.processor() or platform.machine()) + ")"
print("ENV_JSON " + json.dumps(info))
"""


def stage_install(r: Runner, a, py: str) -> dict:
    steps = []
    wheels = sorted((a.data / "wheels").glob("*.whl"))
    pip = [py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    if a.dry_run:
        steps.append({"name": "pip", "status": "skipped", "reason": "dry run (would run: "
                      f"{' '.join(pip)} {len(wheels)} wheels; {' '.join(pip)} --no-build-isolation -e .)"})
    else:
        if wheels:
            steps.append(r.run("pip_wheels", pip + wheels, 60))
        else:
            steps.append({"name": "pip_wheels", "status": "skipped",
                          "reason": f"no wheels in {a.data / 'wheels'} (run --stage-data)"})
        steps.append(r.run("pip_editable", pip + ["--no-build-isolation", "-e", "."], 60))
    env_step = r.run("environment", [py, "-c", ENV_SCRIPT], 60)
    steps.append(env_step)
    env = {}
    m = re.search(r"ENV_JSON (\{.*\})", env_step.get("tail", ""))
    if m:
        env = json.loads(m.group(1))
        env_step["tail"] = env_step["tail"][:m.start()]
    env.setdefault("python", platform.python_version())
    env.setdefault("platform", platform.platform())
    env.setdefault("cpus", os.cpu_count())
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            env["nvidia_smi"] = subprocess.run(
                [smi, "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError) as e:
            env["nvidia_smi"] = f"failed: {e}"
    try:
        env["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                           text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        env["git_commit"] = None
    return {"status": _worst(steps), "steps": steps, "environment": env}


# ------------------------------------------------------------------------------ stage 1
def stage_cuda_tests(r: Runner, a, py: str) -> dict:
    xml = a.out / "pytest_cuda.xml"
    xml.unlink(missing_ok=True)
    step = r.run("pytest_cuda", pytest_cmd(py, xml), a.t_tests)
    out = {"status": step["status"], "steps": [step]}
    if xml.is_file():
        out.update(junit_result(xml))
        if step["status"] == "ok" and out["counts"]["skipped"] == out["counts"]["tests"]:
            out["status"] = "all skipped"   # e.g. no CUDA (the dry run)
    return out


def pytest_cmd(py: str, xml: Path) -> list:
    """The CUDA tests: tests/test_cuda.py and the CUDA tests of other files (``-k cuda``)."""
    return [py, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={xml}",
            "tests/test_cuda.py", "tests/test_metrics.py", "tests/test_baselines.py", "-k", "cuda"]


def junit_result(path: Path) -> dict:
    """``{"counts": {tests, failures, errors, skipped}, "cases": [{name, outcome, seconds, message?}]}``."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    cases = []
    for c in root.iter("testcase"):
        outcome, msg = "passed", None
        for tag in ("failure", "error", "skipped"):
            e = c.find(tag)
            if e is not None:
                outcome, msg = tag, (e.get("message") or "")[:300]
                break
        cases.append({"name": f"{c.get('classname')}::{c.get('name')}", "outcome": outcome,
                      "seconds": float(c.get("time", 0)), **({"message": msg} if msg else {})})
    return {"counts": counts, "cases": cases}


# ------------------------------------------------------------------------------ stage 2
def bench_plan(a) -> list:
    """``(name, bench.py arguments, timeout s)`` in order of priority."""
    if a.dry_run:
        # one case (each case is a process of its own): the CPU rehearsal must stay short
        return [("bench_tiny_train", ["--device", "cpu", "--presets", "tiny", "--kinds", "train",
                                      "--paths", "fast", "--dtypes", "fp32", "--crop", "32",
                                      "--batch", "2", "--image", "48", "--repeat", "1", "--warmup", "0",
                                      "--threads", "1"], 60)]
    common = ["--device", "cuda", "--repeat", "5", "--warmup", "2"]
    both = ["--paths", "readable", "fast", "--dtypes", "bf16", "tf32", "fp32", "--compile", "off"]
    return [
        ("bench_paper_train", common + ["--presets", "paper", "--kinds", "train"] + both, 100),
        ("bench_paper_infer", common + ["--presets", "paper", "--kinds", "infer"] + both, 75),
        ("bench_small", common + ["--presets", "small", "--kinds", "train", "infer"] + both, 75),
    ] + [(f"bench_compile_{p}", common + ["--presets", p, "--kinds", "train", "--paths", "fast",
                                          "--dtypes", "bf16", "--compile", "on"], t)
         for p, t in (("paper", 100), ("small", 70))]


def run_bench(r: Runner, a, py: str, steps_plan: list) -> dict:
    steps, rows = [], []
    for name, args, timeout in steps_plan:
        js = a.work / f"{name}.json"
        js.unlink(missing_ok=True)
        step = r.run(name, [py, "benchmarks/bench.py"] + args + ["--json", js], timeout, min_s=20)
        meta, new = bench_rows(js, name)
        if meta is not None:
            step["meta"] = meta
        rows += new
        steps.append(step)
    return {"status": _worst(steps), "steps": steps, "rows": rows, "summary": bench_summary(rows)}


def bench_rows(js: Path, run: str) -> tuple:
    """``(meta, rows)`` of a bench.py JSON, each row tagged with ``run`` and its fraction of
    the assumed bf16 peak; ``(None, [])`` when the file is absent."""
    data = _read_json(js)
    if not data:
        return None, []
    rows = data.get("rows", [])
    for row in rows:
        row["run"] = run
        if row.get("tflops_achieved"):
            row["fraction_of_bf16_peak"] = row["tflops_achieved"] / BF16_PEAK_TFLOPS
    return data.get("meta"), rows


def bench_summary(rows: list) -> dict:
    """Speed-ups of the training step: bf16 over fp32/tf32 and fast over readable, per preset."""
    ok = [x for x in rows if x.get("status") == "ok"]

    def sec(preset, kind, path, dtype, comp=False):
        return next((x["seconds"] for x in ok if (x["preset"], x["kind"], x["path"], x["dtype"],
                                                   bool(x["compile"])) == (preset, kind, path, dtype, comp)),
                    None)

    def ratio(num, den):
        return round(num / den, 3) if num and den else None

    out = {}
    for preset in sorted({x["preset"] for x in ok}):
        s = {}
        for kind in ("train", "infer"):
            fb = sec(preset, kind, "fast", "bf16")
            s[kind] = {
                "fast_bf16_seconds": fb,
                "bf16_over_fp32": ratio(sec(preset, kind, "fast", "fp32"), fb),
                "bf16_over_tf32": ratio(sec(preset, kind, "fast", "tf32"), fb),
                "fast_over_readable_bf16": ratio(sec(preset, kind, "readable", "bf16"), fb),
                "fast_bf16_over_readable_fp32": ratio(sec(preset, kind, "readable", "fp32"), fb),
                "compile_on_over_off_bf16": ratio(fb, sec(preset, kind, "fast", "bf16", True)),
            }
        best = max((x for x in ok if x["preset"] == preset and x["kind"] == "train"),
                   key=lambda x: x.get("samples_per_s", 0), default=None)
        if best:
            s["best_train"] = {k: best.get(k) for k in ("path", "dtype", "compile", "samples_per_s",
                                                        "tflops_achieved", "fraction_of_bf16_peak")}
        out[preset] = s
    return out


def bench_projection(rows: list, preset: str = "paper") -> dict | None:
    """Projected training hours from bench.py's fast bf16 step (compile off) alone: a
    GPU-bound lower bound (no data loading, no validation); None without that row."""
    row = next((x for x in rows if x.get("status") == "ok" and (x["preset"], x["kind"], x["path"], x["dtype"])
                == (preset, "train", "fast", "bf16") and not x["compile"]), None)
    if row is None:
        return None
    sps = row["samples_per_s"]
    return {"samples_per_s": round(sps, 1), "batch": row["batch"],
            **{f"{name}_train_hours": round(int(_preset_schedule(name)["epochs"]) * PAPER_CROPS_PER_EPOCH
                                            / sps / 3600, 2) for name in ("paper", "colab")},
            "note": "bench.py's fast bf16 training step alone (no loader, no validation, no compile)"}


# ------------------------------------------------------------------------------ stages 3-4
def _preset_schedule(name: str) -> dict:
    """The training preset's fields (epochs, val_every, ...), as inr_lib resolves them (the
    TrainConfig defaults are the paper recipe; a preset file lists only what differs)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from inr_lib.train import TrainConfig

    return TrainConfig.preset(name).to_dict()


def stage_train(r: Runner, a, py: str) -> dict:
    run_dir = a.work / "run"
    for name in ("log.jsonl", "last.pt"):
        (run_dir / name).unlink(missing_ok=True)
    step = r.run("train", train_cmd(a, py), a.t_train, min_s=30)
    out = {"status": step["status"], "steps": [step], "config": a.train_config, "epochs_asked": a.epochs,
           "split": SPLIT, "data": _manifest(a.data)}
    out.update(train_result(run_dir))
    return out


def train_cmd(a, py: str) -> list:
    """``python -m inr_lib train``: the paper recipe (tiny in a dry run) for ``a.epochs`` epochs,
    validating and checkpointing once, at the end."""
    return [py, "-m", "inr_lib", "train", "--config", a.train_config, "--data", f"cave:{a.data / 'cave'}",
            "--split", SPLIT, "--out", a.work / "run", "--overwrite", "--epochs", a.epochs,
            "--set", f"val_every={a.epochs}", "--set", f"checkpoint_every={a.epochs}",
            "--device", a.device, "--no-progress"]


def train_result(run_dir: Path) -> dict:
    """History and summary of a run folder (empty when it has no log)."""
    log = run_dir / "log.jsonl"
    if not log.is_file():
        return {}
    hist = [json.loads(s) for s in log.read_text().splitlines() if s.strip()]
    return {"history": hist, **train_summary(hist, _read_yaml(run_dir / "config.yaml"))}


def _read_yaml(path: Path) -> dict:
    try:
        import yaml

        return yaml.safe_load(path.read_text()) or {}
    except (OSError, ValueError, ImportError):
        return {}


def train_summary(hist: list, cfg: dict) -> dict:
    """samples/s (median over epochs after the first) and projected full-recipe times."""
    if not hist:
        return {}
    steady = hist[1:] or hist
    sps = statistics.median(h["samples_per_s"] for h in steady)
    val = [h["val_seconds"] for h in hist if "val_seconds" in h]
    out = {"epochs_done": hist[-1]["epoch"], "loss_first": hist[0]["loss"], "loss_last": hist[-1]["loss"],
           "samples_per_s": round(sps, 2), "epoch_seconds": round(statistics.median(h["seconds"] for h in steady), 3),
           "val_seconds_per_pass": val[-1] if val else None,
           "final_val": {k: v for k, v in hist[-1].items() if k.startswith("val_")},
           "train_config": {k: cfg.get(k) for k in ("name", "model_preset", "batch_size", "crop_size",
                                                    "crops_per_scene", "lr", "amp", "num_workers")}}
    n_val_scenes = 1
    proj = {}
    for name in ("paper", "colab"):
        sched = _preset_schedule(name)
        epochs, every = int(sched["epochs"]), int(sched.get("val_every", 0) or 0)
        train_h = epochs * PAPER_CROPS_PER_EPOCH / sps / 3600
        passes = (epochs // every if every else 0)
        val_h = passes * (val[-1] / n_val_scenes if val else 0.0) / 3600
        proj[name] = {"epochs": epochs, "crops_per_epoch": PAPER_CROPS_PER_EPOCH, "train_hours": round(train_h, 2),
                      "validation_hours_per_test_scene": round(val_h, 3), "val_every": every}
    out["projection"] = proj
    out["projection_note"] = (f"hours = epochs x {PAPER_CROPS_PER_EPOCH} crops (18 training scenes x 56, the "
                              f"paper's epoch) / the median samples/s of this run's epochs after the first "
                              f"(end to end: data loading, the loader's start every epoch, forward, backward, "
                              f"Adam; pessimistic with few training scenes, hence few steps per epoch); "
                              f"validation adds validation_hours_per_test_scene for each full-size test scene")
    return out


def stage_evaluate(r: Runner, a, py: str) -> dict:
    ckpt = a.work / "run" / "last.pt"
    steps, res = [], {}
    for mode in ("tiled", "whole"):
        js = a.work / f"eval_{mode}.json"
        js.unlink(missing_ok=True)
        if not ckpt.is_file() and not a.stub:
            steps.append({"name": f"evaluate_{mode}", "status": "skipped", "reason": f"no checkpoint {ckpt}"})
            continue
        steps.append(r.run(f"evaluate_{mode}", eval_cmd(a, py, mode, js), a.t_eval, min_s=15))
        d = eval_result(js)
        if d:
            res[mode] = d
    return {"status": _worst(steps), "steps": steps, **res}


def eval_cmd(a, py: str, mode: str, js: Path) -> list:
    """``python -m inr_lib evaluate`` of the run's last.pt on the test scene(s)."""
    return [py, "-m", "inr_lib", "evaluate", "--checkpoint", a.work / "run" / "last.pt",
            "--data", f"cave:{a.data / 'cave'}", "--split", f"{SPLIT}:test", "--mode", mode,
            "--device", a.device, "--no-progress", "--json", js]


def eval_result(js: Path) -> dict | None:
    """Mean metrics, seconds, scenes and protocol of an evaluate JSON (None if absent)."""
    d = _read_json(js)
    if not d:
        return None
    return {"mean": d.get("mean"), "seconds": d.get("seconds"),
            "scenes": [s.get("scene") for s in d.get("per_scene", [])],
            "protocol": {k: d.get("protocol", {}).get(k) for k in ("inference", "device", "split")}}


def _manifest(data: Path) -> dict:
    m = _read_json(data / "MANIFEST.json") or {}
    scenes = sorted(p.name for p in (data / "cave").iterdir() if p.is_dir()) if (data / "cave").is_dir() else []
    return {"folder": str(data), "scenes": scenes, "manifest": m}


# ------------------------------------------------------------------------------ the check
def _guard(stage, *args) -> dict:
    """Run a stage; a bug in the orchestration itself is recorded, not fatal to later stages."""
    try:
        return stage(*args)
    except Exception as e:  # noqa: BLE001 - reported in the JSON, the check goes on
        import traceback

        print(f"[gpu_check] {stage.__name__} broke: {e!r}", flush=True)
        return {"status": "error", "error": traceback.format_exc()[-2000:], "steps": [], "rows": [],
                "summary": {}}


def check(a) -> dict:
    a.out.mkdir(parents=True, exist_ok=True)
    a.work.mkdir(parents=True, exist_ok=True)
    (a.out / "gpu_check.log").write_text("")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    if a.dry_run:
        env["OMP_NUM_THREADS"] = "1"
    r = Runner(a.out, a.budget, env, stub=a.stub)
    py = sys.executable
    res = {"schema": 1, "script": "benchmarks/gpu_check.py", "dry_run": a.dry_run, "stub": a.stub,
           "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "budget_s": a.budget,
           "assumed_peak_tflops": {"bf16_dense": BF16_PEAK_TFLOPS,
                                   "note": "H100 SXM / H200 data-sheet dense bf16 (no sparsity); "
                                           "fraction_of_bf16_peak = tflops_achieved / this for every row"},
           "stages": {}}
    path = a.out / "gpu_check.json"

    def save(stage, value):
        res["stages"][stage] = value
        res["wall_s"] = round(time.monotonic() - r.t0, 1)
        path.write_text(json.dumps(res, indent=1, default=str))

    res["warnings"] = []
    if not (a.data / "cave").is_dir() or not a.stub and not list((a.data / "cave").iterdir()):
        res["warnings"].append(f"no staged scenes in {a.data / 'cave'}: run `gpu_check.py --stage-data` "
                               f"and carry the folder (train and evaluate will fail)")
    if not a.dry_run and not list((a.data / "wheels").glob("*.whl")):
        res["warnings"].append(f"no wheels in {a.data / 'wheels'}: pypng/colour-science may be missing")
    for w in res["warnings"]:
        print(f"[gpu_check] warning: {w}", flush=True)
    inst = _guard(stage_install, r, a, py)
    res["environment"] = inst.pop("environment", {})
    res["device_name"] = res["environment"].get("device_name")
    res["versions"] = {"torch": res["environment"].get("torch"), "cuda": res["environment"].get("torch_cuda"),
                       "python": res["environment"].get("python")}
    save("install", inst)

    def stage(name, fn, *args):
        if a.only and name not in a.only:
            return {"status": "skipped", "reason": f"not in --only {' '.join(a.only)}", "steps": [], "rows": [],
                    "summary": {}}
        return _guard(fn, *args)

    save("cuda_tests", stage("cuda_tests", stage_cuda_tests, r, a, py))
    plan = bench_plan(a) if not a.only or "bench" in a.only else []
    bench = stage("bench", run_bench, r, a, py, plan[:1])  # the paper training step first
    save("bench", bench)
    save("train", stage("train", stage_train, r, a, py))
    save("evaluate", stage("evaluate", stage_evaluate, r, a, py))
    if plan[1:]:
        rest = _guard(run_bench, r, a, py, plan[1:])
        broken = "error" in (bench["status"], rest["status"])
        bench = {"status": "error" if broken else _worst(bench["steps"] + rest["steps"]),
                 "steps": bench["steps"] + rest["steps"], "rows": bench["rows"] + rest["rows"],
                 **{k: v for k, v in (bench | rest).items() if k == "error"}}
        bench["summary"] = bench_summary(bench["rows"])
        save("bench", bench)
    train = res["stages"]["train"]
    train["projection_from_bench_step"] = bench_projection(bench["rows"])
    res["summary"] = {s: v.get("status") for s, v in res["stages"].items()}
    save("train", train)
    print(f"[gpu_check] wrote {path} in {res['wall_s']:.0f} s: {res['summary']}", flush=True)
    return res


# ------------------------------------------------------------------------------ staging data
def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def worktree_bytes() -> int:
    """Bytes of what a `run` call sends besides carried folders (tracked + untracked, not ignored)."""
    try:
        names = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO,
                               capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        return tree_bytes(REPO / "inr_lib") + tree_bytes(REPO / "book")
    return sum((REPO / n).stat().st_size for n in names if n and (REPO / n).is_file())


def choose_scenes(sizes: dict, test_names: list, train_names: list, budget: int) -> dict:
    """One test scene and as many training scenes as fit in ``budget`` bytes (smallest first).

    Args:
        sizes: ``{scene name: bytes}`` of the available scenes.
    Returns:
        ``{"test": [name], "train": [names], "bytes": total}``.
    Raises:
        ValueError: not one test and one training scene fit.
    """
    tests = sorted((n for n in test_names if n in sizes), key=lambda n: sizes[n])
    trains = sorted((n for n in train_names if n in sizes), key=lambda n: sizes[n])
    if not tests or not trains or sizes[tests[0]] + sizes[trains[0]] > budget:
        raise ValueError(f"gpu_check --stage-data: need one test scene of {test_names} and one training "
                         f"scene of {train_names} within {budget / 2**20:.1f} MiB; found {sorted(sizes)}")
    chosen, total = [], sizes[tests[0]]
    for n in trains:
        if total + sizes[n] <= budget:
            chosen.append(n)
            total += sizes[n]
    return {"test": tests[:1], "train": chosen, "bytes": total}


def stage_data(a) -> dict:
    """Copy CAVE scenes (and the wheels the GPU image lacks) into ``--dest`` within the carry limit."""
    sys.path.insert(0, str(REPO))
    from inr_lib.data.cave import cave_split, list_cave_scenes

    if not a.source.is_dir():
        raise SystemExit(f"error: gpu_check --stage-data: source {a.source} is not a folder; pass "
                         f"--source DIR with CAVE scenes")
    dest = a.dest
    if (dest / "cave").exists():
        shutil.rmtree(dest / "cave")
    dest.mkdir(parents=True, exist_ok=True)
    wheels_dir = dest / "wheels"
    if a.wheels:
        wheels_dir.mkdir(exist_ok=True)
        pins = _pins()
        for name in WHEELS:
            spec = f"{name}=={pins[name]}" if name in pins else name
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "--python-version", "3.12", "--implementation", "cp", "--platform",
                            "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64", "-d", wheels_dir, spec],
                           check=True)
    scenes = {s.name: s for s in list_cave_scenes(a.source)}
    folders = {n: _top_folder(Path(s.path), a.source) for n, s in scenes.items()}
    sizes = {n: tree_bytes(f) for n, f in folders.items()}
    fixed = worktree_bytes() + (tree_bytes(wheels_dir) if wheels_dir.is_dir() else 0)
    budget = int(a.max_mib * 2**20) - fixed
    split = cave_split(SPLIT)
    pick = choose_scenes(sizes, split["test"], split["train"], budget)
    for n in pick["test"] + pick["train"]:
        shutil.copytree(folders[n], dest / "cave" / folders[n].name)
    man = {"source": str(a.source), "split": SPLIT, **pick, "worktree_and_wheels_bytes": fixed,
           "total_mib": round((pick["bytes"] + fixed) / 2**20, 1), "limit_mib": a.max_mib,
           "wheels": sorted(p.name for p in wheels_dir.glob("*.whl")) if wheels_dir.is_dir() else []}
    (dest / "MANIFEST.json").write_text(json.dumps(man, indent=1))
    print(f"staged {len(pick['train'])} train + {len(pick['test'])} test scenes ({man['total_mib']} MiB with "
          f"the working tree and wheels, limit {a.max_mib}) in {dest}: {pick['train']} / {pick['test']}")
    return man


def _top_folder(scene_path: Path, root: Path) -> Path:
    """The folder directly under ``root`` that holds the scene (CAVE nests NAME_ms/NAME_ms)."""
    rel = scene_path.resolve().relative_to(root.resolve())
    return root / rel.parts[0]


def _pins() -> dict:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


# ------------------------------------------------------------------------------ CLI
def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments, with the derived settings (device, epochs, timeouts) filled in."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or REPO / "runs" / "gpu_check"),
                    help="results folder (default: $OUT, else runs/gpu_check)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder for checkpoints "
                    "(default: a temporary folder)")
    ap.add_argument("--data", type=Path, default=REPO / "gpu_data", help="staged data (default: gpu_data)")
    ap.add_argument("--budget", type=float, default=470.0, help="seconds for the whole check (default 470)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: 30; dry run 2)")
    ap.add_argument("--dry-run", action="store_true", help="CPU rehearsal: tiny sizes, no pip")
    ap.add_argument("--stub", action="store_true", help="with --dry-run: replace every step's command by a "
                    "no-op that prints it (tests the orchestration in seconds)")
    ap.add_argument("--only", nargs="+", choices=STAGES[1:], default=None,
                    help="run only these stages (after install), e.g. to rerun what failed")
    ap.add_argument("--stage-data", action="store_true", help="copy scenes and wheels into --dest and exit")
    ap.add_argument("--source", type=Path, default=SOURCE_CAVE, help="CAVE scenes to stage from")
    ap.add_argument("--dest", type=Path, default=REPO / "gpu_data", help="where --stage-data writes")
    ap.add_argument("--max-mib", type=float, default=CARRY_LIMIT_MIB - 1.0,
                    help="size limit of the working tree + staged data (default 63)")
    ap.add_argument("--no-wheels", dest="wheels", action="store_false", help="--stage-data without pip download")
    a = ap.parse_args(argv)
    if a.stub and not a.dry_run:
        ap.error("--stub needs --dry-run")
    a.out = a.out.resolve()
    a.data = a.data.resolve()
    a.device = "cpu" if a.dry_run else "cuda"
    a.train_config = "tiny" if a.dry_run else "paper"
    a.epochs = a.epochs or (2 if a.dry_run else 30)
    a.t_tests, a.t_train, a.t_eval = (60, 60, 30) if a.dry_run else (110, 120, 50)
    if a.work is None and not a.stage_data:
        a.work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    a.work = a.work.resolve() if a.work else None
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.stage_data:
        stage_data(a)
        return 0
    res = check(a)
    return 1 if any(v in ("failed", "timeout", "error") for v in res["summary"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
