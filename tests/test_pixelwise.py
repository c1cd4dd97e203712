"""Per-tile MLP application: both paths against an explicit loop over tiles."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inr_lib.model.pixelwise import (
    apply_mlp_fast,
    apply_mlp_readable,
    mlp_param_count,
    mlp_param_slices,
)

WIDTHS = (11, 16, 16, 31)


def _loop_reference(params, x, widths, tile, slope=0.1):
    """The definition, spelled out: for every tile, build its MLP and run its pixels."""
    B, P, h, w = params.shape
    out = torch.zeros(B, widths[-1], h * tile, w * tile, dtype=x.dtype)
    layers = mlp_param_slices(widths)
    for b in range(B):
        for i in range(h):
            for j in range(w):
                v = params[b, :, i, j]
                pix = x[b, :, i * tile:(i + 1) * tile, j * tile:(j + 1) * tile].reshape(widths[0], -1)
                for k, (ws, bs, cin, cout) in enumerate(layers):
                    pix = v[ws].view(cout, cin) @ pix + v[bs].view(cout, 1)
                    if k < len(layers) - 1:
                        pix = F.leaky_relu(pix, slope)
                out[b, :, i * tile:(i + 1) * tile, j * tile:(j + 1) * tile] = pix.view(-1, tile, tile)
    return out


def test_param_count_of_the_paper_mlp():
    assert mlp_param_count((11, 64, 64, 64, 64, 31)) == 15_263


@pytest.mark.parametrize("tile", [1, 2, 4])
def test_both_paths_match_the_loop_definition(tile):
    g = torch.Generator().manual_seed(0)
    P = mlp_param_count(WIDTHS)
    params = torch.randn(2, P, 3, 5, generator=g, dtype=torch.float64) * 0.3
    x = torch.randn(2, WIDTHS[0], 3 * tile, 5 * tile, generator=g, dtype=torch.float64)
    ref = _loop_reference(params, x, WIDTHS, tile)
    for fn in (apply_mlp_readable, apply_mlp_fast):
        torch.testing.assert_close(fn(params, x, WIDTHS, tile), ref, atol=1e-12, rtol=1e-12)


def test_fast_path_gradients_match_readable_path():
    g = torch.Generator().manual_seed(1)
    P = mlp_param_count(WIDTHS)
    p1 = (torch.randn(2, P, 4, 4, generator=g, dtype=torch.float64) * 0.3).requires_grad_()
    x1 = torch.randn(2, WIDTHS[0], 16, 16, generator=g, dtype=torch.float64).requires_grad_()
    p2, x2 = p1.detach().clone().requires_grad_(), x1.detach().clone().requires_grad_()
    apply_mlp_fast(p1, x1, WIDTHS).sin().sum().backward()
    apply_mlp_readable(p2, x2, WIDTHS).sin().sum().backward()
    torch.testing.assert_close(p1.grad, p2.grad, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-12, rtol=1e-10)


def test_bf16_autocast_agrees_to_bf16_precision():
    """Stated tolerance for bf16: 5e-2 absolute on outputs of unit scale (bf16 keeps 8 bits)."""
    g = torch.Generator().manual_seed(2)
    P = mlp_param_count(WIDTHS)
    params = torch.randn(1, P, 4, 4, generator=g) * 0.3
    x = torch.randn(1, WIDTHS[0], 16, 16, generator=g)
    ref = apply_mlp_readable(params, x, WIDTHS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = apply_mlp_fast(params, x, WIDTHS)
    assert fast.dtype == torch.bfloat16
    err = (fast.float() - ref).abs().max().item()
    print(f"bf16 fast vs fp32 readable: max abs difference {err:.3e} (output std {ref.std():.2f})")
    assert err < 5e-2 * max(1.0, ref.abs().max().item())


def test_shape_errors_say_what_was_expected():
    P = mlp_param_count(WIDTHS)
    with pytest.raises(ValueError, match="needs"):
        apply_mlp_fast(torch.zeros(1, P + 1, 2, 2), torch.zeros(1, 11, 8, 8), WIDTHS)
    with pytest.raises(ValueError, match="must be"):
        apply_mlp_fast(torch.zeros(1, P, 2, 2), torch.zeros(1, 11, 8, 9), WIDTHS)
