"""inr_lib: implicit neural representations for hyperspectral image super-resolution.

Recover a 31-band spectral image (400, 410, ..., 700 nm) from an RGB image with the
INR-HSISR model: a convolutional hypernetwork predicts, for every 4x4 tile of the RGB
image, the weights of a small per-pixel MLP that maps (RGB, periodic encoding of the
pixel position) to a spectrum.

Public entry points::

    from inr_lib import build_model          # the model (presets "paper", "small", ...)
    from inr_lib import data, metrics, spectral
"""
from .model import INRHSISR, ModelConfig, PRESETS, build_model

__version__ = "0.1.0"
__all__ = ["INRHSISR", "ModelConfig", "PRESETS", "build_model", "__version__"]
