"""The distillation-network skeleton shared by IMDN, RFDN, BSRN, DepthIBN and the paper's variants.

    F0  = conv_first(x)                       (BSRN first repeats the RGB input to 12 channels)
    Fk  = blocks[k](F_{k-1})                  k = 1..n
    F   = conv_after_body(fuse(cat(F1..Fn))) + F0      fuse = 1x1 conv + activation
    out = upsample(F)                         3x3 conv C -> 3 s^2, pixel shuffle

which is the paper's equations (1)-(4). Names follow BasicSR (conv_first, blocks, fuse,
conv_after_body, upsample); converters map the official checkpoints' names onto them.
"""

from __future__ import annotations

import copy
import re

import torch
from torch import nn

from ibmdn.models.blocks import FusedRFDB, make_activation
from ibmdn.ops import make_op
from ibmdn.ops.reparam import InferenceOnly, reparameterized


class DistillationSR(nn.Module):
    """Shallow conv -> n distillation blocks -> fusion + global skip -> pixel-shuffle upsampler.

    Args:
        scale: upscaling factor.
        channels: feature width C.
        blocks: the n blocks (each C -> C), built by the caller from its depth pattern.
        head_op / tail_op: operator codes of ``conv_first`` and ``conv_after_body`` ("C" or "Bs").
        fuse_activation: activation after the 1x1 fusion ("lrelu" IMDN/RFDN, "gelu" BSRN).
        input_repeat: concatenate the input with itself this many times before ``conv_first`` (BSRN: 4).
        in_channels / out_channels: image channels.
    """

    def __init__(self, scale: int, channels: int, blocks: list[nn.Module], head_op: str = "C", tail_op: str = "C",
                 fuse_activation: str = "lrelu", input_repeat: int = 1, in_channels: int = 3, out_channels: int = 3,
                 bsconv: str = "u"):
        super().__init__()
        self.input_repeat = input_repeat
        self.conv_first = make_op(head_op, in_channels * input_repeat, channels, 3, bsconv=bsconv)
        self.blocks = nn.ModuleList(blocks)
        self.fuse = nn.Sequential(nn.Conv2d(channels * len(blocks), channels, 1), make_activation(fuse_activation))
        self.conv_after_body = make_op(tail_op, channels, channels, 3, bsconv=bsconv)
        self.upsample = nn.Sequential(nn.Conv2d(channels, out_channels * scale * scale, 3, padding=1),
                                      nn.PixelShuffle(scale))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The block outputs F1..Fn (for visualisation and feature studies)."""
        if self.input_repeat > 1:
            x = torch.cat([x] * self.input_repeat, dim=1)
        out = [self.conv_first(x)]
        for block in self.blocks:
            out.append(block(out[-1]))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.features(x)
        body = self.conv_after_body(self.fuse(torch.cat(feats[1:], dim=1))) + feats[0]
        return self.upsample(body)

    def reparameterize(self, **opts) -> FusedDistillationSR:
        """The inference form: blocks re-parameterised, the global fusion computed incrementally."""
        return FusedDistillationSR(self, **opts)


class FusedDistillationSR(InferenceOnly):
    """:class:`DistillationSR` for inference, with the global fusion computed incrementally.

    ``fuse(cat(F1..Fn))`` is ``sum_k W_k F_k + b``: each block output is projected as soon as it exists
    and then dropped, instead of keeping n feature maps and an ``n*C``-channel concatenation alive until
    the end (peak memory). When block k+1 is a :class:`~ibmdn.models.blocks.FusedRFDB`, the projection of
    ``F_k`` is stacked into that block's first 1x1 conv, which reads the same tensor.
    """

    def __init__(self, m: DistillationSR, **opts):
        super().__init__()
        self.input_repeat = m.input_repeat
        self.conv_first = reparameterized(copy.deepcopy(m.conv_first), **opts)
        fuse_conv = m.fuse[0]
        n = len(m.blocks)
        w = fuse_conv.weight.detach()
        if w.shape[1] % n:
            raise ValueError("fusion conv input is not n equal slices")
        c = w.shape[1] // n
        blocks = [reparameterized(copy.deepcopy(blk), **opts) for blk in m.blocks]
        self.fuse_separate = nn.ModuleList()
        self.projected_by_next = []
        for k in range(n):
            wk = w[:, k * c:(k + 1) * c]
            if k + 1 < n and isinstance(blocks[k + 1], FusedRFDB):
                blocks[k + 1].add_input_projection(wk)
                self.projected_by_next.append(True)
                self.fuse_separate.append(nn.Identity())
            else:
                conv = nn.Conv2d(c, w.shape[0], 1, bias=False).to(w.device)
                conv.weight.data.copy_(wk)
                self.projected_by_next.append(False)
                self.fuse_separate.append(conv)
        self.blocks = nn.ModuleList(blocks)
        self.fuse_bias = nn.Parameter(fuse_conv.bias.detach().clone().view(1, -1, 1, 1), requires_grad=False) \
            if fuse_conv.bias is not None else None
        self.fuse_act = copy.deepcopy(m.fuse[1])
        self.conv_after_body = reparameterized(copy.deepcopy(m.conv_after_body), **opts)
        self.upsample = copy.deepcopy(m.upsample)
        for attr in ("model_name", "scale", "checkpoint"):
            if hasattr(m, attr):
                setattr(self, attr, getattr(m, attr))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_repeat > 1:
            x = torch.cat([x] * self.input_repeat, dim=1)
        f0 = self.conv_first(x)
        h = f0
        acc = None
        for k, blk in enumerate(self.blocks):
            if k > 0 and self.projected_by_next[k - 1]:
                h, acc = blk(h, acc)  # adds the projection of its input F_{k-1} to acc
            else:
                h = blk(h)
            if not self.projected_by_next[k]:
                p = self.fuse_separate[k](h)
                acc = p if acc is None else acc.add_(p)
        if self.fuse_bias is not None:
            acc = acc + self.fuse_bias
        body = self.conv_after_body(self.fuse_act(acc)) + f0
        return self.upsample(body)


def convert_distillation(sd: dict[str, torch.Tensor], block_prefix: str, block_rules: list[tuple[str, str]],
                         fuse: str = "c", tail: str = "LR_conv", upsample: str = r"upsampler\.(upsampleOneStep\.)?",
                         ) -> dict[str, torch.Tensor]:
    """Map an IMDN/RFDN/BSRN-family official state dict onto :class:`DistillationSR`'s names.

    ``block_prefix`` is the numbered block name (``IMDB`` or ``B``, numbered from 1); ``block_rules`` are
    regex substitutions applied to the part of a block key after ``blocks.<i>.``.
    """
    out = {}
    for key, value in sd.items():
        m = re.match(rf"^{block_prefix}(\d+)\.(.*)$", key)
        if m:
            inner = m.group(2)
            for pat, rep in block_rules:
                inner = re.sub(pat, rep, inner)
            key = f"blocks.{int(m.group(1)) - 1}.{inner}"
        else:
            for pat, rep in [(r"^fea_conv\.", "conv_first."), (rf"^{fuse}\.(0\.)?", "fuse.0."),
                             (rf"^{tail}\.", "conv_after_body."), (rf"^{upsample}", "upsample.")]:
                key = re.sub(pat, rep, key)
        out[key] = value
    return out
