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
the network's receptive radius (:func:`receptive_radius`), and layers that pool over the whole image
(CHFAB's and CCA's contrast + mean) get the whole image's statistic, gathered tile by tile in one extra
pass per such layer (:func:`tiled_exact`); the result equals untiled inference up to float rounding.
That costs up to ``n + 1`` partial passes for ``n`` pooling layers (IBMDN: 7, about 4.5x the work of
one pass); ``--approx-tiles`` runs one pass with per-tile statistics instead (faster, may show seams).
Networks with non-translation-equivariant layers (ESA's strided convolution and pooling) are always
tiled approximately.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "ibmdn_stable"
"""The network ``ibmdn upscale`` runs by default: IBMDN with stable involutions, the form the study ships
weights for (the faithful form's eval-mode network is unstable on high-contrast inputs; see
``docs/networks.md`` and ``results/involution_stability.csv``)."""
AUTO_TILE_PIXELS = 512 * 512
AUTO_TILE = 512
TAG_PREFERENCE = ("paper", "short", "smoke")
_NAME = re.compile(r"^(?P<model>.+)_x(?P<scale>\d)_(?P<tag>[^_]+)$")


# ------------------------------------------------------------------------------------- shipped weights


@dataclass(frozen=True)
class Shipped:
    """A checkpoint shipped in the package and what its provenance file says."""

    path: Path
    model: str
    scale: int
    tag: str
    meta: dict | None

    @property
    def psnr(self) -> float | None:
        """The validation PSNR its provenance records: the best one, else the last; None without one."""
        m = self.meta or {}
        v = m.get("best_psnr") if m.get("best_psnr") is not None else m.get("val_psnr")
        try:
            return None if v is None else float(v)
        except (TypeError, ValueError):
            return None


def shipped_weights(model: str | None = None, scale: int | None = None, root: Path | None = None) -> list[Shipped]:
    """Shipped checkpoints ``<model>_x<scale>_<tag>.pth``, preferred first: best validation PSNR, then tag.

    ``tag`` is the training profile, optionally followed by ``-<recipe variant>`` (``short-lr2e-3-clip1``).
    """
    root = WEIGHTS_DIR if root is None else root
    out = []
    if root.is_dir():
        for p in sorted(root.glob("*.pth")):
            m = _NAME.match(p.stem)
            if not m or (model and m["model"] != model) or (scale and int(m["scale"]) != scale):
                continue
            meta = None
            js = p.with_suffix(".json")
            if js.is_file():
                try:
                    meta = json.loads(js.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    meta = {"error": f"unreadable provenance file {js.name}"}
            out.append(Shipped(p, m["model"], int(m["scale"]), m["tag"], meta))
    rank = {t: i for i, t in enumerate(TAG_PREFERENCE)}
    # the best-validated first, so that a longer recipe stopped early never displaces a better-trained one
    return sorted(out, key=lambda s: (s.model, s.scale, -(s.psnr if s.psnr is not None else float("-inf")),
                                      rank.get(s.tag.split("-", 1)[0], len(rank)), s.tag))


def _recipe_changes(meta: dict) -> str:
    """`` (recipe changes: lr: 0.001 -> 0.002)``: how the recorded recipe differs from its profile's (the
    trainer's own comparison, :func:`ibmdn.train.config.resume_differences`); empty when none or unknown."""
    from ibmdn.train.config import PROFILES, config_from_dict, resume_differences

    try:
        cfg = config_from_dict(meta["config"])
    except Exception:  # noqa: BLE001 - no or an unreadable recipe: nothing to say (--help must always work)
        return ""
    diff = resume_differences(PROFILES[cfg.profile], cfg)
    return f" (recipe changes: {', '.join(diff)})" if diff else ""


def _describe(s: Shipped) -> str:
    m = s.meta or {}
    if not m:
        return f"  {s.path.name}: no provenance file ({s.path.with_suffix('.json').name} missing)"
    parts = [f"profile {m.get('profile', s.tag)}" + _recipe_changes(m)]
    if m.get("steps") is not None:
        parts.append(f"{m['steps']} steps")
    cfg = m.get("config") or {}
    for key in ("batch_size", "patch_size"):
        if cfg.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {cfg[key]}")
    if m.get("stopped_early"):
        parts.append(f"stopped by --time-limit (recipe: {cfg.get('iterations')} iterations)")
    if m.get("train_sets"):
        sets = m["train_sets"]
        n = f"{m['train_images']} images of " if m.get("train_images") else ""
        parts.append(f"trained on {n}" + (", ".join(sets) if isinstance(sets, list) else str(sets)))
    if s.psnr is not None:
        parts.append(f"{m.get('val_set', 'val')} PSNR-Y {s.psnr:.2f} dB")
    bench = (m.get("benchmarks") or {}).get("psnr") or {}
    if bench:
        names = {"set5": "Set5", "set14": "Set14", "bsd100": "BSD100", "urban100": "Urban100"}
        parts.append("benchmarks PSNR-Y " + " / ".join(f"{n} {bench[k]:.2f}" for k, n in names.items() if k in bench)
                     + " dB")
    git = (m.get("git") or {}).get("sha")
    if git:
        parts.append(f"git {git[:10]}" + ("+dirty" if (m.get("git") or {}).get("dirty") else ""))
    if m.get("date_utc"):
        parts.append(str(m["date_utc"]))
    if m.get("hr_pixels_seen"):
        parts.append(f"{m['hr_pixels_seen'] / 1e6:,.0f} M HR pixels seen")
    elif m.get("budget"):
        parts.append(f"budget: {m['budget']}")
    return f"  {s.path.name} ({s.model} x{s.scale}): " + "; ".join(parts)


def describe_shipped_weights() -> str:
    """The ``--help`` text on default weights (reads only the JSON files; never fails)."""
    head = (__doc__ or "").strip().splitlines()[0]
    try:
        items = shipped_weights()
    except Exception as e:  # noqa: BLE001 - --help must always work
        return f"{head}\n\nshipped weights: unavailable ({e})"
    lines = [head, "", (f"Default weights (shipped in {WEIGHTS_DIR}; per model and scale the first listed: the "
                        f"best validation PSNR, then by tag {' > '.join(TAG_PREFERENCE)} > others):")]
    lines += [_describe(s) for s in items] or ["  none shipped yet: pass --weights PATH"]
    scales = sorted({(s.model, s.scale) for s in items})
    lines += ["", "Without shipped weights for the requested model and scale, pass --weights PATH (a checkpoint",
              "of `ibmdn train`) or --weights official (published baseline checkpoints)."]
    if scales:
        lines.append("Shipped: " + ", ".join(f"{m} x{s}" for m, s in scales) + ".")
    return "\n".join(lines)


def resolve_weights(model: str, scale: int, weights: str | None) -> tuple[str, str]:
    """``(weights argument for build_model, description)``; the shipped default when ``weights`` is None."""
    from ibmdn.errors import ChecksumError, IbmdnError

    if weights is not None:
        return weights, weights
    found = shipped_weights(model, scale)
    if not found:
        others = sorted({f"x{s.scale}" for s in shipped_weights(model)})
        have = f" (shipped for {model}: {', '.join(others)})" if others else ""
        raise IbmdnError(f"no trained weights for {model} x{scale} are shipped with the package{have}; pass "
                         f"--weights PATH (a checkpoint of `ibmdn train`, e.g. runs/{model}_x{scale}_<profile>/"
                         f"final.pth) or --weights official for a baseline with a published checkpoint. "
                         f"Refusing to run an untrained network.")
    s = found[0]
    digest = (s.meta or {}).get("weights_sha256")
    if digest:
        from ibmdn.fileio import sha256_file

        got = sha256_file(s.path)
        if got != digest:
            raise ChecksumError(f"{s.path}: sha256 {got} differs from its provenance file's {digest}")
    warning = below_bicubic(s)
    if warning:
        print(f"ibmdn upscale: warning: {warning}", file=sys.stderr)
    return str(s.path), f"shipped {s.path.name}"


def below_bicubic(s: Shipped) -> str | None:
    """A warning when shipped weights validated below bicubic interpolation (undertrained), else None.

    The comparison is on the validation set of the weights' own provenance (Set5 PSNR-Y) against the
    published bicubic value of ``ibmdn/reported/published.csv``; users get told rather than silently
    served an image worse than plain interpolation.
    """
    from ibmdn.results import reported

    m, psnr = s.meta or {}, s.psnr
    if psnr is None:
        return None
    ref = reported("bicubic", source="published")
    ref = ref[(ref["scale"] == s.scale) & (ref["dataset"] == str(m.get("val_set", "Set5")).lower())
              & (ref["metric"] == "psnr")]
    if ref.empty or psnr >= float(ref["value"].iloc[0]):
        return None
    return (f"{s.path.name} scores {psnr:.2f} dB PSNR-Y on {m.get('val_set')}, below bicubic "
            f"interpolation ({float(ref['value'].iloc[0]):.2f} dB): these weights are undertrained "
            f"({m.get('steps')} steps); pass --weights PATH for better ones")


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


# ------------------------------------------------------------------------------------------- tiling


def receptive_radius(model) -> int:
    """Upper bound of the LR pixels a pixel's output depends on in each direction, pooling layers aside.

    The sum over every spatial operator of ``dilation * (kernel - 1) // 2`` (convolutions, involutions):
    the longest chain cannot exceed it.
    """
    from torch import nn

    r = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            r += max(d * (k - 1) // 2 for k, d in zip(m.kernel_size, m.dilation))
        elif getattr(m, "is_involution", False) or type(m).__name__ == "Involution2d":
            r += (m.kernel_size - 1) // 2
    return r


def exact_tiling_supported(model) -> bool:
    """True when every layer is translation-equivariant apart from
    :class:`~ibmdn.attention.cca.GlobalStatistic` ones."""
    from torch import nn

    from ibmdn.attention.cca import CCA
    from ibmdn.attention.chfab import CHFAB
    from ibmdn.attention.esa import ESA

    for m in model.modules():
        if isinstance(m, (ESA, CCA, CHFAB)):  # unfused global pooling, or strided/pooled attention
            return False
        if isinstance(m, nn.Conv2d) and m.stride != (1, 1):
            return False
        if type(m).__name__ == "Involution2d" and m.stride != 1:
            return False
    return True


class _Stop(Exception):
    pass


def tiled_exact(model, x, scale: int, tile: int, overlap: int | None = None,
                sink: Callable | None = None, progress: Callable[[], None] | None = None):
    """Tiled inference equal to ``model(x)`` for networks supported by :func:`exact_tiling_supported`.

    Args:
        model: a fused network (:func:`ibmdn.fuse.fuse_for_inference`), in eval mode.
        x: ``1 x 3 x H x W`` LR input.
        tile: LR core size.
        overlap: context in LR pixels (default and minimum: :func:`receptive_radius`).
        sink: ``sink(y0, y1, x0, x1, out_core)`` receives each output core (HR tensor); without it the
            whole output is assembled and returned.
        progress: called once per tile forward pass (all passes).

    The image-wide contrast + mean of each :class:`~ibmdn.attention.cca.GlobalStatistic` layer is gathered in
    pass k over the tiles' cores (layers before k use the statistics already gathered, the forward pass
    stops at layer k), then the last pass runs every tile with all statistics supplied.
    """
    import torch

    from ibmdn.attention.cca import GlobalStatistic
    from ibmdn.inference import tile_boxes

    n, _, h, w = x.shape
    radius = receptive_radius(model)
    overlap = radius if overlap is None else max(overlap, radius)
    boxes = list(tile_boxes(h, w, tile, overlap))
    layers = [m for m in model.modules() if isinstance(m, GlobalStatistic)]
    known: dict[int, torch.Tensor] = {}
    state: dict = {}

    def hook(m, feat):
        k = id(m)
        if k in known:
            return known[k].to(feat.dtype)
        if m is state.get("target"):
            ya, xa, y0, y1, x0, x1 = state["box"]
            core = feat[:, :, y0 - ya:y1 - ya, x0 - xa:x1 - xa].double()
            state["sum"] = state["sum"] + core.sum(dim=(2, 3))
            state["sumsq"] = state["sumsq"] + (core * core).sum(dim=(2, 3))
            raise _Stop
        raise RuntimeError("a global statistic was needed before the ones it depends on")

    for m in layers:
        m.stats_hook = hook
    try:
        with torch.inference_mode():
            for target in layers:
                state.update(target=target, sum=0.0, sumsq=0.0)
                for y0, y1, x0, x1, ya, yb, xa, xb in boxes:
                    state["box"] = (ya, xa, y0, y1, x0, x1)
                    try:
                        model(x[:, :, ya:yb, xa:xb])
                    except _Stop:
                        pass
                    if progress:
                        progress()
                count = float(h * w)
                mean = state["sum"] / count
                var = (state["sumsq"] / count - mean * mean).clamp_min(0.0)
                known[id(target)] = (var.sqrt() + mean)[:, :, None, None].float()
            state["target"] = None
            out = None
            for y0, y1, x0, x1, ya, yb, xa, xb in boxes:
                o = model(x[:, :, ya:yb, xa:xb])
                core = o[:, :, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale]
                if sink is not None:
                    sink(y0, y1, x0, x1, core)
                else:
                    if out is None:
                        out = o.new_zeros(n, o.shape[1], h * scale, w * scale)
                    out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = core
                if progress:
                    progress()
    finally:
        for m in layers:
            m.stats_hook = None
    return out


def tiled_approx(model, x, scale: int, tile: int, overlap: int, sink: Callable,
                 progress: Callable[[], None] | None = None) -> None:
    """One pass over the tiles (per-tile statistics in pooling layers), cores to ``sink``."""
    import torch

    from ibmdn.inference import tile_boxes

    with torch.inference_mode():
        for y0, y1, x0, x1, ya, yb, xa, xb in tile_boxes(x.shape[2], x.shape[3], tile, overlap):
            o = model(x[:, :, ya:yb, xa:xb])
            sink(y0, y1, x0, x1, o[:, :, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale])
            if progress:
                progress()


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
    """Run ``model`` on one image; returns the quantised output array (``H x W x {1,2,3,4}``)."""
    import numpy as np
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    s = opts.scale
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[opts.precision]
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
        passes = 1 + (sum(1 for m in model.modules() if hasattr(m, "global_stats")) if exact else 0)
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


def load_model(name: str, scale: int, weights: str | None, weights_root=None, device="cpu",
               precision: str = "fp32", fuse: bool = True):
    """The network with its trained weights, fused for inference, on ``device`` in ``precision``."""
    import torch

    from ibmdn.errors import IbmdnError
    from ibmdn.models import build_model

    spec_weights, desc = resolve_weights(name, scale, weights)
    try:
        model = build_model(name, scale=scale, weights=spec_weights, weights_root=weights_root)
    except (KeyError, ValueError, RuntimeError) as e:
        raise IbmdnError(f"cannot load {name} x{scale} from {desc}: {str(e).strip(chr(39))[:500]}") from None
    model.eval()
    if fuse:
        from ibmdn.fuse import fuse_for_inference

        model = fuse_for_inference(model)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return model.to(device=device, dtype=dtype), desc


def upscale_command(args) -> int:
    """``ibmdn upscale INPUT... --model M --scale S [--weights W] [--tile N] --out DIR``."""
    from tqdm.auto import tqdm

    from ibmdn.errors import BadImageError, IbmdnError
    from ibmdn.inference import resolve_device
    device = resolve_device(args.device)
    files, problems = collect_inputs(args.inputs)
    model, desc = load_model(args.model, args.scale, args.weights, args.weights_root, device, args.precision,
                             fuse=not args.no_fuse)
    exact_ok = exact_tiling_supported(model)
    opts = UpscaleOptions(scale=args.scale, tile=args.tile, overlap=args.overlap,
                          approx_tiles=getattr(args, "approx_tiles", False), precision=args.precision,
                          overwrite=args.overwrite, suffix=args.suffix)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{args.model} x{args.scale} ({desc}) on {device}, {args.precision}; {len(files)} file(s) -> {out_dir}",
          file=sys.stderr)
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
