"""Scoring reconstructions: the metrics (:mod:`.metrics`: PSNR, SSIM, SAM, RMSE, MRAE) and
full-image evaluation with its protocol recorded (:mod:`.scoring`)."""
from . import metrics
from .scoring import evaluate, reconstruct, write_results

__all__ = ["metrics", "evaluate", "reconstruct", "write_results"]
