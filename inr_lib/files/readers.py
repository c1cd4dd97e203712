"""Low-level readers shared by the dataset loaders: exact PNG decoding, RGB images (and their
size check against a spectral cube), MAT files.

Nothing here knows about a particular dataset. Errors are :class:`DataFormatError` (a
``ValueError``) with the file name, what was expected and what was found.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

import h5py
import numpy as np
import png
from PIL import Image, UnidentifiedImageError

__all__ = ["DataFormatError", "TooLargeError", "check_memory", "read_png", "read_rgb_image", "check_rgb_size",
           "read_paired_rgb", "MatData", "read_mat"]


PathLike = Union[str, "os.PathLike[str]"]
"""A file or folder path: a ``str`` or a :class:`pathlib.Path`."""


class DataFormatError(ValueError):
    """A data file exists but cannot be used as it is (wrong layout, values, or corrupt)."""


class TooLargeError(DataFormatError):
    """A file declares more data than this machine's free memory holds (not a damaged file)."""


def available_memory() -> int | None:
    """Bytes of memory free now (None where the platform does not say)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(path: PathLike, need: int, what: str) -> None:
    """Raise :class:`TooLargeError` before allocating when ``need`` bytes (what ``path``'s
    header declares for ``what``) exceed the free memory: sizes are checked before memory."""
    free = available_memory()
    if free is not None and need > free:
        raise TooLargeError(too_large(path, need, what, free))


def _bytes(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.2f} MB"


def too_large(path: PathLike, need: int, what: str, free: int | None = None) -> str:
    """The one line for a file too large for this machine (also for a MemoryError)."""
    have = "" if free is None else f", {_bytes(free)} free"
    return (f"{path}: {what} is too large for this machine ({_bytes(need)} needed{have}); "
            f"the file is not damaged: use a machine with more memory, or a smaller file")


# --------------------------------------------------------------------------------------------
# PNG


def _png_header(path: Path, data: bytes):
    """Check the whole chunk stream (CRCs, IEND present), then return a Reader past IHDR."""
    try:
        last = None
        for last, _ in png.Reader(bytes=data).chunks():  # noqa: B007 (read after the loop)
            pass
        if last != b"IEND":
            raise png.FormatError("no IEND chunk")
        reader = png.Reader(bytes=data)
        reader.preamble()
    except (png.Error, OSError, EOFError, ValueError) as e:
        detail = str(e) if str(e).startswith(type(e).__name__) else f"{type(e).__name__}: {e}"
        raise DataFormatError(
            f"{path}: not a readable PNG file ({detail}); the file is "
            "truncated or corrupt: download or extract it again"
        ) from None
    return reader


def _read_png_pillow(data: bytes, bitdepth: int):
    """Fast exact path for plain 8/16-bit greyscale; None if Pillow's mode is unexpected."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        mode = im.mode
        arr = np.asarray(im)
    expected = {8: ("L",), 16: ("I;16", "I;16B", "I;16L", "I")}[bitdepth]
    if mode not in expected or arr.ndim != 2:
        return None
    if bitdepth == 16:
        if arr.min() < 0 or arr.max() > 65535:
            return None
        arr = arr.astype(np.uint16, copy=False)
    return arr[:, :, None]


def _read_png_pypng(path: Path, reader):
    width, height, rows, _info = reader.read()  # raw samples; sBIT is *not* applied
    dtype = np.uint16 if reader.bitdepth > 8 else np.uint8
    planes = 1 if reader.colormap else reader.planes
    out = np.empty((height, width * planes), dtype=dtype)
    n = 0
    for n, row in enumerate(rows, start=1):
        if n > height or len(row) != width * planes:
            raise DataFormatError(f"{path}: row {n} has {len(row)} values, expected {width * planes}")
        out[n - 1] = row
    if n != height:
        raise DataFormatError(
            f"{path}: PNG data ends after {n} of {height} rows (truncated file); download "
            "or extract it again"
        )
    out = out.reshape(height, width, planes)
    bitdepth = reader.bitdepth
    if reader.colormap:  # palette entries are 8-bit colours
        palette = np.asarray(reader.palette(), dtype=np.uint8)
        if out.max() >= len(palette):
            raise DataFormatError(f"{path}: palette index {out.max()} beyond {len(palette)} entries")
        out, bitdepth = palette[out[:, :, 0]], 8
    return out, bitdepth


def read_png(path: PathLike) -> tuple[np.ndarray, int]:
    """Decode a PNG exactly, at its own bit depth.

    Returns:
        ``(values, bitdepth)``: ``values`` is an unsigned integer array ``(H, W, C)`` with
        ``C`` = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA), holding the stored samples
        unchanged (0 .. 2**bitdepth - 1); palette images are expanded to their 8-bit RGB(A)
        colours. Divide by ``2**bitdepth - 1`` for [0, 1].

    The ``sBIT`` chunk is ignored on purpose: the PNG specification requires samples to be
    scaled to the full range of the stored bit depth, so ``v / (2**bitdepth - 1)`` is the
    right normalisation (pypng's ``asDirect`` would instead shift the low bits away).

    Plain 8/16-bit greyscale (the common CAVE case) is decoded with Pillow, which is exact for
    those modes and ~10x faster; everything else goes through pypng, because Pillow reduces
    16-bit RGB(A) and grey+alpha PNGs to 8 bits.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataFormatError(f"{path}: cannot read file ({e})") from None
    reader = _png_header(path, data)
    planes = 3 if reader.colormap else reader.planes
    need = reader.height * reader.width * planes * (2 if reader.bitdepth > 8 else 1)
    check_memory(path, need, f"the {reader.width}x{reader.height} image")
    try:
        if reader.color_type == 0 and reader.bitdepth in (8, 16) and not reader.trns:
            arr = _read_png_pillow(data, reader.bitdepth)
            if arr is not None:
                if arr.shape[:2] != (reader.height, reader.width):
                    raise DataFormatError(f"{path}: decoded size differs from its header")
                return arr, reader.bitdepth
            reader = _png_header(path, data)
        return _read_png_pypng(path, reader)
    except DataFormatError:
        raise
    except MemoryError:
        raise TooLargeError(too_large(path, need, f"the {reader.width}x{reader.height} image")) from None
    except Exception as e:  # png.Error, zlib.error, OSError from Pillow's decoder, ...
        raise DataFormatError(
            f"{path}: PNG data could not be decoded ({type(e).__name__}: {e}); the file is "
            "truncated or corrupt: download or extract it again"
        ) from None


# --------------------------------------------------------------------------------------------
# RGB images


def _to_rgb(values: np.ndarray, maxval: int, path: Path) -> np.ndarray:
    """(H, W, C) integer -> float32 (3, H, W) in [0, 1]; grey is replicated, alpha dropped."""
    c = values.shape[2]
    if c in (1, 2):
        rgb = np.repeat(values[:, :, :1], 3, axis=2)
    elif c in (3, 4):
        rgb = values[:, :, :3]
    else:
        raise DataFormatError(f"{path}: expected 1-4 channels, found {c}")
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)).astype(np.float32) / np.float32(maxval)


def read_rgb_image(path: PathLike) -> np.ndarray:
    """Read an RGB image file (BMP, PNG, JPEG, ...) as float32 ``(3, H, W)`` in [0, 1].

    PNGs are decoded exactly at their bit depth (16-bit -> v / 65535); other formats through
    Pillow (8-bit -> v / 255). Grey images are replicated to 3 channels, alpha is dropped,
    palette images are expanded.
    """
    path = Path(path)
    if path.suffix.lower() == ".png":
        values, bitdepth = read_png(path)
        return _to_rgb(values, 2**bitdepth - 1, path)

    try:
        with Image.open(path) as opened:
            opened.load()
            im: Image.Image = opened
            if im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            if im.mode not in ("RGB", "RGBA", "L", "LA"):
                raise DataFormatError(
                    f"{path}: expected an 8-bit RGB or grey image, found Pillow mode {im.mode!r}"
                )
            values = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataFormatError(
            f"{path}: not a readable image ({type(e).__name__}: {e}); the file is truncated "
            "or corrupt"
        ) from None
    if values.ndim == 2:
        values = values[:, :, None]
    return _to_rgb(values, 255, path)


def check_rgb_size(rgb: np.ndarray, hsi: np.ndarray, rgb_path: PathLike,
                   what: str = "the spectra", advice: str = "") -> None:
    """Raise :class:`DataFormatError` unless ``rgb`` ``(3, H, W)`` and the spectral cube ``hsi``
    ``(bands, H, W)`` have one size; the message names ``rgb_path``, calls the cube ``what``
    (e.g. ``"the bands"``) and ends with ``advice`` (what to do)."""
    if rgb.shape[1:] != hsi.shape[1:]:
        raise DataFormatError(
            f"{rgb_path}: RGB image is {rgb.shape[2]}x{rgb.shape[1]} (WxH) but {what} are "
            f"{hsi.shape[2]}x{hsi.shape[1]}; expected the same size{advice}"
        )


def _is_grey_file(path: PathLike) -> bool:
    """Whether the image file stores one grey channel (with or without alpha)."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        return read_png(path)[0].shape[2] in (1, 2)

    with Image.open(path) as im:
        return im.mode in ("L", "LA", "1", "I", "I;16")


def read_paired_rgb(rgb_path: PathLike | None, hsi: np.ndarray, what: str = "the spectra",
                    advice: str = "") -> np.ndarray | None:
    """The RGB image paired with a spectral cube, checked to have the cube's size.

    Args:
        rgb_path: the image (any format :func:`read_rgb_image` reads), or ``None``.
        hsi: the spectral cube ``(bands, H, W)``; only its ``H, W`` are used.
        what, advice: wording of the size error (see :func:`check_rgb_size`).

    Returns:
        float32 ``(3, H, W)`` in [0, 1], or ``None`` when ``rgb_path`` is ``None``.

    Raises:
        DataFormatError: the image is unreadable or its size is not ``H x W``.
    """
    if rgb_path is None:
        return None
    rgb = read_rgb_image(rgb_path)
    if np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[1], rgb[2]) and _is_grey_file(rgb_path):
        raise DataFormatError(f"{rgb_path}: is a greyscale image, but a scene's RGB image must have "
                              f"three colour channels; replace it with the scene's colour image")
    check_rgb_size(rgb, hsi, rgb_path, what, advice)
    return rgb


# --------------------------------------------------------------------------------------------
# MATLAB files


@dataclass
class MatData:
    """Variables read from a MAT file.

    Attributes:
        path: the file.
        format: ``"v7.3"`` (HDF5, read with h5py) or ``"v5"`` (read with scipy.io.loadmat).
        keys: names of all numeric variables in the file (for error messages).
        arrays: the requested variables that exist, **in MATLAB axis order** (an array MATLAB
            shows as H x W x 31 is ``(H, W, 31)`` here for both formats: h5py's reversed
            ``(31, W, H)`` view is transposed back).
    """

    path: Path
    format: str
    keys: list
    arrays: dict


def read_mat(path: PathLike, wanted: Iterable[str]) -> MatData:
    """Read the variables named in ``wanted`` (those present) from a v7.3 or v5 MAT file."""
    path = Path(path)
    wanted = list(wanted)
    if not path.is_file():
        raise FileNotFoundError(f"MAT file not found: {path}")
    if path.stat().st_size == 0:
        raise DataFormatError(f"{path} is empty (0 bytes), not a MAT file: an interrupted "
                              f"download or copy; copy it again")

    if h5py.is_hdf5(str(path)):
        try:
            return _read_mat_v73(path, wanted)
        except (OSError, KeyError, RuntimeError) as e:   # h5py's errors do not name the file
            raise DataFormatError(f"{path}: damaged or truncated MAT v7.3 (HDF5) file "
                                  f"({' '.join(str(e).split())}); copy or save it again") from None
    return _read_mat_v5(path, wanted)


def _read_mat_v73(path: Path, wanted: list) -> MatData:
    with h5py.File(path, "r") as f:
        keys = [k for k in f.keys() if not k.startswith("#") and isinstance(f[k], h5py.Dataset)]
        arrays = {}
        for k in wanted:
            if k in keys:
                ds = f[k]
                check_memory(path, int(np.prod(ds.shape, dtype=np.float64)) * ds.dtype.itemsize,
                             f"variable {k!r} {tuple(reversed(ds.shape))}")
                try:
                    a = np.asarray(ds)
                except MemoryError:
                    raise TooLargeError(too_large(path, int(np.prod(ds.shape, dtype=np.float64))
                                                  * ds.dtype.itemsize, f"variable {k!r}")) from None
                if a.dtype.kind not in "uif":
                    raise DataFormatError(
                        f"{path}: variable {k!r} has non-numeric type {a.dtype}; expected "
                        "a numeric array"
                    )
                arrays[k] = a.T  # reverse h5py's axis order back to MATLAB's
    return MatData(path, "v7.3", keys, arrays)


_MAT_BYTES = {"double": 8, "single": 4, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2,
              "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "logical": 1}


def _read_mat_v5(path: Path, wanted: list) -> MatData:
    import scipy.io

    need = 0
    try:
        found = scipy.io.whosmat(str(path))
        keys = [name for name, _shape, _cls in found]
        present = [k for k in wanted if k in keys]
        for name, shape, cls in found:
            if name in present:
                size = int(np.prod(shape, dtype=np.float64)) * _MAT_BYTES.get(cls, 8)
                check_memory(path, size, f"variable {name!r} {tuple(shape)}")
                need += size
        data = scipy.io.loadmat(str(path), variable_names=present) if present else {}
    except TooLargeError:
        raise
    except MemoryError:
        raise TooLargeError(too_large(path, need, f"the variables {present}")) from None
    except (ValueError, NotImplementedError, OSError, TypeError, scipy.io.matlab.MatReadError) as e:
        raise DataFormatError(
            f"{path}: not a readable MAT file (neither HDF5/v7.3 nor v5: {e}); save it with "
            "MATLAB's save(..., '-v7.3') or '-v7'"
        ) from None
    arrays = {}
    for k in present:
        a = np.asarray(data[k])
        if a.dtype.kind not in "uif":
            raise DataFormatError(
                f"{path}: variable {k!r} has non-numeric type {a.dtype}; expected a numeric array"
            )
        arrays[k] = a
    return MatData(path, "v5", keys, arrays)
