"""Inference-time re-parameterisation: :func:`fuse_for_inference` returns an equivalent, eval-only network.

Each rewrite is a ``reparameterize()`` method of the module that owns the weights (the RepVGG /
MobileOne pattern): :meth:`Involution2d.reparameterize <ibmdn.ops.involution.Involution2d.reparameterize>`,
:meth:`CCA.reparameterize <ibmdn.attention.cca.CCA.reparameterize>`,
:meth:`CHFAB.reparameterize <ibmdn.attention.chfab.CHFAB.reparameterize>`,
:meth:`RFDB.reparameterize <ibmdn.models.blocks.RFDB.reparameterize>` and
:meth:`DistillationSR.reparameterize <ibmdn.models.skeleton.DistillationSR.reparameterize>`; the shared
algebra (BatchNorm folding, 1x1 stacking) is :mod:`ibmdn.ops.reparam`. This module walks a network and
applies them.

Every rewrite below is an exact algebraic identity of the eval-mode network (BatchNorm uses its running
statistics); only the floating-point summation order changes, so outputs agree with the original to
float rounding (the tests require 1e-5). The rewrites target what the profile of ``ibmdn`` on CPU shows
(``ibmdn bench --profile``): an eager forward pass of IBMDN is some 150 small convolutions and hundreds of
elementwise passes over 50-channel maps, and their count, not its multiply-adds, limits it.

1. **BatchNorm folding.** BN after a conv is folded into that conv (weight scaled per output channel,
   bias shifted): the involution kernel generator's ``conv1 -> BN`` and CHFAB's ``tail.dw -> bn_out``.
   BN *before* a 1x1 conv (no padding, so the affine map commutes exactly) is folded into the conv:
   CHFAB's ``bn_in -> head.pw`` and ``bn_mid -> tail.pw``. Eval only: training needs the batch statistics.
2. **Shared-input 1x1 convs merged.** Inside an RFDB-style block the i-th distillation 1x1 and the first
   1x1 of the i-th refinement operator read the same tensor (BSConv's pointwise conv, the involution's
   kernel-generator conv): their weights are stacked into one conv and the output is split by channels
   (a channel slice of a batch-1 NCHW tensor is a free view).
3. **BSConv-S's two pointwise convs merged** (``merge_bsconv_s``, off by default): ``pw2 @ pw1`` is one
   ``C -> C`` 1x1: one pass instead of two, but more multiply-adds per pixel (C^2 instead of 2 C M, M the
   bottleneck width: 2,500 instead of 1,300 at 50 channels). The 1x1 convolutions are compute-bound on CPU, so
   the merged form is slower there (``ibmdn bench`` measures both).
4. **CHFAB head merged into the block's fusion conv** (``merge_chfab_head``): the 1x1 fusion
   ``100 -> 50`` and CHFAB's (BN-folded) head pointwise ``50 -> 16`` compose to one ``100 -> 66`` conv.
5. **Global fusion computed incrementally.** ``fuse(cat(F1..Fn))`` is ``sum_k W_k F_k + b``: each block
   output is projected as soon as it exists and then dropped, instead of keeping n feature maps and a
   ``n*C``-channel concatenation alive until the end (peak memory), and the projection of ``F_k`` is
   stacked into block k+1's first merged 1x1 (rewrite 2) when that block is an RFDB. In eager mode the
   block's four distilled parts are also written straight into the fusion conv's input buffer (no
   ``torch.cat`` copy, and no view keeps a stacked conv output alive); ``ibmdn bench`` reports the
   peak activation memory of each form.
6. **Global statistics made injectable**: CHFAB and CCA become
   :class:`~ibmdn.attention.cca.GlobalStatistic` modules whose
   image-wide contrast + mean can be supplied from outside (exact tiled inference, :mod:`ibmdn.upscale`).
7. **Involution application** uses the shift-and-accumulate form (``impl="shift"``, see
   :mod:`ibmdn.ops.involution`); ``impl`` can still be switched with :func:`set_involution_impl`.

Not done, because it is not cheaper here: merging BSConv's pointwise and depthwise convs into one dense
KxK conv (50 -> 16 at K=3: 944 -> 7,200 multiply-adds per pixel; 50 -> 50: 2,950 -> 22,500), and
folding the 3x3 ``conv_after_body`` into the upsampler's 3x3 (not exact at the border, and a 5x5 conv
costs more than the two 3x3s).

The parameter count of a fused network is not the architecture's (merged convs hold products of
weights); report the original model's parameters and multiply-adds.

Supported: every :class:`~ibmdn.models.skeleton.DistillationSR` (IMDN, RFDN, BSRN, DepthIBN, IBMDN and
the paper's variants) gets rewrite 5; RFDB blocks (IBMDB, ESDB) get all rewrites, other blocks (IMDB)
keep their structure with 1, 6 and 7 applied inside. Other networks are returned as an eval-mode copy
with 1, 6 and 7 applied wherever an involution, CHFAB or CCA occurs. Strided involutions are kept as
:class:`~ibmdn.ops.involution.Involution2d`. Merged weights are computed in float64 and stored in the
model's dtype.
"""

from __future__ import annotations

import copy

from torch import nn

from ibmdn.attention.cca import GlobalStatistic
from ibmdn.ops.involution import IMPLS
from ibmdn.ops.reparam import InferenceOnly, reparameterized

__all__ = ["GlobalStatistic", "fuse_for_inference"]


def _refuse_train(self, mode: bool = True):
    """Eval-only (for a network whose top module has no inference form of its own)."""
    if mode:
        raise RuntimeError("a network returned by fuse_for_inference is inference-only; train the original")
    return nn.Module.train(self, False)


def fuse_for_inference(model: nn.Module, *, impl: str | None = "shift", merge_bsconv_s: bool = False,
                       merge_chfab_head: bool = True) -> nn.Module:
    """An eval-only copy of ``model`` with the rewrites of the module docstring applied.

    Args:
        model: any network of the package (not modified).
        impl: involution application in the fused network (``None``: keep each module's own).
        merge_bsconv_s: merge BSConv-S's two pointwise convs (rewrite 3).
        merge_chfab_head: stack CHFAB's head pointwise into the block fusion conv (rewrite 4).

    Returns:
        a module equal to ``model.eval()`` within float rounding; ``train(True)`` raises, parameters do
        not require gradients.
    """
    if impl is not None and impl not in IMPLS:
        raise ValueError(f"impl must be one of {sorted(IMPLS)} or None, got {impl!r}")
    import torch

    with torch.no_grad():
        fused = reparameterized(copy.deepcopy(model).eval(), impl=impl, merge_bsconv_s=merge_bsconv_s,
                                        merge_chfab_head=merge_chfab_head)
    fused.eval()
    fused.requires_grad_(False)
    if not isinstance(fused, InferenceOnly):
        fused.train = _refuse_train.__get__(fused)  # type: ignore[method-assign]
    fused.fused_for_inference = True  # type: ignore[attr-defined]
    for attr in ("model_name", "scale", "checkpoint"):
        if hasattr(model, attr) and not hasattr(fused, attr):
            setattr(fused, attr, getattr(model, attr))
    return fused
