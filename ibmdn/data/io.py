"""Image reading and writing that accepts whatever a user throws at it, with one documented rule per case.

Every image enters the package as a ``uint8`` ``H x W x 3`` RGB array (the convention of
:mod:`ibmdn.metrics.quality`). :func:`read_image` turns any readable file into that form:

=====================  =======================================================================
input                  rule
=====================  =======================================================================
PNG/BMP/JPEG/TIFF...   decoded with Pillow (any format Pillow reads); pixel values taken as stored,
                       no colour management (ICC profiles ignored, as MATLAB ``imread`` does)
grayscale (1, L, I)    replicated to three equal channels (docs/protocol.md: Set14 ``bridge``)
palette (P, PA)        expanded through the palette; a ``tRNS`` transparency becomes alpha
alpha (RGBA, LA, PA)   composited on a white background: ``out = c * a + 255 * (1 - a)``, ``a`` in
                       [0, 1], then rounded half up (the usual "flatten onto paper" choice; a black
                       background would turn transparent areas into false black edges)
16-bit                 scaled to 8 bits by ``round(v / 257)`` (65535 -> 255 exactly). Pillow
                       truncates 16-bit RGB(A) PNGs to their high byte (``v >> 8``), so those are
                       decoded with pypng (:func:`_decode_png16`); 16-bit TIFFs are
                       read with ``tifffile``; 16-bit grayscale PNGs come out of Pillow intact
float (F, float TIFF)  assumed in [0, 1], clipped, ``round(v * 255)``
CMYK                   Pillow's naive conversion ``R = 255 - min(255, C + K)`` (no ICC); Adobe
                       (inverted) CMYK JPEGs are recognised by Pillow
YCbCr, LAB, HSV        converted to RGB by Pillow
EXIF orientation       honoured (tags 1..8, also for PNG ``eXIf`` and TIFF), as viewers do
=====================  =======================================================================

Rejected with :class:`ibmdn.errors.BadImageError`, whose message names the file and the reason: a file
that is not an image, a truncated or corrupt file, an image whose shorter side is below ``min_size``,
and a header announcing more than ``max_pixels`` pixels (decompression-bomb guard, default
:data:`MAX_PIXELS` = 200 MPixel, checked before any pixel is decoded; Pillow's own guard, which fires
above ``2 * Image.MAX_IMAGE_PIXELS`` ~ 179 MPixel, is reported the same way).

:func:`read_image_info` reads only the header and keeps what decoding throws away (bit depth, alpha,
original mode), e.g. for an ``upscale`` command that wants to write 16-bit output for 16-bit input.

:func:`write_image` is atomic: it writes a temporary file in the target folder, flushes it to disk and
renames it over the target with :func:`os.replace`; a killed process never leaves a truncated image.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ibmdn.errors import BadImageError
from ibmdn.fileio import atomic_write_bytes

MAX_PIXELS = 200_000_000
"""Largest image (width * height, from the header) that :func:`read_image` agrees to decode."""

IMAGE_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

_EXIF_ORIENTATION = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an image file says.

    Attributes:
        path: the file.
        format: Pillow's format name (``PNG``, ``JPEG``, ...).
        width: stored width in pixels (before EXIF rotation).
        height: stored height in pixels (before EXIF rotation).
        mode: Pillow's mode (``RGB``, ``P``, ``I;16``, ...).
        bits: bits per sample as stored (8, 16, 1, 32).
        channels: samples per pixel as stored (palette images count 1).
        has_alpha: an alpha channel or a palette transparency is present.
        orientation: EXIF orientation tag (1 = as stored).
    """

    path: str
    format: str
    width: int
    height: int
    mode: str
    bits: int
    channels: int
    has_alpha: bool
    orientation: int

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) after EXIF orientation is applied, i.e. the shape :func:`read_image` returns."""
        if self.orientation in (5, 6, 7, 8):
            return self.width, self.height
        return self.height, self.width


def _bad(path, reason: str) -> BadImageError:
    return BadImageError(f"{path}: {reason}")


def _png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR, or None if the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


_MODE_CHANNELS = {"1": 1, "L": 1, "P": 1, "I": 1, "F": 1, "LA": 2, "La": 2, "PA": 2, "RGB": 3, "YCbCr": 3,
                  "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _open(path: Path, max_pixels: int) -> Image.Image:
    """Open (header only) with the size guard; every failure becomes a :class:`BadImageError`."""
    if not path.is_file():
        raise _bad(path, "no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise _bad(path, f"image too large (decompression-bomb guard): {e}") from None
    except UnidentifiedImageError:
        raise _bad(path, "not an image file (or an unsupported or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, struct.error) as e:
        raise _bad(path, f"cannot read image header: {e}") from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise _bad(path, f"image too large: header says {w}x{h} = {w * h / 1e6:.1f} MPixel, "
                         f"limit {max_pixels / 1e6:.0f} MPixel (decompression-bomb guard)")
    if w <= 0 or h <= 0:
        im.close()
        raise _bad(path, f"empty image ({w}x{h})")
    return im


def _orientation(im: Image.Image) -> int:
    try:
        o = int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a corrupt EXIF block must not make the whole image unreadable
        return 1
    return o if 1 <= o <= 8 else 1


def read_image_info(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Header facts of an image file (no pixel decoding).

    Raises:
        BadImageError: as :func:`read_image` (not an image, corrupt header, too large).
    """
    path = Path(path)
    with _open(path, max_pixels) as im:
        fmt = im.format or "?"
        mode = im.mode
        has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
        channels = _MODE_CHANNELS.get(mode, len(im.getbands()))
        bits = 8
        if mode == "1":
            bits = 1
        elif mode.startswith("I;16"):
            bits = 16
        elif mode in ("I", "F"):
            bits = 32
        png = _png_header(path) if fmt == "PNG" else None
        if png is not None:
            bits, ctype = png
            channels = _PNG_CHANNELS.get(ctype, channels)
            has_alpha = has_alpha or ctype in (4, 6)
        elif fmt == "TIFF":
            tags = getattr(im, "tag_v2", {})
            bps = tags.get(258)
            if bps:
                bits = int(bps[0] if isinstance(bps, tuple) else bps)
            spp = tags.get(277)
            if spp:
                channels = int(spp)
        return ImageInfo(str(path), fmt, im.size[0], im.size[1], mode, bits, channels, has_alpha,
                         _orientation(im))


# --------------------------------------------------------------------------------------------- decoding


def _decode_png16(path: Path) -> np.ndarray:
    """Full-precision decoding of a 16-bit PNG (pypng; Pillow reduces 16-bit colour to 8 bits): uint16
    ``H x W x C``."""
    import png

    try:
        width, height, rows, meta = png.Reader(filename=str(path)).asDirect()
        samples = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows])
    except Exception as e:  # noqa: BLE001 - pypng raises FormatError, ChunkError, zlib.error, EOFError...
        raise _bad(path, f"truncated or corrupt PNG: {e}") from None
    return samples.reshape(height, width, meta["planes"])


def _orient(a: np.ndarray, o: int) -> np.ndarray:
    """Apply EXIF orientation ``o`` (the transform Pillow's ``ImageOps.exif_transpose`` applies)."""
    if o == 2:
        a = a[:, ::-1]
    elif o == 3:
        a = a[::-1, ::-1]
    elif o == 4:
        a = a[::-1]
    elif o == 5:
        a = a.swapaxes(0, 1)
    elif o == 6:
        a = np.rot90(a, -1)
    elif o == 7:
        a = a.swapaxes(0, 1)[::-1, ::-1]
    elif o == 8:
        a = np.rot90(a, 1)
    return np.array(a, order="C", copy=True)  # writable, contiguous (Pillow's arrays are read-only)


def _to_unit(a: np.ndarray) -> np.ndarray:
    """Samples as float64 in [0, 1] according to their type (uint8 /255, uint16 /65535, float as is)."""
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    if a.dtype.kind in "iu":  # 16-bit (wider integers are clipped to the 16-bit range)
        return np.clip(a.astype(np.float64), 0, 65535) / 65535.0
    return np.clip(np.nan_to_num(a.astype(np.float64)), 0.0, 1.0)


def _to_rgb8(a: np.ndarray, path) -> np.ndarray:
    """Any H x W [x C] sample array -> uint8 H x W x 3 by the module's rules (alpha on white, 16-bit /257)."""
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise _bad(path, f"unsupported sample layout {a.shape}")
    c = a.shape[2]
    if c in (1, 3) and a.dtype == np.uint8:
        return np.ascontiguousarray(np.repeat(a, 3, axis=2) if c == 1 else a)
    if c in (1, 3) and a.dtype.kind in "iu":  # 16-bit (or wider integer, clipped): round(v / 257)
        v = np.clip(a.astype(np.float64), 0, 65535)
        out = np.floor(v / 257.0 + 0.5).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(out, 3, axis=2) if c == 1 else out)
    x = _to_unit(a)
    if c in (2, 4):  # composite on white
        alpha = x[:, :, -1:]
        x = x[:, :, :-1] * alpha + (1.0 - alpha)
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return np.floor(np.clip(x, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def _pil_samples(im: Image.Image) -> np.ndarray:
    """Pixel samples of an opened Pillow image in a mode :func:`_to_rgb8` understands."""
    mode = im.mode
    if mode == "1":
        return np.asarray(im.convert("L"))
    if mode == "P":
        return np.asarray(im.convert("RGBA" if "transparency" in im.info else "RGB"))
    if mode in ("PA", "La", "RGBa"):
        return np.asarray(im.convert("RGBA"))
    if mode == "L" and "transparency" in im.info:
        return np.asarray(im.convert("LA"))
    if mode == "RGB" and "transparency" in im.info:
        return np.asarray(im.convert("RGBA"))
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(im)
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    if mode == "I":
        return np.asarray(im)  # int32; clipped to 0..65535 and treated as 16-bit
    if mode == "F":
        return np.asarray(im)  # float32, assumed in [0, 1]
    return np.asarray(im.convert("RGB"))  # CMYK, YCbCr, LAB, HSV, RGBX


def read_image(path: str | os.PathLike, min_size: int = 1, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read any image file as a ``uint8`` ``H x W x 3`` RGB array (rules in the module docstring).

    Args:
        path: the file.
        min_size: smallest accepted shorter side (after EXIF rotation); smaller images are rejected.
        max_pixels: largest accepted ``width * height`` announced by the header.

    Raises:
        BadImageError: not an image, truncated, too small or too large; the message names the file.
    """
    path = Path(path)
    info = read_image_info(path, max_pixels)
    h, w = info.size
    if min(h, w) < min_size:
        raise _bad(path, f"image too small: {w}x{h}, the shorter side must be at least {min_size} px")
    try:
        if info.format == "PNG" and info.bits == 16 and info.channels in (2, 3, 4):
            samples = _decode_png16(path)
        elif info.format == "TIFF" and info.bits > 8:
            import tifffile

            samples = tifffile.imread(path)
            if samples.ndim == 3 and samples.shape[0] in (1, 2, 3, 4) and samples.shape[2] > 4:
                samples = samples.transpose(1, 2, 0)  # planar configuration
        else:
            with _open(path, max_pixels) as im:
                im.load()
                samples = _pil_samples(im)
    except BadImageError:
        raise
    except Exception as e:  # Pillow / tifffile raise many types for corrupt data
        raise _bad(path, f"truncated or corrupt image data ({type(e).__name__}: {e})") from None
    rgb = _to_rgb8(samples, path)
    if rgb.shape[:2] != (info.height, info.width):
        raise _bad(path, f"decoded size {rgb.shape[1]}x{rgb.shape[0]} differs from the header "
                         f"{info.width}x{info.height}")
    return _orient(rgb, info.orientation)


def write_image(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a ``uint8`` ``H x W``, ``H x W x 3`` or ``H x W x 4`` array atomically (format from the suffix).

    The data go to a temporary file in the same folder, are flushed and fsync'ed, then renamed over
    ``path`` with :func:`os.replace` (atomic on POSIX and Windows). On any error the temporary file is
    removed and ``path`` is untouched.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"write_image expects uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"write_image expects H x W [x 3|4], got shape {array.shape}")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension {path.suffix!r}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format=fmt)
    atomic_write_bytes(path, buf.getvalue())
    return path
