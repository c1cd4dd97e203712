"""Where the data live: real CAVE scenes if present, else the synthetic CAVE-layout dataset.

* ``INR_DATA`` (environment variable) is the data folder; default: the user's cache folder,
  ``$XDG_CACHE_HOME/inr_lib`` or ``~/.cache/inr_lib`` (:func:`default_data_root`). Real CAVE is
  expected in ``$INR_DATA/cave`` (where ``download_cave()`` puts it).
* ``INR_CAVE`` (environment variable, optional): another folder of real CAVE scenes, e.g. a
  development copy kept outside ``INR_DATA`` (the Makefile points it at one when present).
* Otherwise the synthetic dataset in ``$INR_DATA/synthetic_cave``, made on demand by
  :func:`inr_lib.data.ensure_synthetic_cave`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from ..files.readers import DataFormatError
from .cave import list_cave_scenes
from .synthetic import SYNTHETIC_MANIFEST, ensure_synthetic_cave, is_synthetic_complete

__all__ = ["default_data_root", "DataRoot", "resolve_cave_root"]


def default_data_root() -> Path:
    """The data folder (not created here), the first of:

    1. ``$INR_DATA``;
    2. ``$XDG_CACHE_HOME/inr_lib`` (the XDG base-directory convention);
    3. ``~/.cache/inr_lib`` when it exists (where earlier releases kept the data) or
       platformdirs is not installed;
    4. platformdirs' user cache folder for ``inr_lib`` (``~/Library/Caches/inr_lib`` on macOS,
       ``%LOCALAPPDATA%\\inr_lib\\Cache`` on Windows, ``~/.cache/inr_lib`` on Linux).
    """
    if os.environ.get("INR_DATA"):
        return Path(os.environ["INR_DATA"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "inr_lib"
    home = Path("~/.cache/inr_lib").expanduser()
    try:
        import platformdirs
    except ImportError:
        return home
    return home if home.exists() else Path(platformdirs.user_cache_dir("inr_lib", appauthor=False))


class DataRoot(NamedTuple):
    """Result of :func:`resolve_cave_root`: ``path`` (a CAVE-layout folder), ``kind``
    (``"cave"`` or ``"synthetic"``) and ``source`` (how it was found, for printing)."""

    path: Path
    kind: str
    source: str

    def __str__(self) -> str:
        what = "real CAVE data" if self.kind == "cave" else "synthetic CAVE-layout data"
        return f"{what} at {self.path} ({self.source})"


def _has_real_scenes(folder: Path) -> bool:
    if not folder.is_dir() or (folder / SYNTHETIC_MANIFEST).exists():
        return False
    try:
        return bool(list_cave_scenes(folder))
    except (FileNotFoundError, DataFormatError):
        return False


def _other_cave_dirs(cave_dirs: Sequence | None) -> list[tuple[Path, str]]:
    """The folders to look in after ``$INR_DATA/cave``, with how each was named."""
    if cave_dirs is not None:
        return [(Path(p).expanduser(), "given folder") for p in cave_dirs]
    env = os.environ.get("INR_CAVE")
    return [(Path(env).expanduser(), "from INR_CAVE")] if env else []


def resolve_cave_root(kind: str | None = None, create: bool = True, *,
                      cave_dirs: Sequence | None = None, **synthetic_kwargs: Any) -> DataRoot:
    """Find the CAVE data to use, in this order:

    1. ``$INR_DATA/cave`` (default: ``cave`` in :func:`default_data_root`) holding real CAVE
       scenes;
    2. ``cave_dirs`` (default: ``$INR_CAVE`` if set) holding real CAVE scenes;
    3. the synthetic dataset ``$INR_DATA/synthetic_cave``, made on demand by
       :func:`~inr_lib.data.ensure_synthetic_cave` (``synthetic_kwargs`` are passed on).

    Args:
        kind: ``None`` (the order above), ``"cave"`` (real data only; FileNotFoundError if
            absent) or ``"synthetic"`` (skip real data).
        create: make the synthetic dataset if needed (else FileNotFoundError).
        cave_dirs: other folders of real CAVE scenes to look in (see 2.).

    Returns:
        :class:`DataRoot` ``(path, kind, source)``; ``print(resolve_cave_root())`` says which.
    """
    if kind not in (None, "cave", "synthetic"):
        raise ValueError(f"kind must be None, 'cave' or 'synthetic', found {kind!r}")
    data = default_data_root()
    env = "INR_DATA" if os.environ.get("INR_DATA") else f"the default data folder {data}"
    if kind != "synthetic":
        candidates = [(data / "cave", f"from {env}"), *_other_cave_dirs(cave_dirs)]
        for folder, source in candidates:
            if _has_real_scenes(folder):
                return DataRoot(folder, "cave", source)
        if kind == "cave":
            looked = " nor ".join(str(p) for p, _ in candidates)
            raise FileNotFoundError(
                f"no real CAVE data in {looked}. Get it with "
                f"inr_lib.data.download_cave() (into {data / 'cave'}) or set INR_DATA")
    synth = data / "synthetic_cave"
    if create:
        ensure_synthetic_cave(synth, **synthetic_kwargs)
    elif not is_synthetic_complete(synth):
        raise FileNotFoundError(
            f"no synthetic dataset at {synth}; call inr_lib.data.ensure_synthetic_cave({str(synth)!r})")
    return DataRoot(synth, "synthetic", f"generated by inr_lib.data.synthetic under {env}")
