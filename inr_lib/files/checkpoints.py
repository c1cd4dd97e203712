"""Checkpoints: atomic writes, safe (weights-only) loading, and rebuilding the model.

A checkpoint is a ``torch.save``-d dict of tensors and plain Python values only, so it
loads with ``torch.load(..., weights_only=True)`` (no arbitrary code runs on load):

* ``format`` = ``"inr_lib.checkpoint"``, ``format_version`` (this module writes 1),
  ``inr_lib_version`` (the version that wrote it);
* ``arch``: ``"inr"`` (:class:`~inr_lib.model.INRHSISR`), ``"cnn"``
  (:class:`~inr_lib.model.baselines.SmallResCNN`) or ``"mstpp"``
  (:class:`~inr_lib.model.mstpp.MSTPlusPlus`), ``model_config``: the model's
  ``config.to_dict()``, ``model``: its ``state_dict()``;
* ``optimizer``, ``scheduler``, ``scaler``: their ``state_dict()`` (or None);
* ``epoch``: epochs completed; ``rng``: the torch (CPU, CUDA), numpy and python RNG states
  as tensors;
* ``train_config``: the :class:`~inr_lib.train.TrainConfig` as a dict (or None),
  ``history``: the per-epoch log records, ``best``: the best validation record.

**Integrity.** Every read checks the CRC-32 that ``torch.save``'s zip format stores for each
member (:func:`check_integrity`, with :meth:`zipfile.ZipFile.testzip`) before anything is
unpickled: one flipped bit inside a weight is refused naming the member, instead of giving a
silently different model. This needs no extra field, so it covers every checkpoint ever
written; the file's SHA-256 is recorded in results for provenance, not checked (nothing to
check it against).

Writes are atomic (:func:`inr_lib.files.atomic.atomic_write`): a crash at any point leaves either
the old or the new file, never a partial one. This module only reads and writes; which
class an ``arch`` name stands for, and how it is built, is :mod:`inr_lib.model.registry`.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..model import registry as archs
from .atomic import atomic_write, sha256_file  # noqa: F401 (sha256_file: kept importable from here)

__all__ = ["FORMAT", "FORMAT_VERSION", "ARCHS", "CheckpointError", "atomic_save",
           "save_checkpoint", "load_checkpoint", "model_from_checkpoint", "load_model",
           "check_finite_weights", "check_integrity", "stored_int", "stored_str", "rng_state", "set_rng_state"]

FORMAT = "inr_lib.checkpoint"
FORMAT_VERSION = 1
ARCHS = tuple(archs.ARCHS)
_REQUIRED = ("format", "format_version", "arch", "model_config", "model", "epoch")


class CheckpointError(ValueError):
    """A file is not a usable inr_lib checkpoint (the message says why and what to do)."""


# ------------------------------------------------------------------ writes
def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


# ------------------------------------------------------------------ RNG states as tensors
def rng_state() -> dict:
    """The torch (CPU and CUDA), numpy and python RNG states, as tensors and plain values."""
    np_state: Any = np.random.get_state()        # the legacy tuple (name, keys, pos, ...)
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_version), "internal": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss": py_gauss},
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        cuda = state["cuda"][:torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss"]))


# ------------------------------------------------------------------ save / load
def save_checkpoint(path: str | os.PathLike, model: nn.Module, *, epoch: int,
                    optimizer: torch.optim.Optimizer | None = None,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    scaler: torch.amp.GradScaler | None = None, train_config: dict | None = None,
                    history: list | None = None, best: dict | None = None,
                    include_rng: bool = True) -> Path:
    """Write a checkpoint (atomically) and return its path. See the module docstring."""
    m: Any = archs.unwrap(model)     # a registered architecture: it has .config
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "inr_lib_version": __version__,
        "arch": archs.arch_of(m),
        "model_config": m.config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in m.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "epoch": int(epoch),
        "rng": rng_state() if include_rng else None,
        "train_config": dict(train_config) if train_config is not None else None,
        "history": list(history or []),
        "best": dict(best) if best else None,
    }
    return atomic_save(state, path)


def load_checkpoint(path: str | os.PathLike, map_location: torch.device | str | None = "cpu") -> dict:
    """Load and validate a checkpoint with ``torch.load(..., weights_only=True)``.

    Raises:
        CheckpointError: missing, truncated or foreign file, a file holding arbitrary
            pickled objects (refused: loading it could run code), or a newer format.
    """
    return _read_checkpoint(path, map_location)[0]


def _read_checkpoint(path: str | os.PathLike, map_location) -> tuple[dict, str]:
    """:func:`load_checkpoint` and the file's SHA-256, from one read of the file."""
    path = Path(path)
    expected = ("expected an inr_lib checkpoint (last.pt / best.pt written by "
                "`python -m inr_lib train`)")
    if path.is_dir():
        inside = ", ".join(sorted(p.name for p in path.glob("*.pt"))) or "it holds no .pt file"
        raise CheckpointError(f"checkpoint {path} is a folder, not a file; pass a checkpoint "
                              f"file inside it ({inside})")
    if path.exists() and not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a regular file (a pipe, device or a link "
                              f"to one); {expected}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; {expected}")
    data = path.read_bytes()
    head = data[:4]
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # zip (torch) or pickle
        raise CheckpointError(f"{path} is not a torch checkpoint (it starts with {head!r}, not a "
                              f"zip/pickle header); {expected}")
    check_integrity(path, data)
    ckpt = _torch_load(path, data, map_location, expected)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = (f"a dict with keys {sorted(map(str, ckpt))[:8]}" if isinstance(ckpt, dict)
                 else f"a {type(ckpt).__name__}")
        raise CheckpointError(f"{path} is a torch file but not an inr_lib checkpoint (found "
                              f"{found}); {expected}")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is an incomplete inr_lib checkpoint: missing {missing}")
    _check_types(ckpt, path)
    if int(ckpt["format_version"]) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {ckpt['format_version']} (written by inr_lib "
            f"{ckpt.get('inr_lib_version', '?')}), newer than this inr_lib understands "
            f"({FORMAT_VERSION}); upgrade inr_lib")
    if ckpt["arch"] not in ARCHS:
        raise CheckpointError(f"{path}: unknown arch {ckpt['arch']!r}; expected one of {ARCHS}")
    return ckpt, hashlib.sha256(data).hexdigest()


def check_integrity(path: str | os.PathLike, data: bytes) -> None:
    """Raise :class:`CheckpointError` when a member of the checkpoint's zip (``data``, the
    bytes of ``path``) fails its stored CRC-32: the file changed after it was written (a
    flipped bit, a bad copy). A file that is not a complete zip is left to the loader, which
    reports truncation."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return
    except zipfile.error:
        return
    if bad is not None:
        raise CheckpointError(
            f"{path} is damaged: its member {bad} fails its CRC check (the file changed after "
            f"it was written, e.g. a flipped bit or a bad copy), so its weights cannot be "
            f"trusted; re-copy it or use the run's other checkpoint (last.pt / best.pt)")


_TYPES = {"format_version": (int, "an integer"), "epoch": (int, "an integer"),
          "arch": (str, "a string"), "model_config": (dict, "a mapping"),
          "model": (dict, "a mapping of weight names to tensors")}


def _check_types(ckpt: dict, path: Path) -> None:
    """Every field a load uses has its type, and every weight is a floating point tensor
    (an integer or missing weight would give a silently wrong model): else one line naming
    the file and the key."""
    for key, (kind, what) in _TYPES.items():
        value = ckpt[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise CheckpointError(f"{path}: {key!r} is {_shown(value)}, expected {what}; the "
                                  f"checkpoint is damaged or not written by inr_lib")
    for name, t in ckpt["model"].items():
        if name.endswith("num_batches_tracked"):      # batch norm's counter is an integer
            continue
        if not torch.is_tensor(t) or not t.is_floating_point():
            found = f"a {t.dtype} tensor" if torch.is_tensor(t) else _shown(t)
            raise CheckpointError(f"{path}: weight {name!r} is {found}, expected a floating "
                                  f"point tensor; the checkpoint is damaged or not written by "
                                  f"inr_lib")


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def _torch_load(path: Path, data: bytes, map_location, expected: str):
    """``torch.load`` of the bytes of ``path`` (weights only), its many failures turned into
    one clear error."""
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        detail = f" (it references {found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path} contains objects other than tensors and plain Python values{detail}, so "
            f"it is refused (loading it could run arbitrary code); {expected}. If you wrote it "
            f"yourself and trust it, load it with torch.load(..., weights_only=False).") from None
    except Exception as e:  # truncated zips fail in many ways (RuntimeError, KeyError, EOFError, ...)
        if "TorchScript" in str(e):
            raise CheckpointError(
                f"{path} is a TorchScript model archive (torch.jit.save), not an inr_lib "
                f"checkpoint; it is refused because loading TorchScript runs the code stored "
                f"in it; {expected}") from None
        size = len(data)
        raise CheckpointError(
            f"{path} ({size} bytes) could not be read as a torch checkpoint: it is truncated "
            f"(e.g. an interrupted copy) or not a checkpoint at all; {expected}. Re-copy it or "
            f"use the other checkpoint of the run (last.pt / best.pt). "
            f"(torch: {_first_sentence(e)})"
        ) from None


def _first_sentence(e: BaseException) -> str:
    text = str(e).strip()
    if not text:
        return type(e).__name__
    first = text.splitlines()[0]
    return first.split(". ")[0].rstrip(".") + "."


def _check_size_matches_weights(ckpt: dict) -> None:
    """Build the stored configuration on the ``meta`` device (no memory) and refuse it when
    it describes far more parameters than the file holds weights: a changed configuration
    would otherwise allocate whatever size it names before the weights are compared."""
    state = ckpt.get("model")
    if not isinstance(state, dict):
        return
    have = sum(t.numel() for t in state.values() if torch.is_tensor(t))
    try:
        with torch.device("meta"):
            need = sum(p.numel() for p in archs.build(ckpt["arch"],
                                                      ckpt["model_config"]).parameters())
    except Exception:   # invalid configs are reported by the real build with their reason
        return
    if need > 2 * have + 2**20:
        raise CheckpointError(f"the checkpoint's model configuration describes {need:,} parameters "
                              f"but the file holds only {have:,} weights: the configuration was "
                              f"changed or the file is damaged (nothing was allocated)")


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """Rebuild the model stored in a loaded checkpoint dict (eval mode, on CPU)."""
    _check_size_matches_weights(ckpt)
    try:
        model = archs.build(ckpt["arch"], ckpt["model_config"])
    except (ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"the checkpoint's model configuration is not valid for this "
                              f"inr_lib {__version__}: {e}") from None
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"the checkpoint's weights do not match its model configuration: "
                              f"{str(e).splitlines()[0]}") from None
    return model.eval()


def check_finite_weights(state: dict, path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` naming the first weight of ``state`` (a state dict)
    that holds NaN or Inf: such a model computes NaN cubes, never a usable result."""
    for name, t in state.items():
        if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: weight {name!r} contains NaN/Inf values, so the model "
                                  f"cannot give a usable result (did the run diverge?); use "
                                  f"another checkpoint (e.g. an earlier best.pt) or retrain")


def stored_int(tc: Any, key: str, default: int, low: int, path: str | os.PathLike) -> int:
    """``train_config[key]`` of a checkpoint (``tc``, read from ``path``) as an int in
    [``low``, 65536] (``default`` when absent); a tampered or foreign value is a
    :class:`CheckpointError` naming the file and the key."""
    if not isinstance(tc, dict):
        raise CheckpointError(f"{path}: its train_config is a {type(tc).__name__}, expected a mapping; "
                              f"the checkpoint is damaged or not from inr_lib")
    value = tc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 1 << 16:
        raise CheckpointError(f"{path}: train_config {key!r} is {value!r}, expected an integer in "
                              f"[{low}, 65536]; the checkpoint is damaged (pass --tile/--overlap to "
                              f"override)")
    return value


def stored_str(tc: Any, key: str, default: str, path: str | os.PathLike) -> str:
    """``train_config[key]`` of a checkpoint as a string (``default`` when absent)."""
    value = tc.get(key, default) if isinstance(tc, dict) else default
    if not isinstance(value, str):
        raise CheckpointError(f"{path}: train_config {key!r} is {value!r}, expected a string; the "
                              f"checkpoint is damaged (pass --{key.replace('_', '-')} to override)")
    return value


def load_model(path: str | os.PathLike, map_location: torch.device | str | None = "cpu") -> nn.Module:
    """Load a trained model from a checkpoint, in eval mode, on ``map_location``.

    The model gets an attribute ``checkpoint_info = {"path", "sha256", "epoch", "arch",
    "train_config"}`` (the file is read once): :func:`inr_lib.evaluation.evaluate` records it in
    its protocol, and the command line takes the training crop size from ``train_config``.

    Example:
        >>> model = load_model("runs/quick/best.pt")
        >>> hsi = model.predict(rgb)        # (B, 31, H, W)
    """
    ckpt, sha256 = _read_checkpoint(path, "cpu")
    check_finite_weights(ckpt.get("model") or {}, path)
    model = model_from_checkpoint(ckpt).to(map_location)
    info = {"path": str(path), "sha256": sha256, "epoch": int(ckpt["epoch"]), "arch": ckpt["arch"],
            "train_config": ckpt.get("train_config") or {}}
    setattr(model, "checkpoint_info", info)  # noqa: B010  (a plain attribute: Module's hints expect tensors)
    return model
