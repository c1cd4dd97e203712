"""DistributedDataParallel on CPU (gloo, 2 processes) against a single process.

What holds, and why: the global batch of ``batch_size`` crops is split over the ranks
(``batch_size / 2`` each). The ``DistributedSampler`` gives rank ``r`` the items
``perm[r::2]`` of the same seeded permutation, so at every step the two per-rank batches
together hold exactly the items of the single-process batch (crops are a pure function of
``(seed, epoch, index)``). The model normalises per sample (instance norm) and the L1 loss
is a per-rank mean; DDP averages the two ranks' gradients, which is the gradient of the mean
over the whole batch. So the DDP weights equal the single-process weights **up to float
summation order** (checked with a tolerance, not bit-exactly), and both ranks hold
**bit-identical** weights (they apply the same averaged gradient).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

SCRIPT = textwrap.dedent('''
    import os, sys
    from types import SimpleNamespace
    import numpy as np
    import torch
    from inr_lib.train import TrainConfig, train

    def scene(name, seed, size=24):
        r = np.random.default_rng(seed)
        ramp = np.linspace(0.2, 1.0, size, dtype=np.float32)
        hsi = (r.random((31, 1, 1)) * ramp * (0.6 + 0.4 * r.random((1, size, size)))).astype(np.float32)
        rgb = np.stack([hsi[20:].mean(0), hsi[10:20].mean(0), hsi[:10].mean(0)]).astype(np.float32)
        return SimpleNamespace(name=name, hsi=hsi, rgb=rgb, wavelengths=np.arange(400, 701, 10.0))

    torch.set_num_threads(1)
    out = sys.argv[1]
    cfg = TrainConfig.preset("tiny").replace(epochs=2, batch_size=4, crops_per_scene=4, val_every=2)
    res = train(cfg, [scene("a", 0), scene("b", 1)], [scene("v", 2)], out, device="cpu",
                progress=False)
    rank = int(os.environ.get("RANK", "0"))
    torch.save({k: v.detach().clone() for k, v in res.model.state_dict().items()},
               os.path.join(out, f"weights_rank{rank}.pt"))
''')


def _run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("WORLD_SIZE", None)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is not available in this build")
def test_ddp_two_processes_match_one_process(tmp_path):
    script = tmp_path / "run_train.py"
    script.write_text(SCRIPT)
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
          str(script), str(ddp)], tmp_path)
    _run([sys.executable, str(script), str(single)], tmp_path)

    w0 = torch.load(ddp / "weights_rank0.pt", weights_only=True)
    w1 = torch.load(ddp / "weights_rank1.pt", weights_only=True)
    ws = torch.load(single / "weights_rank0.pt", weights_only=True)
    for k in w0:
        assert torch.isfinite(w0[k]).all(), k
        assert torch.equal(w0[k], w1[k]), f"{k}: ranks out of sync"
        torch.testing.assert_close(w0[k], ws[k], rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
    # only rank 0 wrote the run folder's files, and validated
    from inr_lib.files.checkpoints import load_checkpoint

    ck = load_checkpoint(ddp / "last.pt")
    assert ck["epoch"] == 2 and "val_psnr" in ck["history"][-1]
    for k, v in ck["model"].items():
        assert torch.equal(v, w0[k])
    import json

    log = [json.loads(s) for s in (ddp / "log.jsonl").read_text().splitlines()]
    single_log = [json.loads(s) for s in (single / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    for a, b in zip(log, single_log):   # the loss is averaged over both ranks' samples
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
