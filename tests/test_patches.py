"""Training crops: shapes, reproducibility as a pure function of (seed, epoch, index), RGB source."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from inr_lib.data import scene_rgb
from inr_lib.data.patches import PatchDataset, crop_params
from inr_lib.model.tiling import apply_symmetry


@pytest.fixture
def scenes(random_scene):
    return [random_scene("a", 0), random_scene("b", 1, 30, 26)]


def test_items_are_float32_crops_of_the_right_scene(scenes):
    ds = PatchDataset(scenes, size=8, crops_per_scene=5, seed=3, augment=False)
    assert len(ds) == 10
    for i in range(len(ds)):
        rgb, hsi = ds[i]
        assert rgb.shape == (3, 8, 8) and hsi.shape == (31, 8, 8)
        assert rgb.dtype == hsi.dtype == torch.float32
        p = ds.params(i)
        assert p.scene == i // 5
        src = scenes[p.scene].hsi[:, p.top:p.top + 8, p.left:p.left + 8]
        assert np.array_equal(hsi.numpy(), src)
        # RGB and HSI are cropped at the same place
        assert torch.equal(rgb, hsi[[25, 15, 5]])


def test_augmented_crops_apply_the_same_symmetry_to_rgb_and_hsi(scenes):
    ds = PatchDataset(scenes, size=8, crops_per_scene=16, seed=0, augment=True)
    seen = set()
    for i in range(len(ds)):
        rgb, hsi = ds[i]
        p = ds.params(i)
        seen.add((p.flip_v, p.flip_h, p.transpose))
        assert torch.equal(rgb, hsi[[25, 15, 5]])
        raw = torch.from_numpy(scenes[p.scene].hsi[:, p.top:p.top + 8, p.left:p.left + 8])
        assert torch.equal(hsi, apply_symmetry(raw, p.flip_v, p.flip_h, p.transpose))
    assert len(seen) > 4  # several of the 8 symmetries occur


def test_crop_sequence_is_a_pure_function_of_seed_epoch_index(scenes):
    a = PatchDataset(scenes, size=8, crops_per_scene=6, seed=7)
    b = PatchDataset(scenes, size=8, crops_per_scene=6, seed=7)
    a.set_epoch(3)
    b.set_epoch(3)
    order = list(range(len(a)))[::-1]          # access order does not matter
    for i in order:
        assert torch.equal(a[i][1], b[i][1])
    assert a.params(5) == crop_params(7, 3, 5, crops_per_scene=6, sizes=a.sizes, size=8)
    b.set_epoch(4)
    assert [a.params(i) for i in range(12)] != [b.params(i) for i in range(12)]
    c = PatchDataset(scenes, size=8, crops_per_scene=6, seed=8)
    c.set_epoch(3)
    assert [a.params(i) for i in range(12)] != [c.params(i) for i in range(12)]


def test_rgb_source_projects_with_a_named_response(random_scene):
    s = random_scene("x", 0, rgb=False)
    with pytest.raises(ValueError, match="no RGB image"):
        PatchDataset([s], size=8)
    rgb = scene_rgb(s, "cie1964")
    assert rgb.shape == (3, 24, 20) and rgb.dtype == np.float32
    assert 0 <= rgb.min() and rgb.max() <= 1
    ds = PatchDataset([s], size=8, crops_per_scene=2, rgb_source="cie1964")
    assert ds[0][0].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="rgb_source"):
        scene_rgb(s, "no-such-response")


def test_bad_arguments_say_what_is_wrong(scenes):
    with pytest.raises(ValueError, match="does not fit"):
        PatchDataset(scenes, size=64)
    with pytest.raises(ValueError, match="at least one scene"):
        PatchDataset([], size=8)
    with pytest.raises(IndexError):
        PatchDataset(scenes, size=8, crops_per_scene=1)[2]

