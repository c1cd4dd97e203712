"""Issue 15, input images (``reconstruct --rgb``): 16-bit RGB TIFF read exactly, EXIF
orientation applied the same way for PNG and JPEG, clear errors for folders and huge images."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image, ImageOps

from inr_lib.files import images as io
from inr_lib.files.images import ImageReadError, read_image


def write_tiff16(path, rgb, big_endian=False, rows_per_strip=None):
    """An uncompressed chunky 16-bit RGB TIFF (one or several strips), written by hand: Pillow
    cannot write one."""
    h, w, _ = rgb.shape
    e = ">" if big_endian else "<"
    rps = rows_per_strip or h
    n = (h + rps - 1) // rps
    sizes = [min(rps, h - i * rps) * w * 6 for i in range(n)]
    n_entries = 10
    bps_at = 8 + 2 + 12 * n_entries + 4
    arrays_at = bps_at + 6
    data_at = arrays_at + (8 * n if n > 1 else 0)
    offsets = [data_at + sum(sizes[:i]) for i in range(n)]
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 3, bps_at), (259, 3, 1, 1),
               (262, 3, 1, 2), (273, 4, n, arrays_at if n > 1 else offsets[0]), (277, 3, 1, 3),
               (278, 4, 1, rps), (279, 4, n, arrays_at + 4 * n if n > 1 else sizes[0]),
               (284, 3, 1, 1)]
    out = bytearray((b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8))
    out += struct.pack(e + "H", n_entries)
    for tag, typ, count, value in entries:
        out += struct.pack(e + "HHIHH", tag, typ, count, value, 0) if typ == 3 and count == 1 \
            else struct.pack(e + "HHII", tag, typ, count, value)
    out += struct.pack(e + "I", 0) + struct.pack(e + "3H", 16, 16, 16)
    if n > 1:
        out += struct.pack(e + f"{n}I", *offsets) + struct.pack(e + f"{n}I", *sizes)
    assert len(out) == data_at
    path.write_bytes(bytes(out) + rgb.astype(e + "u2").tobytes())
    return path


@pytest.mark.parametrize("big_endian, rows", [(False, None), (True, 2)])
def test_16bit_rgb_tiff_is_read_exactly(tmp_path, big_endian, rows):
    v = np.random.default_rng(0).integers(0, 65536, (5, 7, 3)).astype(np.uint16)
    path = write_tiff16(tmp_path / "scan.tif", v, big_endian, rows)
    assert Image.open(path).mode == "RGB"                 # Pillow alone gives 8 bits
    rgb, notes = read_image(path)
    assert notes == [] and rgb.dtype == np.float32
    assert np.array_equal(rgb, (v.transpose(2, 0, 1) / 65535).astype(np.float32))


def test_8bit_tiff_still_reads(tmp_path):
    v = np.random.default_rng(1).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    Image.fromarray(v).save(tmp_path / "a.tif")
    rgb, _ = read_image(tmp_path / "a.tif")
    assert np.array_equal(rgb, (v.transpose(2, 0, 1) / 255).astype(np.float32))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_for_png_exactly_as_image_viewers_do(tmp_path, orientation):
    v = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    im = Image.fromarray(v)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "p.png", exif=exif)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "p.png")))
    rgb, notes = read_image(tmp_path / "p.png")
    assert np.array_equal(rgb, (upright.transpose(2, 0, 1) / 255).astype(np.float32))
    assert bool(notes) == (orientation != 1)


def test_png_and_jpeg_of_one_photo_come_out_the_same_way_up(tmp_path):
    v = np.zeros((10, 20, 3), np.uint8)
    v[:5] = 255                                   # top half white: a landscape stored sideways
    for name in ("p.png", "p.jpg"):
        im = Image.fromarray(v)
        exif = im.getexif()
        exif[0x0112] = 6
        im.save(tmp_path / name, exif=exif, **({"quality": 95} if name.endswith("jpg") else {}))
    png, _ = read_image(tmp_path / "p.png")
    jpg, _ = read_image(tmp_path / "p.jpg")
    assert png.shape == jpg.shape == (3, 20, 10)
    assert np.abs(png - jpg).max() < 0.1


def test_a_folder_given_as_rgb_says_so(tmp_path):
    with pytest.raises(ImageReadError, match=r".* is a folder; expected an image file"):
        read_image(tmp_path)


def test_images_above_pillows_bomb_limit_are_read(tmp_path, monkeypatch):
    v = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(v).save(tmp_path / "big.jpg", quality=100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)   # 600 px > 2 x limit: a "bomb"
    rgb, _ = read_image(tmp_path / "big.jpg")
    assert rgb.shape == (3, 20, 30)
    assert Image.MAX_IMAGE_PIXELS == 100                   # the global limit is restored


def test_an_image_too_large_for_memory_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(ImageReadError, match=r"1000000x1000000 pixels need about .* GiB.*--size H W"):
        io._check_image_memory(tmp_path / "huge.jpg", 10**6, 10**6)
