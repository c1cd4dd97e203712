"""The shipped ablation variants as one table, with the spread between seeds.

Every ablation of the model zoo (:mod:`inr_lib.pretrained`) has a committed training config
``configs/abl-<variant>.yaml``; ``abl-<variant>-s<k>`` is the same variant trained with seed
``k``. A variant is *shipped* once its card ``cards/abl-<variant>[-s<k>].json`` exists; until then
it stays in the table, marked as not trained yet::

    from inr_lib.book import zoo
    variants = zoo.ablation_table()              # one Variant per variant, the reference first
    ref = variants[0]                            # "reference": the paper design
    v = zoo.find(variants, "norm-none")
    v.change                                     # {"norm": ("instance", "none")}
    v.mean["psnr_tiled"], v.spread["psnr_tiled"], v.diff["psnr_tiled"]
    zoo.reading(variants, "psnr_tiled")          # which differences exceed the seed noise

All numbers are the dev18 test means of the cards' evaluations (``python -m inr_lib evaluate``,
full images, ``tiled`` and ``whole`` inference), keyed ``"<metric>_<mode>"`` as in
:func:`inr_lib.pretrained.summary`. Over the shipped seeds of a variant, ``mean`` is their mean
and ``spread`` half their range (``|s0 - s1| / 2`` for two seeds; None for one seed).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .. import pretrained
from ..model import PRESETS, ModelConfig

__all__ = ["Variant", "ablation_table", "find", "seed_noise", "verdict", "reading", "reading_text",
           "protocol", "format_change", "format_rows", "PREFIX", "REFERENCE", "MODES", "KEYS",
           "DIGITS"]

#: Name prefix of the ablation configs and cards.
PREFIX = "abl-"
#: The variant every other one is compared with (the paper design).
REFERENCE = "reference"
#: Inference modes of the cards' evaluations.
MODES = ("tiled", "whole")
#: Table keys ``"<metric>_<mode>"``, metrics in :data:`inr_lib.pretrained.METRICS` order.
KEYS = tuple(f"{m}_{mode}" for mode in MODES for m in pretrained.METRICS)
_SEED = re.compile(r"^(?P<base>.+)-s(?P<seed>\d+)$")
#: Training-config keys that may differ between variants without being a change of recipe.
_NOT_RECIPE = ("name", "seed", "model", "val_every")


@dataclass(frozen=True)
class Variant:
    """One ablation variant, all its seeds together.

    Attributes:
        name: the variant, e.g. ``"norm-none"`` (config name without ``abl-`` and ``-s<k>``).
        configs: ``{seed: model name}`` of every committed config of the variant.
        change: ``{option: (reference value, this variant's value)}`` for every model option
            that differs from the reference (the presets resolved); empty for the reference.
        recipe_change: the same for training-config keys other than the model and the seed
            (empty when the variant differs from the reference in the model only).
        per_seed: ``{seed: {key: value}}`` for the shipped seeds (keys: :data:`KEYS`).
        mean: mean over the shipped seeds, per key (empty when none is shipped).
        spread: half the range over the shipped seeds, per key (None with fewer than two).
        diff: ``mean - reference mean`` per key (empty for the reference itself, or when this
            variant or the reference is not shipped).
        cards: ``{seed: card}`` of the shipped seeds.
        is_reference: whether this is the variant the others are compared with.
    """

    name: str
    configs: dict[int, str]
    change: dict[str, tuple[Any, Any]]
    recipe_change: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    per_seed: dict[int, dict[str, float]] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float | None] = field(default_factory=dict)
    diff: dict[str, float] = field(default_factory=dict)
    cards: dict[int, dict[str, Any]] = field(default_factory=dict)
    is_reference: bool = False

    @property
    def seeds(self) -> list[int]:
        """The shipped seeds, ascending."""
        return sorted(self.per_seed)

    @property
    def missing(self) -> list[str]:
        """The model names of this variant whose card is not shipped (not trained yet)."""
        return [n for s, n in sorted(self.configs.items()) if s not in self.per_seed]

    @property
    def trained(self) -> bool:
        """Whether at least one seed is shipped."""
        return bool(self.per_seed)


def _configs() -> dict[str, dict[str, Any]]:
    """``{model name: training config}`` of every ablation: the committed ``configs/abl-*.yaml``,
    and the card's ``train_config`` for a shipped ablation whose config is gone."""
    root = pretrained._root()
    out = {}
    for path in sorted((root / "configs").glob(f"{PREFIX}*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        if not isinstance(cfg, dict):
            raise ValueError(f"{path}: not a training config (a YAML mapping); fix or remove it")
        out[path.stem] = cfg
    for name in pretrained.available():
        if name.startswith(PREFIX) and name not in out:
            out[name] = dict(pretrained.card(name).get("train_config") or {})
    return out


def _split_name(name: str) -> tuple[str, int | None]:
    """``"abl-norm-none-s1"`` -> ``("norm-none", 1)``; ``"abl-norm-none"`` -> ``("norm-none", None)``."""
    bare = name[len(PREFIX):]
    m = _SEED.match(bare)
    return (m["base"], int(m["seed"])) if m else (bare, None)


def _group(configs: dict[str, dict[str, Any]]) -> dict[str, dict[int, str]]:
    """``{variant: {seed: model name}}``; the seed is the config's ``seed`` (default 0).

    Raises:
        ValueError: two configs of one variant with the same seed, a ``-s<k>`` name whose config
            has another seed, or seeds of one variant with different model options.
    """
    groups: dict[str, dict[int, str]] = {}
    for name, cfg in configs.items():
        variant, suffix = _split_name(name)
        seed = int(cfg.get("seed", 0))
        if suffix is not None and suffix != seed:
            raise ValueError(f"{name}: the name says seed {suffix} but its config has seed {seed}; "
                             f"fix configs/{name}.yaml")
        seen = groups.setdefault(variant, {})
        if seed in seen:
            raise ValueError(f"{seen[seed]} and {name} are the same variant with the same seed "
                             f"{seed}; give one of them another seed")
        seen[seed] = name
    for variant, seeds in groups.items():
        models = {n: _model_options(configs[n]) for n in seeds.values()}
        if len({repr(sorted(m.items())) for m in models.values()}) > 1:
            raise ValueError(f"the seeds of ablation {variant!r} have different model options "
                             f"{models}: they are not the same variant; rename one")
    return groups


def _model_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """The full model config of a training config (its preset with its ``model`` options)."""
    if cfg.get("arch", "inr") != "inr":
        return {"arch": cfg["arch"], **dict(cfg.get("model") or {})}
    preset = cfg.get("model_preset", "paper")
    if preset not in PRESETS:
        raise ValueError(f"ablation config {cfg.get('name')!r}: unknown model_preset {preset!r}")
    base = ModelConfig(**PRESETS[preset])
    full = dataclasses.replace(base, **dict(cfg.get("model") or {})).to_dict()
    full.pop("config_version", None)
    return {"arch": "inr", **full}


def _differences(a: dict[str, Any], b: dict[str, Any], skip: tuple[str, ...] = ()
                 ) -> dict[str, tuple[Any, Any]]:
    """``{key: (a's value, b's value)}`` where they differ (None for an absent key)."""
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if k not in skip and a.get(k) != b.get(k)}


def _scores(card: dict[str, Any]) -> dict[str, float]:
    """``{"psnr_tiled": ..., "mrae_whole": ...}`` of a card (keys of modes it lacks left out)."""
    return {k: float(v) for k, v in pretrained.scores(card["evaluation"]).items() if v is not None}


def _stats(per_seed: dict[int, dict[str, float]]) -> tuple[dict[str, float], dict[str, float | None]]:
    """Mean and half-range over seeds of every key all seeds have."""
    if not per_seed:
        return {}, {}
    keys = [k for k in KEYS if all(k in s for s in per_seed.values())]
    values = {k: [s[k] for s in per_seed.values()] for k in keys}
    mean = {k: sum(v) / len(v) for k, v in values.items()}
    spread = {k: (max(v) - min(v)) / 2 if len(v) > 1 else None for k, v in values.items()}
    return mean, spread


def _variant(name: str, seeds: dict[int, str], configs: dict[str, dict[str, Any]],
             reference: dict[str, Any], shipped: set[str]) -> Variant:
    cfg = configs[seeds[min(seeds)]]
    cards = {s: pretrained.card(n) for s, n in sorted(seeds.items()) if n in shipped}
    per_seed = {s: _scores(c) for s, c in cards.items()}
    mean, spread = _stats(per_seed)
    return Variant(name=name, configs=dict(sorted(seeds.items())),
                   change=_differences(_model_options(reference), _model_options(cfg)),
                   recipe_change=_differences(reference, cfg, _NOT_RECIPE),
                   per_seed=per_seed, mean=mean, spread=spread, cards=cards)


def ablation_table(reference: str = REFERENCE) -> list[Variant]:
    """Every ablation variant with a committed config (or a shipped card), the reference first,
    then the others in name order, each with its shipped seeds' scores.

    Raises:
        ValueError: no config of ``reference``, or inconsistent seeds: a ``-s<k>`` name whose
            config has another seed, two configs of one variant with the same seed, or seeds of
            one variant with different model options.
    """
    configs = _configs()
    groups = _group(configs)
    if reference not in groups:
        raise ValueError(f"no ablation config {PREFIX}{reference}.yaml in "
                         f"{pretrained._root() / 'configs'}; the table needs the reference")
    shipped = set(pretrained.available())
    ref_cfg = configs[groups[reference][min(groups[reference])]]
    order = [reference] + sorted(g for g in groups if g != reference)
    rows = [_variant(v, groups[v], configs, ref_cfg, shipped) for v in order]
    ref = rows[0]
    return ([dataclasses.replace(ref, is_reference=True)]
            + [dataclasses.replace(r, diff=_diff(r, ref)) for r in rows[1:]])


def _diff(row: Variant, ref: Variant) -> dict[str, float]:
    return {k: row.mean[k] - ref.mean[k] for k in row.mean if k in ref.mean}


def find(variants: list[Variant], name: str) -> Variant:
    """The variant called ``name`` (``KeyError`` listing the names if there is none)."""
    for v in variants:
        if v.name == name:
            return v
    raise KeyError(f"no ablation variant {name!r}; variants: {[v.name for v in variants]}")


def seed_noise(variants: list[Variant], key: str = "psnr_tiled") -> tuple[float, str] | None:
    """The largest difference between two seeds of one variant, ``(max - min, variant name)``,
    over the variants with at least two shipped seeds; None when no variant has two yet."""
    ranges = [(2 * s, v.name) for v in variants if (s := v.spread.get(key)) is not None]
    return max(ranges) if ranges else None


def verdict(variant: Variant, variants: list[Variant], key: str = "psnr_tiled") -> str:
    """How ``variant``'s difference to the reference compares with the seed noise (for ``key``):
    ``"reference"``, ``"not trained yet"``, ``"no reference yet"`` (the reference is not shipped),
    ``"no seed spread yet"`` (no variant has two shipped seeds), ``"larger than the seed spread"``
    (``abs(difference) > seed_noise``, see :func:`seed_noise`) or ``"within the seed spread"``."""
    if variant.is_reference:
        return "reference"
    if key not in variant.mean:
        return "not trained yet"
    if key not in variant.diff:
        return "no reference yet"
    noise = seed_noise(variants, key)
    if noise is None:
        return "no seed spread yet"
    return "larger than the seed spread" if abs(variant.diff[key]) > noise[0] else "within the seed spread"


def reading(variants: list[Variant], key: str = "psnr_tiled") -> dict[str, Any]:
    """The table read against the seed noise: ``{"noise": seed_noise(...), "<verdict>": [names]}``
    for every verdict of :func:`verdict` except ``"reference"`` (empty lists included)."""
    out: dict[str, Any] = {"noise": seed_noise(variants, key)}
    for label in ("larger than the seed spread", "within the seed spread", "no seed spread yet",
                  "no reference yet", "not trained yet"):
        out[label] = []
    for v in variants:
        label = verdict(v, variants, key)
        if label != "reference":
            out[label].append(v.name)
    return out


def format_change(variant: Variant) -> str:
    """``"norm: instance -> none; encoding: global -> tile"`` (``"(reference)"`` for none)."""
    parts = [f"{k}: {a} -> {b}" for k, (a, b) in {**variant.change, **variant.recipe_change}.items()]
    return "; ".join(parts) if parts else "(reference)"


def protocol(variants: list[Variant]) -> str:
    """The budget and test protocol of the shipped variants, read from their cards, in one
    paragraph (every distinct value listed when the cards disagree)."""
    cards = [c for v in variants for c in v.cards.values()]
    if not cards:
        return "No ablation variant is shipped yet."
    t = [c["training"] for c in cards]
    d = [c["data"] for c in cards]
    inf = [c["evaluation"]["tiled"]["protocol"].get("inference", {}) for c in cards
           if "tiled" in c["evaluation"]]
    minutes = [x["wall_time_s"] / 60 for x in t]
    steps = [f"{x['steps']:,}" for x in t]
    split = _one([x["split"] for x in d])
    return (f"{len(cards)} shipped ablation models, each trained on {split} train "
            f"({_one([len(x['train_scenes']) for x in d])} CAVE scenes) for "
            f"{_one([x['epochs'] for x in t])} epochs = {_one(steps)} steps of batch "
            f"{_one([x['batch_size'] for x in t])}, {_range(minutes)} min of wall time each on "
            f"{_one([x['machine'].split(',')[0] for x in t])}; scored on "
            f"{split} test ({_one([', '.join(x['test_scenes']) for x in d])}), full images: "
            f"tiled = windows of {_one([i.get('tile') for i in inf])} px overlapping by "
            f"{_one([i.get('overlap') for i in inf])}, whole = one forward pass per image.")


def _range(values: list[float]) -> str:
    """``"37 to 43"`` (minutes, rounded), or one number when they round alike."""
    lo, hi = f"{min(values):.0f}", f"{max(values):.0f}"
    return lo if lo == hi else f"{lo} to {hi}"


def _one(values: list[Any]) -> str:
    """The value all items share, or ``"a / b"`` listing the distinct ones in order."""
    distinct = list(dict.fromkeys(str(v) for v in values))
    return distinct[0] if len(distinct) == 1 else " / ".join(distinct)


#: Decimals shown per metric (PSNR and SAM in hundredths, SSIM and MRAE in thousandths).
DIGITS = {"psnr": 2, "ssim": 3, "sam": 2, "mrae": 3}
_UNITS = {"psnr": "dB", "ssim": "", "sam": "deg", "mrae": ""}


def _name_of(key: str) -> str:
    """``"psnr_tiled"`` -> ``"tiled PSNR"``."""
    metric, mode = key.split("_")
    return f"{mode} {metric.upper()}"


def _number(key: str, value: float, sign: bool = False) -> str:
    return f"{value:{'+' if sign else ''}.{DIGITS[key.split('_')[0]]}f}"


def _seeds_cell(v: Variant) -> str:
    shipped = ", ".join(map(str, v.seeds)) or "none"
    missing = [s for s, n in v.configs.items() if n in v.missing]
    return shipped + (f" (seed {', '.join(map(str, missing))} not trained yet)" if missing and v.seeds else "")


def _value_cell(v: Variant, key: str) -> str:
    """``"33.63 ± 0.05"`` (mean ± half the range over seeds), ``"33.63"`` for one seed."""
    if key not in v.mean:
        return ""
    spread = v.spread.get(key)
    return _number(key, v.mean[key]) + (f" ± {_number(key, spread)}" if spread is not None else "")


def format_rows(variants: list[Variant], keys: tuple[str, ...] = KEYS,
                diff_keys: tuple[str, ...] = ("psnr_tiled", "psnr_whole", "sam_tiled", "sam_whole"),
                verdict_key: str = "psnr_tiled") -> tuple[list[str], list[list[str]]]:
    """The table as text: ``(header, rows)`` for :func:`inr_lib.book.table`.

    Columns: variant, change vs the reference, seeds shipped, ``mean ± spread`` per key in
    ``keys``, the difference to the reference per key in ``diff_keys``, and the
    :func:`verdict` for ``verdict_key``. A variant with no shipped seed is one line whose
    first score cell reads ``not trained yet``.
    """
    header = (["variant", "change vs reference", "seeds shipped"]
              + [f"{_name_of(k)}{' (' + _UNITS[k.split('_')[0]] + ')' if _UNITS[k.split('_')[0]] else ''}"
                 for k in keys]
              + [f"Δ {_name_of(k)}" for k in diff_keys]
              + [f"Δ {_name_of(verdict_key)} vs seed noise"])
    rows = []
    for v in variants:
        scores = [_value_cell(v, k) for k in keys]
        if not v.trained:
            scores = ["not trained yet"] + [""] * (len(keys) - 1)
        diffs = [_number(k, v.diff[k], sign=True) if k in v.diff else "" for k in diff_keys]
        judged = verdict(v, variants, verdict_key)
        rows.append([v.name, format_change(v), _seeds_cell(v)] + scores + diffs
                    + ["" if judged in ("reference", "not trained yet") else judged])
    return header, rows


def _with_unit(key: str, value: float, sign: bool = False) -> str:
    """``"+0.41 dB"``, ``"-0.35°"``, ``"0.004"`` (SSIM and MRAE have no unit)."""
    unit = {"dB": " dB", "deg": "°", "": ""}[_UNITS[key.split("_")[0]]]
    return _number(key, value, sign) + unit


def reading_text(variants: list[Variant], key: str = "psnr_tiled") -> str:
    """Sentences (Markdown) that read the table for ``key`` against the seed noise, true for
    whatever the shipped cards hold: the largest seed-to-seed difference, which variants differ
    from the reference by more than it and which do not, or why nothing can be judged yet."""
    r = reading(variants, key)
    what = _name_of(key)
    named = {v.name: v for v in variants}

    def listed(names: list[str]) -> str:
        return ", ".join(f"`{n}` ({_with_unit(key, named[n].diff[key], sign=True)})"
                         for n in names) or "none"

    if r["noise"] is None:
        parts = [f"No variant has two shipped seeds yet, so there is no measure of seed noise "
                 f"for {what} yet."]
    else:
        parts = [f"For {what}, the largest difference between two seeds of one variant is "
                 f"{_with_unit(key, r['noise'][0])} (`{r['noise'][1]}`)."]
    if not any(v.is_reference and v.trained for v in variants):
        parts.append("The reference is not shipped yet, so no variant can be compared with it "
                     "yet; each row shows only its own scores.")
    elif r["noise"] is None:
        parts.append(f"The differences to the reference ({listed(r['no seed spread yet'])}) "
                     f"cannot be judged against it.")
    else:
        parts.append(f"Differences to the reference larger than that: "
                     f"{listed(r['larger than the seed spread'])}; within it: "
                     f"{listed(r['within the seed spread'])}.")
    return " ".join(parts)
