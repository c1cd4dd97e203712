"""Command line: ``python -m inr_lib train | evaluate | reconstruct | baseline`` (or ``inr-hsisr``).

Every command prints a one-line ``error: ...`` and exits with status 1 on bad input or a
failed run (status 2 for malformed arguments, 130 when interrupted); ``--debug`` shows the
traceback instead. ``python -m inr_lib COMMAND --help`` shows the options and an example.
How ``--data`` and ``--split`` are read is in :data:`DATA_HELP` (also shown by ``--help``).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .outputs import check_outputs

__all__ = ["main", "build_parser", "read_input_image", "CLIError"]


DATA_HELP = """\
Data (--data):
  synthetic, synthetic:DIR  the synthetic CAVE-layout dataset, generated on first use
                            (in $INR_DATA/synthetic_cave, or in DIR)
  cave:DIR                  real CAVE scenes in DIR (plain 'cave': $INR_DATA/cave or the
                            development copy)
  cave:DIR1,DIR2            the scenes of several folders together (a scene name found in
                            two folders is an error naming both)
  auto                      real CAVE if found, else synthetic

Splits (--split NAME, PART or NAME:PART):
  NAME is a shipped split (default, dev8, dev18; inr_lib/data/splits/cave.json) restricted to
  the scenes present; PART is train, test or all. Without NAME the split is automatic:
  a shipped split whose scenes are exactly the ones present, else 'default' restricted
  to them when all are CAVE scenes, else a fallback (sorted names, every 4th scene to
  test). 'train' fits on the train part and validates on the test part (as the released
  code did; --set val_every=0 trains without looking at it); 'evaluate' and 'baseline'
  score the test part unless another PART is given; 'train --split all' trains on every
  scene without validation (no best.pt), e.g. on a single scene.
"""


class CLIError(Exception):
    """An expected failure with a message for the user (no traceback)."""


# ====================================================================== data
def _parse_split(value: str | None) -> tuple[str | None, str | None]:
    """``"dev8:test"`` -> ("dev8", "test"); ``"test"`` -> (None, "test"); ``"dev8"`` -> ("dev8", None)."""
    if not value:
        return None, None
    if ":" in value:
        name, part = value.split(":", 1)
        return name or None, part or None
    return (None, value) if value in ("train", "test", "all") else (value, None)


def load_data(spec: str, split: str | None, verbose: bool = True,
              need: tuple = ("train", "test"), allow_empty: bool = False) -> dict:
    """Resolve ``--data`` and ``--split`` and load the parts in ``need``.

    Returns ``{"train": [Scene], "test": [Scene], "dataset": "cave" | "synthetic", "root",
    "split_name"}`` (a part not in ``need`` is an empty list).
    """
    from . import data

    kind, _, path = spec.partition(":")
    if kind == "synthetic":
        root = Path(path).expanduser() if path else data.default_data_root() / "synthetic_cave"
        if verbose:
            print(f"synthetic CAVE-layout data at {root} (generated on first use)", file=sys.stderr)
        data.ensure_synthetic_cave(root)
    elif kind == "cave":
        roots = [Path(p).expanduser() for p in path.split(",") if p] if path else \
            [data.resolve_cave_root("cave").path]
        for r in roots:
            if not r.exists():
                raise CLIError(f"--data cave:{path}: folder {r} does not exist; expected the CAVE "
                               f"scenes there (download them with python -c \"import inr_lib.data as d; "
                               f"d.download_cave({str(r)!r})\", or use --data synthetic)")
        root = roots[0] if len(roots) == 1 else roots
    elif kind == "auto" and not path:
        found = data.resolve_cave_root()
        root, kind = found.path, found.kind
        if verbose:
            print(f"using {found}", file=sys.stderr)
    else:
        raise CLIError(f"--data {spec!r}: expected 'synthetic', 'synthetic:DIR', 'cave:DIR' or 'auto'")
    name, _ = _parse_split(split)
    where = ",".join(map(str, root)) if isinstance(root, list) else str(root)
    found = data.list_cave_scenes(root)
    if not found:
        raise CLIError(f"no CAVE scenes found in {where}")
    # evaluation needs only the part it scores: a folder of test scenes alone is fine
    require = () if set(need) == {"train", "test"} and allow_empty else need
    parts = data.split_available(found, name, require=require)
    if parts["missing"] and verbose:
        print(f"note: {len(parts['missing'])} scenes of split {parts['split']!r} are not in {where}; "
              f"using the {len(parts['train'])} train / {len(parts['test'])} test scenes present",
              file=sys.stderr)
    if verbose:
        print(f"loading {sum(len(parts[p]) for p in need)} scenes ({' + '.join(need)}) from {where} "
              f"(split {parts['split']!r})", file=sys.stderr)
    out = {p: data.load_cave(root, parts[p], strict=True) if p in need and parts[p] else []
           for p in ("train", "test")}
    return {**out, "dataset": kind, "root": where, "split_name": parts["split"]}


def _eval_part(split: str | None) -> str:
    """The part of the split to score: ``test`` unless ``--split`` names another."""
    part = _parse_split(split)[1] or "test"
    if part not in ("train", "test", "all"):
        raise CLIError(f"--split part must be train, test or all, got {part!r}")
    return part


def _scenes_for(d: dict, part: str) -> tuple[list, str]:
    scenes = d["train"] + d["test"] if part == "all" else d[part]
    return scenes, f"{d['split_name']}:{part}"


# ====================================================================== commands
def cmd_train(args) -> int:
    from .train import TrainConfig, train

    if args.resume and args.overwrite:
        raise CLIError("--resume and --overwrite contradict each other: --resume continues the run "
                       "in --out, --overwrite replaces it; give one of them")
    cfg = TrainConfig.load(args.config)
    if args.set:
        cfg = cfg.with_overrides(args.set)
    if args.epochs is not None:
        cfg = cfg.replace(epochs=args.epochs)
    device = _device(args)
    talk = os.environ.get("RANK", "0") == "0"     # under torchrun only rank 0 prints
    if talk:   # fail before loading data, not after (train() checks the free space again)
        from .train import check_output_dir

        out = Path(args.out)
        if not args.resume and not args.overwrite and (out / "last.pt").is_file():
            raise CLIError(f"{out} already holds a training run ({out / 'last.pt'}); continue it "
                           f"with --resume, replace it with --overwrite, or choose another --out")
        check_output_dir(out, need_bytes=0)
    d = load_data(args.data, args.split, verbose=talk, allow_empty=_train_on_all(args.split))
    if _train_on_all(args.split):   # every scene trains; nothing is held out for validation
        d = {**d, "train": d["train"] + d["test"], "test": []}
    model = cfg.model_preset if cfg.arch == "inr" else "cnn"
    if talk:
        print(f"training {cfg.name!r} ({cfg.arch}, model {model}{' ' + str(cfg.model) if cfg.model else ''}) "
              f"for {cfg.epochs} epochs on {len(d['train'])} scenes, validating on "
              f"{len(d['test'])}, device {device}, output {args.out}", file=sys.stderr)
    identity = _data_identity(d)
    if talk and args.resume:
        _check_same_data(Path(args.out), identity, args.allow_other_data)
    res = train(cfg, d["train"], d["test"], args.out, resume=args.resume, device=device,
                progress=not args.no_progress, overwrite=args.overwrite,
                callback=_record_data(Path(args.out), identity) if talk else None)
    if talk:
        best = res.best or {}
        msg = f"done: {len(res.history)} epochs; last checkpoint {res.last_path}"
        if res.best_path:
            msg += (f"; best {res.best_path} (epoch {best.get('epoch')}, val PSNR "
                    f"{best.get('val_psnr', float('nan')):.2f} dB)")
        print(msg)
    return 0


def _train_on_all(split: str | None) -> bool:
    """``train --split all`` (or ``NAME:all``): train on every scene, without validation (the
    only way to train on a single scene)."""
    return _parse_split(split)[1] == "all"


DATA_RECORD = "data.json"


def _data_identity(d: dict) -> dict:
    """What a run was trained on: the dataset kind, folder, split and scene names."""
    return {"dataset": d["dataset"], "root": d["root"], "split": d["split_name"],
            "train": [s.name for s in d["train"]], "test": [s.name for s in d["test"]]}


def _check_same_data(out: Path, identity: dict, allowed: bool) -> None:
    """``--resume`` on other scenes than the run started with is an error unless ``allowed``
    (best.pt would be re-selected on another validation set)."""
    import json

    try:
        old = json.loads((out / DATA_RECORD).read_text())
    except (OSError, ValueError):
        return   # a run from before this record existed: nothing to compare
    diff = [k for k in ("dataset", "train", "test") if old.get(k) != identity[k]]
    if diff and not allowed:
        def show(r):
            return f"{r.get('dataset')} {r.get('root')} split {r.get('split')!r}: " \
                   f"{len(r.get('train', []))} train / {len(r.get('test', []))} test scenes"
        raise CLIError(f"cannot resume {out}: it was trained on {show(old)}, but --data/--split now "
                       f"give {show(identity)} (different {', '.join(diff)}); use the same --data "
                       f"and --split, or pass --allow-other-data to continue on these scenes")


def _record_data(out: Path, identity: dict):
    """A training callback writing ``out/data.json`` after the first epoch (once the run has
    started, so a failed start leaves an older run's record alone)."""
    import json

    from .checkpoint import atomic_write

    def callback(record, model):
        if not getattr(callback, "done", False):
            text = json.dumps(identity, indent=1) + "\n"
            atomic_write(out / DATA_RECORD, lambda f: f.write(text.encode()))
            callback.done = True
        return None

    return callback


def cmd_evaluate(args) -> int:
    from .checkpoint import load_checkpoint, load_model
    from .evaluate import evaluate, write_results

    check_outputs({"--json": args.json}, {"--checkpoint": args.checkpoint}, overwrite=args.force)
    device = _device(args)
    ck = load_checkpoint(args.checkpoint)
    tc = ck.get("train_config") or {}
    tile = args.tile or _ckpt_int(tc, "crop_size", 64, 1, args.checkpoint)
    overlap = args.overlap if args.overlap is not None else \
        _ckpt_int(tc, "val_overlap", 16, 0, args.checkpoint)
    rgb_source = args.rgb_source or _ckpt_str(tc, "rgb_source", "dataset", args.checkpoint)
    model = load_model(args.checkpoint, map_location=device)
    part = _eval_part(args.split)
    d = load_data(args.data, args.split, need=("train", "test") if part == "all" else (part,),
                  allow_empty=True)
    scenes, split_label = _scenes_for(d, part)
    if not scenes:
        raise CLIError(f"--data {args.data}: no scenes to score in part {part!r} of split "
                       f"{d['split_name']!r}")
    res = evaluate(model, scenes, mode=args.mode, tile=tile, overlap=overlap,
                   border=args.border, self_ensemble=args.self_ensemble,
                   rgb_source=rgb_source, device=device,
                   progress=not args.no_progress, dataset=f"{d['dataset']} ({d['root']})",
                   split=split_label)
    write_results(res, args.json)
    _print_means(res, args.json)
    return 0


def cmd_baseline(args) -> int:
    from .baselines import build_baseline
    from .evaluate import evaluate, write_results

    check_outputs({"--json": args.json}, overwrite=args.force)
    cnn_out = None
    if args.name == "cnn":   # refuse an existing run before loading data or training
        cnn_out = Path(args.out) if args.out else \
            Path(args.json).with_name(Path(args.json).stem + "_cnn_run")
        if not args.overwrite and (cnn_out / "last.pt").is_file():
            raise CLIError(f"{cnn_out} already holds a training run ({cnn_out / 'last.pt'}); "
                           f"replace it with --overwrite, or choose another --out")
    device = _device(args)
    part = _eval_part(args.split)
    d = load_data(args.data, args.split)
    test, split_label = _scenes_for(d, part)
    rgb_source = args.rgb_source or "dataset"
    from .data.patches import scene_rgb

    options: dict = {}
    if args.name in ("ridge", "physics"):
        if args.name == "ridge":
            options = {"degree": args.degree}
        else:
            enc = args.rgb_encoding
            if enc == "auto":
                enc = "srgb" if d["dataset"] == "cave" and rgb_source == "dataset" else "linear"
            options = {"rgb_encoding": enc}
        model = build_baseline(args.name, **options)
        print(f"fitting {args.name} {options} on {len(d['train'])} training scenes", file=sys.stderr)
        model.fit([scene_rgb(s, rgb_source) for s in d["train"]], [s.hsi for s in d["train"]])
        tile, overlap = args.tile or 64, args.overlap if args.overlap is not None else 16
    elif args.name == "cnn":
        from .train import TrainConfig, train

        cfg = TrainConfig.load(args.config).replace(arch="cnn", model={}, rgb_source=rgb_source)
        if args.set:
            cfg = cfg.with_overrides(args.set)
        if args.epochs is not None:
            cfg = cfg.replace(epochs=args.epochs)
        out = cnn_out
        print(f"training the cnn baseline ({cfg.name} schedule, {cfg.epochs} epochs) in {out}",
              file=sys.stderr)
        res = train(cfg, d["train"], d["test"], out, device=device, progress=not args.no_progress,
                    overwrite=args.overwrite)
        model, options = res.model, {"config": cfg.to_dict(), "run": str(out)}
        tile = args.tile or cfg.crop_size
        overlap = args.overlap if args.overlap is not None else cfg.val_overlap
    else:  # argparse choices make this unreachable
        raise CLIError(f"unknown baseline {args.name!r}")
    res = evaluate(model, test, mode=args.mode, tile=tile, overlap=overlap, border=args.border,
                   self_ensemble=args.self_ensemble, rgb_source=rgb_source, device=device,
                   progress=not args.no_progress, dataset=f"{d['dataset']} ({d['root']})",
                   split=split_label)
    res["baseline"] = {"name": args.name, "options": options,
                       "fitted_on": [s.name for s in d["train"]]}
    write_results(res, args.json)
    _print_means(res, args.json)
    return 0


def cmd_reconstruct(args) -> int:
    import numpy as np
    import torch

    from .checkpoint import load_checkpoint, load_model
    from .evaluate import reconstruct

    out = Path(args.out)
    if out.suffix.lower() not in (".h5", ".hdf5", ".npy"):
        raise CLIError(f"--out {out}: expected a .h5 or .npy file name")
    if out.is_dir():
        raise CLIError(f"--out {out} is a folder; expected a file name ending in .h5 or .npy")
    preview = out.with_suffix(".png")
    check_outputs({"--out": out, "preview": preview},
                  {"--rgb": args.rgb, "--checkpoint": args.checkpoint}, overwrite=args.force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from .train import blocking_file

        why = blocking_file(out.parent) or e.strerror or e
        raise CLIError(f"--out {out}: cannot create its folder {out.parent} ({why}); "
                       f"choose another output path") from None
    if not os.access(out.parent, os.W_OK):
        raise CLIError(f"--out {out}: the folder {out.parent} is not writable; choose another "
                       f"output path")
    device = _device(args)
    tc = load_checkpoint(args.checkpoint).get("train_config") or {}
    rgb, notes = read_input_image(args.rgb, gray_ok=args.gray_ok)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    x = torch.from_numpy(rgb)[None]
    if args.size:
        h, w = args.size
        if h < 1 or w < 1:
            raise CLIError(f"--size expects two positive integers H W, got {h} {w}")
        x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", antialias=True,
                                            align_corners=False).clamp(0, 1)
    _check_free_space(out, 31 * x.shape[-2] * x.shape[-1] * 4 + 6 * x.shape[-2] * x.shape[-1]
                      + 2**20)
    model = load_model(args.checkpoint, map_location=device)
    tile = args.tile or _ckpt_int(tc, "crop_size", 64, 1, args.checkpoint)
    overlap = args.overlap if args.overlap is not None else \
        _ckpt_int(tc, "val_overlap", 16, 0, args.checkpoint)
    H, W = x.shape[-2:]
    print(f"reconstructing {args.rgb} ({H}x{W}) with {args.checkpoint}, "
          f"{'tiled ' + str(tile) + ' px' if args.mode == 'tiled' else 'whole image'}", file=sys.stderr)
    hsi = reconstruct(model, x, mode=args.mode, tile=tile, overlap=overlap, device=device)[0]
    cube = hsi.numpy().astype(np.float32)
    if not np.isfinite(cube).all():
        raise CLIError(f"the reconstruction of {args.rgb} with {args.checkpoint} contains NaN/Inf "
                       f"values; nothing was written (try --mode tiled, or another checkpoint)")
    _save_cube(out, cube, {"source_image": str(args.rgb), "checkpoint": str(args.checkpoint),
                           "checkpoint_sha256": model.checkpoint_info["sha256"]})
    _save_preview(preview, x[0].numpy(), cube)
    print(f"wrote {out} (31 x {H} x {W}, float32, 400..700 nm) and preview {preview}")
    return 0


# ====================================================================== helpers
def _ckpt_int(tc, key: str, default: int, low: int, path) -> int:
    """``train_config[key]`` of a checkpoint as an int >= ``low`` (``default`` when absent);
    a tampered or foreign value is an error naming the file and the key."""
    if not isinstance(tc, dict):
        raise CLIError(f"{path}: its train_config is a {type(tc).__name__}, expected a mapping; "
                       f"the checkpoint is damaged or not from inr_lib")
    value = tc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 1 << 16:
        raise CLIError(f"{path}: train_config {key!r} is {value!r}, expected an integer in "
                       f"[{low}, 65536]; the checkpoint is damaged (pass --tile/--overlap to "
                       f"override)")
    return value


def _ckpt_str(tc, key: str, default: str, path) -> str:
    value = tc.get(key, default) if isinstance(tc, dict) else default
    if not isinstance(value, str):
        raise CLIError(f"{path}: train_config {key!r} is {value!r}, expected a string; the "
                       f"checkpoint is damaged (pass --{key.replace('_', '-')} to override)")
    return value


def _device(args):
    from .runtime import pick_device

    return pick_device(getattr(args, "device", None), allow_fallback=getattr(args, "allow_cpu_fallback", False))


def _print_means(res: dict, path) -> None:
    m = res["mean"]
    print(f"{len(res['per_scene'])} scenes: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}, "
          f"SAM {m['sam']:.2f} deg, RMSE {m['rmse']:.4f}, MRAE {m['mrae']:.4f} -> {path}")


def read_input_image(path, gray_ok: bool = False):
    """Read an 8/16-bit PNG, JPEG, BMP, TIFF, ... as ``(3, H, W)`` float32 in [0, 1].

    PNGs are decoded exactly at their bit depth (16-bit PNGs keep 16 bits). An alpha
    channel is dropped (with a note). Camera images with an EXIF orientation tag are turned
    upright, as image viewers show them (with a note). Greyscale images are refused unless
    ``gray_ok``, in which case the grey channel is replicated to R, G and B (the model was
    trained on colour images, so expect a poor spectrum: a grey image carries no colour
    information).

    Returns:
        ``(rgb, notes)``: the image and a list of messages for the user.
    """
    import numpy as np

    path = Path(path)
    if path.is_dir():
        raise CLIError(f"--rgb {path} is a folder; expected an image file (PNG, JPEG, TIFF, ...)")
    if not path.is_file():
        raise CLIError(f"--rgb {path}: file not found")
    notes = []
    values, maxval, orientation = _read_pixels(path, notes)
    if orientation not in (None, 1):
        values = _apply_orientation(values, orientation)
        notes.append(f"rotated/flipped as its EXIF orientation ({orientation}) says, "
                     f"to {values.shape[1]}x{values.shape[0]} (WxH), as image viewers show it")
    if values.ndim == 2:
        values = values[:, :, None]
    c = values.shape[2]
    if c in (2, 4):
        notes.append(f"{path.name} has an alpha channel; it was dropped")
        values = values[:, :, : c - 1]
        c -= 1
    if c == 1:
        if not gray_ok:
            raise CLIError(f"--rgb {path}: greyscale image, but the model needs colour (RGB); pass "
                           f"--gray-ok to replicate the grey channel to R, G, B (expect poor spectra)")
        notes.append("greyscale image replicated to R, G, B (--gray-ok)")
        values = np.repeat(values, 3, axis=2)
    elif c != 3:
        raise CLIError(f"--rgb {path}: expected 3 colour channels, found {c}")
    rgb = np.ascontiguousarray(values.transpose(2, 0, 1)).astype(np.float32) / np.float32(maxval)
    return rgb, notes


def _read_pixels(path: Path, notes: list):
    """``(values (H, W[, C]) unsigned ints, maxval, EXIF orientation)`` of an image file, at
    its own bit depth (16-bit PNGs and uncompressed 16-bit TIFFs stay 16 bits); conversions
    are appended to ``notes``."""
    import warnings

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() == ".png":   # decoded exactly at its bit depth (any PNG error names it)
        from .data._io import read_png

        values, depth = read_png(path)
        return values, 2 ** depth - 1, _exif_orientation(path)
    try:
        with warnings.catch_warnings():   # any size is allowed: memory is checked instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = limit
        with im:
            _check_image_memory(path, im.width, im.height)
            orientation = im.getexif().get(0x0112, 1)   # EXIF Orientation (cameras, phones)
            sixteen = _read_tiff16(path, im)
            if sixteen is not None:
                return sixteen, 65535, orientation
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                notes.append(f"converted {mode} to RGB")
                im = im.convert("RGB")
            elif mode == "1":
                im = im.convert("L")
            values = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CLIError(f"--rgb {path}: not a readable image ({e})") from None
    if values.dtype == np.uint8:
        return values, 255, orientation
    if values.dtype in (np.uint16, np.int32) and values.min(initial=0) >= 0 and \
            values.max(initial=0) <= 65535:
        return values, 65535, orientation
    raise CLIError(f"--rgb {path}: unsupported pixel format {mode!r} ({values.dtype}); "
                   f"expected 8- or 16-bit RGB")


def _exif_orientation(path: Path) -> int:
    """The EXIF orientation tag of an image (PNG eXIf chunk included), 1 when absent."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:   # unreadable metadata: the pixels decide, upright as stored
        return 1


def _check_image_memory(path: Path, width: int, height: int) -> None:
    """Refuse an image whose input and 31-band cube (float32) would not fit in memory."""
    need = width * height * (3 + 31) * 4 * 2
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > avail:
        raise CLIError(f"--rgb {path}: {width}x{height} pixels need about {need / 2**30:.1f} GiB "
                       f"for the cube, more than the {avail / 2**30:.1f} GiB of free memory; "
                       f"downscale it with --size H W")


def _read_tiff16(path: Path, im):
    """The samples of an uncompressed 16-bit RGB(A) TIFF as ``(H, W, C)`` uint16 (Pillow
    would reduce them to 8 bits); None for any other image. A compressed 16-bit RGB TIFF is
    refused rather than read inexactly."""
    import numpy as np

    if im.format != "TIFF" or im.mode not in ("RGB", "RGBA"):
        return None
    bits = im.tag_v2.get(258)
    if not bits or max(bits if isinstance(bits, tuple) else (bits,)) != 16:
        return None
    tiles = im.tile
    ok = all(t[0] == "raw" and t[3][0] in ("RGB;16L", "RGB;16B", "RGBA;16L", "RGBA;16B")
             and t[3][1] in (0, None) and t[3][2] in (1, None) for t in tiles)
    if not ok:
        raise CLIError(f"--rgb {path}: a compressed 16-bit RGB TIFF cannot be read exactly here; "
                       f"save it as a 16-bit PNG or an uncompressed TIFF")
    c = 4 if im.mode == "RGBA" else 3
    out = np.empty((im.height, im.width, c), dtype=np.uint16)
    with open(path, "rb") as f:
        for _, (x0, y0, x1, y1), offset, (rawmode, *_) in tiles:
            f.seek(offset)
            n = (x1 - x0) * (y1 - y0) * c
            block = np.frombuffer(f.read(2 * n), dtype="<u2" if rawmode.endswith("L") else ">u2")
            if block.size != n:
                raise CLIError(f"--rgb {path}: truncated TIFF (a strip ends early)")
            out[y0:y1, x0:x1] = block.reshape(y1 - y0, x1 - x0, c)
    return out


def _apply_orientation(values, orientation: int):
    """Turn ``values`` (H, W[, C]) upright as EXIF ``orientation`` (2..8) says."""
    import numpy as np

    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(a, 2).swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}
    op = ops.get(int(orientation))
    return values if op is None else np.ascontiguousarray(op(values))


def _check_free_space(out: Path, need: int) -> None:
    """Refuse before reconstructing when the folder of ``out`` has less than ``need`` bytes
    free (the uncompressed cube and its preview: an upper bound)."""
    import shutil

    try:
        free = shutil.disk_usage(out.parent).free
    except OSError:
        return
    if free < need:
        raise CLIError(f"--out {out}: {out.parent} has {free / 2**20:.1f} MiB free, but the cube and "
                       f"its preview need up to {need / 2**20:.1f} MiB; free some space or choose "
                       f"another output folder")


def _save_cube(out: Path, cube, attrs: dict) -> None:
    """Write ``cube`` (31, H, W) float32 as .npy or .h5 (dataset ``hsi``), atomically."""
    import numpy as np

    from . import __version__
    from .checkpoint import atomic_write
    from .spectral import WAVELENGTHS

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        atomic_write(out, lambda f: np.save(f, cube))
        return
    import tempfile

    import h5py

    from .checkpoint import _chmod_like_new_file

    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    _chmod_like_new_file(fd)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            ds = f.create_dataset("hsi", data=cube, compression="gzip", compression_opts=4,
                                  chunks=(1, min(256, cube.shape[1]), min(256, cube.shape[2])))
            ds.attrs["layout"] = "(bands, height, width)"
            ds.attrs["value_scale"] = "[0, 1]"
            f.create_dataset("wavelengths", data=np.asarray(WAVELENGTHS, dtype=np.float64))
            for k, v in {**attrs, "inr_lib_version": __version__}.items():
                f.attrs[k] = v
        os.replace(tmp, out)
    except OSError as e:   # disk full, folder removed: one clean line, no HDF5 tracebacks
        Path(tmp).unlink(missing_ok=True)
        raise CLIError(f"--out {out}: could not write the cube ({' '.join(str(e).split())[:200]}); "
                       f"nothing was written. Free some space or choose another output "
                       f"folder") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_preview(path: Path, rgb, cube) -> None:
    """Side by side: the input RGB and an sRGB rendering of the reconstructed spectra."""
    import numpy as np
    from PIL import Image

    from .checkpoint import atomic_write
    from .spectral import srgb_preview

    left = np.clip(rgb.transpose(1, 2, 0), 0, 1)
    right = srgb_preview(cube)
    gap = np.ones((left.shape[0], max(2, left.shape[1] // 50), 3), dtype=np.float32)
    img = (np.concatenate([left, gap, right], axis=1) * 255 + 0.5).astype(np.uint8)

    def write(f):   # the marker lets a re-run replace this preview (inr_lib.outputs)
        from PIL.PngImagePlugin import PngInfo

        from .outputs import PNG_MARKER

        info = PngInfo()
        info.add_text("Software", PNG_MARKER)
        Image.fromarray(img).save(f, format="PNG", pnginfo=info)

    atomic_write(path, write)


# ====================================================================== parser
def _common(p, data=True, device=True):
    if data:
        p.add_argument("--data", required=True, metavar="SPEC",
                       help="synthetic | synthetic:DIR | cave:DIR | auto (see python -m inr_lib --help)")
        p.add_argument("--split", default=None, metavar="NAME[:PART]",
                       help="split name (default, dev8, ...) and/or part (train, test, all); "
                            "default: automatic split")
    if device:
        p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
        p.add_argument("--allow-cpu-fallback", action="store_true",
                       help="use the CPU (with a warning) when --device cuda is not available")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _inference(p, default_mode="tiled"):
    p.add_argument("--mode", choices=("tiled", "whole"), default=default_mode,
                   help="tiled: windows of the training crop size, blended (default); "
                        "whole: the full image in one pass")
    p.add_argument("--tile", type=_int_at_least(1), default=None,
                   help="window size for --mode tiled (default: the training crop size, else 64)")
    p.add_argument("--overlap", type=_int_at_least(0), default=None,
                   help="window overlap (default: the training val_overlap, else 16)")


def _eval_options(p):
    _inference(p)
    p.add_argument("--border", type=int, default=0, help="pixels cropped from each side before scoring")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average the 8 flips/transposes of the input")
    p.add_argument("--rgb-source", default=None,
                   help="'dataset' (the scenes' RGB images) or a response name such as cie1964 "
                        "(default: what the model was trained with, else dataset)")
    p.add_argument("--json", required=True, metavar="OUT", help="results file (JSON)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --json file that inr_lib did not write")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Wraps plain paragraphs; keeps paragraphs with indented lines (examples, tables) as typed."""

    def _fill_text(self, text, width, indent):
        import textwrap

        paras = []
        for para in text.split("\n\n"):
            if any(line.startswith(" ") for line in para.splitlines()):
                paras.append(textwrap.indent(para, indent))
            else:
                paras.append(textwrap.fill(" ".join(para.split()), width, initial_indent=indent,
                                           subsequent_indent=indent))
        return "\n\n".join(paras)


def build_parser() -> argparse.ArgumentParser:
    fmt = _Formatter
    parser = argparse.ArgumentParser(
        prog="python -m inr_lib", formatter_class=fmt,
        description="INR-HSISR: recover 31-band spectral images (400..700 nm) from RGB.\n\n"
                    + DATA_HELP,
        epilog="examples:\n"
               "  python -m inr_lib train --config quick --data synthetic --out runs/quick\n"
               "  python -m inr_lib evaluate --checkpoint runs/quick/best.pt --data synthetic --json eval.json\n"
               "  python -m inr_lib reconstruct --checkpoint runs/quick/best.pt --rgb photo.png --out cube.h5\n"
               "  python -m inr_lib baseline ridge --data cave:data/cave --json ridge.json")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from .train import list_presets

    p = sub.add_parser("train", formatter_class=fmt, help="train a model",
                       description="Train INR-HSISR (or the cnn baseline) on random crops of the "
                                   "train split, validating on full images of the test split; "
                                   "writes last.pt, best.pt, log.jsonl and config.yaml to --out.",
                       epilog="examples:\n"
                              "  python -m inr_lib train --config quick --data synthetic --out runs/quick\n"
                              "  python -m inr_lib train --config paper --data cave:~/data/cave --out runs/paper "
                              "--device cuda\n"
                              "  python -m inr_lib train --config paper --data cave:~/data/cave --out runs/paper "
                              "--resume\n"
                              "  torchrun --nproc_per_node=4 -m inr_lib train --config paper --data cave:DIR "
                              "--out runs/ddp\n"
                              "  python -m inr_lib train --config tiny --data synthetic --out runs/t "
                              "--set model.encoding=tile --set lr=5e-4")
    p.add_argument("--config", default="quick",
                   help=f"preset ({', '.join(list_presets())}) or YAML file (default: quick)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh even if RUN_DIR already holds a run (replaces its checkpoints)")
    p.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (YAML value); model.OPTION=VALUE for model options; "
                        "repeatable")
    p.add_argument("--allow-other-data", action="store_true",
                   help="with --resume: continue even if --data/--split give other scenes than "
                        "the run was trained on (recorded in RUN_DIR/data.json)")
    _common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", formatter_class=fmt, help="score a checkpoint on full images",
                       description="Reconstruct the full images of a split with a checkpoint and "
                                   "write PSNR/SSIM/SAM/RMSE/MRAE per scene, their means, per-band "
                                   "curves and the protocol to a JSON file.",
                       epilog="examples:\n"
                              "  python -m inr_lib evaluate --checkpoint runs/quick/best.pt --data synthetic "
                              "--json eval.json\n"
                              "  python -m inr_lib evaluate --checkpoint best.pt --data cave:DIR --split "
                              "default:test --mode whole --self-ensemble --json eval.json")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a best.pt / last.pt file")
    _common(p)
    _eval_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reconstruct", formatter_class=fmt, help="turn an RGB image into a spectral cube",
                       description="Reconstruct a 31-band cube (400..700 nm) from an RGB image "
                                   "(8/16-bit PNG, JPEG, BMP, TIFF; alpha is dropped with a note; "
                                   "greyscale needs --gray-ok). Large images are processed as "
                                   "tiles. Writes the cube (.h5 dataset 'hsi' or .npy, shape "
                                   "(31, H, W), float32 in [0, 1]) and a preview PNG next to it "
                                   "(input | sRGB rendering of the cube).",
                       epilog="examples:\n"
                              "  python -m inr_lib reconstruct --checkpoint runs/quick/best.pt --rgb photo.jpg "
                              "--out cube.h5\n"
                              "  python -m inr_lib reconstruct --checkpoint best.pt --rgb scan.png --size 512 512 "
                              "--out cube.npy")
    p.add_argument("--checkpoint", required=True, metavar="CKPT")
    p.add_argument("--rgb", required=True, metavar="IMAGE", help="input image")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                   help="resize the input to H x W (antialiased) before reconstructing")
    p.add_argument("--gray-ok", action="store_true",
                   help="accept a greyscale image by replicating it to R, G, B")
    p.add_argument("--out", required=True, metavar="CUBE", help="output .h5 or .npy")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out / preview file that inr_lib did not write")
    _inference(p)
    _common(p, data=False)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("baseline", formatter_class=fmt, help="fit/train and score a baseline",
                       description="Fit ridge or physics (Mallett & Yuksel 2019) on the train split, "
                                   "or train the cnn baseline with the training loop, then evaluate "
                                   "it on the test split with the same protocol as `evaluate`.",
                       epilog="examples:\n"
                              "  python -m inr_lib baseline ridge --data synthetic --json ridge.json\n"
                              "  python -m inr_lib baseline physics --data cave:DIR --json physics.json\n"
                              "  python -m inr_lib baseline cnn --data synthetic --config quick --out "
                              "runs/cnn --json cnn.json")
    p.add_argument("name", choices=("ridge", "physics", "cnn"))
    p.add_argument("--degree", type=int, default=1, help="ridge: polynomial degree 1..3 (default 1)")
    p.add_argument("--rgb-encoding", choices=("auto", "linear", "srgb"), default="auto",
                   help="physics: the input's transfer curve (auto: srgb for real CAVE RGB, else linear)")
    p.add_argument("--config", default="quick", help="cnn: training preset or YAML (default quick)")
    p.add_argument("--epochs", type=int, default=None, help="cnn: override the number of epochs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="cnn: config overrides (model.channels=32, ...)")
    p.add_argument("--out", default=None, metavar="RUN_DIR",
                   help="cnn: run folder (default: next to --json)")
    p.add_argument("--overwrite", action="store_true",
                   help="cnn: replace the run already in --out (its checkpoints and log)")
    _common(p)
    _eval_options(p)
    p.set_defaults(func=cmd_baseline)
    return parser


def main(argv=None) -> int:
    """Entry point; returns the exit status (0 ok, 1 error, 2 bad arguments, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .checkpoint import CheckpointError
    from .train import NonFiniteLossError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        hint = " (continue with --resume)" if args.command == "train" else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return 130
    except (CLIError, CheckpointError, NonFiniteLossError, ValueError, KeyError, OSError,
            RuntimeError, TypeError) as e:
        if args.debug:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        msg = " ".join(str(msg).split()) or type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 1
