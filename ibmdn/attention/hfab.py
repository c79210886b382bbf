"""HFAB, the high-frequency attention block of FMEN, with its re-parameterisable parts (RRRB, ERB).

Origin: Du et al., "Fast and Memory-Efficient Network Towards Efficient Image Super-Resolution",
NTIRE 2022 workshop (FMEN); official code github.com/NJU-Jet/FMEN (Apache-2.0). This is an
independent implementation written from the architecture described there; the IBMDN paper
(arXiv 2503.14779) uses HFAB as one of the attention choices of its Table III ablation.

Two forms of every block:

* **training form** (:class:`RRRB`, :class:`ERB`, :class:`HFAB`): over-parameterised, with BatchNorm;
* **deploy form** (``nn.Conv2d``, :class:`ERBDeploy`, :class:`HFABDeploy`): plain 3x3 convolutions,
  what FMEN's published ``test_weights.pt`` holds. ``block.reparameterize()`` (or the generic
  :func:`reparameterize` for a whole network) returns the deploy form; in eval mode it computes the
  same function as the training form (up to float rounding; checked to 1e-5 in the tests).

Blocks:

* ``RRRB(channels)``: residual-in-residual re-parameterisable block
  ``x + conv1x1_{2m->m}(conv3x3_{2m->2m}(e) + e)``, ``e = conv1x1_{m->2m}(x)``. The 3x3 runs on ``e``
  padded with the 1x1's bias (official trick). Here that padding is obtained by giving the expanding
  1x1 conv ``padding=1``: a 1x1 conv over a zero-padded input yields exactly its bias on the border,
  so no hand-written padding is needed, and the whole block equals one 3x3 conv with zero padding.
* ``ERB(channels)``: ``RRRB -> LeakyReLU(0.1) -> RRRB``.
* ``HFAB(channels, mid_channels=16, num_erb=1)``: ``BN(C) -> pad with the BN bias -> 3x3 C->m ->
  LeakyReLU -> ERB x num_erb -> LeakyReLU -> BN(m) -> pad with the BN bias -> 3x3 m->C -> BN(C) ->
  sigmoid -> multiply the input``. HFAB(64, 16, 1) has 39,440 parameters; its deploy form 23,152.

Interpretation kept from the official code (documented, not "fixed"): the border value used to pad
a BatchNorm output is BN(0) computed from the BN's *running* statistics, also in training mode
(where the interior is normalised with batch statistics). It is exactly what makes the eval-mode
block foldable into zero-padded convolutions; in training mode it is the official behaviour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ERB",
    "HFAB",
    "RRRB",
    "ERBDeploy",
    "HFABDeploy",
    "bn_scale_shift",
    "pad_with",
]

NEGATIVE_SLOPE = 0.1  # FMEN's LeakyReLU slope


def pad_with(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Pad ``x`` (N, C, H, W) by one pixel on each side with the per-channel constant ``value`` (C,)."""
    n, c, h, w = x.shape
    out = value.to(x.dtype).view(1, c, 1, 1).expand(n, c, h + 2, w + 2).clone()
    out[:, :, 1:-1, 1:-1] = x
    return out


def bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = scale * x + shift`` per channel (so ``shift`` = BN(0))."""
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


def _conv3x3(cin: int, cout: int, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=padding)


def _new_conv(weight: torch.Tensor, bias: torch.Tensor, like: nn.Conv2d) -> nn.Conv2d:
    """A zero-padded 3x3 conv holding ``weight``/``bias`` with ``like``'s dtype and device."""
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], padding=weight.shape[2] // 2)
    dtype, device = like.weight.dtype, like.weight.device
    conv.to(device=device, dtype=dtype)
    with torch.no_grad():
        conv.weight.copy_(weight.to(dtype))
        conv.bias.copy_(bias.to(dtype))
    return conv


def _fold_bn_before(weight, bias, bn: nn.BatchNorm2d):
    """Fold an eval-mode BN on the conv's *input* (padded with BN(0)) into the conv."""
    scale, shift = (t.double() for t in bn_scale_shift(bn))
    new_w = weight * scale.view(1, -1, 1, 1)
    new_b = bias + torch.einsum("oikl,i->o", weight, shift)
    return new_w, new_b


def _fold_bn_after(weight, bias, bn: nn.BatchNorm2d):
    """Fold an eval-mode BN on the conv's *output* into the conv."""
    scale, shift = (t.double() for t in bn_scale_shift(bn))
    return weight * scale.view(-1, 1, 1, 1), bias * scale + shift


class RRRB(nn.Module):
    """Residual-in-residual re-parameterisable block (training form of one 3x3 conv, C->C).

    Args:
        channels: input and output channels ``m``.
        ratio: expansion ratio of the inner width (``ratio * m``).
    """

    def __init__(self, channels: int, ratio: int = 2):
        super().__init__()
        mid = ratio * channels
        # padding=1 on a 1x1 conv puts its bias on the border: the official "pad with bias" trick
        self.conv_expand = nn.Conv2d(channels, mid, 1, padding=1)
        self.conv_feat = nn.Conv2d(mid, mid, 3, padding=0)
        self.conv_reduce = nn.Conv2d(mid, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.conv_expand(x)  # (H+2, W+2), border = bias
        out = self.conv_feat(e) + e[:, :, 1:-1, 1:-1]
        return self.conv_reduce(out) + x

    @torch.no_grad()
    def fused_weight_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) in float64 of the single 3x3 conv equal to this block."""
        w0 = self.conv_expand.weight.double()[:, :, 0, 0]  # (2m, m)
        b0 = self.conv_expand.bias.double()
        w1 = self.conv_feat.weight.double().clone()  # (2m, 2m, 3, 3)
        b1 = self.conv_feat.bias.double()
        w2 = self.conv_reduce.weight.double()[:, :, 0, 0]  # (m, 2m)
        b2 = self.conv_reduce.bias.double()
        mid, m = w0.shape
        idx = torch.arange(mid)
        w1[idx, idx, 1, 1] += 1.0  # inner identity
        weight = torch.einsum("oa,abkl,bi->oikl", w2, w1, w0)
        weight[torch.arange(m), torch.arange(m), 1, 1] += 1.0  # outer identity
        bias = w2 @ (w1.sum(dim=(2, 3)) @ b0 + b1) + b2
        return weight, bias

    def reparameterize(self, **_) -> nn.Conv2d:
        """The equivalent zero-padded 3x3 ``nn.Conv2d``."""
        return _new_conv(*self.fused_weight_bias(), like=self.conv_feat)


class ERB(nn.Module):
    """Enhanced residual block, training form: ``RRRB -> LeakyReLU(0.1) -> RRRB``.

    Args:
        channels: input and output channels.
        ratio: RRRB expansion ratio.
        negative_slope: LeakyReLU slope between the two RRRBs.
    """

    def __init__(self, channels: int, ratio: int = 2, negative_slope: float = NEGATIVE_SLOPE):
        super().__init__()
        self.negative_slope = negative_slope
        self.conv1 = RRRB(channels, ratio)
        self.conv2 = RRRB(channels, ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.leaky_relu(self.conv1(x), self.negative_slope))

    def reparameterize(self, **_) -> ERBDeploy:
        out = ERBDeploy(self.conv1.conv_reduce.out_channels, self.negative_slope)
        out.conv1 = self.conv1.reparameterize()
        out.conv2 = self.conv2.reparameterize()
        return out.train(self.training)


class ERBDeploy(nn.Module):
    """Enhanced residual block, deploy form: ``conv3x3 -> LeakyReLU(0.1) -> conv3x3``."""

    def __init__(self, channels: int, negative_slope: float = NEGATIVE_SLOPE):
        super().__init__()
        self.negative_slope = negative_slope
        self.conv1 = _conv3x3(channels, channels)
        self.conv2 = _conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.leaky_relu(self.conv1(x), self.negative_slope))


class HFAB(nn.Module):
    """High-frequency attention block, training form (with BatchNorm and RRRBs).

    Args:
        channels: input/output channels ``C``.
        mid_channels: width ``m`` of the attention branch.
        num_erb: number of ERBs in the branch.
        ratio: RRRB expansion ratio inside the ERBs.
        negative_slope: LeakyReLU slope.
    """

    def __init__(
        self,
        channels: int,
        mid_channels: int = 16,
        num_erb: int = 1,
        ratio: int = 2,
        negative_slope: float = NEGATIVE_SLOPE,
    ):
        super().__init__()
        self.negative_slope = negative_slope
        self.bn_in = nn.BatchNorm2d(channels)
        self.conv_squeeze = _conv3x3(channels, mid_channels, padding=0)  # input padded with BN(0)
        self.erbs = nn.Sequential(*(ERB(mid_channels, ratio, negative_slope) for _ in range(num_erb)))
        self.bn_mid = nn.BatchNorm2d(mid_channels)
        self.conv_excite = _conv3x3(mid_channels, channels, padding=0)  # input padded with BN(0)
        self.bn_out = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = pad_with(self.bn_in(x), bn_scale_shift(self.bn_in)[1])
        out = F.leaky_relu(self.conv_squeeze(out), self.negative_slope)
        out = F.leaky_relu(self.erbs(out), self.negative_slope)
        out = pad_with(self.bn_mid(out), bn_scale_shift(self.bn_mid)[1])
        out = torch.sigmoid(self.bn_out(self.conv_excite(out)))
        return out * x

    @torch.no_grad()
    def reparameterize(self, **_) -> HFABDeploy:
        """The equivalent :class:`HFABDeploy` (uses the BN running statistics, i.e. eval mode)."""
        cin, mid = self.conv_squeeze.in_channels, self.conv_squeeze.out_channels
        out = HFABDeploy(cin, mid, num_erb=0, negative_slope=self.negative_slope)
        w, b = _fold_bn_before(self.conv_squeeze.weight.double(), self.conv_squeeze.bias.double(), self.bn_in)
        out.conv_squeeze = _new_conv(w, b, like=self.conv_squeeze)
        out.erbs = nn.Sequential(*(erb.reparameterize() for erb in self.erbs))
        w, b = _fold_bn_before(self.conv_excite.weight.double(), self.conv_excite.bias.double(), self.bn_mid)
        w, b = _fold_bn_after(w, b, self.bn_out)
        out.conv_excite = _new_conv(w, b, like=self.conv_excite)
        return out.train(self.training)


class HFABDeploy(nn.Module):
    """High-frequency attention block, deploy form (FMEN's test form: plain zero-padded 3x3 convs).

    ``x * sigmoid(conv(lrelu(ERBs(lrelu(conv(x))))))`` with an outer LeakyReLU after the ERBs.

    Args:
        channels: input/output channels ``C``.
        mid_channels: width ``m`` of the attention branch.
        num_erb: number of (deploy) ERBs in the branch.
        negative_slope: LeakyReLU slope.
    """

    def __init__(
        self, channels: int, mid_channels: int = 16, num_erb: int = 1, negative_slope: float = NEGATIVE_SLOPE
    ):
        super().__init__()
        self.negative_slope = negative_slope
        self.conv_squeeze = _conv3x3(channels, mid_channels)
        self.erbs = nn.Sequential(*(ERBDeploy(mid_channels, negative_slope) for _ in range(num_erb)))
        self.conv_excite = _conv3x3(mid_channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv_squeeze(x), self.negative_slope)
        out = F.leaky_relu(self.erbs(out), self.negative_slope)
        return torch.sigmoid(self.conv_excite(out)) * x
