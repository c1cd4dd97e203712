"""Publish a finished zoo run as a shipped model: weights (safetensors) + card (JSON).

    python tools/publish_model.py small-paper --description "..." [--dtype float16] [--mode tiled]

Reads ``runs/zoo/NAME`` (written by ``tools/train_zoo.sh NAME``): the final weights
(``last.pt`` of the last epoch; ``best.pt`` is not used, since it was selected on the test
scenes), the training log and the commit logged at each start in ``runs/zoo/NAME.out``.
Writes ``inr_lib/pretrained/weights/NAME.safetensors``, then scores the shipped weights with
``python -m inr_lib evaluate --pretrained NAME`` (tiled and whole, dev18 test, full images)
and writes the card ``inr_lib/pretrained/cards/NAME.json`` with those result files inside.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = "cave:../shared/data/cave,../shared/data/cave_extra"
PRETRAINED = ROOT / "inr_lib" / "pretrained"


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()}-core {platform.machine()} ({cpu}), one torch thread "
            f"(OMP_NUM_THREADS=1), shared with other jobs (tests, a second training run)")


def _commits(name: str) -> list[str]:
    out = ROOT / "runs" / "zoo" / f"{name}.out"
    found = re.findall(r"commit ([0-9a-f]{40})", out.read_text()) if out.is_file() else []
    return list(dict.fromkeys(found))


def _steps(n_train: int, cfg: dict) -> tuple[int, int]:
    samples = n_train * cfg["crops_per_scene"]
    return math.ceil(samples / cfg["batch_size"]) * cfg["epochs"], samples * cfg["epochs"]


def export_weights(name: str, run: Path, dtype: str) -> tuple[dict, dict, Path]:
    """Check the run is finished and write its final weights; returns (ckpt, cfg, path)."""
    import torch
    from safetensors.torch import save_file

    from inr_lib.files.checkpoints import load_checkpoint

    ckpt = load_checkpoint(run / "last.pt")
    cfg = ckpt["train_config"]
    if ckpt["epoch"] != cfg["epochs"]:
        sys.exit(f"error: {run} stopped after epoch {ckpt['epoch']} of {cfg['epochs']}; "
                 f"finish it with tools/train_zoo.sh {name}")
    want = {"float32": torch.float32, "float16": torch.float16}[dtype]
    state = {k: v.to(want).contiguous() for k, v in ckpt["model"].items()}
    path = PRETRAINED / "weights" / f"{name}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"name": name, "dtype": dtype})
    return ckpt, cfg, path


def evaluate(name: str, mode: str, data: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{mode}.json"
        subprocess.run([sys.executable, "-m", "inr_lib", "evaluate", "--pretrained", name,
                        "--data", data, "--split", "dev18:test", "--mode", mode,
                        "--json", str(out), "--device", "cpu", "--no-progress"],
                       check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return json.loads(out.read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="a config name of inr_lib/pretrained/configs/ (and runs/zoo/NAME)")
    p.add_argument("--description", required=True, help="one line: what the model is")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="storage type of the weights (float16 halves the size; the card's "
                        "scores are those of the stored weights)")
    p.add_argument("--mode", choices=("tiled", "whole"), default="tiled",
                   help="the recommended inference mode (both are scored)")
    p.add_argument("--data", default=DATA, help=f"--data of the training command ({DATA})")
    a = p.parse_args(argv)

    from safetensors.torch import load_file  # noqa: F401  (fail early if missing)

    from inr_lib.data import list_cave_scenes, split_available
    from inr_lib.files.atomic import sha256_file
    from inr_lib.model import registry
    from inr_lib.pretrained import card

    run = ROOT / "runs" / "zoo" / a.name
    ckpt, cfg, wpath = export_weights(a.name, run, a.dtype)
    log = [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines() if ln.strip()]
    roots = [ROOT / r for r in a.data.split(":", 1)[1].split(",")]
    parts = split_available(list_cave_scenes(roots), "dev18")
    steps, samples = _steps(len(parts["train"]), cfg)
    import torch

    config_file = f"inr_lib/pretrained/configs/{a.name}.yaml"
    info = {
        "name": a.name,
        "description": a.description,
        "arch": ckpt["arch"],
        "model_config": ckpt["model_config"],
        # learned parameters only: the state dict also holds buffers (batch norm's running statistics)
        "params": sum(p.numel() for p in registry.build(ckpt["arch"], ckpt["model_config"]).parameters()),
        "config_file": config_file,
        "command": (f"OMP_NUM_THREADS=1 python -m inr_lib train --config {config_file} "
                    f"--data {a.data} --split dev18 --out runs/zoo/{a.name} --device cpu --resume"
                    f"   # = tools/train_zoo.sh {a.name}"),
        "train_config": cfg,
        "data": {"dataset": "CAVE (Yasuma et al., IEEE TIP 2010), 512x512, 31 bands 400-700 nm, "
                            "RGB = the scenes' own *_RGB.bmp",
                 "split": "dev18", "train_scenes": parts["train"], "test_scenes": parts["test"],
                 "folders": a.data},
        "training": {"epochs": cfg["epochs"], "steps": steps, "batch_size": cfg["batch_size"],
                     "samples": samples,
                     "wall_time_s": round(sum(r["seconds"] + r.get("val_seconds", 0) for r in log), 1),
                     "final_loss": log[-1]["loss"],
                     "validation": [{k: v for k, v in r.items() if k.startswith("val_") or k == "epoch"}
                                    for r in log if "val_psnr" in r],
                     "machine": _machine(), "torch": torch.__version__,
                     "weights_from": "last.pt (the final epoch; no selection on the test scenes)"},
        "code_commit": ",".join(_commits(a.name)) or "unknown",
        "weights": {"file": wpath.name, "sha256": sha256_file(wpath), "dtype": a.dtype,
                    "bytes": wpath.stat().st_size},
        "recommended_mode": a.mode,
        "evaluation": {},
    }
    cpath = PRETRAINED / "cards" / f"{a.name}.json"
    cpath.parent.mkdir(parents=True, exist_ok=True)
    cpath.write_text(json.dumps(info, indent=1) + "\n")          # weights are loadable now
    info["evaluation"] = {m: evaluate(a.name, m, a.data) for m in ("tiled", "whole")}
    cpath.write_text(json.dumps(info, indent=1) + "\n")
    card(a.name)                                                   # validates
    for m, r in info["evaluation"].items():
        print(f"{a.name} {m}: " + ", ".join(f"{k} {v:.4g}" for k, v in r["mean"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
