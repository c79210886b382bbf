"""Inference, one home for evaluation, benchmarks and ``ibmdn upscale``: the device, tiling, self-ensemble.

* :func:`resolve_device`: ``auto`` -> CUDA when available, else the CPU; a CUDA request without CUDA is an
  error that says so.
* :func:`tile_boxes`: the LR tiles of an image, each a core and the core plus ``overlap`` pixels of
  context (clipped at the borders); :func:`forward_tiled` runs a network tile by tile and keeps the cores
  (``ibmdn upscale`` streams the same boxes to disk instead, :mod:`ibmdn.upscale`).
* :func:`forward_ensemble`: the x8 geometric self-ensemble.
* :func:`super_resolve`: one ``uint8`` RGB LR image -> ``uint8`` RGB SR image, the evaluation's path.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from ibmdn.errors import IbmdnError
from ibmdn.metrics.quality import tensor_to_uint8, uint8_to_tensor

DEFAULT_OVERLAP = 16
"""LR pixels of context around each tile's core."""


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
    """SR of one ``uint8`` RGB LR image -> ``uint8`` RGB (the evaluation's inference path)."""
    x = uint8_to_tensor(lr, device)

    def run(t):
        return forward_tiled(model, t, scale, tile, overlap)

    with torch.inference_mode():
        y = forward_ensemble(run, x) if self_ensemble else run(x)
    return tensor_to_uint8(y)
