"""Contrast-aware channel attention (CCA), from IMDN (Hui et al., ACM MM 2019).

Per-channel contrast (standard deviation over H x W) plus per-channel mean -> 1x1 C -> C//r (bias) ->
ReLU -> 1x1 C//r -> C (bias) -> sigmoid -> rescale the input. r=16: 580 parameters at 64 channels;
r=4: 2,128. ``conv_du`` keeps the official sub-module indices (0 and 2) so checkpoints load unchanged.

Attention blocks that reduce their input over the whole image have inference forms derived from
:class:`GlobalStatistic`, whose statistic can be supplied from outside (exact tiled inference).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ibmdn.ops.reparam import InferenceOnly


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

    def reparameterize(self, **_) -> FusedCCA:
        """The inference form: the same arithmetic, with the image statistic injectable."""
        return FusedCCA(self)


class GlobalStatistic(InferenceOnly):
    """Base of the inference forms of attention blocks that reduce their input over the whole image.

    ``stats_hook`` (default None: compute ``contrast_and_mean(x)``) lets a caller supply or collect the
    statistic, which is what exact tiled inference needs (:func:`ibmdn.inference.tiled_exact`): a tile
    sees only part of the image, so the image's statistic is gathered in a first pass over the tiles
    and injected in the second.
    """

    stats_hook = None

    def global_stats(self, x: torch.Tensor) -> torch.Tensor:
        hook = self.stats_hook
        return contrast_and_mean(x) if hook is None else hook(self, x)


class FusedCCA(GlobalStatistic):
    """:class:`CCA` (unchanged arithmetic) with the :class:`GlobalStatistic` hook."""

    def __init__(self, m: CCA):
        super().__init__()
        self.conv_du = copy.deepcopy(m.conv_du)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.global_stats(x))
