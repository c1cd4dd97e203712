"""The numbers the rubric of the course assignment expects (teacher's edition).

Run from the repository root::

    python teacher/rubric_answers.py

Prints the answers of task B2 (for the variant of the model the assignment names) and of
task B1's memory argument, each checked against ``inr_lib`` (an assertion fails if the
library and the hand derivation disagree). ``tests/test_assignment.py`` runs this script.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from inr_lib.model import INRHSISR, ModelConfig
from inr_lib.model.pixelwise import mlp_param_count

# B2's variant: tile 8, "global" encoding with periods 8, 4 and 2, hidden widths 48, 48, 48
B2 = dict(tile=8, periods=(8.0, 4.0, 2.0), mlp_hidden=(48, 48, 48))


def b2() -> None:
    cfg = ModelConfig(**B2)
    widths = cfg.mlp_widths
    by_hand = (3 + 4 * 3) * 48 + 48 + 2 * (48 * 48 + 48) + 48 * 31 + 31
    assert widths == (15, 48, 48, 48, 31), widths
    assert mlp_param_count(widths) == by_hand == cfg.mlp_params
    with torch.device("meta"):                        # count without allocating the weights
        model = INRHSISR(cfg)
    head = sum(p.numel() for p in model.hypernet.head.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert head == 1024 * by_hand + by_hand
    print(f"B2: MLP widths {widths}; P = {by_hand:,} "
          f"= (15*48 + 48) + 2*(48*48 + 48) + (48*31 + 31)")
    print(f"B2: head 1x1 conv 1024 -> P with bias: 1024*P + P = {head:,} parameters, "
          f"{100 * head / total:.1f} % of the variant's {total:,}")


def b1() -> None:
    P = mlp_param_count(ModelConfig().mlp_widths)
    for side in (64, 128, 256):
        per_tile = P * (side // 4) ** 2 * 4 / 2**20
        per_pixel = P * side * side * 4 / 2**20
        print(f"B1: {side}x{side}: predicted parameters {per_tile:,.0f} MiB per image; the readable "
              f"path's per-pixel copy {per_pixel:,.0f} MiB (16 x, one copy per pixel of a 4x4 tile)")
    assert P == 15_263
    script = Path(__file__).resolve().parents[1] / "book" / "assignment" / "measure_memory.py"
    run = subprocess.run([sys.executable, str(script), "--size", "64"], capture_output=True, text=True,
                         check=True)
    m = json.loads(run.stdout.splitlines()[-1])
    ratio = m["peak_extra_mib"] / m["per_pixel_params_mib"]
    print(f"B1: measured here, readable path at 64x64, forward + backward: peak +{m['peak_extra_mib']:.0f} MiB "
          f"= {ratio:.1f} x the per-pixel copy")
    assert 1 < ratio < 8


if __name__ == "__main__":
    b2()
    b1()
    print("all rubric answers checked")
