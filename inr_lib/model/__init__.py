"""The networks: the INR (:mod:`.inr`, configured by :mod:`.config`) and its parts
(:mod:`.hypernet`, :mod:`.encoding`, :mod:`.pixelwise`, :mod:`.basis`), the one inference
entry point (:mod:`.tiling`), the baselines (:mod:`.baselines`; the transformer baseline MST++
in :mod:`.mstpp`) and the registry that maps an architecture name to its class (:mod:`.registry`)."""
from .config import CONFIG_VERSION, PRESETS, ModelConfig
from .inr import INRHSISR, build_model

__all__ = ["INRHSISR", "ModelConfig", "PRESETS", "CONFIG_VERSION", "build_model"]
