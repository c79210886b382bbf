"""Inference, one home for evaluation, benchmarks and ``ibmdn upscale``: the device, tiling, self-ensemble.

* :func:`resolve_device`: ``auto`` -> CUDA when available, else the CPU; a CUDA request without CUDA is an
  error that says so.
* :func:`tile_boxes`: the LR tiles of an image, each a core and the core plus ``overlap`` pixels of
  context (clipped at the borders); :func:`forward_tiled` runs a network tile by tile and keeps the cores
  (``ibmdn upscale`` streams the same boxes to disk instead, :mod:`ibmdn.upscale`).
* :func:`forward_ensemble`: the x8 geometric self-ensemble.
* :func:`super_resolve`: one ``uint8`` RGB LR image -> ``uint8`` RGB SR image, the evaluation's path.
* Tiling with image-wide statistics (``ibmdn upscale``, either engine): :func:`receptive_radius`, the context
  a tile needs; :func:`tiled_exact`, tiles equal to untiled inference (each global statistic gathered
  over the whole image first); :func:`tiled_approx`, one pass with per-tile statistics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ibmdn.errors import IbmdnError
from ibmdn.metrics.quality import tensor_to_uint8, uint8_to_tensor

DEFAULT_OVERLAP = 16
"""LR pixels of context around each tile's core."""
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
"""The inference precisions (``--precision``) of ``ibmdn upscale`` and ``ibmdn eval``."""


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; other names are checked."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise IbmdnError(f"device {name!r} requested but CUDA is not available")
    return dev


def tile_boxes(h: int, w: int, tile: int, overlap: int) -> Iterator[tuple[int, int, int, int, int, int, int, int]]:
    """``(y0, y1, x0, x1, ya, yb, xa, xb)``: core and context box of each tile ."""
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            yield (y0, y1, x0, x1, max(y0 - overlap, 0), min(y1 + overlap, h), max(x0 - overlap, 0),
                   min(x1 + overlap, w))


def forward_tiled(model: nn.Module, x: torch.Tensor, scale: int, tile: int, overlap: int = DEFAULT_OVERLAP):
    """Run ``model`` on ``tile x tile`` LR cores with ``overlap`` pixels of context; keep the cores."""
    n, _, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return model(x)
    out = None
    for y0, y1, x0, x1, ya, yb, xa, xb in tile_boxes(h, w, tile, overlap):
        o = model(x[:, :, ya:yb, xa:xb])
        if out is None:
            out = o.new_zeros(n, o.shape[1], h * scale, w * scale)
        out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = o[
            :, :, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale
        ]
    return out


def forward_ensemble(fn, x: torch.Tensor) -> torch.Tensor:
    """x8 self-ensemble: run ``fn`` on the 8 flips/transposes of ``x``, undo them, average."""
    acc = None
    for t in range(8):
        y = x.transpose(-1, -2) if t & 4 else x
        y = y.flip(-1) if t & 1 else y
        y = y.flip(-2) if t & 2 else y
        o = fn(y)
        o = o.flip(-2) if t & 2 else o
        o = o.flip(-1) if t & 1 else o
        o = o.transpose(-1, -2) if t & 4 else o
        acc = o if acc is None else acc + o
    return acc / 8.0


def super_resolve(model: nn.Module, lr: np.ndarray, scale: int, device="cpu", tile: int = 0,
                  self_ensemble: bool = False, overlap: int = DEFAULT_OVERLAP) -> np.ndarray:
    """SR of one ``uint8`` RGB LR image -> ``uint8`` RGB (the evaluation's inference path).

    The input takes the dtype of the model's parameters (float32, or bfloat16 for a model cast with
    ``model.to(torch.bfloat16)``); every output is cast back to float32 before the ensemble's average and
    the quantisation, so a reduced precision touches the network alone."""
    p = next(model.parameters(), None)
    x = uint8_to_tensor(lr, device).to(p.dtype if p is not None and p.is_floating_point() else torch.float32)

    def run(t):
        return forward_tiled(model, t, scale, tile, overlap).float()

    with torch.inference_mode():
        y = forward_ensemble(run, x) if self_ensemble else run(x)
    return tensor_to_uint8(y)


# ---------------------------------------------------------------- tiling with image-wide statistics


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


def global_statistic_layers(model) -> list:
    """The :class:`~ibmdn.attention.cca.GlobalStatistic` layers of ``model``, in module order."""
    from ibmdn.attention.cca import GlobalStatistic

    return [m for m in model.modules() if isinstance(m, GlobalStatistic)]


def network_of(model):
    """The PyTorch network of ``model``: itself, or the module an engine runs (``.network``)."""
    from torch import nn

    return model if isinstance(model, nn.Module) else model.network


@contextlib.contextmanager
def stats_hooks(layers, hook):
    """``hook(layer, feature_map) -> statistic`` replaces the statistic of each of ``layers`` (see
    :class:`~ibmdn.attention.cca.GlobalStatistic`) inside the ``with`` block."""
    for m in layers:
        m.stats_hook = hook
    try:
        yield
    finally:
        for m in layers:
            m.stats_hook = None


class _Stop(Exception):
    pass


def _hooked_runner(model) -> Callable:
    """``run(x, stats, upto=None)`` for a PyTorch network: its global-statistic layers ``0..len(stats)-1``
    take ``stats``; returns the feature map layer ``upto`` pools (the forward pass stops there), or the
    output when ``upto`` is None."""
    layers = global_statistic_layers(model)
    index = {id(m): k for k, m in enumerate(layers)}

    def run(x, stats, upto=None):
        got = []

        def hook(m, feat):
            k = index[id(m)]
            if k < len(stats):
                return stats[k].to(feat.dtype)
            if k == upto:
                got.append(feat)
                raise _Stop
            raise RuntimeError("a global statistic was needed before the ones it depends on")

        try:
            with stats_hooks(layers, hook):
                return model(x)
        except _Stop:
            return got[0]

    return run


def tiled_exact(model, x, scale: int, tile: int, overlap: int | None = None,
                sink: Callable | None = None, progress: Callable[[], None] | None = None):
    """Tiled inference equal to ``model(x)`` for networks supported by :func:`exact_tiling_supported`.

    Args:
        model: a fused network (:func:`ibmdn.fuse.fuse_for_inference`), in eval mode, or an engine that
            runs one (:class:`ibmdn.export.OrtNetwork`: ``.network`` and ``.run_until``).
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

    from ibmdn.inference import tile_boxes

    network = network_of(model)
    run = _hooked_runner(model) if model is network else model.run_until
    n, _, h, w = x.shape
    radius = receptive_radius(network)
    overlap = radius if overlap is None else max(overlap, radius)
    boxes = list(tile_boxes(h, w, tile, overlap))
    known: list = []
    with torch.inference_mode():
        for k in range(len(global_statistic_layers(network))):
            total = total_sq = 0.0
            for y0, y1, x0, x1, ya, yb, xa, xb in boxes:
                core = run(x[:, :, ya:yb, xa:xb], known, k)[:, :, y0 - ya:y1 - ya, x0 - xa:x1 - xa].double()
                total = total + core.sum(dim=(2, 3))
                total_sq = total_sq + (core * core).sum(dim=(2, 3))
                if progress:
                    progress()
            mean = total / float(h * w)
            var = (total_sq / float(h * w) - mean * mean).clamp_min(0.0)
            known.append((var.sqrt() + mean)[:, :, None, None].float())
        out = None
        for y0, y1, x0, x1, ya, yb, xa, xb in boxes:
            o = run(x[:, :, ya:yb, xa:xb], known)
            core = o[:, :, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale]
            if sink is not None:
                sink(y0, y1, x0, x1, core)
            else:
                if out is None:
                    out = o.new_zeros(n, o.shape[1], h * scale, w * scale)
                out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = core
            if progress:
                progress()
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
