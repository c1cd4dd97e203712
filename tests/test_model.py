"""The INR-HSISR model: paper facts, shapes, paths, render, tiled prediction."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from inr_lib import ModelConfig, build_model
from inr_lib.model.encoding import encoding_grid


def test_paper_preset_matches_reference_parameter_count():
    model = build_model("paper")
    n = model.num_parameters()
    print(f"paper preset: {n:,} parameters, P = {model.config.mlp_params:,} per tile")
    assert n == 63_545_439                       # DESIGN.md; 63.5 M
    assert model.config.mlp_widths == (11, 64, 64, 64, 64, 31)
    assert model.config.mlp_params == 15_263
    hn = model.hypernet
    convs = [m for m in hn.features.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (3, 64, 1), (64, 64, 2), (64, 64, 1), (64, 64, 1), (64, 1024, 2)] + [(1024, 1024, 1)] * 5
    assert all(c.bias is None and c.kernel_size == (3, 3) for c in convs)
    norms = [m for m in hn.features.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert len(norms) == 10 and all(m.affine for m in norms)
    assert hn.head.kernel_size == (1, 1) and hn.head.bias is not None
    assert hn.head.out_channels == 15_263


def test_small_presets_are_cpu_sized():
    model = build_model("small-paper")          # the paper's design at small width
    assert model.num_parameters() == 679_039
    assert model.config.mlp_params == 2_463
    model = build_model("small")                # the recommended design: no norm, per-tile encoding
    assert model.num_parameters() == 678_527
    assert (model.config.norm, model.config.encoding, model.config.tile) == ("none", "tile", 4)


@pytest.mark.parametrize("B,H,W", [(1, 16, 16), (3, 20, 28), (2, 37, 45), (1, 1, 1), (5, 4, 9)])
def test_output_shape_any_batch_and_size(B, H, W):
    model = build_model("tiny").eval()
    out = model(torch.rand(B, 3, H, W))
    assert out.shape == (B, 31, H, W)
    assert torch.isfinite(out).all()


def test_no_state_cached_between_shapes():
    model = build_model("tiny", norm="none").eval()
    x = torch.rand(1, 3, 24, 24)
    a = model(x)
    model(torch.rand(2, 3, 40, 12))              # a different shape in between
    assert torch.equal(model(x), a)


def test_pixel_outside_padding_unaffected_by_size_not_divisible_by_4():
    model = build_model("tiny", norm="none", encoding="tile").eval()
    x = torch.rand(1, 3, 32, 32)
    # the 30x30 top-left crop is padded to 32 by replication; pixels far from the pad agree
    a = model(x[..., :30, :30])[..., :12, :12]
    b = model(x)[..., :12, :12]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_seeded_init_is_reproducible_and_seed_matters():
    a, b, c = build_model("tiny", seed=1), build_model("tiny", seed=1), build_model("tiny", seed=2)
    for (n, p), q, _r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q), n
    assert any(not torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters()))


def test_initial_output_is_in_a_sane_range():
    out = build_model("small")(torch.rand(2, 3, 32, 32))
    assert 0.05 < out.std().item() < 2.0


def test_unknown_options_are_refused_with_the_list_of_known_ones():
    with pytest.raises(TypeError, match="known options"):
        build_model("tiny", encodng="tile")
    with pytest.raises(ValueError, match="expected one of"):
        build_model("tiny", encoding="fourier")
    with pytest.raises(ValueError, match="unknown preset"):
        build_model("huge")


def test_bad_input_messages():
    model = build_model("tiny")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="alpha"):
        model(torch.rand(1, 4, 16, 16))
    with pytest.raises(TypeError, match="255"):
        model(torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8))


def test_config_round_trip_and_version_check():
    model = build_model("small", encoding="tile", norm="none")
    d = model.config.to_dict()
    again = build_model(d)
    assert again.config == model.config
    with pytest.raises(ValueError, match="newer"):
        ModelConfig.from_dict({**d, "config_version": 99})
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**d, "colour": 1})


@pytest.mark.parametrize("encoding", ["global", "tile", "none"])
def test_readable_and_fast_paths_agree_forward_and_backward(encoding):
    """Same function and gradients: to rounding in float64, to ~1e-6 relative in float32."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 28, dtype=torch.float64, generator=g)
    y = torch.rand(2, 31, 24, 28, dtype=torch.float64, generator=g)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        fast = build_model("small", encoding=encoding, seed=3).to(dtype)
        slow = build_model("small", encoding=encoding, seed=3, pixelwise="readable").to(dtype)
        of, os_ = fast(x.to(dtype)), slow(x.to(dtype))
        diff = (of - os_).abs().max().item()
        (of - y.to(dtype)).abs().mean().backward()
        (os_ - y.to(dtype)).abs().mean().backward()
        # difference relative to each parameter's largest gradient (floored at 1e-3 of the
        # largest gradient overall, so parameters with vanishing gradients don't divide by ~0)
        top = max(p.grad.abs().max().item() for p in slow.parameters())
        rel = max(((p.grad - q.grad).abs().max() / p.grad.abs().max().clamp_min(1e-3 * top)).item()
                  for p, q in zip(fast.parameters(), slow.parameters()))
        print(f"{dtype} encoding={encoding}: max |fast - readable| forward {diff:.2e}, "
              f"max relative gradient difference {rel:.2e}")
        assert diff < tol and rel < tol


def test_render_at_native_size_equals_forward():
    model = build_model("small", encoding="tile").eval()
    x = torch.rand(2, 3, 20, 24)
    with torch.no_grad():
        diff = (model.render(x, (20, 24)) - model(x)).abs().max().item()
    print(f"max |render(native) - forward| = {diff:.2e}")
    assert diff < 1e-5


def test_render_global_encoding_native_and_chunked():
    model = build_model("tiny").eval()
    x = torch.rand(1, 3, 18, 22)
    with torch.no_grad():
        a = model.render(x, (18, 22), rows_per_chunk=5)
        torch.testing.assert_close(a, model(x), atol=1e-5, rtol=0)


def test_render_at_another_resolution_is_continuous():
    model = build_model("tiny", encoding="tile").eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        up = model.render(x, (64, 64))
        down = model.render(x, (8, 8))
    assert up.shape == (1, 31, 64, 64) and down.shape == (1, 31, 8, 8)
    assert torch.isfinite(up).all()
    # inside a tile the function varies smoothly: neighbouring samples of the 4x upsampled
    # render differ much less than the output's overall spread
    inner = (up[..., 1:, :] - up[..., :-1, :]).abs().median()
    assert inner < up.std()


def test_encodings_differ_as_described():
    tile = encoding_grid("tile", 16, 16)
    glob = encoding_grid("global", 16, 16)
    assert tile.shape == glob.shape == (8, 16, 16)
    # "tile" repeats with a period of 4 pixels in both directions ...
    torch.testing.assert_close(tile[:, :, 4:], tile[:, :, :-4], atol=1e-6, rtol=0)
    torch.testing.assert_close(tile[:, 4:, :], tile[:, :-4, :], atol=1e-6, rtol=0)
    # ... and tells the 16 pixels of a tile apart
    codes = tile[:, :4, :4].reshape(8, 16).T
    assert torch.cdist(codes, codes).add(torch.eye(16)).min() > 0.1
    # "global" does not repeat every 4 pixels and depends on the image size
    assert (glob[:, :, 4:] - glob[:, :, :-4]).abs().max() > 0.1
    assert not torch.allclose(encoding_grid("global", 32, 32)[:, :16, :16], glob)
    # "global" is x = col / W: cos(2 pi x / 4) for the first channel
    W = 16
    expected = torch.cos(2 * np.pi * torch.arange(W) / W / 4).float()
    torch.testing.assert_close(glob[0, 0], expected, atol=1e-6, rtol=0)
    assert encoding_grid("none", 8, 8).shape == (0, 8, 8)


def test_predict_with_tile_covering_the_image_equals_forward():
    model = build_model("tiny").eval()
    x = torch.rand(2, 3, 40, 36)
    with torch.no_grad():
        ref = model(x)
    assert torch.equal(model.predict(x, tile=64), ref)
    assert torch.equal(model.predict(x, tile=None), ref)


def test_predict_tiled_blends_to_the_same_function_when_windows_do_not_matter():
    # a model without spatial context (shared MLP, per-tile encoding): every window computes
    # the same per-pixel function, so the blended result must equal the whole-image forward
    model = build_model("tiny", hyper="shared", encoding="tile").eval()
    with torch.no_grad():
        model.shared_params.normal_(0, 0.3)
        x = torch.rand(2, 3, 100, 76)
        whole = model(x)
    tiled = model.predict(x, tile=32, overlap=8, batch_size=3)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


def test_predict_restores_training_mode():
    model = build_model("tiny").train()
    model.predict(torch.rand(1, 3, 40, 40), tile=16, overlap=4)
    assert model.training


def _crop_vs_inside(norm):
    torch.manual_seed(0)
    model = build_model("small", norm=norm, encoding="tile").eval()
    if norm == "batch":   # give the running statistics non-trivial values
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.rand(4, 3, 32, 32))
        model.eval()
    big = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        inside = model(big)[..., 32:96, 32:96]
        alone = model(big[..., 32:96, 32:96])
    m = 24   # beyond the hypernetwork's receptive field radius (16 px) plus one tile
    return (inside - alone)[..., m:-m, m:-m].abs().max().item()


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_size_independent_norm_gives_same_values_alone_or_inside_larger_image(norm):
    diff = _crop_vs_inside(norm)
    print(f"norm={norm}: max |crop alone - crop inside 128x128| = {diff:.2e}")
    assert diff < 1e-5


def test_instance_norm_output_depends_on_the_surrounding_image():
    assert _crop_vs_inside("instance") > 1e-3


def test_bf16_autocast_cpu():
    model = build_model("tiny")
    x = torch.rand(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    ref = model(x)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    # bf16 has ~3 significant digits
    assert (out.float() - ref).abs().max() < 0.1


def test_shared_mlp_ablation_has_no_content_adaptation():
    model = build_model("tiny", hyper="shared", encoding="none").eval()
    assert model.hypernet is None
    x = torch.rand(1, 3, 8, 8)
    x[..., :4, :4] = x[..., 4:, 4:]
    out = model(x)
    # same RGB and no encoding -> identical spectrum wherever it is
    torch.testing.assert_close(out[..., :4, :4], out[..., 4:, 4:])


def test_linear_prior_in_closed_form():
    model = build_model("tiny", linear_prior=True).eval()
    A = torch.rand(31, 4)
    model.set_linear_prior(A)
    with torch.no_grad():
        for p in model.hypernet.head.parameters():   # silence the MLP: output = prior only
            p.zero_()
    x = torch.rand(1, 3, 8, 8)
    expected = torch.einsum("oc,bchw->bohw", A[:, :3], x) + A[:, 3].view(1, -1, 1, 1)
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tile", [1, 2, 8])
def test_other_tile_sizes(tile):
    model = build_model("tiny", tile=tile)
    assert model(torch.rand(1, 3, 19, 21)).shape == (1, 31, 19, 21)


def _cave_crop(root, size=64):
    from PIL import Image
    scene = next(p for p in sorted(root.iterdir()) if p.is_dir())
    inner = scene / scene.name if (scene / scene.name).is_dir() else scene
    name = scene.name
    bands = [np.asarray(Image.open(inner / f"{name}_{i:02d}.png"), dtype=np.float32)
             for i in range(1, 32)]
    hsi = np.stack(bands)[:, 200:200 + size, 200:200 + size] / 65535.0
    rgb = np.asarray(Image.open(inner / f"{name[:-3]}_RGB.bmp").convert("RGB"), dtype=np.float32)
    rgb = rgb[200:200 + size, 200:200 + size].transpose(2, 0, 1) / 255.0
    return torch.from_numpy(rgb)[None], torch.from_numpy(hsi)[None]


def test_a_few_steps_on_a_real_cave_crop_reduce_the_l1_loss(cave_root):
    rgb, hsi = _cave_crop(cave_root)
    model = build_model("small", seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = (model(rgb) * 2 - 1 - (hsi * 2 - 1)).abs().mean()   # L1 on [-1, 1] data
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print("L1 loss:", [round(v, 4) for v in losses])
    assert losses[-1] < 0.5 * losses[0]
