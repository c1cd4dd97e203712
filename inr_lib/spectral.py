"""Wavelengths, spectral response curves and the projection of spectra to RGB.

Every spectral image in ``inr_lib`` has 31 bands at :data:`WAVELENGTHS` = 400, 410, ..., 700 nm.
A *response* is a ``(31, 3)`` array: column ``k`` is the sensitivity of colour channel ``k``
(R, G, B or X, Y, Z) sampled at :data:`WAVELENGTHS`. An RGB image is the band-wise weighted sum

    rgb[..., k, y, x] = sum_b hsi[..., b, y, x] * R[b, k]

with ``R`` the response after the normalisation chosen in :func:`project`.

Tables are never typed in here: named responses come from colour-science
(``colour.MSDS_CMFS`` and ``colour.MSDS_CAMERA_SENSITIVITIES``) and are resampled linearly to
:data:`WAVELENGTHS`. colour-science and torch are imported lazily, so ``import inr_lib.spectral``
is cheap and numpy-only callers never load torch.

Named responses (see :func:`list_responses`):

``"cie1964"``
    CIE 1964 10-degree standard observer (x-bar, y-bar, z-bar). This is the convention of the
    NTIRE 2018 "Clean" track, whose RGB images were made with the CIE 1964 colour-matching
    functions. Note that the three columns are XYZ-like, not display RGB primaries.
``"cie1931"``
    CIE 1931 2-degree standard observer.
``"cie2015-2"``, ``"cie2015-10"``
    CIE 2015 (cone-fundamental based) 2- and 10-degree observers.
``"Nikon 5100 (NPL)"`` (alias ``"nikon5100"``)
    a measured camera, as shipped by colour-science.

Named camera pipelines (see :func:`list_pipelines`, :func:`render_rgb`) turn spectra into the
8-bit-style RGB a camera writes: a linear ``(31, 3)`` response, clipping to [0, 1], then a
per-channel tone curve ``x ** (1 / gamma)``:

``"cave-rgb"``
    fitted by least squares to the CAVE database's own ``*_RGB.bmp`` images against their
    bands (``tools/fit_camera_pipeline.py``; the data, the fit's protocol and its per-scene
    errors in 8-bit codes are in ``inr_lib/pipelines/cave-rgb.json``).
``"cie1964-linear"``
    the sum-normalised CIE 1964 projection with no tone curve (``project(hsi, "cie1964")``).

colour-science also ships "Sigma SDMerill (NPL)", but it is measured only up to 680 nm; it is
left out because it does not cover 400..700 nm (extrapolating a camera curve would be invented
data). Any other curve can be read with :func:`load_response`.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union, cast

import numpy as np
import torch

if TYPE_CHECKING:      # torch is imported where it is used: `import inr_lib.spectral` stays light
    import torch

__all__ = [
    "WAVELENGTHS",
    "NORMALISATIONS",
    "list_responses",
    "get_response",
    "load_response",
    "resample_response",
    "normalise_response",
    "project",
    "srgb_preview",
    "CameraPipeline",
    "list_pipelines",
    "get_pipeline",
    "render_rgb",
]

#: The 31 band centres in nm: 400, 410, ..., 700 (read-only).
WAVELENGTHS = np.arange(400, 701, 10)
WAVELENGTHS.flags.writeable = False

#: Accepted values of ``normalise`` in :func:`project` and :func:`normalise_response`.
NORMALISATIONS = ("sum", "ntire", "none")

# name -> (colour-science dataset attribute, key in that dataset)
_NAMED = {
    "cie1964": ("MSDS_CMFS", "CIE 1964 10 Degree Standard Observer"),
    "cie1931": ("MSDS_CMFS", "CIE 1931 2 Degree Standard Observer"),
    "cie2015-2": ("MSDS_CMFS", "CIE 2015 2 Degree Standard Observer"),
    "cie2015-10": ("MSDS_CMFS", "CIE 2015 10 Degree Standard Observer"),
    "Nikon 5100 (NPL)": ("MSDS_CAMERA_SENSITIVITIES", "Nikon 5100 (NPL)"),
}
_ALIASES = {"nikon5100": "Nikon 5100 (NPL)", "cie1964_10": "cie1964", "cie1931_2": "cie1931"}

ArrayLike = Union[np.ndarray, "torch.Tensor"]


def list_responses() -> list[str]:
    """Names accepted by :func:`get_response` (aliases not included)."""
    return list(_NAMED)


def _canonical(name: str) -> str:
    lowered = {k.lower(): k for k in _NAMED}
    key = _ALIASES.get(name.lower(), name)
    key = lowered.get(key.lower(), key)
    if key not in _NAMED:
        raise KeyError(
            f"unknown response {name!r}; expected one of {list_responses()} "
            f"(aliases: {sorted(_ALIASES)}). For your own curve use "
            "inr_lib.spectral.load_response(path)."
        )
    return key


def resample_response(
    wavelengths: Union[np.ndarray, Sequence[float]],
    values: Union[np.ndarray, Sequence[Sequence[float]]],
    name: str = "response",
) -> np.ndarray:
    """Resample a response given on its own grid to :data:`WAVELENGTHS` (linear interpolation).

    Args:
        wavelengths: ``(N,)`` nm, any order (sorted here); must cover 400..700 nm.
        values: ``(N, 3)`` sensitivities.
        name: used in error messages.

    Returns:
        ``(31, 3)`` float64.
    """
    w = np.asarray(wavelengths, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape != (w.size, 3):
        raise ValueError(
            f"{name}: expected values of shape (N, 3) matching N={w.size} wavelengths, "
            f"found {v.shape}"
        )
    if not (np.isfinite(w).all() and np.isfinite(v).all()):
        raise ValueError(f"{name}: wavelengths and values must be finite (found NaN or inf)")
    order = np.argsort(w, kind="stable")
    w, v = w[order], v[order]
    if np.any(np.diff(w) <= 0):
        raise ValueError(f"{name}: wavelengths must be distinct (found duplicates)")
    if w[0] > WAVELENGTHS[0] + 1e-9 or w[-1] < WAVELENGTHS[-1] - 1e-9:
        raise ValueError(
            f"{name}: expected a curve covering 400..700 nm, found {w[0]:g}..{w[-1]:g} nm. "
            "Extend the measurement or pick another response; values outside the measured "
            "range are not invented."
        )
    if (v < 0).any():
        raise ValueError(
            f"{name}: sensitivities must be non-negative (found min {v.min():.4g}); clip or "
            "fix the file."
        )
    return np.stack([np.interp(WAVELENGTHS, w, v[:, k]) for k in range(3)], axis=1)


def get_response(name: str = "cie1964") -> np.ndarray:
    """The named response at :data:`WAVELENGTHS`, as a fresh ``(31, 3)`` float64 array.

    Values are colour-science's tables, resampled linearly (at 400, 410, ... nm the tables
    have samples, so this is an exact pick for every name listed by :func:`list_responses`).
    Unnormalised: see :func:`normalise_response`.
    """
    return _named_table(_canonical(name)).copy()


@cache
def _named_table(key: str) -> np.ndarray:
    import colour  # lazy: ~1.5 s import

    attr, table = _NAMED[key]
    msds = getattr(colour, attr)[table]
    out = resample_response(msds.wavelengths, msds.values, name=key)
    out.flags.writeable = False
    return out


def load_response(path: Union[str, Path]) -> np.ndarray:
    """Read a user's response curve and resample it to :data:`WAVELENGTHS`.

    Accepted files:

    * ``.csv`` / ``.txt``: four columns ``wavelength, r, g, b`` (nm), comma separated; one
      header line is allowed (it is skipped if it is not numeric).
    * ``.npy``: an ``(N, 4)`` array with the same columns.

    The curve may use any wavelength grid; it is interpolated linearly and must cover
    400..700 nm. Returns ``(31, 3)`` float64.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"response file not found: {path}")
    if path.suffix.lower() == ".npy":
        table = np.load(path, allow_pickle=False)
    else:
        text = path.read_text().strip().splitlines()
        rows = [ln for ln in text if ln.strip() and not ln.lstrip().startswith("#")]
        try:
            float(rows[0].split(",")[0])
        except ValueError:
            rows = rows[1:]  # header line
        try:
            table = np.array([[float(x) for x in ln.split(",")] for ln in rows])
        except ValueError as e:
            raise ValueError(
                f"{path}: expected numeric CSV rows 'wavelength,r,g,b', could not parse: {e}"
            ) from None
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 4 or table.shape[0] < 2:
        raise ValueError(
            f"{path}: expected an (N, 4) table of wavelength,r,g,b with N >= 2, found shape "
            f"{table.shape}"
        )
    return resample_response(table[:, 0], table[:, 1:], name=str(path))


def _as_response(response) -> np.ndarray:
    if isinstance(response, str):
        return get_response(response)
    r = _to_numpy(response).astype(np.float64)
    if r.shape != (WAVELENGTHS.size, 3):
        raise ValueError(
            f"expected a response of shape ({WAVELENGTHS.size}, 3) sampled at WAVELENGTHS, "
            f"found {r.shape}; resample it with inr_lib.spectral.resample_response"
        )
    return r


def normalise_response(response: Union[str, np.ndarray], normalise: str = "sum") -> np.ndarray:
    """Scale the columns of a ``(31, 3)`` response (name or array). Returns float64 ``(31, 3)``.

    ``"sum"``
        each column divided by its sum, so a flat unit spectrum (all bands 1) maps to
        RGB (1, 1, 1) and any spectrum in [0, 1] maps into [0, 1].
    ``"ntire"``
        each column scaled to sum to 255, and the result divided by 256, i.e. exactly
        ``column / column.sum() * 255 / 256``. This is ``"sum"`` times 255/256 = 0.99609375:
        a flat unit spectrum maps to 255/256 in every channel, as when an 8-bit code value
        (sum-to-255 projection) is read back by dividing by 256 instead of 255. This is the
        convention stated for the NTIRE 2018 "Clean" images in this project's issue; it could
        not be checked against the organisers' script here, so prefer ``"sum"`` unless you
        need to match that convention.
    ``"none"``
        the response as given (no scaling).
    """
    r = _as_response(response)
    if normalise == "none":
        return r
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, found {normalise!r}")
    sums = r.sum(axis=0, keepdims=True)
    if np.any(sums <= 0):
        raise ValueError(f"cannot normalise a response with a column summing to {sums.min()}")
    r = r / sums
    if normalise == "ntire":
        r = r * 255.0 / 256.0
    return r


def _is_torch(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _to_numpy(x) -> np.ndarray:
    if _is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def project(hsi: ArrayLike, response: Union[str, np.ndarray] = "cie1964", normalise: str = "sum",
            clip: bool = True) -> ArrayLike:
    """Project spectral images to 3 channels with a response curve.

    Args:
        hsi: ``(31, H, W)`` or ``(B, 31, H, W)``; a numpy array or a torch tensor.
        response: a name from :func:`list_responses` or a ``(31, 3)`` array at
            :data:`WAVELENGTHS`.
        normalise: ``"sum"`` (default), ``"ntire"`` or ``"none"``; see
            :func:`normalise_response` for exactly what each does.
        clip: clamp the result to [0, 1]. (With torch, values outside [0, 1] then get zero
            gradient; in-range values are unaffected.)

    Returns:
        ``(3, H, W)`` or ``(B, 3, H, W)``, the same kind as ``hsi``: a torch tensor on the
        same device with the same dtype (differentiable), or a numpy array of ``hsi``'s float
        dtype (float32 stays float32; integer input gives float64).
    """
    r = normalise_response(response, normalise)  # (31, 3) float64
    if hsi.ndim not in (3, 4) or hsi.shape[-3] != r.shape[0]:
        raise ValueError(
            f"expected hsi of shape (31, H, W) or (B, 31, H, W), found {tuple(hsi.shape)}"
        )
    if _is_torch(hsi):
        assert isinstance(hsi, torch.Tensor)
        if not torch.is_floating_point(hsi):
            hsi = hsi.float()
        rt = torch.as_tensor(r, dtype=hsi.dtype, device=hsi.device)
        rgb = torch.einsum("...bhw,bc->...chw", hsi, rt)
        return rgb.clamp(0.0, 1.0) if clip else rgb
    hsi = np.asarray(hsi)
    dtype = hsi.dtype if np.issubdtype(hsi.dtype, np.floating) else np.float64
    rgb = np.einsum("...bhw,bc->...chw", hsi.astype(dtype, copy=False), r.astype(dtype))
    return np.clip(rgb, 0.0, 1.0, out=rgb) if clip else rgb


def srgb_preview(hsi: ArrayLike, white_balance: bool = True, exposure: float = 1.0) -> np.ndarray:
    """A displayable sRGB rendering of spectral images (for figures, not for training).

    Steps: CIE 1931 2-degree CMFs -> XYZ (scaled so a flat unit spectrum has Y = 1) ->
    linear sRGB (IEC 61966-2-1 matrix from colour-science) -> optional white balance (divide
    by the linear sRGB of a flat spectrum, so a flat spectrum is neutral grey instead of the
    slightly pink of illuminant E) -> times ``exposure`` -> clip to [0, 1] -> sRGB gamma.

    Args:
        hsi: ``(31, H, W)`` or ``(B, 31, H, W)``, numpy or torch (torch input is detached).

    Returns:
        numpy float32 ``(H, W, 3)`` or ``(B, H, W, 3)`` in [0, 1], channels last, ready for
        ``matplotlib.pyplot.imshow``.
    """
    import colour

    x = _to_numpy(hsi).astype(np.float64)
    cmf = get_response("cie1931")
    xyz = np.einsum("...bhw,bc->...hwc", x, cmf / cmf[:, 1].sum())
    m = np.asarray(colour.models.RGB_COLOURSPACE_sRGB.matrix_XYZ_to_RGB)
    lin = xyz @ m.T
    if white_balance:
        flat = (np.ones(WAVELENGTHS.size) @ (cmf / cmf[:, 1].sum())) @ m.T
        lin = lin / flat
    lin = np.clip(lin * exposure, 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    return srgb.astype(np.float32)


# --------------------------------------------------------------------------------------------
# camera pipelines: spectra -> the RGB a camera writes


@dataclass(frozen=True)
class CameraPipeline:
    """Spectra -> camera RGB: ``clip(hsi @ response, 0, 1) ** (1 / gamma)`` per channel.

    Attributes:
        name: the pipeline's name (:func:`list_pipelines`).
        response: ``(31, 3)`` float64 linear response at :data:`WAVELENGTHS` (applied as is).
        gamma: ``(3,)`` per-channel tone-curve exponents (1 = linear).
        info: what the pipeline is and, for a fitted one, the fit's protocol and errors.
    """

    name: str
    response: np.ndarray
    gamma: np.ndarray
    info: dict

    def __call__(self, hsi: ArrayLike) -> ArrayLike:
        """RGB in [0, 1] of ``(31, H, W)`` / ``(B, 31, H, W)`` spectra (numpy or torch)."""
        lin = project(hsi, self.response, normalise="none", clip=True)
        if _is_torch(lin):
            t = cast("torch.Tensor", lin)
            g = torch.as_tensor(1.0 / self.gamma, dtype=t.dtype, device=t.device)
            return t.pow(g.view(3, 1, 1))
        arr = np.asarray(lin)
        return np.power(arr, (1.0 / self.gamma).astype(arr.dtype)[:, None, None])


#: pipelines stored as data in ``inr_lib/pipelines/<name>.json``
_PIPELINE_FILES = ("cave-rgb",)


def list_pipelines() -> list[str]:
    """Names accepted by :func:`get_pipeline`."""
    return [*_PIPELINE_FILES, "cie1964-linear"]


@cache
def get_pipeline(name: str = "cave-rgb") -> CameraPipeline:
    """The named :class:`CameraPipeline` (see the module docstring)."""
    if name == "cie1964-linear":
        return CameraPipeline(name, normalise_response("cie1964", "sum"), np.ones(3),
                              {"description": "sum-normalised CIE 1964 projection, no tone curve"})
    if name not in _PIPELINE_FILES:
        raise KeyError(f"unknown camera pipeline {name!r}; expected one of {list_pipelines()}")
    data = json.loads(resources.files("inr_lib").joinpath("pipelines", f"{name}.json").read_text())
    response = np.asarray(data["response"], dtype=np.float64)
    gamma = np.asarray(data["gamma"], dtype=np.float64)
    if response.shape != (WAVELENGTHS.size, 3) or gamma.shape != (3,):
        raise ValueError(f"inr_lib/pipelines/{name}.json: expected a (31, 3) response and 3 "
                         f"gammas, found {response.shape} and {gamma.shape}; reinstall inr_lib")
    response.flags.writeable = gamma.flags.writeable = False
    info = {k: v for k, v in data.items() if k not in ("response", "gamma")}
    return CameraPipeline(name, response, gamma, info)


def render_rgb(hsi: ArrayLike, pipeline: str = "cave-rgb") -> ArrayLike:
    """The RGB (in [0, 1]) that the named camera pipeline makes of ``hsi`` (see
    :class:`CameraPipeline`); ``render_rgb(hsi, "cie1964-linear")`` is ``project(hsi)``."""
    return get_pipeline(pipeline)(hsi)
