"""The fast path is an implementation detail: training with it follows the readable path."""
from __future__ import annotations

import torch

from inr_lib import build_model
from inr_lib.train import grad_scaler, train_step


def _train(pixelwise: str, steps: int = 12):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=g)
    y = torch.rand(4, 31, 32, 32, generator=g) * 0.5 + x.mean(1, keepdim=True) * 0.5
    model = build_model("tiny", seed=0, pixelwise=pixelwise).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = grad_scaler(enabled=False)
    losses = [train_step(model, (x.double(), y.double()), opt, scaler, None).item()
              for _ in range(steps)]
    return losses, model


def test_training_with_fast_path_reaches_the_same_loss():
    fast_losses, fast = _train("fast")
    slow_losses, slow = _train("readable")
    print("fast:", [f"{v:.5f}" for v in fast_losses])
    print("readable:", [f"{v:.5f}" for v in slow_losses])
    assert fast_losses[-1] < fast_losses[0]
    for a, b in zip(fast_losses, slow_losses):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(b))
    for p, q in zip(fast.parameters(), slow.parameters()):
        torch.testing.assert_close(p, q, atol=1e-9, rtol=1e-7)
