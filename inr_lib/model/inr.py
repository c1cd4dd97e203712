"""INR-HSISR: the model, its configuration and presets.

An RGB image ``(B, 3, H, W)`` in [0, 1] goes in, a 31-band spectral image
``(B, 31, H, W)`` in [0, 1] comes out:

1. the RGB is scaled to [-1, 1] and padded (edge replication) to a multiple of the tile size
   (an image of a single tile is padded to two tiles when instance norm is used, as instance
   statistics of a 1x1 grid are undefined);
2. the :class:`~inr_lib.model.hypernet.HyperNetwork` predicts one MLP parameter vector per tile,
   ``(B, P, H/t, W/t)``;
3. every pixel's MLP input is its scaled RGB plus the periodic encoding of its position
   (:mod:`inr_lib.model.encoding`), ``(B, 3 + 8, H, W)``;
4. each pixel is run through its tile's MLP (:mod:`inr_lib.model.pixelwise`), giving the
   spectrum in [-1, 1], which is mapped back to [0, 1] and cropped to ``H x W``.

Because the MLP is a function of a *continuous* position, :meth:`INRHSISR.render` can
evaluate it between pixels and return the spectral image at another resolution.
:meth:`INRHSISR.predict` runs big images as overlapping tiles with bounded memory.

With ``spectral="continuous"`` the function is continuous in wavelength too: the MLP's last
layer outputs the ``K`` coefficients of a smooth basis over 400..700 nm
(:mod:`inr_lib.model.basis`; cubic B-splines with 13 functions, chosen by
``benchmarks/spectral_basis.py``) and :meth:`INRHSISR.spectra` evaluates the spectrum at any
wavelengths; ``model(rgb)`` is that function at the 31 band centres.

With ``spectral="coordinate"`` (NeSR's approach; :mod:`inr_lib.model.coordinate`) the
wavelength is an input coordinate instead: step 3 adds an encoding of the wavelength ``l``
(E = 7 channels), so the MLP input is ``(3 + 8 + 7)`` channels, and step 4 runs each pixel's MLP
once per wavelength, each run giving one value. ``model(rgb)`` evaluates it at the 31 band
centres, :meth:`INRHSISR.spectra` at any wavelengths (the first layer's RGB-and-position part
is computed once per pixel and shared by all wavelengths).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..spectral import WAVELENGTHS
from .basis import basis_matrix
from .config import PRESETS, ModelConfig
from .coordinate import (
    COORDINATE_PIXELWISE,
    WAVELENGTH_CHANNELS,
    apply_coordinate_tiles,
)
from .encoding import encoding_grid
from .hypernet import HyperNetwork
from .pixelwise import (
    PIXELWISE,
    apply_mlp_tiles,
    from_tiles,
    mlp_param_slices,
    to_tiles,
)
from .queries import ContinuousQueries, _band_centre_indices
from .tiling import check_device, check_image_batch, check_image_values, tiled_apply


class INRHSISR(ContinuousQueries, nn.Module):
    """The INR-HSISR network (see the module docstring for the data flow).

    ``model(rgb)``: ``(B, 3, H, W)`` in [0, 1] -> ``(B, 31, H, W)``, nominally in [0, 1]
    (not clamped, so gradients flow; clamp for display or metrics). Any ``B, H, W >= 1``.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        P = config.mlp_params
        if config.hyper == "conv":
            self.hypernet = HyperNetwork(P, config.in_channels, config.hyper_width,
                                         config.hyper_deep_width, config.hyper_blocks,
                                         config.tile, config.norm)
            self.shared_params = None
        else:
            self.hypernet = None  # type: ignore[assignment]  # shared parameters instead (hyper="none")
            self.shared_params = nn.Parameter(torch.zeros(P))
        if config.linear_prior:
            # (C_out, C_in + 1): MLP output (bands or coefficients) = prior @ [rgb; 1] in
            # [-1, 1] units
            self.prior = nn.Parameter(torch.zeros(config.mlp_out, config.in_channels + 1))
        else:
            self.prior = None  # type: ignore[assignment]  # no prior (checked before each use)

    # ---------------------------------------------------------------- building blocks
    def mlp_params_for(self, x: torch.Tensor) -> torch.Tensor:
        """Per-tile MLP parameters ``(B, P, H/t, W/t)`` for a scaled, padded input ``x``."""
        t = self.config.tile
        if self.hypernet is not None:
            return self.hypernet(x)
        B, _, H, W = x.shape
        return self.shared_params.view(1, -1, 1, 1).expand(B, -1, H // t, W // t)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        t = self.config.tile
        H, W = x.shape[-2:]
        ph, pw = (-H) % t, (-W) % t
        if self.config.norm == "instance" and (H + ph) * (W + pw) == t * t:
            pw += t   # instance norm needs more than one tile of statistics
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x

    def _check_input(self, rgb: torch.Tensor) -> None:
        check_image_batch(rgb, self.config.in_channels)

    def _as_model_dtype(self, rgb: torch.Tensor) -> torch.Tensor:
        """Cast the input to the parameters' dtype (a float64 image into a float32 model is
        computed in float32; under autocast the autocast dtype applies as usual)."""
        p = next(self.parameters(), None)
        return rgb.to(p.dtype) if p is not None and rgb.dtype != p.dtype else rgb

    def _fast_tail(self, x: torch.Tensor, inp: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        """Hypernetwork head + per-tile MLPs without materialising ``(B, P, h, w)``.

        The 1x1 head is applied as a linear map on channels-last features, which yields the
        tile-major ``(B*h*w, P)`` matrix that :func:`apply_mlp_tiles` (with ``codes``:
        :func:`apply_coordinate_tiles`) wants directly (the reshuffle then moves ``deep_width``
        channels instead of ``P``). Same function as the readable path.
        """
        cfg, head = self.config, self.hypernet.head
        feats = self.hypernet.features(x)                        # (B, C_deep, h, w)
        B, Cd, h, w = feats.shape
        tiles = feats.permute(0, 2, 3, 1).reshape(B * h * w, Cd)
        pt = F.linear(tiles, head.weight.view(head.out_channels, Cd), head.bias)  # (B*h*w, P)
        xt = to_tiles(inp, cfg.tile)
        y = (apply_mlp_tiles(pt, xt, cfg.mlp_widths, cfg.negative_slope) if codes is None
             else apply_coordinate_tiles(pt, xt, codes, cfg.mlp_widths, cfg.negative_slope))
        return from_tiles(y, B, h, w, cfg.tile)

    def _add_prior(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.prior is None:
            return out
        w, b = self.prior[:, :-1], self.prior[:, -1]
        return out + torch.einsum("oc,bchw->bohw", w.to(x.dtype), x) + b.view(1, -1, 1, 1)

    def _evaluate(self, raw: torch.Tensor, wavelengths: np.ndarray | None = None) -> torch.Tensor:
        """MLP outputs ``(B, C_out, H, W)`` in [-1, 1] units -> spectra ``(B, N, H, W)`` (same
        units) at ``wavelengths`` (nm, ``(N,)``; None: the 31 band centres).

        ``"bands"``: the outputs are the bands (None returns ``raw`` itself; other wavelengths
        must be band centres). Continuous: ``sum_k c_k B_k(l)``, the basis computed in
        float64 and cast to ``raw``'s dtype. ``"coordinate"``: ``raw`` as it is (:meth:`_raw`
        evaluated the MLP at ``wavelengths``).
        """
        spectral = self.config.spectral
        if spectral == "coordinate":
            return raw
        if spectral == "bands":
            return raw if wavelengths is None else raw[:, _band_centre_indices(wavelengths)]
        basis = (_centre_basis(spectral) if wavelengths is None
                 else basis_matrix(spectral, wavelengths))            # (N, K) float64
        weights = torch.tensor(basis, dtype=raw.dtype, device=raw.device)
        return torch.einsum("nk,bkhw->bnhw", weights, raw)

    # ---------------------------------------------------------------- forward
    def forward(self, rgb: torch.Tensor, wavelengths: np.ndarray | None = None) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, 31, H, W)`` in [0, 1] (unclamped); a continuous
        ``spectral``'s function at the 31 band centres, exactly as ``spectra(rgb, WAVELENGTHS)``.
        ``wavelengths`` (``(N,)``, nm): ``(B, N, H, W)`` there, as :meth:`spectra` (unchecked):
        the training step's way to a coordinate model's targets, which a DDP wrapper passes on.
        """
        return (self._evaluate(self._raw(rgb, wavelengths), wavelengths) + 1) / 2

    def _raw(self, rgb: torch.Tensor, wavelengths: np.ndarray | None = None) -> torch.Tensor:
        """MLP outputs (plus prior) in [-1, 1] units, ``(B, C_out, H, W)``; coordinate: at ``wavelengths``."""
        self._check_input(rgb)
        rgb = self._as_model_dtype(rgb)
        cfg = self.config
        B, _, H, W = rgb.shape
        x = self._pad(rgb * 2 - 1)                               # (B, 3, Hp, Wp) in [-1, 1]
        Hp, Wp = x.shape[-2:]
        enc = encoding_grid(cfg.encoding, Hp, Wp, ref_size=(H, W), periods=cfg.periods,
                            device=x.device, dtype=x.dtype)      # (8, Hp, Wp)
        inp = torch.cat([x, enc.expand(B, -1, -1, -1)], dim=1)  # (B, 11, Hp, Wp)
        codes = self._codes(wavelengths, x)                      # (N, E) or None
        if cfg.pixelwise == "fast" and self.hypernet is not None:
            out = self._fast_tail(x, inp, codes)
        else:
            params = self.mlp_params_for(x)                      # (B, P, Hp/t, Wp/t)
            mlp = (cfg.mlp_widths, cfg.tile, cfg.negative_slope)
            out = (PIXELWISE[cfg.pixelwise](params, inp, *mlp) if codes is None
                   else COORDINATE_PIXELWISE[cfg.pixelwise](params, inp, codes, *mlp))
        out = self._add_prior(out, x)
        return out[..., :H, :W]

    # ---------------------------------------------------------------- the INR payoff
    # ---------------------------------------------------------------- big images
    @torch.no_grad()
    def predict(self, rgb: torch.Tensor, tile: int | None = 64, overlap: int = 16,
                batch_size: int = 16, device: torch.device | str | None = None) -> torch.Tensor:
        """Inference on images of any size as overlapping, blended windows.

        The image is cut into ``tile x tile`` windows (the training crop size by default)
        starting every ``tile - overlap`` pixels (the last one flush with the border); each
        window is run through the model on its own, exactly as training crops were, and the
        outputs are blended with weights that ramp linearly over the overlap. Memory is
        bounded by ``batch_size`` windows at a time. With ``tile=None`` or a tile at least
        as large as the image, this is a single :meth:`forward` call.

        The module is switched to eval mode for the call and restored afterwards.

        Args:
            rgb: ``(B, 3, H, W)`` in [0, 1], on any device (the result is on that device).
            tile: window side (pixels), or None for the whole image at once.
            overlap: pixels shared by neighbouring windows (``0 <= overlap < tile``).
            batch_size: windows per forward pass.
            device: where to run the model (default: the model's device).

        Returns:
            ``(B, 31, H, W)``, unclamped.

        Raises:
            ValueError: NaN/Inf input values, or values far outside [0, 1] (above 1.5: an
                8-bit image not divided by 255) are refused rather than silently giving NaN
                or absurd spectra; a ``tile`` that is not a positive integer.
            TypeError: a numpy array or an ``(H, W, 3)`` image (the message shows the
                conversion to ``(B, 3, H, W)``).
            RuntimeError: ``device`` names a CUDA device this machine does not have.
        """
        self._check_input(rgb)
        check_image_values(rgb)
        was_training = self.training
        self.eval()
        try:
            dev = check_device(device) or next(self.parameters()).device
            return tiled_apply(self, rgb, tile, overlap, batch_size, dev)
        finally:
            self.train(was_training)

    # ---------------------------------------------------------------- helpers
    @torch.no_grad()
    def set_linear_prior(self, matrix: torch.Tensor) -> None:
        """Set the linear spectral prior from a ``(31, 4)`` map of [0, 1] data.

        ``matrix`` maps ``[r, g, b, 1]`` (values in [0, 1]) to the 31 bands in [0, 1], e.g.
        a ridge regression fitted on training pixels; it is converted to the model's
        [-1, 1] units. Requires ``linear_prior=True``. For a continuous ``spectral`` the
        prior holds basis coefficients: those of the least-squares fit of the 31 bands
        (``pinv(basis) @ bands``).
        """
        if self.prior is None:
            raise RuntimeError("this model was built without linear_prior=True")
        m = torch.as_tensor(matrix, dtype=self.prior.dtype, device=self.prior.device)
        want = (self.config.out_channels, self.config.in_channels + 1)
        if tuple(m.shape) != want:
            raise ValueError(f"expected a {want} matrix, got {tuple(m.shape)}")
        # y01 = A rgb01 + b ; rgb01 = (x + 1)/2, y = 2 y01 - 1  =>  y = A x + (A 1 + 2 b - 1)
        A, b = m[:, :-1], m[:, -1]
        bands = torch.cat([A, (A.sum(1) + 2 * b - 1)[:, None]], dim=1)   # (31, 4), [-1, 1]
        if self.config.spectral != "bands":
            # coefficients whose function is the least-squares fit of the 31 band values
            basis = torch.tensor(_centre_basis(self.config.spectral), dtype=torch.float64)
            bands = (torch.linalg.pinv(basis) @ bands.double()).to(bands.dtype)
        self.prior.copy_(bands)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        c = self.config
        wl = f" (+{WAVELENGTH_CHANNELS} wavelength input channels)" if c.spectral == "coordinate" else ""
        return (f"encoding={c.encoding}, norm={c.norm}, tile={c.tile}, "
                f"mlp={c.mlp_widths} (P={c.mlp_params})"
                + ("" if c.spectral == "bands" else f", spectral={c.spectral}") + wl)


@functools.cache
def _centre_basis(spectral: str) -> np.ndarray:
    """The basis of a continuous ``spectral`` at the 31 band centres, ``(31, K)`` float64."""
    basis = basis_matrix(spectral, WAVELENGTHS)
    basis.flags.writeable = False
    return basis


def _init_weights(model: INRHSISR, seed: int) -> None:
    """Explicit, seeded initialisation.

    * hypernetwork convs: Kaiming normal (fan-in, ReLU gain); norm layers weight 1, bias 0;
    * hypernetwork head (1x1 conv): its **bias** holds one properly initialised MLP
      (Kaiming normal weights for LeakyReLU(slope), zero biases), so every tile starts with
      the same sensible function; its **weights** are small (10% of that MLP's per-layer
      scale, spread over the input channels), so the content-dependent part starts small
      and is learned;
    * shared-MLP ablation: the shared vector is that same initial MLP;
    * linear prior: zero.
    """
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    mlp0 = torch.zeros(cfg.mlp_params)
    scale = torch.zeros(cfg.mlp_params)
    gain = math.sqrt(2.0 / (1 + cfg.negative_slope ** 2))
    for w_sl, b_sl, cin, cout in mlp_param_slices(cfg.mlp_widths):
        std = gain / math.sqrt(cin)
        mlp0[w_sl] = torch.randn(cin * cout, generator=g) * std
        scale[w_sl] = std
        scale[b_sl] = std
    with torch.no_grad():
        if model.hypernet is not None:
            for m in model.hypernet.features.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=g)
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            head = model.hypernet.head
            cin = head.weight.shape[1]
            w = torch.randn(head.weight.shape, generator=g)
            head.weight.copy_(w * (0.1 * scale / math.sqrt(cin)).view(-1, 1, 1, 1))
            assert head.bias is not None
            head.bias.copy_(mlp0)
        else:
            model.shared_params.copy_(mlp0)
        if model.prior is not None:
            model.prior.zero_()


def build_model(preset_or_config: str | ModelConfig | Mapping[str, Any] = "paper", *,
                seed: int = 0, **overrides: Any) -> INRHSISR:
    """Build an INR-HSISR model.

    Args:
        preset_or_config: a preset name (``"paper"``, ``"small"``, ``"tiny"``), a
            :class:`ModelConfig`, or a dict of config fields (e.g. from a checkpoint).
        seed: seed of the (explicit) weight initialisation.
        **overrides: any :class:`ModelConfig` field, e.g. ``encoding="tile"``, ``norm="none"``,
            ``spectral="continuous"`` (a spectrum continuous in wavelength, see
            :meth:`INRHSISR.spectra`) or ``spectral="coordinate"`` (the wavelength as an MLP
            input, :mod:`inr_lib.model.coordinate`).

    Returns:
        An :class:`INRHSISR` module (on CPU, float32, train mode).

    Example:
        >>> model = build_model("small", encoding="tile")
        >>> model(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 31, 64, 64])
    """
    if isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            raise ValueError(f"unknown preset {preset_or_config!r}: expected one of {sorted(PRESETS)}")
        base = ModelConfig(**PRESETS[preset_or_config])
    elif isinstance(preset_or_config, ModelConfig):
        base = preset_or_config
    elif isinstance(preset_or_config, Mapping):
        base = ModelConfig.from_dict(preset_or_config)
    else:
        raise TypeError(f"expected a preset name, ModelConfig or dict, got {type(preset_or_config).__name__}")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown model option(s) {unknown}; known options: {sorted(known)}")
    config = dataclasses.replace(base, **overrides)
    model = INRHSISR(config)
    _init_weights(model, seed)
    return model
