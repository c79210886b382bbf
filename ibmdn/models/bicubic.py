"""``bicubic``: the parameter-free baseline row of every SR table, run through the same evaluation code.

Upscaling is MATLAB's ``imresize(LR, s, 'bicubic')`` (:func:`ibmdn.data.imresize.imresize_torch`). The
published baseline was computed by MATLAB on ``uint8`` images, which rounds to the 8-bit grid after the
row pass; ``quantize=True`` (default) reproduces that, ``quantize=False`` keeps float precision between
the passes (differences of a few thousandths of a dB). The model has no parameters and no buffers:
its weight matrices are built on the input's device and dtype at each call (cached as numpy).
"""

from __future__ import annotations

import torch
from torch import nn

from ibmdn.data.imresize import imresize_torch
from ibmdn.models.registry import register_model


class Bicubic(nn.Module):
    """MATLAB bicubic upscaling by ``scale`` of float [0, 1] ``NCHW`` tensors."""

    def __init__(self, scale: int, quantize: bool = True):
        super().__init__()
        self.scale = scale
        self.quantize = quantize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize_torch(x, float(self.scale), quantize=self.quantize)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, quantize={self.quantize}"


@register_model("bicubic", scales=(2, 3, 4), family="bicubic")
def bicubic(scale: int, quantize: bool = True) -> nn.Module:
    """MATLAB bicubic interpolation (no parameters): the baseline of every table."""
    return Bicubic(scale, quantize=quantize)
