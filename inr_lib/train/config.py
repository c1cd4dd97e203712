"""What defines a training run: :class:`TrainConfig`, read from the shipped presets
(``inr_lib/train/configs/*.yaml``: ``paper``, ``colab``, ``quick``, ``tiny``) or a YAML file, and
checked field by field when it is made."""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from ..model import registry as archs
from ..model.basis import target_wavelengths

__all__ = ["TrainConfig", "list_presets", "CONFIG_DIR", "PRESET_NAMES"]

CONFIG_DIR = Path(__file__).parent / "configs"
#: the shipped training presets (``CONFIG_DIR/NAME.yaml``)
PRESET_NAMES = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
VAL_MODES = ("full", "crops", "both")
AMP_MODES = ("auto", "bf16", "fp16", "off")

#: (fields, type, valid range, how the message states it) of the numeric config fields
_NUMBER_RULES = (
    (("epochs", "batch_size", "crop_size", "crops_per_scene", "checkpoint_every"), int,
     lambda x: x >= 1, "an integer >= 1"),
    (("lr",), float, lambda x: 0 < x <= 1, "a number in (0, 1]"),
    (("gamma",), float, lambda x: 0 < x <= 1,
     "a number in (0, 1] (the factor applied to lr at each milestone)"),
    (("weight_decay",), float, lambda x: x >= 0, "a number >= 0"),
    (("val_every", "val_overlap", "val_holdout", "seed"), int, lambda x: x >= 0, "an integer >= 0"),
    (("val_crops",), int, lambda x: x >= 1, "an integer >= 1"),
    (("num_workers",), int, lambda x: x >= 0, "an integer >= 0 or null"),
    (("betas",), float, lambda x: 0 <= x < 1, "two numbers in [0, 1)"),
    (("milestones",), int, lambda x: x >= 0, "a list of integers >= 0"),
)
_OPTIONAL = ("val_crops", "num_workers")
_SEQUENCES = ("betas", "milestones")      # checked element by element (betas: two of them)
#: fields of earlier versions, accepted (and ignored) in saved configs at these values only
_RETIRED = {"grad_clip": None, "tensorboard": False, "best_metric": "psnr"}


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in checkpoints and ``config.yaml``).

    The defaults are the paper's recipe (the one place it is defined: the ``paper`` preset
    only names it). Load presets with :meth:`preset` or YAML files
    with :meth:`from_yaml`; change fields with :meth:`replace` or :meth:`with_overrides`.

    Attributes:
        name: a label for the run.
        arch: ``"inr"`` (the INR-HSISR model), ``"cnn"`` (the SmallResCNN baseline) or
            ``"mstpp"`` (the MST++ transformer baseline, :mod:`inr_lib.model.mstpp`).
        model_preset: preset of :func:`inr_lib.build_model` (``arch="inr"`` only).
        model: options passed on to the model: for ``"inr"`` any
            :class:`~inr_lib.model.ModelConfig` field (``encoding``, ``norm``,
            ``linear_prior``, ``tile``, ``hyper``, ...); for ``"cnn"`` the
            :class:`~inr_lib.model.baselines.SmallResCNNConfig` fields (``channels``, ``num_blocks``);
            for ``"mstpp"`` the :class:`~inr_lib.model.mstpp.MSTPlusPlusConfig` fields
            (``stages``, ``blocks``, ...; empty: the paper's configuration).
        epochs: epochs to train (1000).
        batch_size: crops per optimiser step, over all processes (56).
        crop_size: side of the square training crops (64).
        crops_per_scene: crops per training scene per epoch (56).
        augment: random flips and transposes of the crops.
        rgb_source: ``"dataset"`` (the scenes' own RGB) or a response name (``"cie1964"``).
        lr, betas, weight_decay: Adam settings (1e-4, (0.9, 0.999), 0).
        milestones, gamma: MultiStepLR: multiply the rate by ``gamma`` after these epochs.
        val_every: validate every this many epochs (and after the last one; 0 = never).
        val_mode: ``"full"`` (whole held-out images, tiled at ``crop_size`` with
            ``val_overlap``), ``"crops"`` (``val_crops`` random crops per scene, as the
            released code validated) or ``"both"``.
        val_overlap, val_crops: see ``val_mode``.
        val_holdout: 0 (validate on the ``val_scenes`` given to :func:`~inr_lib.train.train`,
            the split's test part) or N: take N scenes out of the training scenes and
            validate on them instead; the test scenes are then not used during training at
            all, so ``best.pt`` is an early-stopping choice that never saw them. The N scenes
            are chosen by :func:`inr_lib.data.cave_splits.hold_out` from ``seed`` and the
            scene names (recorded in the run's ``data.json``; ``--resume`` refuses another
            hold-out). A count rather than a list of names: it applies unchanged to every
            split, fold and dataset (``--set val_holdout=2``), where a list would have to be
            kept in step with each split's scenes.
        seed: seeds the weights, the crops and their order.
        amp: ``"auto"`` (CUDA: bf16 where supported natively, else fp16; CPU: off),
            ``"bf16"``, ``"fp16"`` or ``"off"``.
        num_workers: DataLoader workers (None: 0 on CPU, up to 4 per process on CUDA).
        checkpoint_every: write ``last.pt`` every this many epochs (and after the last).
        wavelengths: the target bands in nm (a subset of 400, 410, ..., 700), or None for
            all 31. The model still predicts all 31 bands; only these enter the loss (e.g.
            the 16 even bands, to hold out the odd ones). Validation metrics are computed
            on all 31 bands, so held-out bands are measured.
    """

    name: str = "paper"
    arch: str = "inr"
    model_preset: str = "paper"
    model: dict = field(default_factory=dict)
    epochs: int = 1000
    batch_size: int = 56
    crop_size: int = 64
    crops_per_scene: int = 56
    augment: bool = True
    rgb_source: str = "dataset"
    lr: float = 1e-4
    betas: tuple = (0.9, 0.999)
    weight_decay: float = 0.0
    milestones: tuple = (200, 400, 600, 800)
    gamma: float = 0.5
    val_every: int = 10
    val_mode: str = "full"
    val_overlap: int = 16
    val_crops: int = 16
    seed: int = 0
    amp: str = "auto"
    num_workers: int | None = None
    checkpoint_every: int = 1
    wavelengths: list | None = None
    val_holdout: int = 0

    def __post_init__(self):
        """Convert the fields in place, or raise one ValueError naming every bad key."""
        problems: list = []
        for names, kind, ok, expect in _NUMBER_RULES:
            for name in names:
                value = getattr(self, name)
                if value is None and name in _OPTIONAL:
                    continue
                if name not in _SEQUENCES:
                    x = _number(name, value, kind, ok, expect, problems)
                    if x is not None:
                        setattr(self, name, x)
                elif not isinstance(value, (list, tuple)) or (name == "betas" and len(value) != 2):
                    problems.append(f"{name} must be {expect}, got {value!r}")
                else:
                    xs = [_number(name, v, kind, ok, expect, problems) for v in value]
                    if None not in xs:
                        setattr(self, name, tuple(xs))
        if not isinstance(self.model or {}, dict):
            problems.append(f"model must be a mapping of model options, got {self.model!r}")
        else:
            self.model = dict(self.model or {})
        for name in ("arch", "model_preset", "rgb_source", "val_mode", "amp"):
            if not isinstance(getattr(self, name), str):
                problems.append(f"{name} must be a string, got {getattr(self, name)!r}")
        for name, allowed in (("arch", tuple(archs.ARCHS)), ("val_mode", VAL_MODES), ("amp", AMP_MODES)):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if "val_overlap" not in str(problems) and "crop_size" not in str(problems) and \
                not 0 <= self.val_overlap < self.crop_size:
            problems.append(f"val_overlap must satisfy 0 <= val_overlap < crop_size, got "
                            f"{self.val_overlap} and {self.crop_size}")
        try:
            self.wavelengths = target_wavelengths(self.wavelengths)
        except ValueError as e:
            problems.append(str(e))
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    # ----------------------------------------------------------- conversions
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"], d["milestones"] = list(self.betas), list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Build from a dict; ``base: PRESET`` starts from a preset; unknown keys are errors.
        Fields of earlier versions are dropped where they hold the only value they ever had
        an effect with (configs saved by those versions); other values of them are errors."""
        d = dict(d)
        for key, value in _RETIRED.items():
            if key in d and d.pop(key) != value:
                raise ValueError(f"training config field {key!r} is no longer supported (only "
                                 f"{key}: {value!r} is accepted, from configs saved by earlier "
                                 f"versions); remove it")
        base = d.pop("base", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config keys {unknown}; known keys: {sorted(known)}")
        start = cls.preset(base).to_dict() if base else {}
        return cls(**{**start, **d})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrainConfig":
        """Read a YAML file of config fields (optionally ``base: quick`` to extend a preset)."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise ValueError(f"cannot read training config {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ValueError(f"training config {path} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"training config {path}: expected a mapping of fields, found "
                             f"a {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as e:
            raise ValueError(f"training config {path}: {e}") from None

    @classmethod
    def preset(cls, name: str) -> "TrainConfig":
        """A shipped preset: ``"paper"``, ``"colab"``, ``"quick"`` or ``"tiny"``."""
        if name not in PRESET_NAMES:
            raise ValueError(f"unknown training preset {name!r}; available: {list_presets()} "
                             f"(or give the path of a YAML file)")
        return cls.from_yaml(CONFIG_DIR / f"{name}.yaml")

    @classmethod
    def load(cls, preset_or_path: str | os.PathLike) -> "TrainConfig":
        """A preset name or a YAML path."""
        s = str(preset_or_path)
        preset = CONFIG_DIR / f"{s}.yaml"
        if preset.parent == CONFIG_DIR and preset.is_file():    # a bare preset name
            return cls.from_yaml(preset)
        if not Path(s).is_file():
            raise ValueError(f"--config {s!r} is neither a preset ({list_presets()}) nor an "
                             f"existing YAML file")
        return cls.from_yaml(s)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def with_overrides(self, items: Sequence[str]) -> "TrainConfig":
        """Apply ``key=value`` strings (values parsed as YAML; ``model.KEY=value`` sets a
        model option), e.g. ``["lr=5e-4", "model.encoding=tile", "milestones=[10, 20]"]``."""
        d = self.to_dict()
        for item in items:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"--set expects key=value, got {item!r}")
            value = yaml.safe_load(raw) if raw.strip() else None
            if key.startswith("model."):
                d["model"] = {**d["model"], key[len("model."):]: value}
            elif key in d:
                d[key] = value
            else:
                raise ValueError(f"--set {item!r}: unknown key {key!r}; known keys: {sorted(d)} "
                                 f"(and model.OPTION)")
        return TrainConfig.from_dict(d)


def _number(name: str, v, kind: type, ok: Callable, expect: str, problems: list):
    """``v`` as ``kind`` if it is one (no bools, no strings for ints) within ``ok``; else None,
    with a message naming ``name`` appended to ``problems``."""
    try:
        if isinstance(v, (bool, str)) and not (kind is float and isinstance(v, str)):
            raise TypeError
        x = kind(v)
        if kind is int and float(v) != x:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        problems.append(f"{name} must be {expect}, got {v!r}")
        return None
    if not (math.isfinite(x) and ok(x)):
        problems.append(f"{name} must be {expect}, got {v!r}")
        return None
    return x


def list_presets() -> list[str]:
    """Names of the shipped training presets."""
    return list(PRESET_NAMES)
