"""Blueprint separable convolutions (Haase & Amthor, CVPR 2020, "Rethinking Depthwise Separable Convolutions").

* :class:`BSConvU` (unconstrained): pointwise 1x1 ``in -> out`` (no bias) then depthwise KxK (bias).
  The reverse order of a depthwise-separable convolution. 64->64, K3: 4,736 parameters.
* :class:`BSConvS` (subspace): pointwise ``in -> M'`` and ``M' -> out`` (no bias), then depthwise KxK
  (bias), ``M' = min(in, max(min_mid, ceil(p * in)))`` with ``p = 0.25``. 48->48: 1,632 parameters.
  Its paper regularises the first pointwise weight towards orthonormal rows,
  ``alpha * ||W W^T - I||_F`` (alpha 0.1): :meth:`BSConvS.orthonormal_loss` returns the unweighted norm
  for the trainer to weight.

Both take ``nn.Conv2d``'s signature so that any operator can stand in any block. Sub-module names
(``pw``, ``pw1``, ``pw2``, ``dw``) follow the official BSRN / DepthIBN checkpoints so that converters
are identities.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _same_padding(kernel_size: int, padding: int | None) -> int:
    return kernel_size // 2 if padding is None else padding


class BSConvU(nn.Module):
    """Pointwise then depthwise convolution (BSConv-U)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, bias: bool = True):
        super().__init__()
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.dw = nn.Conv2d(out_channels, out_channels, kernel_size, stride,
                            _same_padding(kernel_size, padding), groups=out_channels, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dw(self.pw(x))


class BSConvS(nn.Module):
    """Pointwise -> pointwise (through a low-rank subspace) -> depthwise convolution (BSConv-S)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, bias: bool = True, p: float = 0.25, min_mid_channels: int = 4):
        super().__init__()
        mid = min(in_channels, max(min_mid_channels, math.ceil(p * in_channels)))
        self.pw1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.pw2 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.dw = nn.Conv2d(out_channels, out_channels, kernel_size, stride,
                            _same_padding(kernel_size, padding), groups=out_channels, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dw(self.pw2(self.pw1(x)))

    def orthonormal_loss(self) -> torch.Tensor:
        """``||W W^T - I||_F`` of the first pointwise weight (rows = subspace basis)."""
        w = self.pw1.weight.flatten(1)
        return torch.linalg.matrix_norm(w @ w.t() - torch.eye(w.shape[0], device=w.device, dtype=w.dtype))


def bsconv_s_regularizer(module: nn.Module) -> torch.Tensor:
    """Sum of :meth:`BSConvS.orthonormal_loss` over every BSConv-S in ``module`` (0 if none)."""
    losses = [m.orthonormal_loss() for m in module.modules() if isinstance(m, BSConvS)]
    if not losses:
        return torch.zeros(())
    return torch.stack(losses).sum()
