"""Inference re-parameterisation: the algebra shared by the blocks' ``reparameterize()`` methods.

A module that can be rewritten into a cheaper, eval-only equivalent owns that rewrite as a method,
``reparameterize(*, impl=None, merge_bsconv_s=False, merge_chfab_head=True, **_)``, which returns a new
module (the original is left unchanged) equal to the original in eval mode within float rounding; options
that do not concern a module are ignored by it. :func:`reparameterized` and :func:`reparameterize_children`
walk a network and call the method wherever it exists;
:func:`ibmdn.fuse.fuse_for_inference` is the user-facing entry point (it lists the rewrites).

Every merged weight is computed in float64 and stored in the original conv's dtype and device.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["InferenceOnly", "bn_affine", "conv_bias", "conv_weight", "fold_bn_after", "fold_bn_before", "is_1x1",
           "reparameterize_children", "reparameterized", "stack_1x1"]


def bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = s * x + t`` per channel: returns ``(s, t)`` in float64."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    s = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        s = s * bn.weight.double()
    t = -bn.running_mean.double() * s
    if bn.bias is not None:
        t = t + bn.bias.double()
    return s, t


def conv_weight(conv: nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().double()


def conv_bias(conv: nn.Conv2d) -> torch.Tensor:
    """The conv's bias in float64 (zeros when it has none)."""
    if conv.bias is None:
        return torch.zeros(conv.out_channels, dtype=torch.float64, device=conv.weight.device)
    return conv.bias.detach().double()


def _conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
    """A conv with ``conv``'s geometry (stride, padding, groups...) holding ``weight`` and ``bias``."""
    out = nn.Conv2d(weight.shape[1] * conv.groups, weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=bias is not None, padding_mode=conv.padding_mode)
    dtype = conv.weight.dtype
    out.weight.data.copy_(weight.to(dtype))
    if bias is not None:
        out.bias.data.copy_(bias.to(dtype))
    return out.to(conv.weight.device)


def fold_bn_after(conv: nn.Conv2d, bn: nn.BatchNorm2d | nn.Identity) -> nn.Conv2d:
    """A conv equal to ``bn(conv(x))`` in eval mode (a copy of ``conv`` when ``bn`` is an ``nn.Identity``)."""
    if isinstance(bn, nn.Identity):
        return copy.deepcopy(conv)
    s, t = bn_affine(bn)
    w = conv_weight(conv) * s.view(-1, 1, 1, 1)
    b = t if conv.bias is None else conv_bias(conv) * s + t
    return _conv_like(conv, w, b)


def fold_bn_before(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> nn.Conv2d:
    """A conv equal to ``conv(bn(x))`` in eval mode; ``conv`` must be an ungrouped 1x1 without padding
    (then the per-channel affine map commutes exactly with it, also at the border)."""
    if not is_1x1(conv):
        raise ValueError("BatchNorm can be folded forward only into an ungrouped 1x1 conv without padding")
    s, t = bn_affine(bn)
    w = conv_weight(conv)
    b = w[:, :, 0, 0] @ t + conv_bias(conv)
    return _conv_like(conv, w * s.view(1, -1, 1, 1), b)


def stack_1x1(parts: list[tuple[torch.Tensor, torch.Tensor]], like: nn.Conv2d) -> nn.Conv2d:
    """One 1x1 conv whose output is the channel concatenation of the given (weight, bias) 1x1 convs."""
    w = torch.cat([p[0] for p in parts], 0)
    b = torch.cat([p[1] for p in parts], 0)
    conv = nn.Conv2d(w.shape[1], w.shape[0], 1, bias=True)
    conv.weight.data.copy_(w.to(like.weight.dtype))
    conv.bias.data.copy_(b.to(like.weight.dtype))
    return conv.to(like.weight.device)


def is_1x1(conv: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.groups == 1
            and conv.stride == (1, 1) and tuple(conv.padding) == (0, 0))


class InferenceOnly(nn.Module):
    """Base of the re-parameterised modules: folded BatchNorms have no batch statistics to train with."""

    def train(self, mode: bool = True):
        if mode:
            raise RuntimeError("a re-parameterised module is inference-only; train the original network")
        return super().train(False)


def reparameterized(module: nn.Module, **opts) -> nn.Module:
    """``module.reparameterize(**opts)`` if it has one, else ``module`` with its children re-parameterised
    (:func:`reparameterize_children`). Call it on a copy: modules without the method are modified in place."""
    if callable(getattr(module, "reparameterize", None)):
        return module.reparameterize(**opts)
    return reparameterize_children(module, **opts)


def reparameterize_children(module: nn.Module, **opts) -> nn.Module:
    """In place: each child of ``module`` replaced by :func:`reparameterized` of it; returns ``module``."""
    for name, child in list(module.named_children()):
        new = reparameterized(child, **opts)
        if new is not child:
            setattr(module, name, new)
    return module
