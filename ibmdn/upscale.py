"""``ibmdn upscale``: super-resolve image files and folders with a trained network.

    ibmdn upscale photo.png scans/ --model ibmdn --scale 4 --out upscaled/

Inputs are files or folders (a folder contributes its files with an image extension, not recursively;
a file named explicitly is tried whatever its extension). Each output goes to ``--out`` under the
input's name (``--suffix`` appended to the stem) and **format**: PNG stays PNG, JPEG stays JPEG
(quality 95), TIFF, WebP, BMP likewise; a format Pillow cannot write becomes PNG. What the format
allows is kept: 16-bit PNG / TIFF in -> 16-bit out (read at full precision, the network's float output
quantised to 16 bits), grayscale in -> grayscale out (the network sees the gray replicated to RGB; the
output's first channel is written), an alpha channel is upscaled bicubically and kept (composited on
white for formats without alpha, as :mod:`ibmdn.data.io` reads such files). EXIF orientation is applied.

Safety: an existing output is never replaced without ``--overwrite``; outputs are written atomically
(temporary file + rename); an unreadable or unusable input is reported by name and skipped, the other
files are processed, and the command exits non-zero at the end when anything was skipped.

Weights: ``--weights PATH`` (a checkpoint of ``ibmdn train``), ``--weights official`` (a published
checkpoint, baselines only), or by default the weights shipped in the package,
``ibmdn/weights/<model>_x<scale>_<tag>.pth``, whose provenance (the ``.json`` beside each) ``--help``
prints; with several for one model and scale, the one whose provenance records the best validation
PSNR. With none shipped for the requested model and scale the command stops and says so; it never
runs an untrained network.

Inference runs on the re-parameterised network (:func:`ibmdn.fuse.fuse_for_inference`; ``--no-fuse``
runs the trained form) in ``--precision`` fp32 (default), bf16 or fp16. Large images are **tiled**
(``--tile``; automatic above 512x512 LR pixels): each LR tile is run with context around it and only
its core is kept, written straight into the quantised output, so memory is bounded by the tile, not
the image (:func:`ibmdn.inference.forward_tiled` has the same geometry but allocates the whole float
output, 1.6 GB for a 3840x2160 input at x4). Tiling is **exact** by default: the context is at least
the network's receptive radius (:func:`~ibmdn.inference.receptive_radius`), and layers that pool over the whole image
(CHFAB's and CCA's contrast + mean) get the whole image's statistic, gathered tile by tile in one extra
pass per such layer (:func:`~ibmdn.inference.tiled_exact`); the result equals untiled inference up to float rounding.
That costs up to ``n + 1`` partial passes for ``n`` pooling layers (IBMDN: 7, about 4.5x the work of
one pass); ``--approx-tiles`` runs one pass with per-tile statistics instead (faster, may show seams).
Networks with non-translation-equivariant layers (ESA's strided convolution and pooling) are always
tiled approximately.

Engines: ``--engine torch`` (default) runs the network in PyTorch; ``--engine onnxruntime`` runs the same
network (fused unless ``--no-fuse``) as an ONNX graph in ONNX Runtime, exported on first use and cached
on disk (:class:`ibmdn.export.OrtNetwork`), with as many intra-op threads as torch uses, fp32 only.
Tiling, exact and approximate, and everything above are the same under both; exact tiling runs the
graph's statistics form (each global statistic an input, the feature map it pools an output), cut into
one graph per pass (``docs/deployment.md``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from ibmdn.inference import (
    exact_tiling_supported,
    global_statistic_layers,
    network_of,
    tiled_approx,
    tiled_exact,
)
from ibmdn.shipped import load_model

AUTO_TILE_PIXELS = 512 * 512
AUTO_TILE = 512


# ------------------------------------------------------------------------------------------- images


@dataclass
class Loaded:
    """An input image: ``rgb`` float32 ``H x W x 3`` in [0, 1], optional ``alpha`` (uint8/uint16 ``H x W``)."""

    rgb: object
    alpha: object | None
    bits: int
    gray: bool
    format: str


def load_image(path: Path) -> Loaded:
    """Read ``path`` by :mod:`ibmdn.data.io`'s rules, keeping 16-bit precision, grayness and alpha."""
    import numpy as np
    from PIL import Image, ImageOps

    from ibmdn.data import io as dio
    from ibmdn.errors import BadImageError

    info = dio.read_image_info(path)
    gray = info.channels in (1, 2) and info.mode not in ("P", "PA")
    sixteen = info.bits == 16 and info.format in ("PNG", "TIFF")
    if not sixteen:
        rgb8 = dio.read_image(path)  # validation, palette/CMYK/EXIF rules, alpha composited on white
        alpha = None
        if info.has_alpha:
            try:
                with Image.open(path) as im:
                    im = ImageOps.exif_transpose(im)
                    rgba = np.asarray(im.convert("RGBA"))
            except Exception as e:  # noqa: BLE001
                raise BadImageError(f"{path}: cannot decode alpha ({type(e).__name__}: {e})") from None
            rgb8, alpha = np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
        return Loaded(rgb8.astype(np.float32) / 255.0, alpha, 8, gray, info.format)
    # 16 bits per sample: full precision (io.read_image would round to 8 bits)
    dio.read_image(path)  # validation (size guard, corrupt data) with the package's messages
    try:
        if info.format == "PNG" and info.channels in (2, 3, 4):
            samples = dio._decode_png16(path)
        elif info.format == "TIFF":
            import tifffile

            samples = tifffile.imread(path)
            if samples.ndim == 3 and samples.shape[0] in (1, 2, 3, 4) and samples.shape[2] > 4:
                samples = samples.transpose(1, 2, 0)
        else:
            with Image.open(path) as im:
                samples = np.asarray(im).astype(np.uint16)
    except BadImageError:
        raise
    except Exception as e:  # noqa: BLE001
        raise BadImageError(f"{path}: truncated or corrupt image data ({type(e).__name__}: {e})") from None
    if samples.ndim == 2:
        samples = samples[:, :, None]
    samples = dio._orient(samples.astype(np.uint16), info.orientation)
    c = samples.shape[2]
    color = samples[..., :1] if c in (1, 2) else samples[..., :3]
    alpha = samples[..., -1].copy() if c in (2, 4) else None
    rgb = np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color
    return Loaded(rgb.astype(np.float32) / 65535.0, alpha, 16, gray, info.format)


def _write_png16(f, a) -> None:
    """A 16-bit PNG of ``a`` (uint16 ``H x W`` or ``H x W x {1,2,3,4}``) to the open file ``f`` (pypng;
    Pillow cannot write 16-bit colour)."""
    import png

    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    png.Writer(w, h, greyscale=c in (1, 2), alpha=c in (2, 4), bitdepth=16).write(f, a.reshape(h, w * c))


def write_output(path: Path, a, fmt: str, bits: int) -> Path:
    """Write ``a`` (uint8 or uint16, ``H x W [x C]``) to ``path`` in Pillow format ``fmt``, atomically.

    The encoder streams into a temporary file beside ``path`` (no second in-memory copy of a large image),
    which is flushed, fsync'ed and renamed over ``path``.
    """
    import os
    import tempfile

    import numpy as np
    from PIL import Image

    from ibmdn.fileio import file_mode

    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if bits == 16 and fmt == "PNG":
                _write_png16(f, a)
            elif bits == 16 and fmt == "TIFF":
                import tifffile

                tifffile.imwrite(f, a, photometric="minisblack" if a.ndim == 2 else "rgb")
            else:
                if a.dtype != np.uint8:
                    a = np.floor(a.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
                if a.ndim == 3 and a.shape[2] in (2, 4) and fmt in ("JPEG", "BMP", "PPM"):  # no alpha: on white
                    alpha = a[..., -1:].astype(np.float32) / 255.0
                    a = np.floor(a[..., :-1] * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
                    a = a[:, :, 0] if a.shape[2] == 1 else a
                im = Image.fromarray(np.ascontiguousarray(a))  # L, LA, RGB or RGBA from the shape
                im.save(f, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def output_format(path: Path) -> tuple[str, str]:
    """(Pillow format, suffix) for the output of input ``path``: its own when writable, else PNG."""
    from PIL import Image

    Image.init()
    suffix = path.suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt and fmt in Image.SAVE:
        return fmt, path.suffix
    return "PNG", ".png"


# --------------------------------------------------------------------------------------------- the run


@dataclass
class UpscaleOptions:
    scale: int = 4
    tile: int = 0
    overlap: int = 16
    approx_tiles: bool = False
    precision: str = "fp32"
    overwrite: bool = False
    suffix: str = ""


def _quantize(t, bits: int):
    """float ``1 x C x h x w`` tensor in [0, 1] -> numpy ``h x w x C`` (uint8: round half up, as the metrics)."""
    import torch

    t = t[0].float().clamp(0.0, 1.0)
    if bits == 16:
        return torch.floor(t * 65535.0 + 0.5).to(torch.int32).permute(1, 2, 0).numpy().astype("uint16")
    return torch.floor(t * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()


def upscale_array(model, img: Loaded, opts: UpscaleOptions, device, exact_ok: bool, progress: bool = False):
    """Run ``model`` on one image; returns the quantised output array (``H x W x {1,2,3,4}``).

    ``model`` is the network or an engine that runs it (:class:`ibmdn.export.OrtNetwork`, called like the
    module; :func:`~ibmdn.inference.tiled_exact` runs either).
    """
    import numpy as np
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from ibmdn.inference import PRECISIONS

    s = opts.scale
    dtype = PRECISIONS[opts.precision]
    h, w = img.rgb.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(img.rgb.transpose(2, 0, 1)))[None].to(device=device, dtype=dtype)
    out = np.empty((h * s, w * s, 3), np.uint16 if img.bits == 16 else np.uint8)
    tile = opts.tile
    if tile == 0:
        tile = AUTO_TILE if h * w > AUTO_TILE_PIXELS else -1
    if tile < 0 or (h <= tile and w <= tile):
        with torch.inference_mode():
            out[:] = _quantize(model(x).cpu(), img.bits)
    else:
        def sink(y0, y1, x0, x1, core):
            out[y0 * s:y1 * s, x0 * s:x1 * s] = _quantize(core.cpu(), img.bits)

        exact = exact_ok and not opts.approx_tiles
        n_tiles = math.ceil(h / tile) * math.ceil(w / tile)
        passes = 1 + (len(global_statistic_layers(network_of(model))) if exact else 0)
        with tqdm(total=n_tiles * passes, unit="tile", leave=False, disable=not progress,
                  desc=f"{'exact' if exact else 'approx'} tiles") as tbar:
            if exact:
                tiled_exact(model, x, s, tile, opts.overlap, sink=sink, progress=tbar.update)
            else:
                tiled_approx(model, x, s, tile, opts.overlap, sink, progress=tbar.update)
    del x
    if img.gray:
        out = out[:, :, :1]
    if img.alpha is not None:
        a = img.alpha
        if a.dtype == np.uint8:
            up = np.asarray(Image.fromarray(a).resize((w * s, h * s), Image.BICUBIC))
        else:  # 16-bit alpha: resample in float
            f = Image.fromarray(a.astype(np.float32)).resize((w * s, h * s), Image.BICUBIC)
            up = np.clip(np.floor(np.asarray(f) + 0.5), 0, 65535)
        out = np.concatenate([out, up.astype(out.dtype)[:, :, None]], axis=2)
    return out


def collect_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """(files to process, problems): folders give their image files (sorted, not recursive)."""
    from ibmdn.data.io import IMAGE_EXTENSIONS

    files, problems = [], []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                problems.append(f"{p}: folder holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            problems.append(f"{p}: no such file or folder")
    return files, problems


def upscale_command(args) -> int:
    """``ibmdn upscale INPUT... --model M --scale S [--weights W] [--tile N] [--engine E] --out DIR``."""
    from tqdm.auto import tqdm

    from ibmdn.errors import BadImageError, IbmdnError
    from ibmdn.inference import resolve_device

    onnx = getattr(args, "engine", "torch") == "onnxruntime"
    if onnx:
        from ibmdn.export import OrtNetwork, require_onnx

        require_onnx()
        if args.precision != "fp32":
            raise IbmdnError(f"--engine onnxruntime runs fp32 only, not --precision {args.precision}")
    device = resolve_device("cpu" if onnx else args.device)  # ONNX Runtime reads its input from the CPU
    files, problems = collect_inputs(args.inputs)
    model, desc = load_model(args.model, args.scale, args.weights, args.weights_root, device, args.precision,
                             fuse=not args.no_fuse)
    exact_ok = exact_tiling_supported(model)
    if onnx:
        model = OrtNetwork(model, args.model, args.scale, device=args.device,
                           log=lambda m: print(m, file=sys.stderr))
        desc += ", onnxruntime"
    opts = UpscaleOptions(scale=args.scale, tile=args.tile, overlap=args.overlap,
                          approx_tiles=getattr(args, "approx_tiles", False), precision=args.precision,
                          overwrite=args.overwrite, suffix=args.suffix)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    where = model.providers[0] if onnx else device
    print(f"{args.model} x{args.scale} ({desc}) on {where}, {args.precision}; {len(files)} file(s) -> "
          f"{out_dir}", file=sys.stderr)
    if not exact_ok and not opts.approx_tiles and opts.tile >= 0:
        print("note: this network cannot be tiled exactly (unfused, or ESA's strided attention); large images are "
              "tiled with per-tile statistics", file=sys.stderr)
    planned: dict[Path, Path] = {}
    written = 0
    bar = tqdm(files, unit="img", disable=args.no_progress, desc="upscale")
    for path in bar:
        bar.set_postfix_str(path.name[-30:])
        fmt, suffix = output_format(path)
        target = out_dir / f"{path.stem}{opts.suffix}{suffix}"
        try:
            if target.resolve() in planned:
                raise IbmdnError(f"{path}: output {target} would also be written from {planned[target.resolve()]}")
            if target.resolve() == path.resolve():
                raise IbmdnError(f"{path}: output would replace the input itself; choose another --out")
            if target.exists() and not opts.overwrite:
                raise IbmdnError(f"{path}: {target} exists (pass --overwrite to replace it)")
            planned[target.resolve()] = path
            img = load_image(path)
            arr = upscale_array(model, img, opts, device, exact_ok, progress=not args.no_progress)
            write_output(target, arr, fmt, img.bits)
            written += 1
        except (BadImageError, IbmdnError, OSError, ValueError) as e:
            msg = str(e) if str(path) in str(e) else f"{path}: {e}"
            problems.append(msg)
            tqdm.write(f"ibmdn: skipped {msg}", file=sys.stderr)
    print(f"wrote {written} of {len(files)} file(s) to {out_dir}", file=sys.stderr)
    if problems:
        print(f"ibmdn: {len(problems)} input(s) not upscaled:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    return 0
