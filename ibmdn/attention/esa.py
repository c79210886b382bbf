"""Enhanced spatial attention (ESA), from RFASR/RFDN (Liu et al., 2020), and its BSRN form.

RFDN form (``mid_channels = C // 4``, plain convs, ReLU): 1x1 C->f; 3x3 stride 2 (no padding);
7x7/3 max-pool; 3x3 + ReLU; 3x3 + ReLU; 3x3; bilinear back to the input size; + 1x1 f->f of the
first 1x1's output; 1x1 f->C; sigmoid; multiply. 6,650 parameters at 50 channels, 11,680 at 64.

BSRN form (Li et al., CVPRW 2022): ``mid_channels=16``, the four 3x3 convs are BSConv-U and the
activation is GELU: 4,064 parameters at 64 channels. Sub-module names follow both official codes
(``conv1, conv_f, conv_max, conv2, conv3, conv3_, conv4``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ibmdn.ops import make_op


class ESA(nn.Module):
    """Enhanced spatial attention; ``op`` is the code of the 3x3 operator ("C" or "Bs")."""

    def __init__(self, channels: int, mid_channels: int | None = None, op: str = "C", activation: str = "relu"):
        super().__init__()
        f = mid_channels or channels // 4
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv_max = make_op(op, f, f, 3)
        stride2 = make_op(op, f, f, 3)
        # the strided 3x3 has no padding (the original's choice); adjust the last conv of the operator
        last = stride2 if isinstance(stride2, nn.Conv2d) else stride2.dw
        last.stride, last.padding = (2, 2), (0, 0)
        self.conv2 = stride2
        self.conv3 = make_op(op, f, f, 3)
        self.conv3_ = make_op(op, f, f, 3)
        self.conv4 = nn.Conv2d(f, channels, 1)
        self.act = {"relu": nn.ReLU(inplace=True), "gelu": nn.GELU()}[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1_ = self.conv1(x)
        c1 = F.max_pool2d(self.conv2(c1_), kernel_size=7, stride=3)
        c3 = self.act(self.conv_max(c1))
        c3 = self.conv3_(self.act(self.conv3(c3)))
        c3 = F.interpolate(c3, size=x.shape[2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))
