"""Run-time choices: the profile (quick | full) and the device.

``INR_PROFILE=quick`` is CPU-sized (the small preset, few steps, small crops): what CI, the
tests and the book build use. ``INR_PROFILE=full`` is the paper recipe on a GPU. When the
variable is unset, notebooks pick ``full`` on a CUDA machine that has real data and
``quick`` otherwise, and say which.
"""
from __future__ import annotations

import os
import warnings

import torch

PROFILES = ("quick", "full")


def get_profile(default: str | None = None, *, has_real_data: bool = False, verbose: bool = True) -> str:
    """The active profile: ``INR_PROFILE`` if set, else ``default``, else automatic.

    Automatic: ``"full"`` when CUDA is available *and* ``has_real_data``; ``"quick"`` otherwise.
    """
    value = os.environ.get("INR_PROFILE") or default
    reason = "INR_PROFILE" if os.environ.get("INR_PROFILE") else "argument"
    if value is None:
        value = "full" if (torch.cuda.is_available() and has_real_data) else "quick"
        reason = "automatic: " + ("GPU and real data found" if value == "full"
                                  else "no GPU or no real data")
    if value not in PROFILES:
        raise ValueError(f"INR_PROFILE must be one of {PROFILES}, got {value!r}")
    if verbose:
        print(f"profile: {value} ({reason})")
    return value


def describe_device(verbose: bool = True) -> torch.device:
    """Return the device chapters should use and print what it is (and what to do if no GPU)."""
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        if verbose:
            p = torch.cuda.get_device_properties(0)
            print(f"GPU in use: {p.name} ({p.total_memory / 2**30:.0f} GiB), "
                  f"bf16 supported: {torch.cuda.is_bf16_supported()}")
    else:
        dev = torch.device("cpu")
        if verbose:
            print("No GPU: running on the CPU. Quick-profile cells take minutes; for the full "
                  "profile in Colab choose Runtime > Change runtime type > GPU, then re-run.")
    return dev


def pick_device(requested: str | None = None, allow_fallback: bool = False) -> torch.device:
    """Resolve a ``--device`` request ("auto", "cpu", "cuda", "cuda:1", ...).

    Asking for CUDA on a machine without it is an error unless ``allow_fallback`` is set,
    in which case the CPU is used with a warning.
    """
    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(requested)
    if dev.type == "cuda" and not torch.cuda.is_available():
        if allow_fallback:
            warnings.warn(f"device {requested!r} requested but CUDA is not available; using the CPU",
                          stacklevel=2)
            return torch.device("cpu")
        raise RuntimeError(f"device {requested!r} requested but this machine has no CUDA GPU "
                           f"(torch {torch.__version__}, cuda available: False). Use --device cpu, "
                           f"or allow the fallback explicitly (--allow-cpu-fallback).")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {requested!r} requested but only "
                           f"{torch.cuda.device_count()} CUDA device(s) exist")
    return dev
