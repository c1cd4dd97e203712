"""Fixed train/test splits of the CAVE scenes.

Splits (``inr_lib/data/splits/cave.json``, read with :func:`cave_split`):

* ``"default"``: 20 train / 12 test over all 32 scenes, stratified by scene content. The
  released INR-HSISR code used an unseeded random 18/6 split that cannot be reproduced, so
  this project fixes its own (rationale in the JSON's ``note``).
* ``"dev8"``: the 8 development scenes (balloons, beads, chart_and_stuffed_toy, cloth, face,
  fake_and_real_peppers, flowers, superballs), 6 train / 2 test; it is the restriction of
  ``"default"`` to those scenes.
* ``"dev18"``: dev8 plus 10 more training scenes, 16 train / dev8's 2 test: the split of the
  shipped models' cards.
* ``"dev18-fold1"`` .. ``"dev18-fold3"``: 3-fold cross-validation over the 18 dev18 scenes
  (12 train / 6 test, every scene tested once), for ranking designs.

With a partial copy, :func:`split_available` partitions whatever scenes are present.
:func:`hold_out` takes validation scenes out of a training part (``TrainConfig.val_holdout``),
so that a run can stop early without looking at the test scenes.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from typing import Iterable, Sequence, Union

__all__ = ["CAVE_SCENES", "cave_split", "list_cave_splits", "split_available", "hold_out"]


@lru_cache(maxsize=1)
def _splits_file() -> dict:
    text = resources.files("inr_lib.data").joinpath("splits", "cave.json").read_text()
    return json.loads(text)


#: The 32 official CAVE scene names.
CAVE_SCENES = tuple(_splits_file()["scenes"])


def list_cave_splits() -> list:
    """Names of the splits shipped in ``inr_lib/data/splits/cave.json``."""
    return list(_splits_file()["splits"])


def cave_split(name: str = "default") -> dict:
    """A fixed split: ``{"train": [...], "test": [...], "note": str}`` (fresh lists)."""
    splits = _splits_file()["splits"]
    if name not in splits:
        raise KeyError(f"unknown CAVE split {name!r}; available: {list(splits)}")
    s = splits[name]
    return {"train": list(s["train"]), "test": list(s["test"]), "note": s.get("note", "")}


def _scene_names(scenes) -> list:
    """Names of scenes given as names, :class:`~inr_lib.data.cave.SceneDir` or
    :class:`~inr_lib.data.scene.Scene` objects (anything else: its ``str``)."""
    return [s.name if isinstance(s, tuple) or hasattr(s, "hsi") else str(s) for s in scenes]


def _auto_split(available: set) -> str:
    """The split ``split=None`` picks: a stored split whose scenes are exactly ``available``,
    else ``"default"`` when all are CAVE scenes, else ``"fallback"``."""
    for name in list_cave_splits():
        s = cave_split(name)
        if set(s["train"]) | set(s["test"]) == available:
            return name
    if available and available <= set(CAVE_SCENES):
        return "default"
    return "fallback"


def _split_parts(split: Union[str, dict], available: set) -> tuple[dict, str]:
    """``({"train": [...], "test": [...]}, label)`` for a split name, ``"fallback"`` (sorted
    ``available``, every 4th to test) or a dict."""
    if split == "fallback":
        ordered = sorted(available)
        test = ordered[3::4] or ordered[-1:]
        return {"train": [n for n in ordered if n not in test], "test": test}, \
            "fallback (sorted, every 4th to test)"
    if isinstance(split, dict):
        return split, "custom"
    return cave_split(split), split


def _check_required(result: dict, require: Sequence[str], available: set) -> None:
    """Raise ValueError when a part named in ``require`` of ``result`` is empty."""
    if not any(not result[p] for p in require):
        return
    want = "both non-empty" if set(require) == {"train", "test"} else \
        " and ".join(require) + " non-empty"
    raise ValueError(
        f"split {result['split']!r} over the available scenes {sorted(available)} leaves "
        f"{len(result['train'])} train and {len(result['test'])} test scenes; expected {want}. "
        f"Use another split ({list_cave_splits()}), split=None for automatic, or a dict"
    )


def split_available(scenes: Iterable, split: Union[str, dict, None] = None,
                    require: Sequence[str] = ("train", "test")) -> dict:
    """Partition the scenes you have into train and test.

    Args:
        scenes: names, :class:`SceneDir` or :class:`Scene` objects (e.g. the result of
            :func:`list_cave_scenes`).
        split: a split name, a ``{"train": [...], "test": [...]}`` dict, or ``None`` (auto):

            * a stored split whose scenes are exactly the available ones (``"default"`` for
              all 32, ``"dev8"`` for the 8 development scenes);
            * else, when all available scenes are CAVE scenes, ``"default"`` restricted to
              them;
            * else (e.g. synthetic scenes), a deterministic fallback: sorted names, every
              4th one (indices 3, 7, 11, ...) to test, the rest to train (with fewer than
              4 scenes, the last one to test).
        require: the parts that must not be empty (``("test",)`` to score a checkpoint on a
            folder that holds only test scenes; ``()`` for none).

    Returns:
        ``{"train": [...], "test": [...], "split": name used, "missing": split scenes that
        are not available, "unassigned": available scenes the split does not mention}``.
        Lists keep the split's order.

    Raises:
        ValueError: a part in ``require`` would be empty.
    """
    avail = _scene_names(scenes)
    aset = set(avail)
    parts, label = _split_parts(_auto_split(aset) if split is None else split, aset)
    mentioned = set(parts["train"]) | set(parts["test"])
    result = {
        "train": [n for n in parts["train"] if n in aset],
        "test": [n for n in parts["test"] if n in aset],
        "split": label,
        "missing": [n for n in list(parts["train"]) + list(parts["test"]) if n not in aset],
        "unassigned": [n for n in avail if n not in mentioned],
    }
    _check_required(result, require, aset)
    return result


def hold_out(scenes: Iterable, count: int, seed: int = 0) -> tuple[list, list]:
    """``(kept, held)``: ``count`` of ``scenes`` (a split's training part) held out for
    validation, and the others, to train on.

    The choice depends on ``seed`` and the scene names alone, not on their order, the machine
    or the Python version: the ``count`` scenes with the smallest SHA-256 digests of
    ``"{seed}:{name}"`` are held out (a hash, not :mod:`random`, whose sampling algorithms may
    change between Python versions). Both lists keep the order of ``scenes``, so the kept
    scenes are trained on in the split's order. ``count`` 0 holds out nothing.

    Args:
        scenes: names, :class:`SceneDir` or :class:`Scene` objects.
        count: how many to hold out (:attr:`inr_lib.train.TrainConfig.val_holdout`).
        seed: the run's seed (:attr:`inr_lib.train.TrainConfig.seed`).

    Raises:
        ValueError: ``count`` is negative, or leaves no scene to train on.
    """
    scenes = list(scenes)
    if count < 0 or (count and count >= len(scenes)):
        raise ValueError(f"val_holdout {count}: cannot hold out {count} of the {len(scenes)} "
                         f"training scenes for validation and still train on one; use "
                         f"val_holdout 0 to {max(0, len(scenes) - 1)}")
    names = _scene_names(scenes)
    order = sorted(range(len(scenes)),
                   key=lambda i: (hashlib.sha256(f"{seed}:{names[i]}".encode()).hexdigest(), i))
    held = set(order[:count])
    return ([s for i, s in enumerate(scenes) if i not in held],
            [s for i, s in enumerate(scenes) if i in held])


# --------------------------------------------------------------------------------------------
# loading many scenes
