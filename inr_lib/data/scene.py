"""The :class:`Scene` record every dataset loader returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import spectral
from ..spectral import WAVELENGTHS

__all__ = ["Scene", "scene_rgb"]


def _check_image(arr, what: str, channels: int | None) -> None:
    if not isinstance(arr, np.ndarray):
        raise TypeError(
            f"Scene.{what}: expected a numpy array, found {type(arr).__name__}; convert "
            "torch tensors with .cpu().numpy()"
        )
    if arr.dtype != np.float32:
        raise TypeError(
            f"Scene.{what}: expected dtype float32, found {arr.dtype}; convert with "
            ".astype(np.float32) after scaling to [0, 1]"
        )
    if arr.ndim != 3 or (channels is not None and arr.shape[0] != channels):
        want = f"({channels}, H, W)" if channels is not None else "(C, H, W)"
        raise ValueError(f"Scene.{what}: expected shape {want} (channels first), found {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"Scene.{what}: image is empty, shape {arr.shape}")
    if not np.isfinite(arr).all():
        n = int(arr.size - np.isfinite(arr).sum())
        raise ValueError(f"Scene.{what}: expected finite values, found {n} NaN/inf values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"Scene.{what}: expected values in [0, 1], found range [{lo:.6g}, {hi:.6g}]; "
            "divide by the white level / bit depth of the source"
        )


@dataclass(repr=False)
class Scene:
    """One spectral scene with its RGB image.

    Attributes:
        name: scene name, e.g. ``"balloons"``.
        hsi: float32 ``(31, H, W)`` in [0, 1], channels first; band ``b`` is at
            ``wavelengths[b]`` nm.
        rgb: float32 ``(3, H, W)`` in [0, 1] (R, G, B order), or ``None`` when the dataset
            copy has no RGB image.
        wavelengths: ``(C,)`` band centres in nm, strictly increasing, ``C == hsi.shape[0]``
            (the loaders always give :data:`inr_lib.spectral.WAVELENGTHS`, 400..700 step 10).
        meta: free-form provenance (source paths, bit depths, normalisation used, ...).

    Arrays are numpy; use ``torch.from_numpy(scene.hsi)`` for a tensor (no copy).
    Validated on construction: types, dtype, shapes, finite values, range [0, 1].
    """

    name: str
    hsi: np.ndarray
    rgb: np.ndarray | None = None
    wavelengths: np.ndarray = field(default_factory=lambda: WAVELENGTHS.astype(np.float64))
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Scene.name: expected a non-empty str, found {self.name!r}")
        _check_image(self.hsi, "hsi", None)
        w = np.asarray(self.wavelengths, dtype=np.float64)
        if w.ndim != 1 or w.size != self.hsi.shape[0]:
            raise ValueError(
                f"Scene.wavelengths: expected shape ({self.hsi.shape[0]},) to match the "
                f"{self.hsi.shape[0]} bands of hsi, found {w.shape}"
            )
        if not np.isfinite(w).all() or np.any(np.diff(w) <= 0):
            raise ValueError(f"Scene.wavelengths: expected strictly increasing nm, found {w}")
        self.wavelengths = w
        if self.rgb is not None:
            _check_image(self.rgb, "rgb", 3)
            if self.rgb.shape[1:] != self.hsi.shape[1:]:
                raise ValueError(
                    f"Scene.rgb: expected the same height and width as hsi "
                    f"{self.hsi.shape[1:]}, found {self.rgb.shape[1:]}"
                )
        if not isinstance(self.meta, dict):
            raise TypeError(f"Scene.meta: expected a dict, found {type(self.meta).__name__}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return tuple(self.hsi.shape[1:])

    def __repr__(self) -> str:
        rgb = "None" if self.rgb is None else f"float32{self.rgb.shape}"
        return (
            f"Scene(name={self.name!r}, hsi=float32{self.hsi.shape}, rgb={rgb}, "
            f"wavelengths={self.wavelengths[0]:g}..{self.wavelengths[-1]:g} nm, "
            f"meta keys={sorted(self.meta)})"
        )


def scene_rgb(scene: "Scene", rgb_source: str = "dataset") -> np.ndarray:
    """The RGB input of a scene, ``(3, H, W)`` float32 in [0, 1].

    Args:
        scene: a :class:`~inr_lib.data.Scene` (``hsi`` (31, H, W), ``rgb`` (3, H, W) or None).
        rgb_source: ``"dataset"`` for the scene's own RGB image, or the name of a response
            known to :func:`inr_lib.spectral.get_response` (e.g. ``"cie1964"``), in which
            case the RGB is ``inr_lib.spectral.project(scene.hsi, response)``.
    """
    if rgb_source == "dataset":
        if scene.rgb is None:
            raise ValueError(f"scene {scene.name!r} has no RGB image of its own, but "
                             f"rgb_source='dataset' was requested; use a synthesised RGB "
                             f"instead, e.g. rgb_source='cie1964'")
        rgb = np.asarray(scene.rgb, dtype=np.float32)
    else:
        try:
            response = spectral.get_response(rgb_source)
        except (KeyError, ValueError) as e:
            raise ValueError(f"unknown rgb_source {rgb_source!r}: expected 'dataset' or a "
                             f"response name known to inr_lib.spectral ({e})") from None
        projected = spectral.project(np.asarray(scene.hsi, dtype=np.float32), response)
        rgb = np.asarray(projected.detach().cpu().numpy() if hasattr(projected, "detach") else projected,
                         dtype=np.float32)
    hsi_hw = tuple(np.shape(scene.hsi)[-2:])
    if rgb.ndim != 3 or rgb.shape[0] != 3 or tuple(rgb.shape[1:]) != hsi_hw:
        raise ValueError(f"scene {scene.name!r}: expected an RGB image of shape (3, {hsi_hw[0]}, "
                         f"{hsi_hw[1]}) to match its spectra, found {tuple(rgb.shape)}")
    return np.ascontiguousarray(rgb)
