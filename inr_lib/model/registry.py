"""The architectures that train and checkpoint know, by name: ``"inr"``, ``"cnn"`` and ``"mstpp"``.

One place maps an architecture name to its model class, its configuration class and a
builder, so that training (:func:`inr_lib.train.train`) and checkpoints
(:func:`inr_lib.files.checkpoints.load_model`) build models the same way::

    from inr_lib.model import registry as archs
    model = archs.build("inr", "small", seed=0, encoding="tile")   # an INRHSISR
    cnn = archs.build("cnn", {"channels": 32}, seed=1)              # a SmallResCNN
    mst = archs.build("mstpp")                                      # an MSTPlusPlus (the paper's)
    archs.arch_of(model)                                            # "inr"

A new architecture is one :func:`register` call: the model class must take its
configuration object, expose it as ``model.config`` with ``to_dict()``, and map
``(B, 3, H, W)`` in [0, 1] to ``(B, 31, H, W)``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import nn

from . import INRHSISR, ModelConfig, build_model
from .baselines import SmallResCNN, SmallResCNNConfig
from .mstpp import MSTPlusPlus, MSTPlusPlusConfig

__all__ = ["Arch", "ARCHS", "register", "build", "arch_of", "unwrap"]


@dataclass(frozen=True)
class Arch:
    """An architecture: ``builder(config, seed, **options) -> model``; ``config`` is a preset
    name, a config dict (as stored in checkpoints), a ``config_class`` instance or None (the
    default); ``seed`` (None: the config's own) seeds the weights."""

    name: str
    model_class: type
    config_class: type
    builder: Callable[..., nn.Module]


#: name -> :class:`Arch`
ARCHS: dict[str, Arch] = {}


def register(name: str, model_class: type, config_class: type,
             ) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``builder(config, seed, **options)`` under ``name``."""
    def wrap(builder):
        ARCHS[name] = Arch(name, model_class, config_class, builder)
        return builder
    return wrap


@register("inr", INRHSISR, ModelConfig)
def _build_inr(config, seed: int | None, **options) -> nn.Module:
    return build_model("paper" if config is None else config, seed=seed or 0, **options)


@register("cnn", SmallResCNN, SmallResCNNConfig)
def _build_cnn(config, seed: int | None, **options) -> nn.Module:
    config = _dataclass_config("cnn", SmallResCNNConfig, config)
    seeded = {"seed": seed} if seed is not None else {}
    return SmallResCNN(config, **{**seeded, **options})


@register("mstpp", MSTPlusPlus, MSTPlusPlusConfig)
def _build_mstpp(config, seed: int | None, **options) -> nn.Module:
    config = _dataclass_config("mstpp", MSTPlusPlusConfig, config)
    seeded = {"seed": seed} if seed is not None else {}
    return MSTPlusPlus(config, **{**seeded, **options})


def _dataclass_config(arch: str, config_class: type, config: Any) -> Any:
    """``config`` as a ``config_class`` instance (or None): a dict is checked key by key."""
    if isinstance(config, Mapping):
        known = {f.name for f in dataclasses.fields(config_class)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown {arch} config keys {unknown}; known keys: {sorted(known)}")
        return config_class(**config)
    if config is not None and not isinstance(config, config_class):
        raise TypeError(f"{arch}: expected a dict or {config_class.__name__}, got {type(config).__name__}")
    return config


def build(arch: str, config: Any = None, *, seed: int | None = None, **options: Any) -> nn.Module:
    """An untrained model of architecture ``arch`` (see :class:`Arch` for the arguments).

    Raises:
        ValueError: unknown architecture or configuration keys.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}: expected one of {tuple(ARCHS)}")
    return ARCHS[arch].builder(config, seed, **options)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


def arch_of(model: nn.Module) -> str:
    """The registered name of a model's architecture (a DDP wrapper is looked through)."""
    m = unwrap(model)
    for a in ARCHS.values():
        if isinstance(m, a.model_class):
            return a.name
    names = " or ".join(a.model_class.__name__ for a in ARCHS.values())
    raise TypeError(f"cannot checkpoint a {type(m).__name__}: expected an {names}")
