"""Images in and cubes out: reading the user's RGB images and writing spectral cubes
(every file is written through :func:`inr_lib.files.atomic.atomic_write`).

* :func:`read_image`: an 8/16-bit PNG, JPEG, BMP, TIFF, ... as ``(3, H, W)`` float32 in [0, 1];
* :func:`write_cube`: a ``(31, H, W)`` cube as ``.npy`` or ``.h5`` (dataset ``hsi``);
* :func:`write_preview`: the input RGB beside an sRGB rendering of the cube (PNG).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._version import __version__
from .atomic import atomic_write, sha256_file

__all__ = ["ImageReadError", "read_image", "write_cube", "write_preview", "CUBE_SUFFIXES", "PNG_MARKER"]

CUBE_SUFFIXES = (".h5", ".hdf5", ".npy")
#: value of the ``Software`` text chunk of the preview PNGs the library writes (so that a
#: re-run may replace them, :mod:`inr_lib.files.outputs`)
PNG_MARKER = "inr_lib preview"


class ImageReadError(ValueError):
    """An input image that cannot be used (the message names the file and what to do)."""


# ------------------------------------------------------------------ images
def read_image(path: str | os.PathLike, gray_ok: bool = False) -> tuple[np.ndarray, list]:
    """Read an 8/16-bit PNG, JPEG, BMP, TIFF, ... as ``(3, H, W)`` float32 in [0, 1].

    PNGs and uncompressed 16-bit RGB TIFFs are decoded exactly at their bit depth (16 bits
    stay 16 bits). An alpha channel is dropped (with a note). Images with an EXIF orientation
    tag (cameras, phones; PNG included) are turned upright, as image viewers show them (with a
    note). Any size is read if it fits in memory (Pillow's decompression-bomb limit is replaced
    by a memory check). Greyscale images are refused unless ``gray_ok``, in which case the
    grey channel is replicated to R, G and B (the model was trained on colour images, so
    expect a poor spectrum: a grey image carries no colour information).

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
        from .readers import read_png

        values, depth = read_png(path)
        return values, 2 ** depth - 1, _exif_orientation(path)
    from PIL import UnidentifiedImageError

    try:
        with _open_any_size(path) as im:
            _check_image_memory(path, im.width, im.height)
            orientation = im.getexif().get(0x0112, 1)   # EXIF Orientation (cameras, phones)
            sixteen = _read_tiff16(path, im)
            if sixteen is not None:
                return sixteen, 65535, orientation
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
    import warnings

    from PIL import Image

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
        raise ImageReadError(f"{path}: {width}x{height} pixels need about {need / 2**30:.1f} GiB "
                             f"for the cube, more than the {avail / 2**30:.1f} GiB of free memory; "
                             f"downscale it with --size H W")


def _read_tiff16(path: Path, im):
    """The samples of an uncompressed 16-bit RGB(A) TIFF as ``(H, W, C)`` uint16 (Pillow
    would reduce them to 8 bits); None for any other image. A compressed 16-bit RGB TIFF is
    refused rather than read inexactly."""
    if im.format != "TIFF" or im.mode not in ("RGB", "RGBA"):
        return None
    bits = im.tag_v2.get(258)
    if not bits or max(bits if isinstance(bits, tuple) else (bits,)) != 16:
        return None
    tiles = im.tile
    ok = all(t[0] == "raw" and t[3][0] in ("RGB;16L", "RGB;16B", "RGBA;16L", "RGBA;16B")
             and t[3][1] in (0, None) and t[3][2] in (1, None) for t in tiles)
    if not ok:
        raise ImageReadError(f"{path}: a compressed 16-bit RGB TIFF cannot be read exactly here; "
                             f"save it as a 16-bit PNG or an uncompressed TIFF")
    c = 4 if im.mode == "RGBA" else 3
    out = np.empty((im.height, im.width, c), dtype=np.uint16)
    with open(path, "rb") as f:
        for _, (x0, y0, x1, y1), offset, (rawmode, *_) in tiles:
            f.seek(offset)
            n = (x1 - x0) * (y1 - y0) * c
            block = np.frombuffer(f.read(2 * n), dtype="<u2" if rawmode.endswith("L") else ">u2")
            if block.size != n:
                raise ImageReadError(f"{path}: truncated TIFF (a strip ends early)")
            out[y0:y1, x0:x1] = block.reshape(y1 - y0, x1 - x0, c)
    return out


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
def write_cube(out: str | os.PathLike, cube: np.ndarray, attrs: dict | None = None) -> Path:
    """Write ``cube`` ``(31, H, W)`` float32 as ``.npy`` or ``.h5``, atomically.

    The HDF5 file holds the dataset ``hsi`` (gzip, attributes ``layout`` and ``value_scale``),
    the dataset ``wavelengths`` (nm) and ``attrs`` plus ``inr_lib_version`` as file attributes.
    """
    out = Path(out)
    if out.suffix.lower() not in CUBE_SUFFIXES:
        raise ValueError(f"{out}: expected a file name ending in {', '.join(CUBE_SUFFIXES)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        return atomic_write(out, lambda f: np.save(f, cube))
    return atomic_write(out, lambda f: _write_h5(f, cube, attrs or {}))


def _write_h5(f, cube: np.ndarray, attrs: dict) -> None:
    import h5py

    from ..spectral import WAVELENGTHS

    with h5py.File(f, "w") as h5:
        ds = h5.create_dataset("hsi", data=cube, compression="gzip", compression_opts=4,
                               chunks=(1, min(256, cube.shape[1]), min(256, cube.shape[2])))
        ds.attrs["layout"] = "(bands, height, width)"
        ds.attrs["value_scale"] = "[0, 1]"
        h5.create_dataset("wavelengths", data=np.asarray(WAVELENGTHS, dtype=np.float64))
        for k, v in {**attrs, "inr_lib_version": __version__}.items():
            h5.attrs[k] = v


def write_preview(path: str | os.PathLike, rgb: np.ndarray, cube: np.ndarray,
                  cube_file: str | os.PathLike | None = None) -> Path:
    """Side by side as a PNG: the input ``rgb`` ``(3, H, W)`` and an sRGB rendering of ``cube``
    ``(31, H, W)`` (:func:`inr_lib.spectral.srgb_preview`). With ``cube_file`` (the cube just
    written) the PNG records its name and SHA-256 (text ``inr_lib-cube``), the proof that a
    ``.npy`` (which has no room for a marker) was written by inr_lib."""
    from PIL import Image

    from ..spectral import srgb_preview

    left = np.clip(rgb.transpose(1, 2, 0), 0, 1)
    right = srgb_preview(cube)
    gap = np.ones((left.shape[0], max(2, left.shape[1] // 50), 3), dtype=np.float32)
    img = (np.concatenate([left, gap, right], axis=1) * 255 + 0.5).astype(np.uint8)
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", PNG_MARKER)
    if cube_file is not None:
        info.add_text("inr_lib-cube", f"{Path(cube_file).name} sha256 {sha256_file(cube_file)}")
    return atomic_write(path, lambda f: Image.fromarray(img).save(f, format="PNG", pnginfo=info))
