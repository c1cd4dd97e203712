"""Trained models shipped with the library (a small model zoo).

Every model is package data: ``weights/<name>.safetensors`` (read without pickle) and a card
``cards/<name>.json`` that says what it is, how exactly it was trained (command, committed
config, data, split, epochs, steps, wall time, machine, code commit) and how it scores (the
result files of ``python -m inr_lib evaluate`` on the test scenes, protocol included)::

    from inr_lib import pretrained
    pretrained.available()                  # {"small": "one-line description", ...}
    model = pretrained.load("small")        # eval mode, float32, on the CPU
    hsi = pretrained.reconstruct("small", "photo.png")  # (31, H, W) in [0, 1], the card's protocol
    pretrained.card("small")["evaluation"]["tiled"]["mean"]["psnr"]
    print(pretrained.label("small"))        # what it is, data, budget, test scores in one line
    pretrained.summary()                    # one row per model (+ ridge): the zoo's table
    hsi = pretrained.reconstruct("small", rgb)   # a tensor, an array, a PIL image or a path
    pretrained.scene_scores("small")["fake_and_real_peppers"]["psnr"]

The weights' SHA-256 is checked against the card on every load: a changed byte is an error.
The training configs are in ``configs/`` next to this file; ``tools/train_zoo.sh`` and
``tools/publish_model.py`` retrain and republish a model.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from ..files.atomic import sha256_file
from ..files.images import read_image
from ..model.registry import ARCHS, build
from ..model.tiling import predict_image

__all__ = ["available", "card", "load", "validate_card", "label", "summary", "first_available",
           "baseline", "scores", "inference", "reconstruct", "scene_scores", "PretrainedError",
           "CARD_KEYS", "METRICS", "wall_time", "runnable_command", "data_note"]

#: Keys every card has (``validate_card`` checks them and their types).
CARD_KEYS: dict[str, type] = {
    "name": str,
    "description": str,
    "arch": str,
    "model_config": dict,
    "params": int,
    "config_file": str,
    "command": str,
    "data": dict,
    "training": dict,
    "code_commit": str,
    "weights": dict,
    "recommended_mode": str,
    "evaluation": dict,
}
_DATA_KEYS = ("dataset", "split", "train_scenes", "test_scenes")
_TRAINING_KEYS = ("epochs", "steps", "batch_size", "samples", "wall_time_s", "machine", "torch")
_WEIGHTS_KEYS = ("file", "sha256", "dtype", "bytes")
#: The metrics of a card's evaluation, in table order.
METRICS = ("psnr", "ssim", "sam", "mrae")


class PretrainedError(ValueError):
    """An unknown model name, a damaged weights file, or an invalid card."""


def _root() -> Path:
    """The folder holding ``cards/`` and ``weights/`` (package data)."""
    return Path(str(resources.files("inr_lib.pretrained")))


def _card_path(name: str) -> Path:
    return _root() / "cards" / f"{name}.json"


def _names() -> list[str]:
    folder = _root() / "cards"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def available() -> dict[str, str]:
    """The shipped models: ``{name: one-line description}``, sorted by name."""
    return {name: card(name)["description"] for name in _names()}


def card(name: str) -> dict[str, Any]:
    """The card of a shipped model (a fresh dict; see the module docstring).

    Raises:
        PretrainedError: unknown name (the message lists the shipped ones) or an invalid card.
    """
    data = _read(name)
    problems = validate_card(data)
    if problems:
        raise PretrainedError(f"the card {_card_path(name)} is invalid: {'; '.join(problems)}")
    return data


def _read(name: str) -> dict[str, Any]:
    """The card as stored (not validated: :func:`load` needs only its model and weights).
    Only the shipped names are accepted: never a path (``..``, ``/``) or an empty name."""
    if not isinstance(name, str) or name not in _names():
        raise PretrainedError(f"no shipped model named {name!r}; available: {_names()} (a shipped "
                              f"model is named, never given as a path)")
    path = _card_path(name)
    if path.stat().st_size > _MAX_CARD_BYTES:
        raise PretrainedError(f"the card {path} is {path.stat().st_size:,} bytes, far larger than "
                              f"a card; reinstall inr_lib")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PretrainedError(f"the card {path} cannot be read: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise PretrainedError(f"the card {path} is not a JSON object; reinstall inr_lib")
    return data


_MAX_CARD_BYTES = 16 * 2**20


def _weights_path(name: str, info: dict[str, Any]) -> Path:
    """The weights file a card names: a plain file name inside the weights folder."""
    where = _card_path(name)
    weights = info.get("weights")
    if not isinstance(weights, dict):
        weights = {}
    file = weights.get("file")
    if not isinstance(file, str) or not isinstance(weights.get("sha256"), str):
        raise PretrainedError(f"the card {where} has no valid 'weights' entry (expected "
                              f"{{\"file\": NAME, \"sha256\": HEX, ...}}); reinstall inr_lib")
    folder = _root() / "weights"
    path = folder / file
    if Path(file).name != file or file in ("", ".", "..") or path.resolve().parent != folder.resolve():
        raise PretrainedError(f"the card {where} names weights {file!r} outside the weights folder "
                              f"{folder}; refused (reinstall inr_lib)")
    return path


def _check_card_size(name: str, info: dict[str, Any], path: Path) -> None:
    """Build the card's model on the ``meta`` device (no memory) and refuse a configuration
    describing more parameters than the weights file can hold, before anything is allocated."""
    where = _card_path(name)
    if not isinstance(info.get("arch"), str) or not isinstance(info.get("model_config"), dict):
        raise PretrainedError(f"the card {where} has no valid 'arch'/'model_config'; reinstall inr_lib")
    try:
        with torch.device("meta"):
            need = sum(p.numel() for p in build(info["arch"], info["model_config"]).parameters())
    except Exception as e:   # noqa: BLE001 (any invalid configuration: one line naming the card)
        raise PretrainedError(f"the card {where} has a model configuration this inr_lib cannot "
                              f"build ({' '.join(str(e).split())[:200]}); reinstall inr_lib") from None
    have = path.stat().st_size
    if need > have + 2**20:       # every weight takes at least one byte of the file
        raise PretrainedError(f"the card {where} describes a model of {need:,} parameters "
                              f"({need * 4 / 1e9:.1f} GB in float32) but its weights file {path} "
                              f"has {have:,} bytes: the card was changed or is damaged (nothing "
                              f"was allocated); reinstall inr_lib")


def validate_card(data: dict) -> list[str]:
    """Problems with a card (an empty list for a valid one): missing keys, wrong types,
    missing training/data/weights fields, an evaluation without its protocol."""
    problems = [f"{k!r} missing or not a {t.__name__}" for k, t in CARD_KEYS.items()
                if not isinstance(data.get(k), t)]
    if problems:
        return problems
    for section, keys in (("data", _DATA_KEYS), ("training", _TRAINING_KEYS), ("weights", _WEIGHTS_KEYS)):
        problems += [f"{section}.{k} missing" for k in keys if k not in data[section]]
    if data["arch"] not in ARCHS:
        problems.append(f"arch must be one of {tuple(ARCHS)}, got {data['arch']!r}")
    if data["recommended_mode"] not in data["evaluation"]:
        problems.append(f"recommended_mode {data['recommended_mode']!r} has no evaluation")
    for mode, res in data["evaluation"].items():
        if not isinstance(res, dict) or not {"mean", "protocol", "per_scene"} <= set(res):
            problems.append(f"evaluation.{mode} is not a result file of `inr_lib evaluate`")
    if len(str(data["weights"].get("sha256", ""))) != 64:
        problems.append("weights.sha256 is not a hex SHA-256")
    if "python -m inr_lib train" not in data["command"]:
        problems.append("command is not an `inr_lib train` command line")
    return problems


def load(name: str, map_location: str | torch.device | None = None) -> nn.Module:
    """A shipped model in eval mode, float32, on ``map_location`` (default: CPU).

    The model gets ``checkpoint_info`` (``path`` = ``pretrained:<name>``, the weights'
    ``sha256``, ``epoch``, ``arch``, ``train_config``) that :func:`inr_lib.evaluation.evaluate`
    records and the command line reads (the training crop size sets the tiled window).

    Raises:
        PretrainedError: unknown name, missing weights, or weights whose SHA-256 differs
            from the card's (a damaged or altered file).
    """
    info = _read(name)
    path = _weights_path(name, info)
    if not path.is_file():
        raise PretrainedError(f"the weights of {name!r} are missing: {path}; reinstall inr_lib")
    _check_card_size(name, info, path)
    digest = sha256_file(path)
    if digest != info["weights"]["sha256"]:
        raise PretrainedError(
            f"the weights {path} do not match their card (SHA-256 {digest[:12]}..., card "
            f"{info['weights']['sha256'][:12]}...): the file is damaged or was altered; "
            f"reinstall inr_lib")
    try:
        state = load_file(str(path))      # safetensors: tensors only, no code runs
    except Exception as e:   # noqa: BLE001 (SafetensorError and friends: one line naming the file)
        raise PretrainedError(f"the weights {path} cannot be read as safetensors "
                              f"({' '.join(str(e).split())[:200]}); reinstall inr_lib") from None
    try:
        model = build(info["arch"], info["model_config"])
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, ValueError, TypeError, KeyError) as e:
        raise PretrainedError(f"the weights {path} do not fit the model of the card "
                              f"{_card_path(name)} ({str(e).splitlines()[0][:200]}); reinstall "
                              f"inr_lib") from None
    model = model.eval().to(map_location or "cpu")
    setattr(model, "checkpoint_info",  # a plain attribute (Module's hints expect tensors)  # noqa: B010
            {"path": f"pretrained:{name}", "sha256": digest,
             "epoch": int((info.get("training") or {}).get("epochs") or 0), "arch": info["arch"],
             "train_config": info.get("train_config")})
    return model


def _mode(c: dict[str, Any], mode: str | None) -> str:
    mode = mode or c["recommended_mode"]
    if mode not in c["evaluation"]:
        raise PretrainedError(f"the card of {c['name']!r} has no {mode!r} evaluation; it has "
                              f"{sorted(c['evaluation'])}")
    return mode


def inference(name: str, mode: str | None = None) -> dict[str, Any]:
    """How the card's numbers were computed: ``{"mode", "tile", "overlap", "self_ensemble"}``
    of its evaluation in ``mode`` (default: the card's recommended mode)."""
    c = card(name)
    return dict(c["evaluation"][_mode(c, mode)]["protocol"]["inference"])


@torch.no_grad()
def reconstruct(name: str, rgb: Any, mode: str | None = None, model: nn.Module | None = None,
                device: str | torch.device | None = None) -> torch.Tensor:
    """A spectral cube from an RGB image with a shipped model, exactly as its card was scored.

    The one inference entry point for the shipped models: the card's inference protocol
    (recommended mode, window and overlap), the output clamped to [0, 1], as
    :func:`inr_lib.evaluation.evaluate` did when it computed the card's numbers.

    Args:
        name: a shipped model (:func:`available`).
        rgb: the image, in any of these forms:

            * a tensor ``(B, 3, H, W)`` or ``(3, H, W)``, float in [0, 1] (uint8: /255);
            * a NumPy array ``(H, W, 3)`` or ``(3, H, W)``: uint8 (/255), uint16 (/65535)
              or float in [0, 1];
            * a PIL image (RGB; RGBA loses its alpha, palette/CMYK/YCbCr are converted);
            * a path to an image file, read by :func:`inr_lib.files.images.read_image`
              (8/16-bit PNG, TIFF, JPEG, ...; exact at 16 bits, EXIF orientation applied).
        mode: ``"tiled"`` or ``"whole"`` (default: the card's recommended mode); the window
            size and overlap are the card's.
        model: the already loaded model (``load(name)``), to save loading it again.
        device: where to run it (default: the model's device, or the CPU).

    Returns:
        float32 in [0, 1]: ``(B, 31, H, W)`` for a batched tensor, else ``(31, H, W)``; on the
        input tensor's device (the CPU for the other inputs). Band ``b`` is at
        ``inr_lib.spectral.WAVELENGTHS[b]`` nm.

    Raises:
        ValueError: a shape, dtype or value range the model cannot take (the message says
            which); :class:`inr_lib.files.images.ImageReadError` for an unreadable file.
    """
    x, batched = _as_batch(rgb)
    inf = inference(name, mode)
    model = load(name, map_location=device) if model is None else model
    out = predict_image(model, x, mode=inf["mode"], tile=inf.get("tile") or 64,
                        overlap=inf.get("overlap") or 0,
                        self_ensemble=bool(inf.get("self_ensemble")), device=device).clamp(0.0, 1.0)
    return out if batched else out[0]


def _as_batch(rgb: Any) -> tuple[torch.Tensor, bool]:
    """``(x (B, 3, H, W) float32 in [0, 1], whether the input had a batch axis)``."""
    if isinstance(rgb, (str, os.PathLike)):
        values, notes = read_image(rgb)
        for n in notes:      # alpha dropped, EXIF rotation: the user should know
            warnings.warn(f"{rgb}: {n}", stacklevel=3)
        return torch.from_numpy(values)[None], False
    if type(rgb).__module__.startswith("PIL."):
        rgb = _pil_array(rgb)
    if isinstance(rgb, np.ndarray):
        if rgb.ndim != 3 or 3 not in (rgb.shape[0], rgb.shape[-1]):
            raise ValueError(f"expected an (H, W, 3) or (3, H, W) array, got shape {rgb.shape}")
        if rgb.shape[-1] == 3 and rgb.shape[0] == 3:
            raise ValueError(f"an array of shape {rgb.shape} is ambiguous: pass a (B, 3, H, W) "
                             f"tensor, or an image at least 4 pixels high")
        chw = rgb if rgb.shape[0] == 3 else rgb.transpose(2, 0, 1)
        return torch.from_numpy(_unit_range(np.ascontiguousarray(chw)))[None], False
    if not isinstance(rgb, torch.Tensor):
        raise TypeError(f"rgb: expected a tensor, a NumPy array, a PIL image or a path, got "
                        f"{type(rgb).__name__}")
    if rgb.ndim not in (3, 4) or rgb.shape[-3] != 3:
        raise ValueError(f"expected a (B, 3, H, W) or (3, H, W) tensor, got shape {tuple(rgb.shape)}")
    x = rgb.float() / 255 if rgb.dtype == torch.uint8 else rgb
    if not x.is_floating_point():
        raise ValueError(f"expected a float tensor in [0, 1] or uint8, got {rgb.dtype}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"expected values in [0, 1], got [{x.min().item():.4g}, {x.max().item():.4g}]")
    return (x, True) if x.ndim == 4 else (x[None], False)


def _pil_array(image: Any) -> Any:
    """A PIL image as an ``(H, W, 3)`` array (alpha dropped; palette, CMYK, YCbCr converted)."""
    if image.mode in ("L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "1"):
        raise ValueError(f"a greyscale PIL image (mode {image.mode!r}): the model needs colour; "
                         f"convert it to RGB first")
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    return np.asarray(image)[..., :3]


def _unit_range(a: Any) -> Any:
    """uint8 -> /255, uint16 -> /65535, float checked to lie in [0, 1]; float32."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255)
    if a.dtype == np.uint16:
        return a.astype(np.float32) / np.float32(65535)
    if a.dtype.kind != "f":
        raise ValueError(f"expected a uint8, uint16 or float array in [0, 1], got {a.dtype}")
    if a.size and (np.nanmin(a) < 0 or np.nanmax(a) > 1 or not np.isfinite(a).all()):
        raise ValueError(f"expected float values in [0, 1], got [{np.nanmin(a):.4g}, {np.nanmax(a):.4g}]")
    return a.astype(np.float32, copy=False)


def scene_scores(name: str, mode: str | None = None) -> dict[str, dict[str, float]]:
    """The card's per-scene scores: ``{scene: {"psnr": dB, "ssim": ..., "sam": deg, ...}}``
    for ``mode`` (default: the recommended mode)."""
    c = card(name)
    rows = c["evaluation"][_mode(c, mode)]["per_scene"]
    return {r["scene"]: {k: v for k, v in r.items() if not isinstance(v, (list, str))} for r in rows}


def first_available(*names: str) -> str:
    """The first of ``names`` that is shipped (e.g. ``first_available("small", "small-paper")``,
    for a chapter that prefers a model a later release adds).

    Raises:
        PretrainedError: none of them is shipped (the message lists the shipped ones).
    """
    shipped = _names()
    for name in names:
        if name in shipped:
            return name
    raise PretrainedError(f"none of {list(names)} is shipped; available: {shipped}")


def _minutes(seconds: float) -> str:
    m = round(seconds / 60)
    return f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def label(name: str) -> str:
    """One line that says what a shipped model is and how it was made, for figure captions and
    tables: ``small-paper: <description>. Trained on dev18 train (16 CAVE scenes), 200 epochs =
    12,800 steps, 1 h 58 min on <machine>; dev18 test (2 scenes, full images, tiled): 33.6 dB,
    SAM 11.2 deg.``"""
    c = card(name)
    d, t = c["data"], c["training"]
    mode = c["recommended_mode"]
    m = c["evaluation"][mode]["mean"]
    return (f"{name}: {c['description']}. Trained on {d['split']} train ({len(d['train_scenes'])} "
            f"CAVE scenes), {t['epochs']} epochs = {t['steps']:,} steps of batch "
            f"{t['batch_size']}, {_minutes(t['wall_time_s'])} on {t['machine'].split(',')[0]}; "
            f"{d['split']} test "
            f"({len(d['test_scenes'])} scenes, full images, {mode}): {m['psnr']:.2f} dB, "
            f"SAM {m['sam']:.2f} deg.")


def wall_time(name: str) -> str:
    """A shipped model's training wall time as :func:`label` prints it (``"1 h 55 min"``)."""
    return _minutes(card(name)["training"]["wall_time_s"])


#: where a reader keeps real CAVE (``inr_lib.data.download_cave`` puts it there)
READER_CAVE = "$INR_DATA/cave"


def runnable_command(command: str) -> str:
    """A card's (or baseline's) recorded command as a reader can run it from the repository
    root: its ``--data cave:FOLDERS`` (the folders of the machine that trained it) becomes
    ``--data cave:$INR_DATA/cave`` and a trailing ``# ...`` note is dropped. The card itself
    keeps the command as recorded (its provenance)."""
    command = re.sub(r"--data(\s+|=)cave:\S+", f"--data\\1cave:{READER_CAVE}", command)
    return command.split("   # ", 1)[0].split("  # ", 1)[0].rstrip()


def data_note(name: str) -> str:
    """Which scenes a shipped model was trained and scored on, in one line."""
    d = card(name)["data"]
    return (f"data: CAVE split {d['split']}: {len(d['train_scenes'])} training scenes, test scenes "
            f"{', '.join(d['test_scenes'])}")


def _baseline_names() -> list[str]:
    folder = _root() / "baselines"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def baseline(name: str = "ridge") -> dict[str, Any]:
    """A reference baseline's result on the same test scenes, shipped next to the models
    (``baselines/<name>.json``: its ``command`` and its ``evaluation`` as written by
    ``python -m inr_lib baseline``)."""
    path = _root() / "baselines" / f"{name}.json"
    if not path.is_file():
        raise PretrainedError(f"no shipped baseline result named {name!r}; "
                              f"available: {_baseline_names()}")
    return json.loads(path.read_text())


def summary(names: list[str] | None = None, baselines: Sequence[str] | None = None
            ) -> list[dict[str, Any]]:
    """The zoo as table rows: one per model (default: all shipped) and per baseline result
    (default: all shipped, e.g. ``ridge``; ``()`` for none).

    Each row: ``name``, ``params``, ``epochs``, ``steps``, ``wall_min`` (training wall time,
    minutes), ``mode`` (the recommended inference mode) and, for each inference mode ``m`` in
    ``("tiled", "whole")`` and metric in :data:`METRICS`, ``"<metric>_<m>"`` (dev18 test means
    from the card's evaluation; None where the card has no such mode). A baseline row has no
    training budget (None) and the same numbers in both modes when it is a per-pixel map.
    """
    rows = []
    for name in (_names() if names is None else names):
        c = card(name)
        t = c["training"]
        row = {"name": name, "params": c["params"], "epochs": t["epochs"], "steps": t["steps"],
               "wall_min": round(t["wall_time_s"] / 60, 1), "mode": c["recommended_mode"]}
        rows.append(row | scores(c["evaluation"]))
    for name in (_baseline_names() if baselines is None else baselines):
        b = baseline(name)
        ev = b["evaluation"]
        both = {m: ev.get(m, ev.get("tiled")) for m in ("tiled", "whole")}
        rows.append({"name": name, "params": None, "epochs": None, "steps": None,
                     "wall_min": None, "mode": "whole"} | scores(both))
    return rows


def scores(evaluation: dict[str, Any]) -> dict[str, float | None]:
    """``{"psnr_tiled": ..., "sam_whole": ...}``: the test means of a card's evaluation for each
    mode in ``("tiled", "whole")`` and metric in :data:`METRICS` (None where it has none)."""
    return {f"{k}_{mode}": (evaluation[mode]["mean"].get(k) if mode in evaluation else None)
            for mode in ("tiled", "whole") for k in METRICS}
