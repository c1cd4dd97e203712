"""The model's configuration: :class:`ModelConfig` (everything that defines a network, saved
in checkpoints) and the named :data:`PRESETS` that :func:`inr_lib.model.build_model` reads."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ..spectral import WAVELENGTHS
from .basis import check_spectral, parse_spectral
from .coordinate import WAVELENGTH_CHANNELS
from .encoding import check_encoding, encoding_channels
from .hypernet import NORMS
from .pixelwise import PIXELWISE, mlp_param_count

#: version of the configuration format, stored in checkpoints
CONFIG_VERSION = 1


@dataclass
class ModelConfig:
    """Everything that defines an INR-HSISR network (saved in checkpoints).

    Attributes:
        in_channels / out_channels: 3 (RGB) and 31 (bands 400..700 nm).
        tile: side of the square tile that shares one predicted MLP (4 in the paper).
        encoding: positional encoding, "global" (released code), "tile" (ASAPNet) or "none".
        periods: periods of the encoding (4 and 2).
        mlp_hidden: hidden widths of the per-pixel MLP ((64, 64, 64, 64) in the paper).
        negative_slope: LeakyReLU slope inside the MLP (0.1).
        hyper_width / hyper_deep_width / hyper_blocks: hypernetwork channels (64, 1024, 5).
        norm: hypernetwork normalisation, "instance" (paper), "batch" or "none".
        hyper: "conv" (the hypernetwork) or "shared" (ablation: one learned MLP shared by
            every tile, i.e. no content adaptation).
        linear_prior: optional spectral prior: the output is a learned linear map of the
            RGB (initialised to zero, or in closed form with
            :meth:`INRHSISR.set_linear_prior`) plus the MLP's output (a residual).
        pixelwise: "fast" or "readable" implementation of the per-pixel MLPs (same result).
        spectral: ``"bands"`` (the paper: the MLP outputs the 31 band values) or a function
            continuous in wavelength: ``"continuous"`` (= ``"bspline13"``), ``"bsplineK"``
            (cubic B-splines with K functions) or ``"cosineK"`` (cosine series); the MLP then
            outputs K basis coefficients (see :mod:`inr_lib.model.basis`). Written by
            :meth:`to_dict` only when not ``"bands"``, so configs of band models are unchanged
            (older inr_lib versions read them, runs resume across versions) and configs
            without the key load as ``"bands"``. ``"coordinate"`` (NeSR's approach, see
            :mod:`inr_lib.model.coordinate`): the wavelength is an input of the MLP (E = 7 more
            input channels) and the MLP outputs one value; not combinable with
            ``linear_prior``.
    """

    in_channels: int = 3
    out_channels: int = 31
    tile: int = 4
    encoding: str = "global"
    periods: tuple = (4.0, 2.0)
    mlp_hidden: tuple = (64, 64, 64, 64)
    negative_slope: float = 0.1
    hyper_width: int = 64
    hyper_deep_width: int = 1024
    hyper_blocks: int = 5
    norm: str = "instance"
    hyper: str = "conv"
    linear_prior: bool = False
    pixelwise: str = "fast"
    spectral: str = "bands"

    def __post_init__(self):
        self.periods = tuple(float(p) for p in self.periods)
        self.mlp_hidden = tuple(int(c) for c in self.mlp_hidden)
        check_encoding(self.encoding)
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}: expected one of {NORMS}")
        if self.hyper not in ("conv", "shared"):
            raise ValueError(f"unknown hyper {self.hyper!r}: expected 'conv' or 'shared'")
        if self.pixelwise not in PIXELWISE:
            raise ValueError(f"unknown pixelwise {self.pixelwise!r}: expected one of {tuple(PIXELWISE)}")
        if self.tile < 1 or self.tile & (self.tile - 1):
            raise ValueError(f"tile must be a power of two, got {self.tile}")
        check_spectral(self.spectral)
        if self.spectral != "bands" and self.out_channels != len(WAVELENGTHS):
            raise ValueError(f"spectral={self.spectral!r} evaluates its function at the "
                             f"{len(WAVELENGTHS)} band centres; out_channels must be "
                             f"{len(WAVELENGTHS)}, got {self.out_channels}")
        if self.spectral == "coordinate" and self.linear_prior:
            raise ValueError("linear_prior=True cannot be combined with spectral='coordinate': "
                             "the prior maps the RGB linearly to the MLP's outputs (bands or basis "
                             "coefficients), and this MLP has one output whose meaning changes "
                             "with the wavelength it is given; use linear_prior=False, or "
                             "spectral='continuous' with the prior")

    @property
    def mlp_out(self) -> int:
        """Outputs of the per-pixel MLP: 31 band values, K basis coefficients, or 1 (the value
        at the wavelength given as input, ``spectral="coordinate"``)."""
        parsed = parse_spectral(self.spectral)
        return self.out_channels if parsed is None else parsed[1]

    @property
    def mlp_widths(self) -> tuple:
        """``(C_in, hidden..., C_out)``, e.g. (11, 64, 64, 64, 64, 31) (``C_out = K`` for a
        basis ``spectral``; ``(11 + E, ..., 1)`` for ``"coordinate"``, E = 7)."""
        c_in = self.in_channels + encoding_channels(self.encoding, self.periods)
        if self.spectral == "coordinate":
            c_in += WAVELENGTH_CHANNELS
        return (c_in, *self.mlp_hidden, self.mlp_out)

    @property
    def mlp_params(self) -> int:
        """``P``, parameters of one per-tile MLP (15,263 for the paper)."""
        return mlp_param_count(self.mlp_widths)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["periods"], d["mlp_hidden"] = list(self.periods), list(self.mlp_hidden)
        if d["spectral"] == "bands":
            del d["spectral"]
        d["config_version"] = CONFIG_VERSION
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Rebuild a config, refusing unknown keys or a newer format version."""
        d = dict(d)
        version = d.pop("config_version", CONFIG_VERSION)
        if version > CONFIG_VERSION:
            raise ValueError(f"model config version {version} is newer than this inr_lib "
                             f"understands ({CONFIG_VERSION}); upgrade inr_lib")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; known keys: {sorted(known)}")
        return cls(**d)


#: Named presets for :func:`build_model`: preset name -> the :class:`ModelConfig` fields it
#: changes from the defaults (``"paper"`` changes none: the reference network).
PRESETS: dict[str, dict] = {
    # the reference network: 63,545,439 parameters
    "paper": {},
    # CPU-sized, the design this book recommends (chapter 10; the shipped model "small"):
    # no normalisation in the hypernetwork and the per-tile encoding, 4x4 tiles; hypernetwork
    # 32/128 channels with 2 deep blocks, MLP 11 -> 32 -> 32 -> 31 (P = 2,463); 678,527 parameters
    "small": dict(hyper_width=32, hyper_deep_width=128, hyper_blocks=2, mlp_hidden=(32, 32),
                  norm="none", encoding="tile", tile=4),
    # the paper's design (instance norm, global encoding) at the same width (the shipped model
    # "small-paper"); 679,039 parameters
    "small-paper": dict(hyper_width=32, hyper_deep_width=128, hyper_blocks=2, mlp_hidden=(32, 32)),
    # for unit tests and smoke runs: ~26 k parameters
    "tiny": dict(hyper_width=8, hyper_deep_width=32, hyper_blocks=1, mlp_hidden=(16,)),
}
