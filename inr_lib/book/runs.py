"""The book's runs of the library: command-line runs whose result files are reused when they
are up to date (:func:`run_cli`, :func:`evaluate_checkpoint`, :class:`Evaluations`), hashes,
and the files a chapter copies (scenes, repository files)."""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import pretrained
from ..data import list_cave_scenes
from ..files.atomic import sha256_file as sha256  # the one SHA-256 of a file, under the book's name
from . import shorten, shown  # defined before the package imports this module

# ----------------------------------------------------------------------------- commands


def run_cli(*args: object, json_out: Path | None = None, cwd: Path | None = None, env: dict | None = None,
            stamp_after: Path | None = None) -> Any:
    """Run ``python -m inr_lib ARGS`` and print the command and its output (paths shortened).

    With ``json_out`` (passed as ``--json``), the parsed result is returned; it is reused
    without running when the same command wrote it (a ``.cmd`` file next to it holds the
    command) after ``stamp_after`` (e.g. the checkpoint) was last changed. Raises
    ``RuntimeError`` with the command's last output lines when it fails.
    """
    argv = [str(a) for a in args]
    if json_out is not None:
        argv += ["--json", str(json_out), "--no-progress"]
    line = "python -m inr_lib " + shorten(" ".join(argv))
    print("$", line)
    if json_out is not None and _fresh(Path(json_out), line, stamp_after):
        res = json.loads(Path(json_out).read_text())
        print(f"  reusing {shown(json_out)} (written by this command)")
        return res
    out = subprocess.run([sys.executable, "-m", "inr_lib", *argv], cwd=cwd, env=env,
                         capture_output=True, text=True)
    text = shorten((out.stderr + out.stdout).strip())
    if out.returncode != 0:
        raise RuntimeError(f"{line} failed (exit {out.returncode}):\n{text[-3000:]}")
    print("\n".join("  " + t for t in text.splitlines()))
    if json_out is None:
        return text
    Path(json_out).with_suffix(".cmd").write_text(line)
    return json.loads(Path(json_out).read_text())


def _fresh(out: Path, line: str, after: Path | None) -> bool:
    stamp = out.with_suffix(".cmd")
    if not (out.is_file() and stamp.is_file() and stamp.read_text() == line):
        return False
    return after is None or out.stat().st_mtime > Path(after).stat().st_mtime


def evaluate_checkpoint(ckpt: Path | str, out: Path, evaluate_args: list, *, cwd: Path | None = None,
                        env: dict | None = None) -> bool:
    """``python -m inr_lib evaluate --checkpoint CKPT ARGS --json OUT``, unless ``out`` already
    holds the results of this very checkpoint (same SHA-256). Returns True when it ran.
    ``ckpt`` ``"pretrained:NAME"`` scores a shipped model (``--pretrained NAME``; the SHA-256 of
    its weights, from its card)."""
    out, name = Path(out), str(ckpt).removeprefix("pretrained:")
    shipped = str(ckpt).startswith("pretrained:")
    if out.is_file():
        done = json.loads(out.read_text()).get("protocol", {}).get("checkpoint_sha256")
        if done == (pretrained.card(name)["weights"]["sha256"] if shipped else sha256(ckpt)):
            return False
    source = ["--pretrained", name] if shipped else ["--checkpoint", str(ckpt)]
    cmd = [sys.executable, "-m", "inr_lib", "evaluate", *source,
           *map(str, evaluate_args), "--json", str(out), "--no-progress"]
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"evaluate failed for {shown(ckpt)} -> {shown(out)}:\n"
                           f"{shorten(res.stderr)[-2000:]}")
    print("  evaluate:", shorten(res.stdout.strip()))
    return True


class Evaluations:
    """Background evaluations of checkpoints (:func:`evaluate_checkpoint`), ``parallel`` at a time.

    ``submit(ckpt, out, *extra_args)`` (``ckpt`` a file or ``"pretrained:NAME"``) starts one
    (or reuses its result file); ``wait()`` waits for all and returns ``(ran, reused)``; a
    failed evaluation raises there.
    """

    def __init__(self, evaluate_args: list, parallel: int = 1, cwd: Path | None = None,
                 env: dict | None = None):
        self.args, self.cwd, self.env = list(evaluate_args), cwd, env
        self.pool = ThreadPoolExecutor(max_workers=parallel)
        self.jobs: list[Future] = []

    def submit(self, ckpt: Path | str, out: Path, *extra: str) -> None:
        self.jobs.append(self.pool.submit(evaluate_checkpoint, ckpt, out, [*self.args, *extra],
                                          cwd=self.cwd, env=self.env))

    def wait(self) -> tuple[int, int]:
        ran = [job.result() for job in self.jobs]
        self.jobs = []
        return sum(ran), len(ran) - sum(ran)


def installed_from() -> tuple[str, str] | None:
    """``(repository url, commit)`` that pip recorded when inr_lib was installed from a git
    repository (``pip install "inr_lib @ git+URL@BRANCH"``, as the chapters' Colab cell does), or
    None for any other install (a checkout, a wheel)."""
    try:
        text = importlib.metadata.distribution("inr_lib").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    info = json.loads(text) if text else {}
    vcs = info.get("vcs_info") or {}
    if not vcs or not info.get("url"):
        return None
    return info["url"], vcs.get("commit_id") or vcs.get("requested_revision") or "main"


def repository_files(dest: str | os.PathLike, folder: str, names: list[str]) -> Path:
    """Make the files ``names`` of the repository's ``folder`` (e.g. ``"book/assignment"``)
    available in ``dest``: kept when already there (a chapter run inside the checkout), else
    downloaded from the GitHub repository and commit inr_lib was installed from (Colab).
    Returns ``dest``.

    Raises:
        FileNotFoundError: files are missing and inr_lib was not installed from a git
            repository (the message says what to do).
    """
    dest = Path(dest)
    missing = [n for n in names if not (dest / n).is_file()]
    if not missing:
        return dest
    source = installed_from()
    if source is None or "github.com" not in source[0]:
        raise FileNotFoundError(
            f"{missing} are not in {shown(dest)} and inr_lib was not installed from a GitHub "
            f"repository; run this notebook from the book's {folder.split('/')[0]}/ folder of a "
            f"checkout, or install inr_lib with the chapter's first cell")

    url, commit = source
    raw = url.removesuffix(".git").replace("https://github.com/", "https://raw.githubusercontent.com/")
    dest.mkdir(parents=True, exist_ok=True)
    for name in missing:
        urllib.request.urlretrieve(f"{raw}/{commit}/{folder}/{name}", dest / name)
    return dest


def scene_folder(dest: Path, source: Path, names: list[str]) -> Path:
    """A CAVE-layout folder ``dest`` holding only the scenes ``names`` of ``source``, linked
    (copied where links are not allowed). Returns ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    folders = {d.name: d.path for d in list_cave_scenes(source)}
    missing = [n for n in names if n not in folders]
    if missing:
        raise FileNotFoundError(f"scenes {missing} are not in {shown(source)}")
    for name in names:
        link = dest / name
        if not link.exists():
            try:
                link.symlink_to(folders[name].resolve(), target_is_directory=True)
            except OSError:
                shutil.copytree(folders[name], link)
    return dest
