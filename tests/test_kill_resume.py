"""Crash safety of training: SIGKILL at random moments and inside a checkpoint write, then
``--resume`` to the end gives exactly the weights of an uninterrupted run (CPU).

Every run is ``python -m inr_lib train ...`` on a tiny CAVE-layout dataset, executed as its
own process. To keep the test fast on a small CPU machine, the processes are forked from one
helper interpreter (``ZYGOTE``) that has imported torch once (plus ``torch._dynamo``, which
the first Adam optimiser imports: ~5 s per process otherwise); each child sets
``sys.argv`` and runs the ``inr_lib`` package as ``__main__`` with :mod:`runpy`, which is
what ``python -m inr_lib`` does. The helper sets ``OMP_NUM_THREADS=1`` before importing
torch, so forking is safe and every run uses one thread (float results are then bit-for-bit
reproducible across processes).

* Kill *inside a checkpoint write*: the child process wraps :func:`inr_lib.files.atomic._replace` (the
  rename that commits an atomic write) so that the third write of ``last.pt`` stops after its
  temporary file is complete, just before the rename (it creates ``last.pt.paused`` and
  sleeps); the test kills the process there.
* Kills at random moments (``random.Random(SEED)``): each resumed run is killed 0-250 ms
  after it has finished at least one epoch, wherever it is then (training step,
  validation, checkpoint write, log append). After every kill the checkpoints must load and
  hold every epoch the log reports as done.
* The final ``--resume`` must end with exactly (``torch.equal``) the weights, losses and
  best checkpoint of an uninterrupted run made alongside.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from inr_lib.files.checkpoints import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
SEED = 20240611
EPOCHS = 12
pytestmark = pytest.mark.skipif(not (hasattr(os, "fork") and Path("/proc/self/stat").exists()),
                                reason="needs fork, SIGKILL and /proc (Linux)")

ZYGOTE = r"""
import json, os, runpy, sys
import torch
import inr_lib.cli, inr_lib.train.loop, inr_lib.evaluation.scoring, inr_lib.evaluation.metrics, inr_lib.data  # once
torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # its first use imports torch._dynamo


def pause_before_rename(name, nth):
    # stop the nth atomic write of a file called `name` just before its rename (for SIGKILL)
    import pathlib, time
    import inr_lib.files.images
    real, seen = inr_lib.files.atomic._replace, []

    def replace(tmp, path):
        if path.name == name:
            seen.append(path)
            if len(seen) == nth:
                pathlib.Path(f"{path}.paused").touch()
                time.sleep(120)
        real(tmp, path)

    inr_lib.files.atomic._replace = replace


print(json.dumps({"ready": True}), flush=True)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    cmd = json.loads(line)
    if "wait" in cmd:
        _, status = os.waitpid(cmd["wait"], 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        rc = 98
        try:
            if cmd.get("pause"):
                pause_before_rename(*cmd["pause"])
            fd = os.open(cmd["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            sys.argv = ["python -m inr_lib", *cmd["argv"]]
            runpy.run_module("inr_lib", run_name="__main__", alter_sys=True)
            rc = 0
        except SystemExit as e:  # what `python -m inr_lib` ends with
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
            rc = 99
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc if isinstance(rc, int) else 97)
    print(json.dumps({"pid": pid}), flush=True)
"""


def write_tiny_cave(root: Path, n: int = 3, size: int = 24, seed: int = 0) -> None:
    """3 smooth scenes in the CAVE layout (16-bit bands + 8-bit RGB): 2 train, 1 validation."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        name = f"toy{i}"
        folder = root / f"{name}_ms" / f"{name}_ms"
        folder.mkdir(parents=True)
        a, b = rng.random(31), rng.random(31)
        hsi = 0.1 + 0.4 * a[:, None, None] * xx + 0.4 * b[:, None, None] * yy
        q = np.round(hsi * 65535).astype(np.uint16)
        for k in range(31):
            Image.fromarray(q[k]).save(folder / f"{name}_ms_{k + 1:02d}.png")
        rgb = np.stack([hsi[20:].mean(0), hsi[10:20].mean(0), hsi[:10].mean(0)], -1)
        Image.fromarray(np.round(rgb * 255).astype(np.uint8)).save(folder / f"{name}_RGB.bmp")


class Zygote:
    """A helper interpreter that forks ``inr_lib.cli.main(argv)`` runs on request."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
        self.children: set = set()

    def _ask(self, cmd: dict) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"helper process ended (rc {self.proc.poll()})")
        return json.loads(line)

    def ready(self) -> None:
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def start(self, argv: list, log: Path, pause: tuple | None = None) -> int:
        """Fork a run of ``argv``; ``pause=(name, n)`` stops it in the n-th write of ``name``."""
        pid = self._ask({"argv": [str(a) for a in argv], "log": str(log),
                         "pause": list(pause) if pause else None})["pid"]
        self.children.add(pid)
        return pid

    def wait(self, pid: int) -> int:
        status = self._ask({"wait": pid})["status"]
        self.children.discard(pid)
        return status

    def close(self) -> None:
        for pid in list(self.children):  # only the processes this test started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(pid)
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _log_epochs(out: Path) -> list:
    try:
        text = (out / "log.jsonl").read_text()
    except FileNotFoundError:
        return []
    epochs = []
    for line in text.splitlines():
        try:
            epochs.append(json.loads(line)["epoch"])
        except (ValueError, KeyError):  # a line cut by the kill (rewritten on resume)
            pass
    return epochs


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a finished child stays a zombie until the helper reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _wait_for(condition, timeout: float, what: str, pid: int) -> None:
    t0 = time.monotonic()
    while not condition():
        if not _running(pid) and not condition():
            return  # ended before the condition: the caller decides (via its exit status)
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)


def _check_consistent(out: Path) -> int:
    """After a kill: the checkpoints load, no finished epoch is lost; returns last.pt's epoch."""
    if not (out / "last.pt").exists():
        assert _log_epochs(out) == [], "an epoch was logged without a checkpoint"
        return 0
    last = load_checkpoint(out / "last.pt")          # never a partial / corrupt file
    epoch = int(last["epoch"])
    assert [r["epoch"] for r in last["history"]] == list(range(1, epoch + 1))
    logged = _log_epochs(out)
    assert max(logged, default=0) <= epoch, "an epoch reported as done is not in last.pt"
    if last["best"] is not None:                      # the best record has its best.pt
        best = load_checkpoint(out / "best.pt")
        assert int(best["epoch"]) >= int(last["best"]["epoch"])
    return epoch


def test_sigkill_anywhere_then_resume_gives_the_uninterrupted_weights(tmp_path):
    data = tmp_path / "cave"
    write_tiny_cave(data)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"base: tiny\nname: killtest\nepochs: {EPOCHS}\ncrops_per_scene: 8\n"
                   "val_every: 2\ncheckpoint_every: 1\nmilestones: [6]\n")
    ref, out = tmp_path / "ref", tmp_path / "run"

    def argv(run_dir, *extra):
        return ["train", "--config", cfg, "--data", f"cave:{data}", "--out", run_dir,
                "--device", "cpu", "--no-progress", *extra]

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "INR_PROFILE": "quick"}
    zygote = Zygote(env)
    rng = random.Random(SEED)
    try:
        zygote.ready()
        ref_pid = zygote.start(argv(ref), tmp_path / "ref.log")   # runs alongside the others
        # paused inside the 3rd write of last.pt (the one after epoch 3)
        paused = zygote.start(argv(out), tmp_path / "paused.log",
                              pause=("last.pt", 3))

        # 1. kill -9 inside a checkpoint write
        marker = out / "last.pt.paused"
        _wait_for(marker.exists, 240, "the paused checkpoint write", paused)
        assert marker.exists(), (tmp_path / "paused.log").read_text()
        temps = list(out.glob(".last.pt.*.tmp"))
        assert len(temps) == 1 and temps[0].stat().st_size > 0   # the new file, complete
        os.kill(paused, signal.SIGKILL)
        assert zygote.wait(paused) == -signal.SIGKILL
        marker.unlink()
        assert _check_consistent(out) == 2                        # the old last.pt, intact

        # 2. resume, kill -9 at a random moment after at least one more epoch; repeat
        kills = []
        for _ in range(3):
            start = _check_consistent(out)
            if start == EPOCHS:
                break
            pid = zygote.start(argv(out, "--resume"), tmp_path / "resume.log")
            _wait_for(lambda start=start: max(_log_epochs(out), default=0) > start, 120,
                      f"an epoch after {start}", pid)
            time.sleep(rng.uniform(0.0, 0.25))
            try:
                os.kill(pid, signal.SIGKILL)   # a no-op if the run has already ended
            except ProcessLookupError:
                pass
            status = zygote.wait(pid)
            assert status in (0, -signal.SIGKILL), (tmp_path / "resume.log").read_text()
            kills.append((start, _check_consistent(out), status))
        assert kills and any(s == -signal.SIGKILL for *_, s in kills), kills

        # 3. resume to the end
        pid = zygote.start(argv(out, "--resume"), tmp_path / "final.log")
        assert zygote.wait(pid) == 0, (tmp_path / "final.log").read_text()
        assert zygote.wait(ref_pid) == 0, (tmp_path / "ref.log").read_text()
    finally:
        zygote.close()

    a, b = load_checkpoint(ref / "last.pt"), load_checkpoint(out / "last.pt")
    assert a["epoch"] == b["epoch"] == EPOCHS
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [r["loss"] for r in a["history"]] == [r["loss"] for r in b["history"]]
    best_a, best_b = load_checkpoint(ref / "best.pt"), load_checkpoint(out / "best.pt")
    assert best_a["epoch"] == best_b["epoch"]
    assert all(torch.equal(best_a["model"][k], best_b["model"][k]) for k in best_a["model"])
    assert _log_epochs(out) == list(range(1, EPOCHS + 1))      # one line per epoch, no gaps
    assert not list(out.glob(".*.tmp")) and not list(out.glob("*.paused"))  # no debris
    print(f"\nkills (resumed after epoch, last.pt epoch after the kill, status): {kills}")
