"""Ranking designs by cross-validation: paired per-scene differences over all 18 scenes.

Two test scenes (the ``dev18`` split of the shipped cards) cannot rank designs whose scores
differ by less than the spread between training seeds. The fold protocol trains a design once
per fold of ``dev18-fold1`` .. ``dev18-fold3`` (12 training scenes, 6 test scenes each; every
one of the 18 scenes is a test scene exactly once) and scores each fold's final weights on its
6 test scenes with ``python -m inr_lib evaluate`` (full images). Every scene then has one score
per design, from a model that never saw it, and two designs are compared scene by scene::

    from inr_lib.book import folds
    folds.designs()                                  # {"abl-reference": ("tiled", "whole"), ...}
    c = folds.compare("abl-norm-none-tile", "abl-reference", "psnr")
    c.mean, c.low, c.high                            # mean paired difference and its 95 % interval
    c.verdict                                        # "... leads" or "no difference resolved"

The result files are package data (``inr_lib/pretrained/folds/<design>@<fold>.<mode>.json``,
written by ``tools/train_folds.sh`` and copied by ``tools/publish_folds.py``); each design is
scored in the inference mode its card recommends unless a mode is given.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from scipy import stats

from .. import pretrained

__all__ = ["FOLDS", "Comparison", "designs", "scene_scores", "compare", "format_rows", "folder"]

#: The cross-validation splits (``inr_lib/data/splits/cave.json``).
FOLDS = ("dev18-fold1", "dev18-fold2", "dev18-fold3")
_FILE = re.compile(r"^(?P<design>.+)@(?P<fold>dev18-fold\d)\.(?P<mode>tiled|whole)\.json$")
#: Metrics where lower is better (the sign of "leads" flips).
_LOWER_IS_BETTER = ("sam", "rmse", "mrae")


def folder() -> Path:
    """Where the fold result files are (package data)."""
    return Path(str(resources.files("inr_lib.pretrained").joinpath("folds")))


@dataclass(frozen=True)
class Comparison:
    """Design ``a`` minus design ``b`` on one metric, scene by scene.

    Attributes:
        a, b, metric, modes: what was compared (``modes``: the inference mode of a and of b).
        diffs: ``{scene: a - b}`` for every scene both designs scored.
        mean: mean of the paired differences; sd: their standard deviation (n - 1).
        low, high: 95 % confidence interval of the mean (Student t, n - 1 degrees of freedom).
        per_fold: mean difference within each fold (6 scenes each).
        wins: scenes where ``a`` is better than ``b``, out of ``len(diffs)``.
        verdict: one sentence: which design leads, or "no difference resolved" when the
            interval contains 0.
    """

    a: str
    b: str
    metric: str
    modes: tuple[str, str]
    diffs: dict[str, float]
    mean: float
    sd: float
    low: float
    high: float
    per_fold: dict[str, float]
    wins: int
    verdict: str


def designs(root: Path | None = None) -> dict[str, tuple[str, ...]]:
    """``{design: modes}`` of the designs whose result files cover all three folds."""
    found: dict[str, dict[str, set]] = {}
    for p in sorted((root or folder()).glob("*.json")):
        m = _FILE.match(p.name)
        if m:
            found.setdefault(m["design"], {}).setdefault(m["mode"], set()).add(m["fold"])
    return {d: tuple(sorted(mode for mode, f in modes.items() if f == set(FOLDS)))
            for d, modes in sorted(found.items()) if any(f == set(FOLDS) for f in modes.values())}


def scene_scores(design: str, mode: str | None = None, root: Path | None = None
                 ) -> dict[str, dict[str, object]]:
    """``{scene: {"fold": fold, metric: value, ...}}`` over the three folds' test scenes."""
    root = root or folder()
    mode = mode or _recommended_mode(design)
    out: dict[str, dict[str, object]] = {}
    for fold in FOLDS:
        path = root / f"{design}@{fold}.{mode}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path.name}: no fold result for {design!r} ({mode}); "
                                    f"run tools/train_folds.sh {design} and tools/publish_folds.py")
        for s in json.loads(path.read_text())["per_scene"]:
            if s["scene"] in out:
                raise ValueError(f"{path.name}: scene {s['scene']!r} is a test scene of two folds")
            out[s["scene"]] = {"fold": fold, **{k: v for k, v in s.items() if k != "scene"}}
    return out


def compare(a: str, b: str, metric: str = "psnr", modes: tuple[str | None, str | None] = (None, None),
            root: Path | None = None) -> Comparison:
    """Paired comparison of designs ``a`` and ``b`` (each in its card's recommended mode unless
    ``modes`` names them) on ``metric`` over every scene both scored."""
    mode_a, mode_b = modes[0] or _recommended_mode(a), modes[1] or _recommended_mode(b)
    sa, sb = scene_scores(a, mode_a, root), scene_scores(b, mode_b, root)
    scenes = sorted(set(sa) & set(sb))
    diffs = {s: float(sa[s][metric]) - float(sb[s][metric]) for s in scenes}  # type: ignore[arg-type]
    n = len(diffs)
    if n < 2:
        raise ValueError(f"{a} and {b} share {n} scored scenes; need at least 2")
    values = list(diffs.values())
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    in_fold = {f: [diffs[s] for s in scenes if sa[s]["fold"] == f] for f in FOLDS}
    per_fold = {f: sum(v) / len(v) if v else float("nan") for f, v in in_fold.items()}
    better = (lambda d: d < 0) if metric in _LOWER_IS_BETTER else (lambda d: d > 0)
    wins = sum(better(d) for d in values)
    if mean - half <= 0 <= mean + half:
        verdict = (f"no difference resolved: {a} - {b} = {mean:+.2f} (95 % interval "
                   f"{mean - half:+.2f} .. {mean + half:+.2f}) over {n} scenes")
    else:
        leader = a if better(mean) else b
        verdict = (f"{leader} leads: {a} - {b} = {mean:+.2f} (95 % interval {mean - half:+.2f} .. "
                   f"{mean + half:+.2f}) over {n} scenes, {a} better on {wins} of {n}")
    return Comparison(a, b, metric, (mode_a, mode_b), diffs, mean, sd, mean - half, mean + half,
                      per_fold, wins, verdict)


def format_rows(comparisons: list[Comparison]) -> list[list[str]]:
    """Table rows (for :func:`inr_lib.book.table`): pair, metric, mean, 95 % interval, sd,
    per-fold means, wins."""
    return [[f"{c.a} - {c.b}", c.metric, f"{c.mean:+.2f}", f"{c.low:+.2f} .. {c.high:+.2f}",
             f"{c.sd:.2f}", " / ".join(f"{v:+.2f}" for v in c.per_fold.values()),
             f"{c.wins} / {len(c.diffs)}"] for c in comparisons]


def _recommended_mode(design: str) -> str:
    # the fold runs are scored like the design's shipped card (tiled for the paper's design)
    try:
        return str(pretrained.card(design)["recommended_mode"])
    except pretrained.PretrainedError:
        return "tiled"
