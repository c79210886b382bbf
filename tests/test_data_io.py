"""read_image / write_image: every documented rule on a corpus of awkward files made here."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from ibmdn.data.io import read_image, read_image_info, write_image
from ibmdn.errors import BadImageError

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------------------------ file builders


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_rows(raw: np.ndarray, bpp: int, filters) -> bytes:
    """PNG-filter ``raw`` (H x stride bytes) with per-row filter types (encoder side)."""
    out = bytearray()
    prev = np.zeros(raw.shape[1], np.int64)
    for y, row in enumerate(raw.astype(np.int64)):
        f = filters[y % len(filters)]
        left = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        if f == 0:
            enc = row
        elif f == 1:
            enc = row - left
        elif f == 2:
            enc = row - prev
        elif f == 3:
            enc = row - (left + prev) // 2
        else:
            enc = row - np.array([_paeth(a, b, c) for a, b, c in zip(left, prev, upleft)])
        out += bytes([f]) + bytes((enc % 256).astype(np.uint8))
        prev = row
    return bytes(out)


def png16(path, a: np.ndarray, filters=(0, 1, 2, 3, 4), interlace=False) -> None:
    """Write a 16-bit PNG (colour type from the channel count) with the given row filters."""
    h, w = a.shape[:2]
    c = 1 if a.ndim == 2 else a.shape[2]
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    a = a.reshape(h, w, c)
    if interlace:
        passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                  (0, 1, 1, 2))
        data = b""
        for x0, y0, dx, dy in passes:
            sub = a[y0::dy, x0::dx]
            if sub.size:
                rows = sub.astype(">u2").view(np.uint8).reshape(sub.shape[0], -1)
                data += _filter_rows(rows, 2 * c, filters)
    else:
        data = _filter_rows(a.astype(">u2").view(np.uint8).reshape(h, -1), 2 * c, filters)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 1 if interlace else 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(data))
                + _chunk(b"IEND", b""))


def png_header_only(path, w: int, h: int) -> None:
    """A PNG whose header announces w x h RGB pixels, with a tiny (wrong) body."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
                + _chunk(b"IEND", b""))


def rgb(h=24, w=32) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def exp8(v16: np.ndarray) -> np.ndarray:
    return np.floor(v16.astype(np.float64) / 257 + 0.5).astype(np.uint8)


# -------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".ppm", ".webp"])
def test_lossless_formats_round_trip(tmp_path, ext):
    a = rgb()
    Image.fromarray(a).save(tmp_path / f"x{ext}", **({"lossless": True} if ext == ".webp" else {}))
    b = read_image(tmp_path / f"x{ext}")
    assert b.dtype == np.uint8 and b.shape == a.shape and b.flags.writeable
    np.testing.assert_array_equal(a, b)


def test_jpeg_reads_as_rgb(tmp_path):
    Image.fromarray(rgb()).save(tmp_path / "x.jpg", quality=95)
    assert read_image(tmp_path / "x.jpg").shape == (24, 32, 3)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    g = RNG.integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(g).save(tmp_path / "g.png")
    Image.fromarray(g > 128).save(tmp_path / "b.png")  # mode "1"
    a = read_image(tmp_path / "g.png")
    assert a.shape == (20, 30, 3) and (a == g[:, :, None]).all()
    b = read_image(tmp_path / "b.png")
    assert set(np.unique(b)) <= {0, 255} and (b[..., 0] == np.where(g > 128, 255, 0)).all()


def test_palette_and_palette_transparency(tmp_path):
    a = rgb()
    Image.fromarray(a).quantize(16).save(tmp_path / "p.png")
    im = Image.open(tmp_path / "p.png")
    assert im.mode == "P"
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), np.asarray(im.convert("RGB")))
    # palette index 0 transparent -> white
    p = Image.new("P", (4, 4), 0)
    p.putpalette([10, 20, 30] + [200, 100, 50] * 255)
    p.putpixel((1, 1), 1)
    p.save(tmp_path / "pt.png", transparency=0)
    out = read_image(tmp_path / "pt.png")
    assert (out[0, 0] == 255).all() and tuple(out[1, 1]) == (200, 100, 50)
    assert read_image_info(tmp_path / "pt.png").has_alpha


def test_rgba_composited_on_white(tmp_path):
    a = np.zeros((2, 3, 4), np.uint8)
    a[0, 0] = (10, 20, 30, 0)  # transparent -> white
    a[0, 1] = (10, 20, 30, 255)  # opaque -> itself
    a[0, 2] = (0, 100, 200, 128)  # half: c * a + 255 * (1 - a)
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (10, 20, 30)
    al = 128 / 255
    assert tuple(out[0, 2]) == tuple(int(np.floor(c * al + 255 * (1 - al) + 0.5)) for c in (0, 100, 200))
    la = Image.fromarray(a[..., [0, 3]].copy(), "LA")
    la.save(tmp_path / "la.png")
    assert tuple(read_image(tmp_path / "la.png")[0, 0]) == (255, 255, 255)


@pytest.mark.parametrize("channels", [3, 4, 2])
@pytest.mark.parametrize("interlace", [False, True])
def test_16bit_png_scaled_by_257_with_every_filter(tmp_path, channels, interlace):
    v = RNG.integers(0, 65536, (13, 11, channels), dtype=np.uint16)
    v[0, 0, :] = 65535
    v[0, 1, :] = 128  # 128/257 < .5 -> 0 ; Pillow's high byte would also give 0
    v[0, 2, :] = 129 + 256  # 385/257 = 1.498 -> 1
    if channels in (2, 4):
        v[..., -1] = 65535  # opaque, so the colour rule is seen alone
    png16(tmp_path / "x.png", v, interlace=interlace)
    info = read_image_info(tmp_path / "x.png")
    assert info.bits == 16 and info.channels == channels
    out = read_image(tmp_path / "x.png")
    exp = exp8(v[..., :3] if channels >= 3 else np.repeat(v[..., :1], 3, axis=2))
    np.testing.assert_array_equal(out, exp)


def test_16bit_differs_from_pillow_truncation(tmp_path):
    v = np.full((4, 4, 3), 200 * 256 + 255, np.uint16)  # high byte 200, round(v/257) = 200 (51455/257=200.2)
    v[0, 0] = 65535 - 200  # high byte 255 but round(65335/257)=254
    png16(tmp_path / "x.png", v, filters=(0,))
    out = read_image(tmp_path / "x.png")
    assert out[0, 0, 0] == 254 and np.asarray(Image.open(tmp_path / "x.png"))[0, 0, 0] == 255


def test_16bit_gray_png_and_tiff(tmp_path):
    import tifffile

    g = RNG.integers(0, 65536, (9, 7), dtype=np.uint16)
    Image.fromarray(g).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png")[..., 0], exp8(g))
    c = RNG.integers(0, 65536, (9, 7, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", c, photometric="rgb")
    assert read_image_info(tmp_path / "c.tif").bits == 16
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif"), exp8(c))


def test_16bit_rgba_alpha_on_white(tmp_path):
    v = np.zeros((1, 2, 4), np.uint16)
    v[0, 0] = (0, 0, 0, 0)
    v[0, 1] = (65535, 0, 0, 32768)
    png16(tmp_path / "a.png", v)
    out = read_image(tmp_path / "a.png")
    assert tuple(out[0, 0]) == (255, 255, 255)
    al = 32768 / 65535
    assert tuple(out[0, 1]) == (255, int(np.floor(255 * (1 - al) + 0.5)), int(np.floor(255 * (1 - al) + 0.5)))


def test_float_tiff_assumed_unit_range(tmp_path):
    f = np.array([[0.0, 0.5, 1.0, 2.0]], np.float32)
    Image.fromarray(f, "F").save(tmp_path / "f.tif")
    out = read_image(tmp_path / "f.tif")
    assert list(out[0, :, 0]) == [0, 128, 255, 255]


def test_cmyk_jpeg_converted(tmp_path):
    cmyk = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red in naive CMYK
    cmyk.save(tmp_path / "c.jpg", quality=100)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    out = read_image(tmp_path / "c.jpg")
    assert out.shape == (8, 16, 3)
    r, g, b = out[4, 8].astype(int)
    assert r > 240 and g < 15 and b < 15


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    a = rgb(10, 16)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.png", exif=exif)  # lossless, so the pixels can be compared exactly
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")).convert("RGB"))
    out = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(out, expected)
    assert read_image_info(tmp_path / "o.png").size == out.shape[:2]


def test_exif_rotated_jpeg(tmp_path):
    im = Image.fromarray(rgb(10, 16))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    assert read_image(tmp_path / "r.jpg").shape == (16, 10, 3)


def test_truncated_png_rejected(tmp_path):
    Image.fromarray(rgb(64, 64)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError, match=r"t\.png.*(truncated|corrupt)"):
        read_image(tmp_path / "t.png")


def test_truncated_16bit_png_rejected(tmp_path):
    png16(tmp_path / "t.png", RNG.integers(0, 65536, (32, 32, 3), dtype=np.uint16))
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError, match=r"t\.png"):
        read_image(tmp_path / "t.png")


def test_text_file_named_png_rejected(tmp_path):
    (tmp_path / "notes.png").write_text("this is not an image\n")
    with pytest.raises(BadImageError, match=r"notes\.png: not an image"):
        read_image(tmp_path / "notes.png")


def test_missing_and_empty_files_rejected(tmp_path):
    with pytest.raises(BadImageError, match="no such file"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(BadImageError, match=r"empty\.png"):
        read_image(tmp_path / "empty.png")


def test_too_small_rejected(tmp_path):
    Image.fromarray(rgb(3, 40)).save(tmp_path / "tiny.png")
    assert read_image(tmp_path / "tiny.png").shape == (3, 40, 3)
    with pytest.raises(BadImageError, match=r"tiny\.png: image too small: 40x3"):
        read_image(tmp_path / "tiny.png", min_size=4)


@pytest.mark.parametrize("w,h", [(20000, 20000), (15000, 14000), (1 << 30, 4)])
def test_huge_header_rejected_before_decoding(tmp_path, w, h):
    png_header_only(tmp_path / "bomb.png", w, h)
    with pytest.raises(BadImageError, match=r"bomb\.png: image too large"):
        read_image(tmp_path / "bomb.png")


def test_max_pixels_parameter(tmp_path):
    Image.fromarray(rgb(20, 20)).save(tmp_path / "x.png")
    with pytest.raises(BadImageError, match="too large"):
        read_image(tmp_path / "x.png", max_pixels=100)


def test_write_image_atomic_and_round_trip(tmp_path):
    a = rgb()
    p = write_image(tmp_path / "sub" / "o.png", a)
    np.testing.assert_array_equal(read_image(p), a)
    write_image(tmp_path / "g.png", a[..., 0])
    assert Image.open(tmp_path / "g.png").mode == "L"
    with pytest.raises(TypeError):
        write_image(tmp_path / "f.png", a.astype(np.float32))
    assert sorted(os.listdir(tmp_path)) == ["g.png", "sub"]


def test_write_image_failure_leaves_old_file(tmp_path, monkeypatch):
    old = rgb()
    write_image(tmp_path / "o.png", old)

    def broken_save(self, fp, format=None, **kw):
        fp.write(b"\x89PNG partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="simulated"):
        write_image(tmp_path / "o.png", rgb())
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image(tmp_path / "o.png"), old)
    assert os.listdir(tmp_path) == ["o.png"]


def test_info_of_formats(tmp_path):
    Image.fromarray(rgb()).save(tmp_path / "x.jpg")
    info = read_image_info(tmp_path / "x.jpg")
    assert (info.format, info.bits, info.channels, info.has_alpha) == ("JPEG", 8, 3, False)
    buf = io.BytesIO()
    Image.fromarray(rgb()).save(buf, format="PNG")
    (tmp_path / "y.png").write_bytes(buf.getvalue())
    assert read_image_info(tmp_path / "y.png").bits == 8


def test_written_files_have_normal_permissions(tmp_path):
    p = write_image(tmp_path / "o.png", rgb())
    mask = os.umask(0)
    os.umask(mask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~mask)
