"""Information-distillation blocks, parametrized by their operators (the paper's depth pattern is data).

* :class:`IMDB` (IMDN, Hui et al. 2019): progressive refinement; each step's output is split into a
  distilled quarter and a remaining three quarters that the next step refines; the four distilled
  parts are concatenated, attended (CCA) and fused by a 1x1 conv, plus the block input.
* :class:`RFDB` (RFDN, Liu et al. 2020): three (1x1 distillation, shallow residual refinement) pairs and
  a last 3x3 refinement; the four distilled parts are concatenated, fused by a 1x1 conv and attended.
  BSRN's ESDB (Li et al. 2022) and the paper's IBMDB are RFDB configurations: :func:`esdb`,
  :func:`ibmdb`.

Operators are named by codes (``"C"``, ``"Bs"``, ``"I"``; see :mod:`ibmdn.ops`) so that a block of the
paper's pattern ``BsIBs`` is ``ops=("Bs", "I", "Bs")``.

Interpretation (IMDB with involution, the paper's IMDN_ICMD / IMDN_IBMD): IMDB's 2nd and 3rd steps map
the 48 remaining channels to 64, which an involution cannot do (it keeps the channel count). The
paper's parameter counts (494K, 161K) are met exactly only by an involution over all 64 channels, so an
``"I"`` at a channel-changing step is applied to the whole 64-channel output of the previous step
(whose distilled quarter is still kept for the concatenation). The audit table shows the counts.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ibmdn.attention import make_attention
from ibmdn.ops import make_op
from ibmdn.ops.bsconv import BSConvS, BSConvU
from ibmdn.ops.involution import Involution2d
from ibmdn.ops.reparam import InferenceOnly, conv_bias, conv_weight, reparameterized, stack_1x1


def make_activation(name: str) -> nn.Module:
    """``"lrelu"`` (slope 0.05, as IMDN/RFDN), ``"gelu"`` (BSRN), ``"relu"``."""
    return {"lrelu": lambda: nn.LeakyReLU(0.05, inplace=True), "gelu": nn.GELU, "relu": lambda: nn.ReLU(True)}[
        name
    ]()


def _attention_stack(names: str | Sequence[str], channels: int, attention_kw: dict | None) -> nn.Module:
    names = (names,) if isinstance(names, str) else tuple(names)
    kw = attention_kw or {}
    mods = [make_attention(n, channels, **kw.get(n, {})) for n in names]
    return mods[0] if len(mods) == 1 else nn.Sequential(*mods)


class IMDB(nn.Module):
    """Information multi-distillation block.

    Args:
        channels: width C (64 in IMDN).
        ops: operator codes of the four 3x3 steps c1..c4 (IMDN: ``("C",) * 4``).
        distill_ratio: distilled fraction per step (0.25: 16 of 64).
        attention: attention name(s) applied to the concatenated distilled features (IMDN: CCA r=16).
        attention_kw: per-attention constructor kwargs, e.g. ``{"cca": {"reduction": 16}}``.
        bsconv: which BSConv ``"Bs"`` means (``"u"`` or ``"s"``).
        involution: kwargs for involution operators.
        activation: activation after c1..c3.
    """

    def __init__(self, channels: int = 64, ops: Sequence[str] = ("C", "C", "C", "C"), distill_ratio: float = 0.25,
                 attention: str | Sequence[str] = "cca", attention_kw: dict | None = None, bsconv: str = "u",
                 involution: dict | None = None, activation: str = "lrelu"):
        super().__init__()
        if len(ops) != 4:
            raise ValueError(f"IMDB needs 4 operator codes (c1..c4), got {ops}")
        self.distilled = int(channels * distill_ratio)
        self.remaining = channels - self.distilled
        outs = (channels, channels, channels, self.distilled)
        self.full_input = [i > 0 and code == "I" for i, code in enumerate(ops)]  # see module docstring
        ins = [channels if i == 0 or full else self.remaining for i, full in enumerate(self.full_input)]
        self.convs = nn.ModuleList(
            make_op(code, cin, cout, 3, bsconv=bsconv, involution=involution) for code, cin, cout in zip(ops, ins, outs)
        )
        self.act = make_activation(activation)
        self.attention = _attention_stack(attention, self.distilled * 4, attention_kw)
        self.fuse = nn.Conv2d(self.distilled * 4, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        prev = x
        for i, conv in enumerate(self.convs):
            if i == 0:
                inp = x
            else:
                inp = prev if self.full_input[i] else prev[:, self.distilled:]
            out = conv(inp)
            if i < 3:
                out = self.act(out)
                distilled.append(out[:, : self.distilled])
                prev = out
            else:
                distilled.append(out)
        return self.fuse(self.attention(torch.cat(distilled, dim=1))) + x


class RFDB(nn.Module):
    """Residual feature distillation block (and, configured, BSRN's ESDB and the paper's IBMDB).

    Args:
        channels: width C.
        ops: operator codes of the three shallow-residual refinements and of the last 3x3 (4 codes).
        distill_ratio: width of each 1x1 distillation, as a fraction of C (0.5).
        attention: attention name(s) applied after the 1x1 fusion, in order (RFDN: ESA; BSRN: ESA, CCA).
        attention_kw: per-attention constructor kwargs.
        residual: add the block input to the output (BSRN: yes; RFDN's code, DepthIBN: no).
        bsconv, involution, activation: as :class:`IMDB`.
    """

    def __init__(self, channels: int = 50, ops: Sequence[str] = ("C", "C", "C", "C"), distill_ratio: float = 0.5,
                 attention: str | Sequence[str] = "esa", attention_kw: dict | None = None, residual: bool = False,
                 bsconv: str = "u", involution: dict | None = None, activation: str = "lrelu"):
        super().__init__()
        if len(ops) != 4:
            raise ValueError(f"RFDB needs 4 operator codes (3 refinements + last), got {ops}")
        d = int(channels * distill_ratio)
        self.distill = nn.ModuleList(nn.Conv2d(channels, d, 1) for _ in range(3))
        self.refine = nn.ModuleList(
            make_op(code, channels, channels, 3, bsconv=bsconv, involution=involution) for code in ops[:3]
        )
        self.last = make_op(ops[3], channels, d, 3, bsconv=bsconv, involution=involution)
        self.fuse = nn.Conv2d(4 * d, channels, 1)
        self.attention = _attention_stack(attention, channels, attention_kw)
        self.act = make_activation(activation)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        r = x
        for distill, refine in zip(self.distill, self.refine):
            distilled.append(self.act(distill(r)))
            r = self.act(refine(r) + r)
        distilled.append(self.act(self.last(r)))
        out = self.attention(self.fuse(torch.cat(distilled, dim=1)))
        return out + x if self.residual else out

    def reparameterize(self, *, impl: str | None = None, merge_bsconv_s: bool = False,
                       merge_chfab_head: bool = True, **_) -> FusedRFDB:
        """The inference form with shared-input 1x1 convs stacked (:class:`FusedRFDB`)."""
        return FusedRFDB(self, merge_bsconv_s, merge_chfab_head, impl)


class _SplitOp(nn.Module):
    """A refinement operator split into a 1x1 ``lead`` (stacked into a shared conv) and the ``rest``.

    kinds: ``"conv"`` (no 1x1 lead: a plain conv, run whole), ``"pw"`` (BSConv: the pointwise lead, then
    the depthwise conv; BSConv-S keeps its second pointwise unless ``merge_bsconv_s``), ``"inv"``
    (involution: the lead is the kernel generator's first 1x1).
    """

    def __init__(self, op: nn.Module, merge_bsconv_s: bool, impl: str | None):
        super().__init__()
        self.lead: tuple[torch.Tensor, torch.Tensor] | None = None
        self.mid: nn.Module | None = None
        if isinstance(op, BSConvU):
            self.kind, self.lead = "pw", (conv_weight(op.pw), conv_bias(op.pw))
            self.rest = copy.deepcopy(op.dw)
        elif isinstance(op, BSConvS):
            self.kind = "pw"
            if merge_bsconv_s:
                w = torch.einsum("om,mi->oi", conv_weight(op.pw2)[:, :, 0, 0], conv_weight(op.pw1)[:, :, 0, 0])
                self.lead = (w[:, :, None, None], torch.zeros(w.shape[0], dtype=w.dtype, device=w.device))
            else:
                self.lead = (conv_weight(op.pw1), conv_bias(op.pw1))
                self.mid = copy.deepcopy(op.pw2)
            self.rest = copy.deepcopy(op.dw)
        elif isinstance(op, Involution2d) and op.stride == 1:
            self.kind = "inv"
            self.rest = op.reparameterize(impl=impl)
            self.lead = (conv_weight(self.rest.gen1), conv_bias(self.rest.gen1))
        else:
            self.kind, self.rest = "conv", copy.deepcopy(op)
        self.lead_channels = 0 if self.lead is None else self.lead[0].shape[0]

    def forward(self, x: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "conv":
            return self.rest(x)
        if self.kind == "inv":
            return self.rest.apply_hidden(x, a)
        return self.rest(a if self.mid is None else self.mid(a))


class FusedRFDB(InferenceOnly):
    """:class:`RFDB` for inference, its 1x1 convs that read the same tensor stacked into one.

    ``stages[i]`` is the stacked 1x1 conv reading the i-th refinement input (i = 0..3, 3 = the last
    operator); its output channels are ``[distill_i | lead of op i | projection]`` in that order, where
    the projection (stage 0 only, set by :meth:`add_input_projection`) is the network's global fusion
    slice for this block's *input* (:class:`ibmdn.models.skeleton.FusedDistillationSR`). With
    ``merge_chfab_head`` and a CHFAB attention, CHFAB's (BatchNorm-folded) head pointwise is composed
    with the block's fusion 1x1 into one conv. Eager: the four distilled parts are written straight into
    the fusion conv's input buffer (no ``torch.cat`` copy, no stacked conv output kept alive by a view).
    """

    def __init__(self, m: RFDB, merge_bsconv_s: bool = False, merge_chfab_head: bool = True,
                 impl: str | None = None):
        super().__init__()
        self.ops = nn.ModuleList(_SplitOp(op, merge_bsconv_s, impl) for op in [*m.refine, m.last])
        self.distill_channels = m.distill[0].out_channels
        self.residual = m.residual
        self.act = copy.deepcopy(m.act)
        self.projection_channels = 0
        self._parts: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
        for i, op in enumerate(self.ops):
            parts = [(conv_weight(m.distill[i]), conv_bias(m.distill[i]))] if i < 3 else []
            if op.lead is not None:
                parts.append(op.lead)
            self._parts.append(parts)
        self.attention = reparameterized(copy.deepcopy(m.attention), impl=impl)
        self.head_channels = 0
        fuse_parts = [(conv_weight(m.fuse), conv_bias(m.fuse))]
        if merge_chfab_head and getattr(self.attention, "takes_head", False):
            hw = conv_weight(self.attention.head_pw)[:, :, 0, 0]
            fuse_parts.append(((hw @ fuse_parts[0][0][:, :, 0, 0])[:, :, None, None],
                               hw @ fuse_parts[0][1] + conv_bias(self.attention.head_pw)))
            self.head_channels = hw.shape[0]
        self.fuse = stack_1x1(fuse_parts, m.fuse)
        self.fuse_channels = m.fuse.out_channels
        self._like = m.fuse
        self._build()

    def _build(self) -> None:
        self.stages = nn.ModuleList(stack_1x1(parts, self._like) if parts else nn.Identity() for parts in self._parts)

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
        # compiled, inductor removes the concatenation itself
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
            out = self.attention(z[:, :self.fuse_channels], z[:, self.fuse_channels:])
        else:
            out = self.attention(z)
        if self.residual:
            out = out + x
        return out if not self.projection_channels else (out, acc)


def esdb(channels: int = 64, ops: Sequence[str] = ("Bs", "Bs", "Bs", "Bs"), **kw) -> RFDB:
    """BSRN's efficient separable distillation block: BSConv-U, GELU, ESA (BSRN form) + CCA, residual."""
    cfg = dict(attention=("esa_bsrn", "cca"), residual=True, bsconv="u", activation="gelu")
    return RFDB(channels, ops, **{**cfg, **kw})


def ibmdb(channels: int = 50, ops: Sequence[str] = ("Bs", "Bs", "Bs", "Bs"), attention: str = "chfab", **kw) -> RFDB:
    """The paper's IBMDB: an RFDB whose 3x3s are BSConv (``Bs``, BSConv-U unless ``bsconv="s"``) or involution
    per depth, with CHFAB attention. The paper writes one symbol for the pixel operator everywhere and its
    IMDN_IBMD counts fit BSConv-U only; the authors' later DepthIBN uses BSConv-S (``bsconv="s"``)."""
    cfg = dict(bsconv="u", residual=False, activation="lrelu")
    return RFDB(channels, ops, attention=attention, **{**cfg, **kw})
