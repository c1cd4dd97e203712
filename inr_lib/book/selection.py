"""Which runs a chapter trains itself and which it takes from the shipped zoo.

Chapters 10 and 11 compare many trained variants. In the quick profile (minutes on a CPU, what
the book build runs) they train every short run. In the full profile a run takes from minutes
to an hour on a GPU, so they train only the variants the reader ticks in a Colab form
(``TRAIN_SHARED_MLP = False  # @param {type:"boolean"}``, one field per variant, see
:func:`field`) and take every other one from :mod:`inr_lib.pretrained` when the zoo has its
counterpart::

    from inr_lib.book import selection
    PLAN = selection.choose(bk, RUN_LIST, selection.ticked(globals(), VARIANTS),
                            counterparts, here="full profile, recipe 'colab', 2,400 steps",
                            test_scenes=SCORED)
    PLAN.trains(("shared-mlp", 0))     # train it here
    PLAN.shipped(("reference", 1))     # "abl-reference-s1": load and score the shipped model
    PLAN.label("reference")            # where the table row of a variant comes from

A run's choice is one of :data:`SOURCES`: trained here; the shipped counterpart; its
counterpart is configured (``pretrained/configs/<name>.yaml``) but not shipped yet; or there is
no counterpart. With ``PROFILE = "auto"`` the ticked runs train only while their estimated time
stays within :data:`inr_lib.book.AUTO_LIMIT_MINUTES` (set ``PROFILE = "full"`` for more): auto
never starts a long training. A shipped model trained on one of the chapter's test scenes is
never used (it would be scored on its own training data).

:func:`crop_scores` scores a model without a training log (a shipped one) on random test crops
exactly as the training loop's ``val_mode="crops"`` validation does, so its row has the same
three protocols as a run trained here.
"""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any, Collection, Iterable, Mapping, Sequence

import torch

from .. import pretrained
from ..data.patches import PatchDataset
from ..evaluation import metrics
from . import AUTO_LIMIT_MINUTES, chapter_times

__all__ = ["Choice", "Plan", "plan", "choose", "ticked", "field", "crop_scores", "TRAINED",
           "SHIPPED", "NOT_SHIPPED", "NO_COUNTERPART", "SOURCES", "CONTINUOUS_COUNTERPARTS",
           "ablation_counterparts"]

Run = tuple[str, int]          # (variant, seed)

TRAINED = "trained here"
SHIPPED = "shipped"
NOT_SHIPPED = "not shipped yet"
NO_COUNTERPART = "no shipped counterpart"
#: where a run of a chapter comes from
SOURCES = (TRAINED, SHIPPED, NOT_SHIPPED, NO_COUNTERPART)

#: chapter 11's runs and their shipped counterparts (the recommended `small` design and budget)
CONTINUOUS_COUNTERPARTS: dict[Run, str] = {("cont-even", 0): "small-continuous-even",
                                           ("bands-all", 0): "small",
                                           ("cont-all", 0): "small-continuous"}


@dataclass(frozen=True)
class Choice:
    """Where one run comes from: ``source`` (one of :data:`SOURCES`), the shipped ``model``
    that stands for it (or would, once shipped), and ``why`` when that is not obvious."""
    source: str
    model: str | None = None
    why: str = ""


@dataclass(frozen=True)
class Plan:
    """The choice for every run of a chapter (see :func:`plan`).

    Attributes:
        profile: ``"quick"`` or ``"full"``.
        choices: ``{(variant, seed): Choice}`` in the chapter's order.
        here: how this chapter trains its own runs (e.g. ``"full profile, recipe 'colab'"``).
        run_minutes: estimated training minutes of one full-profile run (0: not estimated).
        notes: lines about ticks that were not followed (the auto limit).
    """
    profile: str
    choices: dict[Run, Choice]
    here: str = ""
    run_minutes: float = 0.0
    notes: tuple[str, ...] = _field(default_factory=tuple)

    def trains(self, run: Run) -> bool:
        """Whether the chapter trains ``run`` itself."""
        return self.choices[run].source == TRAINED

    def shipped(self, run: Run) -> str | None:
        """The shipped model that stands for ``run``, or None (trained here, or missing)."""
        c = self.choices[run]
        return c.model if c.source == SHIPPED else None

    def has(self, run: Run) -> bool:
        """Whether ``run`` is in the chapter's tables (trained here or shipped)."""
        return run in self.choices and self.choices[run].source in (TRAINED, SHIPPED)

    @property
    def present(self) -> list[Run]:
        """The runs in the tables, in the chapter's order."""
        return [r for r in self.choices if self.has(r)]

    @property
    def minutes(self) -> float:
        """Estimated training minutes of this plan (full profile; 0 in the quick profile)."""
        return (sum(self.trains(r) for r in self.choices) * self.run_minutes
                if self.profile == "full" else 0.0)

    @property
    def summary(self) -> str:
        """How the runs in the tables were made, for a caption: ``here`` when all were trained
        here, else where to read each row's budget."""
        present = self.present
        if all(self.trains(r) for r in present):
            return self.here
        trained = any(self.trains(r) for r in present)
        return ((f"runs trained here: {self.here}; " if trained else "")
                + "shipped models: the budget in each row's 'from' cell")

    def label(self, variant: str) -> str:
        """Where a table row of ``variant`` comes from, over its seeds: ``"trained here (HERE)"``
        and/or ``"shipped NAME[, NAME-s1] (<budget from the cards>)"``; ``"absent"`` if neither."""
        runs = [c for (v, _), c in self.choices.items() if v == variant]
        parts = [f"{TRAINED} ({self.here})" if self.here else TRAINED] if any(c.source == TRAINED for c in runs) else []
        budgets: dict[str, list[str]] = {}
        for c in runs:
            if c.source == SHIPPED:
                budgets.setdefault(_budget(str(c.model)), []).append(str(c.model))
        parts += [f"{SHIPPED} {', '.join(names)} ({budget})" for budget, names in budgets.items()]
        return "; ".join(parts) or "absent"

    def lines(self) -> list[str]:
        """What the plan does, one line per kind of choice (for the chapter's output)."""
        by: dict[str, list[str]] = {s: [] for s in SOURCES}
        for (v, seed), c in self.choices.items():
            name = v if seed == 0 else f"{v} (seed {seed})"
            by[c.source].append(name + (f" = {c.model}" if c.model and c.source != TRAINED else "")
                                + (f" ({c.why})" if c.why else ""))
        out = [f"{self.profile} profile: {len(by[TRAINED])} of {len(self.choices)} runs train here"
               + (f", about {self.minutes:.0f} min of training (an estimate)" if self.minutes else "")
               + (f": {', '.join(by[TRAINED])}" if by[TRAINED] and self.profile == "full" else "")]
        for source, text in ((SHIPPED, "from the shipped zoo"),
                             (NOT_SHIPPED, "absent, their shipped model is configured but not shipped yet"),
                             (NO_COUNTERPART, "absent, no shipped counterpart (tick them to train them here)")):
            if by[source]:
                out.append(f"{text}: {', '.join(by[source])}")
        return out + list(self.notes)


def _budget(name: str) -> str:
    """``"small model, 50 epochs = 3,200 steps of batch 16"``: a shipped model's budget, from its card."""
    c = pretrained.card(name)
    t, preset = c["training"], (c.get("train_config") or {}).get("model_preset") or c["arch"]
    return f"{preset} model, {t['epochs']} epochs = {t['steps']:,} steps of batch {t['batch_size']}"


def field(variant: str) -> str:
    """The form field that ticks ``variant``: ``"shared-mlp"`` -> ``"TRAIN_SHARED_MLP"``."""
    return "TRAIN_" + variant.upper().replace("-", "_")


def ticked(namespace: Mapping[str, Any], variants: Iterable[str]) -> list[str]:
    """The ``variants`` whose form field (:func:`field`) is true in ``namespace`` (the cell's
    ``globals()``). Raises ``KeyError`` naming a variant that has no field."""
    variants = list(variants)
    missing = [field(v) for v in variants if field(v) not in namespace]
    if missing:
        raise KeyError(f"no form field {', '.join(missing)}; run the cell with the ticks first")
    return [v for v in variants if namespace[field(v)]]


def plan(runs: Sequence[Run], profile: str, ticked: Iterable[str] = (),
         counterparts: Mapping[Run, str] | None = None, *, here: str = "",
         run_minutes: float = 0.0, limit: float | None = None, test_scenes: Collection[str] = (),
         shipped: Collection[str] | None = None, configured: Collection[str] | None = None) -> Plan:
    """Choose, for every run ``(variant, seed)``, where it comes from.

    Quick profile: every run trains here (the ticks are for the full profile). Full profile:
    the runs of the ticked variants train here (with ``limit``, only while the estimated
    minutes, ``run_minutes`` a run, stay within it: the other ticks get a note); every other
    run is its counterpart in ``counterparts`` (``{run: model name}``) when that is shipped
    and was not trained on one of ``test_scenes``, else it is absent (:data:`SOURCES`).

    Args:
        shipped, configured: the shipped model names and those with a committed config
            (default: :func:`inr_lib.pretrained.available` and ``pretrained/configs/*.yaml``).

    Raises:
        ValueError: an unknown profile, a ticked variant that has no run, or a counterpart
            that is neither shipped nor configured (a wrong name in the mapping).
    """
    if profile not in ("quick", "full"):
        raise ValueError(f"profile must be 'quick' or 'full', got {profile!r}")
    runs, ticks = list(runs), list(dict.fromkeys(ticked))
    unknown = [v for v in ticks if v not in {r[0] for r in runs}]
    if unknown:
        raise ValueError(f"ticked {unknown}, which are not variants of this chapter: "
                         f"{list(dict.fromkeys(r[0] for r in runs))}")
    if profile == "quick":
        return Plan(profile, {r: Choice(TRAINED) for r in runs}, here, run_minutes)
    train, notes = _within_limit(runs, ticks, run_minutes, limit)
    shipped = set(pretrained.available() if shipped is None else shipped)
    configured = set(_configured() if configured is None else configured)
    choices = {r: Choice(TRAINED) if r[0] in train else
               _counterpart(r, (counterparts or {}).get(r), shipped, configured, test_scenes)
               for r in runs}
    return Plan(profile, choices, here, run_minutes, tuple(notes))


def _within_limit(runs: list[Run], ticks: list[str], run_minutes: float,
                  limit: float | None) -> tuple[set[str], list[str]]:
    """The ticked variants to train (in tick order, while within ``limit``) and a note for the others."""
    train: set[str] = set()
    spent, skipped = 0.0, []
    for v in ticks:
        cost = run_minutes * sum(r[0] == v for r in runs)
        if limit is not None and spent + cost > limit:
            skipped.append(v)
            continue
        train.add(v)
        spent += cost
    notes = [f"ticked but not trained: {', '.join(skipped)} (PROFILE \"auto\" trains at most about "
             f"{limit:.0f} min in a chapter; set PROFILE = \"full\" to train every ticked variant)"
             ] if skipped else []
    return train, notes


def _counterpart(run: Run, name: str | None, shipped: set[str], configured: set[str],
                 test_scenes: Collection[str]) -> Choice:
    if name is None:
        return Choice(NO_COUNTERPART)
    if name not in shipped:
        if name not in configured:
            raise ValueError(f"{run}: its counterpart {name!r} is neither shipped nor configured "
                             f"(pretrained/configs/{name}.yaml); fix the name")
        return Choice(NOT_SHIPPED, name)
    leak = sorted(set(pretrained.card(name)["data"]["train_scenes"]) & set(test_scenes))
    if leak:
        return Choice(NO_COUNTERPART, name, f"{name} was trained on the test scenes {leak}")
    return Choice(SHIPPED, name)


def _configured() -> list[str]:
    """The model names with a committed training config (shipped or not yet)."""
    return [p.stem for p in (pretrained._root() / "configs").glob("*.yaml")]


def ablation_counterparts(variants: Iterable[Any]) -> dict[Run, str]:
    """``{(variant, seed): "abl-<variant>[-s<seed>]"}`` from :func:`inr_lib.book.zoo.ablation_table`'s
    rows (their committed configs), for chapter 10's runs."""
    return {(v.name, seed): name for v in variants for seed, name in v.configs.items()}


def choose(bk: Any, runs: Sequence[Run], ticks: Iterable[str],
           counterparts: Mapping[Run, str] | None = None, *, here: str = "",
           test_scenes: Collection[str] = (), required: Iterable[Run] = ()) -> Plan:
    """:func:`plan` for a chapter set up by :func:`inr_lib.book.setup`: the profile of ``bk``,
    the chapter's estimated minutes per full-profile run (``run_minutes`` in
    ``chapter_times.json``), the auto limit when the profile was picked automatically; prints
    :meth:`Plan.lines`. Raises ``ValueError`` when a run in ``required`` is absent."""
    entry = chapter_times().get("chapters", {}).get(str(bk.chapter), {})
    auto = getattr(bk, "auto", False) and bk.profile == "full"
    result = plan(runs, bk.profile, ticks, counterparts, here=here,
                  run_minutes=float((entry.get("full") or {}).get("run_minutes") or 0),
                  limit=AUTO_LIMIT_MINUTES if auto else None, test_scenes=test_scenes)
    print("\n".join(result.lines()))
    missing = [r for r in required if not result.has(r)]
    if missing:
        raise ValueError(f"this chapter needs {missing}, which is neither ticked nor shipped: tick "
                         f"{', '.join(field(v) for v, _ in missing)}")
    return result


def crop_scores(model: torch.nn.Module, scenes: Sequence, size: int, crops: int, seed: int,
                device: torch.device | str | None = None, rgb_source: str = "dataset") -> dict[str, float]:
    """Mean metrics over ``crops`` random ``size`` crops per scene, seeded by ``seed``: the
    training loop's ``val_mode="crops"`` validation of a run trained with seed ``seed - 1``
    (same crops, clamp and means), for a model that has no training log (a shipped one).
    Returns ``{"psnr": ..., "ssim": ..., "sam": ..., "rmse": ..., "mrae": ...}``."""
    data = PatchDataset(scenes, size=size, crops_per_scene=crops, seed=seed, augment=False,
                        rgb_source=rgb_source)
    items = [data[i] for i in range(len(data))]
    rgb, hsi = torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])
    device = next(model.parameters()).device if device is None else torch.device(device)
    was = model.training
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(rgb[i:i + 64].to(device)).float().cpu() for i in range(0, len(rgb), 64)])
        scores = metrics.compute_all(pred.clamp(0, 1), hsi)
    model.train(was)
    return {k: float(torch.nanmean(v)) for k, v in scores.items()}
