"""Images in and cubes out: reading the user's RGB images and writing spectral cubes
(every file is written through :func:`inr_lib.files.atomic.atomic_write`).

* :func:`read_image`: an 8/16-bit PNG, JPEG, BMP, TIFF, ... as ``(3, H, W)`` float32 in [0, 1];
* :func:`write_cube`: a ``(31, H, W)`` cube as ``.h5`` (dataset ``hsi``), ``.npy`` (plus its
  sidecar ``<name>.npy.json``) or ``.tif`` (float32, one band per page);
* :func:`write_preview`: the input RGB beside an sRGB rendering of the cube (PNG).

Every file written here carries a mark that :func:`inr_lib.files.outputs.written_by_inr_lib`
checks, so that a re-run may replace it: an HDF5 attribute ``inr_lib_version``, the PNG and
TIFF ``Software`` tag, and for ``.npy`` (whose header holds only ``descr``, ``fortran_order``
and ``shape``: ``numpy.load`` refuses any other key) the sidecar, which records the SHA-256 of
the ``.npy`` bytes (:func:`npy_written_by_inr_lib`): a ``.npy`` the user replaced or edited no
longer matches it and is not replaced without ``--overwrite``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from .._version import __version__
from ..spectral import WAVELENGTHS, srgb_preview
from .atomic import atomic_write, sha256_file
from .readers import read_png

__all__ = ["ImageReadError", "read_image", "write_cube", "write_preview", "cube_sidecar",
           "npy_written_by_inr_lib", "CUBE_SUFFIXES", "PNG_MARKER", "TIFF_MARKER", "SIDECAR_MARKER"]

CUBE_SUFFIXES = (".h5", ".hdf5", ".npy", ".tif", ".tiff")
#: value of the ``Software`` text chunk of the preview PNGs the library writes (so that a
#: re-run may replace them, :mod:`inr_lib.files.outputs`)
PNG_MARKER = "inr_lib preview"
#: value of the ``Software`` tag of the cube TIFFs the library writes
TIFF_MARKER = "inr_lib cube"
#: value of ``written_by`` in the sidecar ``<name>.npy.json`` of a ``.npy`` cube
SIDECAR_MARKER = "inr_lib cube sidecar"


class ImageReadError(ValueError):
    """An input image that cannot be used (the message names the file and what to do)."""


# ------------------------------------------------------------------ images
def read_image(path: str | os.PathLike, gray_ok: bool = False) -> tuple[np.ndarray, list]:
    """Read an 8/16-bit PNG, JPEG, BMP, TIFF, ... as ``(3, H, W)`` float32 in [0, 1].

    PNGs and TIFFs (any compression; LZW and JPEG need the imagecodecs package) are decoded
    exactly at their bit depth (16 bits stay 16 bits). An alpha channel is dropped (with a
    note). Images with an EXIF orientation tag (cameras, phones; PNG included) are turned
    upright, as image viewers show them (with a note). Any size is read if it fits in memory
    (Pillow's decompression-bomb limit is replaced by a memory check). Greyscale images are
    refused unless ``gray_ok``, in which case the grey channel is replicated to R, G and B (the
    model was trained on colour images, so expect a poor spectrum: a grey image carries no
    colour information).

    Returns:
        ``(rgb, notes)``: the image and a list of messages for the user.

    Raises:
        ImageReadError: missing, unreadable or unsupported image (greyscale without ``gray_ok``).
    """
    path = Path(path)
    if path.is_dir():
        raise ImageReadError(f"{path} is a folder; expected an image file (PNG, JPEG, TIFF, ...)")
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found")
    notes: list = []
    values, maxval, orientation = _read_pixels(path, notes)
    if orientation not in (None, 1):
        values = _apply_orientation(values, orientation)
        notes.append(f"rotated/flipped as its EXIF orientation ({orientation}) says, "
                     f"to {values.shape[1]}x{values.shape[0]} (WxH), as image viewers show it")
    values = _three_channels(values, path, gray_ok, notes)
    rgb = np.ascontiguousarray(values.transpose(2, 0, 1)).astype(np.float32) / np.float32(maxval)
    return rgb, notes


def _read_pixels(path: Path, notes: list) -> tuple[np.ndarray, int, int]:
    """``(values (H, W[, C]) unsigned ints, maxval, EXIF orientation)`` of an image file, at
    its own bit depth; conversions are appended to ``notes``."""
    if path.suffix.lower() == ".png":   # decoded exactly at its bit depth (any PNG error names it)

        values, depth = read_png(path)
        return values, 2 ** depth - 1, _exif_orientation(path)
    tiff = _read_tiff(path)
    if tiff is not None:
        return tiff

    try:
        with _open_any_size(path) as im:
            _check_image_memory(path, im.width, im.height)
            orientation = im.getexif().get(0x0112, 1)   # EXIF Orientation (cameras, phones)
            values, mode = _pillow_values(im, notes)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageReadError):
            raise
        raise ImageReadError(f"{path}: not a readable image ({e})") from None
    if values.dtype == np.uint8:
        return values, 255, orientation
    if values.dtype in (np.uint16, np.int32) and values.min(initial=0) >= 0 and \
            values.max(initial=0) <= 65535:
        return values, 65535, orientation
    raise ImageReadError(f"{path}: unsupported pixel format {mode!r} ({values.dtype}); "
                         f"expected 8- or 16-bit RGB")


def _open_any_size(path: Path):
    """``PIL.Image.open`` without the decompression-bomb limit (memory is checked instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def _pillow_values(im, notes: list) -> tuple[np.ndarray, str]:
    """The pixels of an open Pillow image as an array (palette, CMYK, ... converted to RGB)."""
    im.load()
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        notes.append(f"converted {mode} to RGB")
        im = im.convert("RGB")
    elif mode == "1":
        im = im.convert("L")
    return np.asarray(im), mode


def _exif_orientation(path: Path) -> int:
    """The EXIF orientation tag of an image (PNG eXIf chunk included), 1 when absent."""
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
        raise ImageReadError(f"{path}: {width}x{height} pixels need about {need / 2**30:.1f} GiB "
                             f"for the cube, more than the {avail / 2**30:.1f} GiB of free memory; "
                             f"downscale it with --size H W")


_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")   # classic and BigTIFF, both byte orders


def _read_tiff(path: Path) -> tuple[np.ndarray, int, int] | None:
    """``(values (H, W[, C]), maxval, EXIF orientation)`` of an 8/16-bit RGB(A) or grey TIFF,
    read exactly with tifffile whatever its compression (LZW and JPEG need the imagecodecs
    package), stripes, tiles or planar layout; None for a file that is not a TIFF or a TIFF
    Pillow converts better (palette, CMYK, YCbCr, 1-bit, float: refused there)."""
    with open(path, "rb") as f:
        if f.read(4) not in _TIFF_MAGIC:
            return None
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            if (page.photometric not in (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.MINISBLACK)
                    or page.dtype not in (np.uint8, np.uint16) or page.samplesperpixel > 4):
                return None
            _check_image_memory(path, page.imagewidth, page.imagelength)
            orientation = int(page.tags.valueof(274, 1) or 1)     # the TIFF/EXIF Orientation tag
            try:
                values = page.asarray()
            except KeyError as e:   # tifffile names the codec it lacks ("requires 'imagecodecs'")
                if page.dtype == np.uint8:
                    return None     # Pillow decodes 8-bit LZW/JPEG TIFFs itself
                raise ImageReadError(f"{path}: a {tifffile.COMPRESSION(page.compression).name}-compressed "
                                     f"16-bit TIFF; "
                                     f"reading it needs the imagecodecs package ({e.args[0]}): "
                                     f"pip install imagecodecs") from None
            if page.axes.startswith("S"):                            # planar: (C, H, W)
                values = np.moveaxis(values, 0, -1)
    except (tifffile.TiffFileError, ValueError, OSError, IndexError) as e:
        if isinstance(e, ImageReadError):
            raise
        raise ImageReadError(f"{path}: not a readable TIFF ({e})") from None
    return values, 255 if values.dtype == np.uint8 else 65535, orientation


def _apply_orientation(values: np.ndarray, orientation: int) -> np.ndarray:
    """Turn ``values`` (H, W[, C]) upright as EXIF ``orientation`` (2..8) says."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(a, 2).swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}
    op = ops.get(int(orientation))
    return values if op is None else np.ascontiguousarray(op(values))


def _three_channels(values: np.ndarray, path: Path, gray_ok: bool, notes: list) -> np.ndarray:
    """``(H, W[, C])`` -> ``(H, W, 3)``: alpha dropped, grey replicated (only if ``gray_ok``)."""
    if values.ndim == 2:
        values = values[:, :, None]
    c = values.shape[2]
    if c in (2, 4):
        notes.append(f"{path.name} has an alpha channel; it was dropped")
        values = values[:, :, : c - 1]
        c -= 1
    if c == 1:
        if not gray_ok:
            raise ImageReadError(f"{path}: greyscale image, but the model needs colour (RGB); pass "
                                 f"--gray-ok (gray_ok=True) to replicate the grey channel to R, G, B "
                                 f"(expect poor spectra)")
        notes.append("greyscale image replicated to R, G, B (--gray-ok)")
        return np.repeat(values, 3, axis=2)
    if c != 3:
        raise ImageReadError(f"{path}: expected 3 colour channels, found {c}")
    return values


# ------------------------------------------------------------------ cubes
def write_cube(out: str | os.PathLike, cube: np.ndarray, attrs: dict[str, Any] | None = None) -> Path:
    """Write ``cube`` ``(31, H, W)`` float32 as ``.h5``, ``.npy`` or ``.tif``, atomically.

    * ``.h5``: the dataset ``hsi`` (gzip, attributes ``layout`` and ``value_scale``), the
      dataset ``wavelengths`` (nm) and ``attrs`` plus ``inr_lib_version`` as file attributes.
    * ``.npy``: the array, and the sidecar ``<name>.npy.json`` (:func:`cube_sidecar`): layout,
      wavelengths, ``attrs``, ``inr_lib_version`` and the SHA-256 of the ``.npy`` file.
    * ``.tif``: float32, one page per band (deflate-compressed), readable with
      ``tifffile.imread`` as ``(31, H, W)``; the description holds the wavelengths (nm), the
      layout, ``attrs`` and ``inr_lib_version`` as JSON (``TiffFile.shaped_metadata``).
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in CUBE_SUFFIXES:
        raise ValueError(f"{out}: expected a file name ending in {', '.join(CUBE_SUFFIXES)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    attrs = dict(attrs or {})
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, cube)
        data = buf.getvalue()
        atomic_write(out, lambda f: f.write(data))
        meta = {"written_by": SIDECAR_MARKER, "file": out.name,
                "sha256": hashlib.sha256(data).hexdigest(), **_cube_metadata(cube, attrs)}
        atomic_write(cube_sidecar(out), lambda f: f.write(json.dumps(meta, indent=1).encode()))
        return out
    if suffix in (".tif", ".tiff"):
        return atomic_write(out, lambda f: _write_tiff(f, cube, attrs))
    return atomic_write(out, lambda f: _write_h5(f, cube, attrs))


def cube_sidecar(npy: str | os.PathLike) -> Path:
    """The sidecar of a ``.npy`` cube: ``cube.npy`` -> ``cube.npy.json``."""
    npy = Path(npy)
    return npy.with_name(npy.name + ".json")


def npy_written_by_inr_lib(path: str | os.PathLike) -> bool:
    """Whether the ``.npy`` file ``path`` is a cube :func:`write_cube` wrote, unchanged since:
    its sidecar exists, carries the library's mark and records the file's SHA-256."""
    try:
        meta = json.loads(cube_sidecar(path).read_text())
        return (isinstance(meta, dict) and meta.get("written_by") == SIDECAR_MARKER
                and meta.get("sha256") == sha256_file(path))
    except (OSError, ValueError):
        return False


def _cube_metadata(cube: np.ndarray, attrs: dict[str, Any]) -> dict[str, Any]:
    """What a cube file records about itself besides the values (JSON-ready)."""
    return {"layout": "(bands, height, width)", "shape": list(cube.shape), "dtype": str(cube.dtype),
            "value_scale": "[0, 1]", "wavelengths_nm": [float(w) for w in WAVELENGTHS],
            **{k: str(v) for k, v in attrs.items()}, "inr_lib_version": __version__}


def _write_tiff(f: Any, cube: np.ndarray, attrs: dict[str, Any]) -> None:
    meta = {"axes": "ZYX", **_cube_metadata(cube, attrs)}
    del meta["shape"]      # tifffile writes the shape itself
    buf = io.BytesIO()   # tifffile reads the .name of a file object, an int for atomic_write's
    tifffile.imwrite(buf, np.asarray(cube, dtype=np.float32), photometric="minisblack",
                     compression="zlib", software=TIFF_MARKER, metadata=meta)
    f.write(buf.getbuffer())


def _write_h5(f, cube: np.ndarray, attrs: dict) -> None:
    with h5py.File(f, "w") as h5:
        ds = h5.create_dataset("hsi", data=cube, compression="gzip", compression_opts=4,
                               chunks=(1, min(256, cube.shape[1]), min(256, cube.shape[2])))
        ds.attrs["layout"] = "(bands, height, width)"
        ds.attrs["value_scale"] = "[0, 1]"
        h5.create_dataset("wavelengths", data=np.asarray(WAVELENGTHS, dtype=np.float64))
        for k, v in {**attrs, "inr_lib_version": __version__}.items():
            h5.attrs[k] = v


def write_preview(path: str | os.PathLike, rgb: np.ndarray, cube: np.ndarray) -> Path:
    """Side by side as a PNG: the input ``rgb`` ``(3, H, W)`` and an sRGB rendering of ``cube``
    ``(31, H, W)`` (:func:`inr_lib.spectral.srgb_preview`)."""
    left = np.clip(rgb.transpose(1, 2, 0), 0, 1)
    right = srgb_preview(cube)
    gap = np.ones((left.shape[0], max(2, left.shape[1] // 50), 3), dtype=np.float32)
    img = (np.concatenate([left, gap, right], axis=1) * 255 + 0.5).astype(np.uint8)

    info = PngInfo()
    info.add_text("Software", PNG_MARKER)
    return atomic_write(path, lambda f: Image.fromarray(img).save(f, format="PNG", pnginfo=info))
