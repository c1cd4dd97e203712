"""Datasets: CAVE, NUS, NTIRE 2018, and a synthetic CAVE-layout default.

Every loader returns a :class:`Scene` (``hsi`` float32 ``(31, H, W)`` in [0, 1], ``rgb``
float32 ``(3, H, W)`` or None, ``wavelengths`` 400..700 nm)::

    from inr_lib import data
    root = data.resolve_cave_root()          # real CAVE if present, else synthetic (made once)
    print(root)                              # says which
    parts = data.split_available(data.list_cave_scenes(root.path))
    train = data.load_cave(root.path, parts["train"])

Modules: :mod:`~inr_lib.data.cave`, :mod:`~inr_lib.data.nus`,
:mod:`~inr_lib.data.ntire2018`, :mod:`~inr_lib.data.synthetic`,
:mod:`~inr_lib.data.download`; where the data live is :mod:`~inr_lib.data.roots`,
``--data``/``--split`` specifications :mod:`~inr_lib.data.spec` (:func:`load_data`);
training crops are in :mod:`inr_lib.data.patches`.
"""
from ..files.readers import DataFormatError
from . import cave as _cave
from . import roots as _roots
from .cave import (
    CAVE_SCENES,
    SceneDir,
    cave_split,
    hold_out,
    iter_cave,
    list_cave_scenes,
    list_cave_splits,
    load_cave,
    load_cave_scene,
    split_available,
)
from .download import CAVE_URL, DownloadError, UnsafeArchiveError, download_cave
from .ntire2018 import load_ntire2018
from .nus import load_nus
from .roots import DataRoot, default_data_root, resolve_cave_root
from .scene import Scene, scene_rgb
from .spec import load_data, parse_split
from .synthetic import ensure_synthetic_cave, make_synthetic_cave

__all__ = ["Scene", "scene_rgb", "DataFormatError", *_cave.__all__, "CAVE_URL", "DownloadError",
           "UnsafeArchiveError", "download_cave", "load_ntire2018", "load_nus", *_roots.__all__,
           "ensure_synthetic_cave", "make_synthetic_cave", "load_data", "parse_split"]
