"""Training crops built from in-memory scenes.

:class:`PatchDataset` serves random square crops ``(rgb (3, s, s), hsi (31, s, s))`` from
a list of :class:`~inr_lib.data.Scene` objects, with random flips and transposes (the 8
symmetries of the square). Everything is held in memory: ``__getitem__`` only slices
arrays, it never touches a file.

Reproducibility: which scene, where the crop sits and which symmetry is applied are a
pure function of ``(seed, epoch, index)`` (:func:`crop_params`). Nothing depends on how
many items were drawn before, which worker process serves an item or how the index
space is split between processes, so resuming a run and running it on several GPUs
(each rank reading its share of the indices) give exactly the same crops.

Item ``index`` of an epoch always comes from scene ``index // crops_per_scene`` (every
training scene contributes ``crops_per_scene`` crops per epoch, as in the paper: 56
crops x 18 scenes = 1008); the order in which indices are visited is the sampler's job
(``torch.utils.data.DistributedSampler`` with the run's seed, see :mod:`inr_lib.train.loop`).

The RGB input is either the scene's own RGB image (``rgb_source="dataset"``, e.g. CAVE's
``*_RGB.bmp``) or synthesised from the spectra with a named camera/observer response
(``rgb_source="cie1964"``, ... via :func:`inr_lib.spectral.project`); see
:func:`inr_lib.data.scene_rgb`. The symmetries are :func:`inr_lib.model.tiling.apply_symmetry`,
the same that the inference self-ensemble undoes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..model.tiling import apply_symmetry
from .scene import scene_rgb

__all__ = ["CropParams", "crop_params", "PatchDataset"]


@dataclass(frozen=True)
class CropParams:
    """One crop: scene number, top-left corner and symmetry (flips then transpose)."""

    scene: int
    top: int
    left: int
    flip_v: bool      # flip rows (upside down)
    flip_h: bool      # flip columns (mirror)
    transpose: bool   # swap rows and columns


def crop_params(seed: int, epoch: int, index: int, *, crops_per_scene: int,
                sizes: Sequence[tuple[int, int]], size: int, augment: bool = True) -> CropParams:
    """The crop of item ``index`` in ``epoch``: a pure function of its arguments.

    Args:
        seed, epoch, index: non-negative integers identifying the item.
        crops_per_scene: items per scene and epoch; the scene is ``index // crops_per_scene``.
        sizes: ``(H, W)`` of every scene.
        size: crop side ``s`` (must fit in every scene).
        augment: draw random flips/transpose (otherwise none).
    """
    scene = index // crops_per_scene
    H, W = sizes[scene]
    rng = np.random.default_rng([int(seed), int(epoch), int(index)])
    top = int(rng.integers(0, H - size + 1))
    left = int(rng.integers(0, W - size + 1))
    fv, fh, tr = (bool(b) for b in rng.integers(0, 2, size=3)) if augment else (False,) * 3
    return CropParams(scene, top, left, fv, fh, tr)


def _as_tensor(x) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=np.float32)))


class PatchDataset(Dataset):
    """Random ``size x size`` training crops of in-memory scenes.

    ``len(ds) = len(scenes) * crops_per_scene``; ``ds[i]`` is ``(rgb (3, s, s), hsi (31, s, s))``
    float32 tensors in [0, 1], the crop :func:`crop_params` ``(seed, epoch, i)`` with its
    symmetry applied to both. Call :meth:`set_epoch` at the start of every epoch (before
    creating the DataLoader iterator; do not use ``persistent_workers``, which would keep
    an old epoch in the workers).

    Args:
        scenes: the training scenes (``hsi`` (31, H, W) in [0, 1], ``rgb`` or None).
        size: crop side (64 in the paper).
        crops_per_scene: crops per scene and epoch (56 in the paper).
        seed: seed of the crop sequence.
        augment: random flips/transposes (True in the paper).
        rgb_source: ``"dataset"`` or a response name (see :func:`scene_rgb`); the RGB is
            computed once here, not per item.
    """

    def __init__(self, scenes: Sequence, size: int = 64, crops_per_scene: int = 56, seed: int = 0,
                 augment: bool = True, rgb_source: str = "dataset"):
        scenes = list(scenes)
        if not scenes:
            raise ValueError("PatchDataset needs at least one scene, got none; check the data "
                             "folder and the split")
        if size < 1 or crops_per_scene < 1:
            raise ValueError(f"size and crops_per_scene must be positive, got {size}, {crops_per_scene}")
        self.names = [s.name for s in scenes]
        self.hsi = [_as_tensor(s.hsi) for s in scenes]
        self.rgb = [torch.from_numpy(scene_rgb(s, rgb_source)) for s in scenes]
        self.sizes = [(int(h.shape[-2]), int(h.shape[-1])) for h in self.hsi]
        small = [(n, hw) for n, hw in zip(self.names, self.sizes) if min(hw) < size]
        if small:
            raise ValueError(f"crop size {size} does not fit in scene(s) {small} ((name, (H, W))); "
                             f"use a smaller crop size")
        self.size, self.crops_per_scene, self.seed = int(size), int(crops_per_scene), int(seed)
        self.augment, self.rgb_source = bool(augment), rgb_source
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.hsi) * self.crops_per_scene

    def params(self, index: int) -> CropParams:
        """The :class:`CropParams` of item ``index`` in the current epoch."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} crops")
        return crop_params(self.seed, self.epoch, index, crops_per_scene=self.crops_per_scene,
                           sizes=self.sizes, size=self.size, augment=self.augment)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.params(index)
        s = self.size
        win = (slice(None), slice(p.top, p.top + s), slice(p.left, p.left + s))
        rgb = apply_symmetry(self.rgb[p.scene][win], p.flip_v, p.flip_h, p.transpose)
        hsi = apply_symmetry(self.hsi[p.scene][win], p.flip_v, p.flip_h, p.transpose)
        return rgb.contiguous(), hsi.contiguous()
