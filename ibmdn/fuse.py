"""Inference-time re-parameterisation: :func:`fuse_for_inference` returns an equivalent, eval-only network.

Every rewrite below is an exact algebraic identity of the eval-mode network (BatchNorm uses its running
statistics); only the floating-point summation order changes, so outputs agree with the original to
~1e-6 in fp32 (the tests require 1e-5). The rewrites target what the profile of ``ibmdn`` on CPU shows
(``ibmdn bench --profile``): an eager forward pass of IBMDN is ~150 small convolutions and ~500
elementwise passes over 50-channel maps; its 2.7 G multiply-adds at LR 128x128 (x4) are not what
limits it.

1. **BatchNorm folding.** BN after a conv is folded into that conv (weight scaled per output channel,
   bias shifted): the involution kernel generator's ``conv1 -> BN`` and CHFAB's ``tail.dw -> bn_out``.
   BN *before* a 1x1 conv (no padding, so the affine map commutes exactly) is folded into the conv:
   CHFAB's ``bn_in -> head.pw`` and ``bn_mid -> tail.pw``. Eval only: training needs the batch statistics.
2. **Shared-input 1x1 convs merged.** Inside an RFDB-style block the i-th distillation 1x1 and the first
   1x1 of the i-th refinement operator read the same tensor (BSConv's pointwise conv, the involution's
   kernel-generator conv): their weights are stacked into one conv and the output is split by channels
   (a channel slice of a batch-1 NCHW tensor is a free view).
3. **BSConv-S's two pointwise convs merged** (``merge_bsconv_s``, off by default): ``pw2 @ pw1`` is one
   ``C -> C`` 1x1: one pass instead of two, but more multiply-adds (2,500 vs 1,300 per pixel at 50
   channels; IBMDN at LR 128x128: 3.00 G instead of 2.76 G). The 1x1 convolutions are compute-bound on
   CPU (~30 G multiply-adds/s per core), and the merged form measured ~5-8 % slower there.
4. **CHFAB head merged into the block's fusion conv** (``merge_chfab_head``): the 1x1 fusion
   ``100 -> 50`` and CHFAB's (BN-folded) head pointwise ``50 -> 16`` compose to one ``100 -> 66`` conv.
5. **Global fusion computed incrementally.** ``fuse(cat(F1..Fn))`` is ``sum_k W_k F_k + b``: each block
   output is projected as soon as it exists and then dropped, instead of keeping n feature maps and a
   ``n*C``-channel concatenation alive until the end (peak memory), and the projection of ``F_k`` is
   stacked into block k+1's first merged 1x1 (rewrite 2) when that block is an RFDB. In eager mode the
   block's four distilled parts are also written straight into the fusion conv's input buffer (no
   ``torch.cat`` copy, and no view keeps a stacked conv output alive): IBMDN's peak activation memory
   at LR 128x128 falls from 89 MiB (unfold reference) / 63 MiB (shift) to 38 MiB.
6. **Global statistics made injectable**: CHFAB and CCA become :class:`GlobalStatistic` modules whose
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

import torch
import torch.nn.functional as F
from torch import nn

from ibmdn.attention.cca import CCA, contrast_and_mean
from ibmdn.attention.chfab import CHFAB
from ibmdn.models.blocks import RFDB
from ibmdn.models.skeleton import DistillationSR
from ibmdn.ops.bsconv import BSConvS, BSConvU
from ibmdn.ops.involution import IMPLS, Involution2d

__all__ = ["FusedCCA", "FusedCHFAB", "FusedDistillationSR", "FusedInvolution", "FusedRFDB", "GlobalStatistic",
           "bn_affine", "fold_bn_after", "fold_bn_before", "fuse_for_inference"]


# --------------------------------------------------------------------------------------------- algebra


def bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = s * x + t`` per channel: returns ``(s, t)``."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    s = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        s = s * bn.weight.double()
    t = -bn.running_mean.double() * s
    if bn.bias is not None:
        t = t + bn.bias.double()
    return s, t


def _conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
    out = nn.Conv2d(weight.shape[1] * conv.groups, weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=bias is not None, padding_mode=conv.padding_mode)
    dtype = conv.weight.dtype
    out.weight.data.copy_(weight.to(dtype))
    if bias is not None:
        out.bias.data.copy_(bias.to(dtype))
    return out.to(conv.weight.device)


def fold_bn_after(conv: nn.Conv2d, bn: nn.BatchNorm2d | nn.Identity) -> nn.Conv2d:
    """A conv equal to ``bn(conv(x))`` in eval mode (a copy of ``conv`` when ``bn`` is an ``nn.Identity``,
    e.g. CHFAB built with ``sigmoid_bn=False``)."""
    if isinstance(bn, nn.Identity):
        return copy.deepcopy(conv)
    s, t = bn_affine(bn)
    w = conv.weight.double() * s.view(-1, 1, 1, 1)
    b = t if conv.bias is None else conv.bias.double() * s + t
    return _conv_like(conv, w, b)


def fold_bn_before(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> nn.Conv2d:
    """A conv equal to ``conv(bn(x))`` in eval mode; ``conv`` must be an ungrouped 1x1 without padding."""
    if conv.kernel_size != (1, 1) or conv.groups != 1 or tuple(conv.padding) != (0, 0):
        raise ValueError("BatchNorm can be folded forward only into an ungrouped 1x1 conv without padding")
    s, t = bn_affine(bn)
    w = conv.weight.double()
    b = w[:, :, 0, 0] @ t
    if conv.bias is not None:
        b = b + conv.bias.double()
    return _conv_like(conv, w * s.view(1, -1, 1, 1), b)


def _w(conv: nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().double()


def _b(conv: nn.Conv2d) -> torch.Tensor:
    if conv.bias is None:
        return torch.zeros(conv.out_channels, dtype=torch.float64, device=conv.weight.device)
    return conv.bias.detach().double()


def _stack_1x1(parts: list[tuple[torch.Tensor, torch.Tensor]], like: nn.Conv2d) -> nn.Conv2d:
    """One 1x1 conv whose output is the channel concatenation of the given (weight, bias) 1x1 convs."""
    w = torch.cat([p[0] for p in parts], 0)
    b = torch.cat([p[1] for p in parts], 0)
    conv = nn.Conv2d(w.shape[1], w.shape[0], 1, bias=True)
    conv.weight.data.copy_(w.to(like.weight.dtype))
    conv.bias.data.copy_(b.to(like.weight.dtype))
    return conv.to(like.weight.device)


def _is_1x1(conv: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.groups == 1
            and conv.stride == (1, 1) and tuple(conv.padding) == (0, 0))


# -------------------------------------------------------------------------------------------- modules


class FusedInvolution(nn.Module):
    """Involution with the kernel generator's BatchNorm folded into its first 1x1 (stride 1 only).

    ``hidden = gen1(x)`` (C -> C/r, bias), ``kernel = gen2(relu(norm(hidden)))`` (``norm`` is the identity
    for a BatchNorm generator, folded, and the LayerNorm of ``norm="ln"``) (C/r -> K^2 G), then the
    per-pixel application by ``impl``. :meth:`apply_hidden` takes a precomputed ``hidden`` (when
    ``gen1`` is stacked into a shared 1x1 conv).
    """

    is_involution = True  # :func:`ibmdn.ops.involution.set_involution_impl` switches it too

    def __init__(self, inv: Involution2d, impl: str | None = None):
        super().__init__()
        if inv.stride != 1:
            raise ValueError("FusedInvolution supports stride 1 only")
        self.channels, self.kernel_size, self.groups = inv.channels, inv.kernel_size, inv.groups
        self.impl = impl or inv.impl
        if isinstance(inv.bn1, nn.BatchNorm2d):
            self.gen1, self.norm = fold_bn_after(inv.conv1, inv.bn1), nn.Identity()
        else:  # per-pixel LayerNorm or none: nothing to fold
            self.gen1, self.norm = copy.deepcopy(inv.conv1), copy.deepcopy(inv.bn1)
        self.gen2 = copy.deepcopy(inv.conv2)
        self.scale = None if inv.scale is None else nn.Parameter(inv.scale.detach().clone(), requires_grad=False)

    def kernel_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        k = self.gen2(F.relu(self.norm(hidden)))
        return k.view(k.shape[0], self.groups, self.kernel_size * self.kernel_size, k.shape[2], k.shape[3])

    def apply_hidden(self, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        out = IMPLS[self.impl](x, self.kernel_from_hidden(hidden), self.kernel_size, 1)
        return out if self.scale is None else out * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply_hidden(x, self.gen1(x))

    def extra_macs(self, x: torch.Tensor, out: torch.Tensor) -> int:
        return out.numel() * self.kernel_size * self.kernel_size


def _fuse_inv(m: nn.Module, impl: str | None) -> nn.Module:
    return FusedInvolution(m, impl) if isinstance(m, Involution2d) and m.stride == 1 else m


class GlobalStatistic(nn.Module):
    """Base of the fused attention blocks that reduce their input over the whole image (contrast + mean).

    ``stats_hook`` (default None: compute ``contrast_and_mean(x)``) lets a caller supply or collect the
    statistic, which is what exact tiled inference needs (:func:`ibmdn.upscale.tiled_exact`): a tile
    sees only part of the image, so the image's statistic is gathered in a first pass over the tiles
    and injected in the second.
    """

    stats_hook = None

    def global_stats(self, x: torch.Tensor) -> torch.Tensor:
        hook = self.stats_hook
        return contrast_and_mean(x) if hook is None else hook(self, x)


class FusedCCA(GlobalStatistic):
    """:class:`~ibmdn.attention.cca.CCA` (unchanged arithmetic) with the :class:`GlobalStatistic` hook."""

    def __init__(self, m: CCA):
        super().__init__()
        self.conv_du = copy.deepcopy(m.conv_du)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.global_stats(x))


class FusedCHFAB(GlobalStatistic):
    """:class:`~ibmdn.attention.chfab.CHFAB` with its four BatchNorms folded into neighbouring convs.

    ``forward(x, u)`` accepts the head pointwise output ``u = head_pw(x)`` when the caller computed it
    (stacked into the block's fusion conv); ``head_pw`` is then unused.
    """

    def __init__(self, m: CHFAB, impl: str | None = None):
        super().__init__()
        self.head_pw = fold_bn_before(m.bn_in, m.head.pw)
        self.head_dw = copy.deepcopy(m.head.dw)
        self.descriptor = copy.deepcopy(m.descriptor)
        self.erb = nn.ModuleList(_fuse_inv(e, impl) for e in m.erb)
        self.tail_pw = fold_bn_before(m.bn_mid, m.tail.pw)
        self.tail_dw = fold_bn_after(m.tail.dw, m.bn_out)
        self.negative_slope = m.negative_slope
        self.contrast = m.contrast

    def forward(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        slope = self.negative_slope
        if u is None:
            u = self.head_pw(x)
        gate = torch.sigmoid(self.descriptor(self.global_stats(x)))
        f = F.leaky_relu(self.head_dw(u) * gate if self.contrast == "mid" else self.head_dw(u), slope)
        f = F.leaky_relu(f + self.erb[0](f), slope)
        f = f + self.erb[1](f)
        a = torch.sigmoid(self.tail_dw(self.tail_pw(F.leaky_relu(f, slope))))
        return x * (a if self.contrast == "mid" else a * gate)


class _Op(nn.Module):
    """One refinement operator split into a 1x1 ``lead`` (stacked into a shared conv) and the ``rest``.

    kinds: ``"conv"`` (no 1x1 lead: plain conv, run whole), ``"pw"`` (BSConv: lead 1x1 then depthwise,
    BSConv-S optionally keeping its second pointwise), ``"inv"`` (involution: lead = kernel generator's
    first 1x1).
    """

    def __init__(self, op: nn.Module, merge_bsconv_s: bool, impl: str | None):
        super().__init__()
        self.lead: tuple[torch.Tensor, torch.Tensor] | None = None
        self.mid: nn.Module | None = None
        if isinstance(op, BSConvU):
            self.kind, self.lead = "pw", (_w(op.pw), _b(op.pw))
            self.rest = copy.deepcopy(op.dw)
        elif isinstance(op, BSConvS):
            self.kind = "pw"
            if merge_bsconv_s:
                w = torch.einsum("om,mi->oi", _w(op.pw2)[:, :, 0, 0], _w(op.pw1)[:, :, 0, 0])[:, :, None, None]
                self.lead = (w, torch.zeros(w.shape[0], dtype=w.dtype, device=w.device))
            else:
                self.lead = (_w(op.pw1), _b(op.pw1))
                self.mid = copy.deepcopy(op.pw2)
            self.rest = copy.deepcopy(op.dw)
        elif isinstance(op, Involution2d) and op.stride == 1:
            self.kind = "inv"
            self.rest = FusedInvolution(op, impl)
            self.lead = (_w(self.rest.gen1), _b(self.rest.gen1))
        else:
            self.kind, self.rest = "conv", copy.deepcopy(op)
        self.lead_channels = 0 if self.lead is None else self.lead[0].shape[0]

    def forward(self, x: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "conv":
            return self.rest(x)
        if self.kind == "inv":
            return self.rest.apply_hidden(x, a)
        return self.rest(a if self.mid is None else self.mid(a))


class FusedRFDB(nn.Module):
    """:class:`~ibmdn.models.blocks.RFDB` with shared-input 1x1 convs stacked (module docstring, rewrites 2-4).

    ``stages[i]`` is the stacked 1x1 conv reading the i-th refinement input (i = 0..3, 3 = the last
    operator); its output channels are ``[distill_i | lead of op i | projection]`` in that order, where
    the projection (stage 0 only, set by :meth:`add_input_projection`) is the global fusion's slice for
    this block's *input*.
    """

    def __init__(self, m: RFDB, merge_bsconv_s: bool = False, merge_chfab_head: bool = True,
                 impl: str | None = None):
        super().__init__()
        self.ops = nn.ModuleList(_Op(op, merge_bsconv_s, impl) for op in [*m.refine, m.last])
        self.distill_channels = m.distill[0].out_channels
        self.residual = m.residual
        self.act = copy.deepcopy(m.act)
        self.projection_channels = 0
        self._parts: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
        for i, op in enumerate(self.ops):
            parts = [(_w(m.distill[i]), _b(m.distill[i]))] if i < 3 else []
            if op.lead is not None:
                parts.append(op.lead)
            self._parts.append(parts)
        att = m.attention
        self.attention = FusedCHFAB(att, impl) if isinstance(att, CHFAB) else _fuse_children(
            copy.deepcopy(att), impl)
        self.head_channels = 0
        fuse_parts = [(_w(m.fuse), _b(m.fuse))]
        if merge_chfab_head and isinstance(self.attention, FusedCHFAB):
            hw = _w(self.attention.head_pw)[:, :, 0, 0]
            fuse_parts.append(((hw @ fuse_parts[0][0][:, :, 0, 0])[:, :, None, None],
                               hw @ fuse_parts[0][1] + _b(self.attention.head_pw)))
            self.head_channels = hw.shape[0]
        self.fuse = _stack_1x1(fuse_parts, m.fuse)
        self.fuse_channels = m.fuse.out_channels
        self._like = m.fuse
        self._build()

    def _build(self) -> None:
        self.stages = nn.ModuleList(
            _stack_1x1(parts, self._like) if parts else nn.Identity() for parts in self._parts)
        self.splits = [
            [p[0].shape[0] for p in parts] for parts in self._parts
        ]

    def add_input_projection(self, weight: torch.Tensor) -> None:
        """Stack ``weight`` (1x1, no bias) into stage 0: :meth:`forward` then also returns ``weight * x``."""
        w = weight.detach().double()
        self._parts[0].append((w, torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)))
        self.projection_channels = w.shape[0]
        self._build()

    def _act_into(self, src: torch.Tensor, dst: torch.Tensor) -> None:
        """``dst[:] = act(src)`` without a temporary where the activation has an ``out=`` form."""
        if isinstance(self.act, nn.LeakyReLU):
            torch._C._nn.leaky_relu(src, self.act.negative_slope, out=dst)
        else:
            dst.copy_(self._act(src))

    def _act(self, src: torch.Tensor) -> torch.Tensor:
        """The activation, out of place (the block's module may be in-place, e.g. on a view of a stacked output)."""
        if isinstance(self.act, nn.LeakyReLU):
            return F.leaky_relu(src, self.act.negative_slope)
        return self.act(src.clone())

    def forward(self, x: torch.Tensor, acc: torch.Tensor | None = None):
        """Block output; with an input projection also ``acc`` plus the projection of ``x`` (in place)."""
        d = self.distill_channels
        # eager: the four distilled parts are written straight into the fusion conv's input (no torch.cat
        # copy, and no stacked conv output is kept alive by a view); compiled: inductor does this itself
        eager = not torch.compiler.is_compiling()
        parts: list[torch.Tensor] = []
        buf = x.new_empty(x.shape[0], 4 * d, x.shape[2], x.shape[3]) if eager else None
        r = x
        for i, op in enumerate(self.ops):
            y = self.stages[i](r)
            a = None
            off = 0
            if i < 3:
                if eager:
                    self._act_into(y[:, :d], buf[:, i * d:(i + 1) * d])
                else:
                    parts.append(self._act(y[:, :d]))
                off = d
            if op.lead_channels:
                a = y[:, off:off + op.lead_channels]
                off += op.lead_channels
            if i == 0 and self.projection_channels:
                p = y[:, off:off + self.projection_channels]
                acc = p.clone() if acc is None else acc.add_(p)
            del y
            out = op(r, a)
            if i < 3:
                r = self.act(out + r)
            elif eager:
                self._act_into(out, buf[:, 3 * d:])
            else:
                parts.append(self._act(out))
            del out, a
        z = self.fuse(buf if eager else torch.cat(parts, dim=1))
        del buf, parts, r
        if self.head_channels:
            z, u = z[:, :self.fuse_channels], z[:, self.fuse_channels:]
            out = self.attention(z, u)
        else:
            out = self.attention(z)
        if self.residual:
            out = out + x
        return out if not self.projection_channels else (out, acc)


class FusedDistillationSR(nn.Module):
    """:class:`~ibmdn.models.skeleton.DistillationSR` with the global fusion computed incrementally."""

    def __init__(self, m: DistillationSR, merge_bsconv_s: bool = False, merge_chfab_head: bool = True,
                 impl: str | None = None):
        super().__init__()
        self.input_repeat = m.input_repeat
        self.conv_first = _fuse_children(copy.deepcopy(m.conv_first), impl)
        fuse_conv = m.fuse[0]
        n = len(m.blocks)
        w = fuse_conv.weight.detach()
        if w.shape[1] % n:
            raise ValueError("fusion conv input is not n equal slices")
        c = w.shape[1] // n
        blocks = []
        self.fuse_separate = nn.ModuleList()
        for k, blk in enumerate(m.blocks):
            blocks.append(FusedRFDB(blk, merge_bsconv_s, merge_chfab_head, impl) if isinstance(blk, RFDB)
                          else _fuse_children(copy.deepcopy(blk), impl))
        # projection of F_k (output of block k) is stacked into block k+1 when that block is a FusedRFDB
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
        self.conv_after_body = _fuse_children(copy.deepcopy(m.conv_after_body), impl)
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


def _fuse_children(module: nn.Module, impl: str | None, merge_bsconv_s: bool = False,
                   merge_chfab_head: bool = True) -> nn.Module:
    """Replace, recursively and in place, the supported sub-modules of ``module``; returns it."""
    kw = {"merge_bsconv_s": merge_bsconv_s, "merge_chfab_head": merge_chfab_head, "impl": impl}
    if isinstance(module, DistillationSR):
        return FusedDistillationSR(module, **kw)
    if isinstance(module, RFDB):
        return FusedRFDB(module, **kw)
    if isinstance(module, CHFAB):
        return FusedCHFAB(module, impl)
    if isinstance(module, CCA):
        return FusedCCA(module)
    if isinstance(module, Involution2d):
        return _fuse_inv(module, impl)
    for name, child in list(module.named_children()):
        new = _fuse_children(child, impl, merge_bsconv_s, merge_chfab_head)
        if new is not child:
            setattr(module, name, new)
    return module


def _refuse_train(self, mode: bool = True):
    """Eval-only: folded BatchNorms have no batch statistics to train with."""
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
    with torch.no_grad():
        fused = _fuse_children(copy.deepcopy(model).eval(), impl, merge_bsconv_s, merge_chfab_head)
    fused.eval()
    fused.requires_grad_(False)
    fused.train = _refuse_train.__get__(fused)  # type: ignore[method-assign]
    fused.fused_for_inference = True  # type: ignore[attr-defined]
    for attr in ("model_name", "scale", "checkpoint"):
        if hasattr(model, attr) and not hasattr(fused, attr):
            setattr(fused, attr, getattr(model, attr))
    return fused
