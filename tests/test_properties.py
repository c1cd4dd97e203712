"""Property-based tests (hypothesis) of the loaders, the projection and the model over random
sizes, bit depths, channel layouts and dtypes. Few examples each (the suite runs on a small
CPU machine); ``derandomize=True`` makes every run check the same examples."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import png
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from inr_lib import build_model  # noqa: E402
from inr_lib.data import load_cave_scene  # noqa: E402
from inr_lib.files.images import read_image  # noqa: E402
from inr_lib.model.tiling import tiled_apply  # noqa: E402
from inr_lib.spectral import get_response, list_responses, project  # noqa: E402

FEW = settings(max_examples=15, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LAYOUTS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}



def _write_png(path: Path, grey: np.ndarray, bitdepth: int, layout: str, alpha: int) -> None:
    """A band PNG holding ``grey`` in the given layout (colour channels equal)."""
    c = LAYOUTS[layout]
    h, w = grey.shape
    planes = [grey] * (3 if c >= 3 else 1) + ([np.full_like(grey, alpha)] if c in (2, 4) else [])
    values = np.stack(planes, axis=-1).reshape(h, w * c)
    with open(path, "wb") as f:
        png.Writer(w, h, greyscale=c <= 2, alpha=c in (2, 4), bitdepth=bitdepth).write(
            f, values.tolist())


# ------------------------------------------------------------------------------ loaders
@FEW
@given(h=st.integers(1, 9), w=st.integers(1, 9), data=st.data())
def test_cave_bands_round_trip_exactly(h, w, data):
    """Any mix of 8/16-bit bands in L / LA / RGB / RGBA (equal colour channels) loads as
    ``v / (2**depth - 1)`` exactly, in band order, with the file's own depth per band."""
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    depths = data.draw(st.lists(st.sampled_from([8, 16]), min_size=31, max_size=31), label="depths")
    layouts = data.draw(st.lists(st.sampled_from(sorted(LAYOUTS)), min_size=31, max_size=31),
                        label="layouts")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "prop_ms"
        folder.mkdir()
        expected = np.empty((31, h, w), np.float32)
        for b in range(31):
            maxval = 2 ** depths[b] - 1
            grey = rng.integers(0, maxval + 1, (h, w))
            if b == 0:
                grey.flat[0] = maxval  # the extremes occur
            _write_png(folder / f"prop_ms_{b + 1:02d}.png", grey, depths[b], layouts[b],
                       alpha=int(rng.integers(0, maxval + 1)))
            expected[b] = grey.astype(np.float32) / np.float32(maxval)
        scene = load_cave_scene(folder)
    assert scene.name == "prop" and scene.rgb is None
    np.testing.assert_array_equal(scene.hsi, expected)
    assert scene.meta["band_bitdepths"] == sorted(set(depths))
    assert scene.meta["band_channels"] == sorted({LAYOUTS[k] for k in layouts})


@FEW
@given(h=st.integers(1, 12), w=st.integers(1, 12), bitdepth=st.sampled_from([8, 16]),
       layout=st.sampled_from(["RGB", "RGBA"]), seed=st.integers(0, 2**32 - 1))
def test_input_png_round_trips_exactly(h, w, bitdepth, layout, seed):
    rng = np.random.default_rng(seed)
    c = LAYOUTS[layout]
    v = rng.integers(0, 2**bitdepth, (h, w, c))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.png"
        with open(path, "wb") as f:
            png.Writer(w, h, greyscale=False, alpha=c == 4, bitdepth=bitdepth).write(
                f, v.reshape(h, w * c).tolist())
        rgb, notes = read_image(path)
    want = (v[..., :3].transpose(2, 0, 1) / (2**bitdepth - 1)).astype(np.float32)
    np.testing.assert_array_equal(rgb, want)
    assert bool(notes) == (c == 4)


# ------------------------------------------------------------------------------ projection
@FEW
@given(batch=st.sampled_from([None, 1, 3]), h=st.integers(1, 6), w=st.integers(1, 6),
       dtype=st.sampled_from([np.float32, np.float64]),
       response=st.sampled_from(sorted(list_responses()) + ["random"]),
       normalise=st.sampled_from(["sum", "ntire", "none"]), clip=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_project_is_the_band_sum(batch, h, w, dtype, response, normalise, clip, seed):
    rng = np.random.default_rng(seed)
    shape = ((batch,) if batch else ()) + (31, h, w)
    hsi = (rng.random(shape) * 1.2).astype(dtype)
    raw = rng.random((31, 3)) if response == "random" else get_response(response)
    arg = raw if response == "random" else response          # an array or a name
    scale = 255 / 256 if normalise == "ntire" else 1.0
    R = raw if normalise == "none" else raw / raw.sum(axis=0) * scale
    # the formula written out: channel c = sum over bands b of hsi[b] * R[b, c]
    want = np.zeros(shape[:-3] + (3, h, w))
    for c in range(3):
        for b in range(31):
            want[..., c, :, :] += hsi[..., b, :, :].astype(np.float64) * R[b, c]
    if clip:
        want = np.clip(want, 0, 1)
    got = project(hsi, arg, normalise=normalise, clip=clip)
    assert got.dtype == dtype and got.shape == want.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    t = project(torch.from_numpy(hsi), arg, normalise=normalise, clip=clip)  # torch agrees
    np.testing.assert_allclose(t.numpy(), got, rtol=tol, atol=tol)


# ------------------------------------------------------------------------------ the model
_TINY = build_model("tiny", seed=3).eval()
_TINY64 = build_model("tiny", seed=3).double().eval()


@FEW
@given(b=st.integers(1, 40), h=st.integers(1, 40), w=st.integers(1, 40),
       dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 2**31 - 1))
def test_model_output_shape_dtype_for_any_size(b, h, w, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(b, 3, h, w, generator=g, dtype=dtype)
    model = _TINY if dtype == torch.float32 else _TINY64
    with torch.no_grad():
        out = model(rgb)
    assert out.shape == (b, 31, h, w) and out.dtype == dtype and torch.isfinite(out).all()
    # each image of a batch is processed on its own (instance norm is per sample)
    with torch.no_grad():
        one = model(rgb[-1:])
    torch.testing.assert_close(out[-1:], one, rtol=1e-4, atol=1e-5)


@FEW
@given(h=st.integers(1, 24), w=st.integers(1, 24),
       encoding=st.sampled_from(["global", "tile", "none"]), seed=st.integers(0, 2**31 - 1))
def test_render_at_native_size_equals_forward(h, w, encoding, seed):
    model = build_model("tiny", seed=seed % 7, encoding=encoding).double().eval()
    rgb = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(seed),
                     dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model.render(rgb, size=(h, w)), model(rgb),
                                   rtol=1e-9, atol=1e-9)


@FEW
@given(h=st.integers(1, 50), w=st.integers(1, 50), tile=st.integers(1, 24), data=st.data())
def test_tiled_blending_reproduces_a_pointwise_function(h, w, tile, data):
    """For a per-pixel function the windows, their overlaps and the blending weights must
    give back exactly the whole-image result: every pixel covered, weights summing to 1."""
    overlap = data.draw(st.integers(0, tile - 1), label="overlap")
    batch_size = data.draw(st.integers(1, 5), label="batch_size")
    rgb = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * 97 + w))

    def fn(x):
        return torch.cat([x.sin(), x * x, x.mean(1, keepdim=True)], 1)   # (N, 7, h, w)

    out = tiled_apply(fn, rgb, tile, overlap, batch_size)
    torch.testing.assert_close(out, fn(rgb), rtol=1e-5, atol=1e-6)
