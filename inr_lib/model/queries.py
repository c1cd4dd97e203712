"""What the INR answers besides ``model(rgb)``: the predicted per-tile functions evaluated on
any pixel grid (:meth:`ContinuousQueries.render`, continuous in space) and at any wavelength
(:meth:`ContinuousQueries.spectra`, continuous in wavelength for ``spectral="continuous"`` and
``"coordinate"``).

:class:`ContinuousQueries` is a base class of :class:`~inr_lib.model.inr.INRHSISR`; its
methods use the network's ``config``, ``mlp_params_for``, ``_check_input``,
``_as_model_dtype``, ``_pad``, ``_raw``, ``_add_prior`` and ``_evaluate``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..spectral import WAVELENGTHS
from .basis import as_wavelengths
from .coordinate import apply_coordinate_per_pixel, wavelength_codes
from .encoding import encode
from .pixelwise import apply_mlp_per_pixel

__all__ = ["ContinuousQueries"]


class ContinuousQueries:
    """:meth:`render` (any output size) and :meth:`spectra` (any wavelength) of the INR."""

    # provided by INRHSISR (declared for the type checker only)
    config: Any
    mlp_params_for: Callable[..., torch.Tensor]
    _check_input: Callable[..., None]
    _as_model_dtype: Callable[..., torch.Tensor]
    _pad: Callable[..., torch.Tensor]
    _raw: Callable[..., torch.Tensor]
    _add_prior: Callable[..., torch.Tensor]
    _evaluate: Callable[..., torch.Tensor]

    def render(self, rgb: torch.Tensor, size: tuple[int, int], rows_per_chunk: int | None = None
               ) -> torch.Tensor:
        """Evaluate the predicted per-tile functions on a ``size = (H2, W2)`` pixel grid.

        Output pixel ``(i, j)`` sits at continuous input coordinates
        ``r = (i + 0.5) * H / H2 - 0.5``, ``c = (j + 0.5) * W / W2 - 0.5`` (pixel centres
        aligned, as ``align_corners=False``). It uses the MLP of the tile containing
        ``(r, c)``, the RGB interpolated bilinearly at ``(r, c)`` and the positional
        encoding computed at ``(r, c)``. At ``size == (H, W)`` this is exactly the grid of
        :meth:`forward` and returns the same values (up to float rounding).

        Args:
            rgb: ``(B, 3, H, W)`` in [0, 1].
            size: output ``(H2, W2)``.
            rows_per_chunk: output rows evaluated at once (bounds memory: each row needs
                ``B * P * W2`` numbers); default chooses ~64 M numbers per chunk.

        Returns:
            ``(B, 31, H2, W2)`` (for a continuous ``spectral``, its function at the 31 band
            centres; other wavelengths: :meth:`spectra` with ``size``).
        """
        return (self._evaluate(self._render_raw(rgb, size, rows_per_chunk)) + 1) / 2

    def _render_raw(self, rgb: torch.Tensor, size: tuple[int, int],
                    rows_per_chunk: int | None = None,
                    wavelengths: np.ndarray | None = None) -> torch.Tensor:
        """:meth:`render` before the output is mapped to wavelengths: ``(B, C_out, H2, W2)``
        in [-1, 1] units (a coordinate model: ``(B, N, H2, W2)`` at ``wavelengths``, None:
        the 31 band centres)."""
        self._check_input(rgb)
        rgb = self._as_model_dtype(rgb)
        cfg, t = self.config, self.config.tile
        B, _, H, W = rgb.shape
        H2, W2 = int(size[0]), int(size[1])
        if H2 < 1 or W2 < 1:
            raise ValueError(f"size must be two positive integers (H2, W2), got {size}")
        x = rgb * 2 - 1
        params = self.mlp_params_for(self._pad(x))               # (B, P, h, w)
        codes = self._codes(wavelengths, x)                      # (N, E) or None
        h, w = params.shape[-2:]
        dev = x.device
        r = (torch.arange(H2, device=dev, dtype=torch.float64) + 0.5) * H / H2 - 0.5
        c = (torch.arange(W2, device=dev, dtype=torch.float64) + 0.5) * W / W2 - 0.5
        ty = torch.floor((r + 0.5) / t).long().clamp(0, h - 1)   # tile row of each output row
        tx = torch.floor((c + 0.5) / t).long().clamp(0, w - 1)
        P = params.shape[1]
        if rows_per_chunk is None:
            rows_per_chunk = max(1, (64 * 2**20) // max(1, B * P * W2))
        out = []
        for r0 in range(0, H2, rows_per_chunk):
            rr = r[r0:r0 + rows_per_chunk]
            rgb_c = _bilinear(x, rr, c)                          # (B, 3, n, W2)
            R, C = torch.meshgrid(rr, c, indexing="ij")
            enc = encode(cfg.encoding, R, C, H, W, cfg.periods)  # (n, W2, 8)
            enc = enc.permute(2, 0, 1).to(x.dtype).expand(B, -1, -1, -1)
            pix = params[:, :, ty[r0:r0 + rows_per_chunk]][:, :, :, tx]  # (B, P, n, W2)
            inp = torch.cat([rgb_c, enc], 1)
            y = (apply_mlp_per_pixel(pix, inp, cfg.mlp_widths, cfg.negative_slope) if codes is None
                 else apply_coordinate_per_pixel(pix, inp, codes, cfg.mlp_widths, cfg.negative_slope))
            out.append(self._add_prior(y, rgb_c))
        return torch.cat(out, dim=2)

    # ---------------------------------------------------------------- continuous in wavelength
    def _codes(self, wavelengths: np.ndarray | None, like: torch.Tensor) -> torch.Tensor | None:
        """The wavelength encodings ``(N, E)`` at which a coordinate model runs its MLP (None:
        the 31 band centres), in ``like``'s dtype and device; None for the other models."""
        if self.config.spectral != "coordinate":
            return None
        return wavelength_codes(WAVELENGTHS if wavelengths is None else wavelengths,
                                like.dtype, like.device)

    def spectra(self, rgb: torch.Tensor, wavelengths: torch.Tensor | np.ndarray | Sequence[float],
                size: tuple[int, int] | None = None, *,
                extrapolate: bool = False, rows_per_chunk: int | None = None) -> torch.Tensor:
        """The spectral image at any wavelengths (nm) inside the trained range 400..700 nm.

        Args:
            rgb: ``(B, 3, H, W)`` in [0, 1].
            wavelengths: ``N`` wavelengths in nm (list, numpy array or tensor; any order,
                repeats allowed), e.g. ``numpy.arange(400, 701)`` for 1 nm steps.
            size: None for the input grid (as :meth:`forward`), or ``(H2, W2)`` to evaluate
                at :meth:`render`'s continuous coordinates.
            extrapolate: continue the end pieces of the basis (a coordinate model: its
                wavelength encoding) outside 400..700 nm (opt-in; nothing was trained there).
                Continuous models only.
            rows_per_chunk: passed to :meth:`render` when ``size`` is given.

        Returns:
            ``(B, N, H, W)`` (or ``(B, N, H2, W2)``) in [0, 1] units, unclamped, in the
            model's dtype. Memory: ``B * N * H * W`` numbers (a 512x512 image at 1 nm steps,
            301 wavelengths: 79 M numbers).

        Continuous models: ``sum_k c_k(x) B_k(l)`` for each pixel ``x`` and wavelength ``l``
        (``"coordinate"``: the pixel's MLP run with ``l`` as an input, once per wavelength);
        at the 31 band centres it equals ``model(rgb)`` (same computation). ``"bands"``
        models have no function between bands: they accept only band centres (400, 410,
        ..., 700 nm) and return those bands of ``model(rgb)``; any other wavelength raises
        ValueError.

        Raises:
            ValueError: a wavelength outside 400..700 nm (without ``extrapolate``), or not a
                band centre for a ``"bands"`` model.
        """
        if self.config.spectral == "bands":
            if extrapolate:
                raise ValueError("extrapolate=True needs a model continuous in wavelength "
                                 "(build_model(..., spectral='continuous')); this one outputs "
                                 "31 bands")
            wl = as_wavelengths(wavelengths)
            _band_centre_indices(wl)                   # fail before running the network
        else:
            wl = as_wavelengths(wavelengths, extrapolate=extrapolate)
        raw = (self._raw(rgb, wl) if size is None
               else self._render_raw(rgb, size, rows_per_chunk, wl))
        return (self._evaluate(raw, wl) + 1) / 2


def _band_centre_indices(wavelengths: np.ndarray) -> list[int]:
    """Band indices of wavelengths that are band centres (a ``"bands"`` model's only
    outputs), or ValueError."""
    idx = np.rint((np.asarray(wavelengths, dtype=np.float64) - WAVELENGTHS[0]) / 10)
    ok = (idx >= 0) & (idx < len(WAVELENGTHS))
    ok &= np.abs(WAVELENGTHS[np.clip(idx, 0, len(WAVELENGTHS) - 1).astype(int)]
                 - wavelengths) < 1e-6
    if not ok.all():
        bad = np.asarray(wavelengths)[~ok][:5].tolist()
        raise ValueError(f"this model outputs 31 bands (spectral='bands') and has no value "
                         f"at {bad} nm; ask for band centres 400, 410, ..., 700 nm, or use a "
                         f"model built with spectral='continuous'")
    return idx.astype(int).tolist()


def _bilinear(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Sample ``x (B, C, H, W)`` at continuous ``rows (n,)`` x ``cols (m,)`` -> ``(B, C, n, m)``.

    Bilinear with edge clamping; exact (no interpolation arithmetic error) at integer
    coordinates, because the fractional weights are then exactly 0.
    """
    H, W = x.shape[-2:]
    r = rows.clamp(0, H - 1)
    c = cols.clamp(0, W - 1)
    r0, c0 = torch.floor(r).long(), torch.floor(c).long()
    r1, c1 = (r0 + 1).clamp(max=H - 1), (c0 + 1).clamp(max=W - 1)
    fr = (r - r0).to(x.dtype).view(1, 1, -1, 1)
    fc = (c - c0).to(x.dtype).view(1, 1, 1, -1)
    top = x[:, :, r0][:, :, :, c0] * (1 - fc) + x[:, :, r0][:, :, :, c1] * fc
    bot = x[:, :, r1][:, :, :, c0] * (1 - fc) + x[:, :, r1][:, :, :, c1] * fc
    return top * (1 - fr) + bot * fr
