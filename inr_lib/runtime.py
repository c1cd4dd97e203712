"""Run-time choices: the profile (quick | full), the device and the mixed precision it gets
(:func:`amp_dtype_for`, :func:`grad_scaler`, used by the training loop).

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


def amp_dtype_for(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """Autocast dtype: None (full fp32) on CPU or with ``amp="off"``; on CUDA bf16 where the
    GPU supports it natively (compute capability >= 8, e.g. A100/H100), else fp16 (T4, V100)."""
    if device.type != "cuda" and amp in ("bf16", "fp16"):
        warnings.warn(f"amp={amp} applies to CUDA only; training on {device.type} in full "
                      f"precision (fp32)", stacklevel=2)
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 and torch.cuda.is_bf16_supported() else torch.float16


def grad_scaler(enabled: bool) -> torch.amp.GradScaler:
    """A CUDA GradScaler (``torch.amp`` since torch 2.3, ``torch.cuda.amp`` before); a
    disabled one (CPU, bf16, fp32) passes the loss and the step through unchanged."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)
