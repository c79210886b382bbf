"""Contrast-aware channel attention (CCA), from IMDN (Hui et al., ACM MM 2019).

Per-channel contrast (standard deviation over H x W) plus per-channel mean -> 1x1 C -> C//r (bias) ->
ReLU -> 1x1 C//r -> C (bias) -> sigmoid -> rescale the input. r=16: 580 parameters at 64 channels;
r=4: 2,128. ``conv_du`` keeps the official sub-module indices (0 and 2) so checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def contrast_and_mean(x: torch.Tensor) -> torch.Tensor:
    """``std(x) + mean(x)`` per channel over H x W (population std, as IMDN), shape (B, C, 1, 1)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
    return std + mean


class CCA(nn.Module):
    """Contrast-aware channel attention with reduction ``reduction``."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        mid = max(1, channels // reduction)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, mid, 1), nn.ReLU(inplace=True), nn.Conv2d(mid, channels, 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(contrast_and_mean(x))
