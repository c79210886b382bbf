"""The paper's networks: IBMD blocks in the IMDN and RFDN skeletons, and IBMDN itself.

How the paper maps to the code (section III of the paper; ``docs/networks.md`` for every choice made):

* **Operators by depth** (the pattern strings of :mod:`ibmdn.ops`): each block of six has three
  refinement positions; ``C`` is a 3x3 convolution, ``Bs`` a BSConv (:mod:`ibmdn.ops.bsconv`: pointwise
  then depthwise, the paper's Fig. 2) and ``I`` an involution (:mod:`ibmdn.ops.involution`: a kernel
  generated per pixel, Fig. 1). ``IBMD = BsBsBs-BsBsBs-BsIBs-BsIBs-IBsI-III``: BSConv early, involution
  late. The paper writes one symbol, Bs, for every IBMD network; BSConv-U is the reading under which
  its IMDN_IBMD and RFDN_IBMD parameter counts (CCA, ESA, CHFAB at x2/x3/x4) fit within 1 %.
* **Blocks** (:mod:`ibmdn.models.blocks`): an IMDB (IMDN's channel split) or an RFDB (RFDN's shallow residual
  distillation, Fig. 3) with those operators, :func:`~ibmdn.models.blocks.ibmdb`; the block's last 3x3 is a Bs.
* **Attention** at the end of each block (:mod:`ibmdn.attention`): CCA, ESA, HFAB or the paper's CHFAB
  (:mod:`ibmdn.attention.chfab`, our reconstruction: no code exists; ``chfab_out`` is its second reading).
* **Skeleton** (:class:`~ibmdn.models.skeleton.DistillationSR`): a 3x3 head, six blocks, the 1x1 fusion of
  their outputs, a 3x3 and a pixel-shuffle tail (Fig. 3).

Registered here:

* ``imdn_ibmd_<attention>`` (Tables II/III): IMDN-64, every 3x3 inside the blocks BSConv-U, the ``I``
  positions involution(64). CCA: 160,896 at x2 (paper 161K).
* ``rfdn_ibmd_<attention>`` (Tables II/III): RFDN-50, block 3x3s BSConv-U, ``I`` involution(50).
* ``ibmdn``: ``rfdn_ibmd_chfab``, the network the paper proposes (section III.C ends by choosing RFDN_IBMD
  with CHFAB): 50 channels, 6 blocks.
* ``ibmdn_stable``: IBMDN with every involution (blocks and CHFAB) in its stable form: a per-pixel
  LayerNorm in the kernel generator instead of BatchNorm (the same function in training and inference)
  and a residual-branch scale initialised at 0.1 (:mod:`ibmdn.ops.involution`). The network
  ``ibmdn upscale`` ships weights for.
* ``pattern`` (model argument) sets the depth pattern, e.g. the authors' code's last block ``IBsI`` instead
  of the paper's ``III`` (:data:`IBMD_IBSI`).

The authors' later NTIRE 2025 network (BSConv-S) is :mod:`ibmdn.models.depthibn`; the ESRT and GAN forms of
the IBMD blocks are :mod:`ibmdn.models.esrt` and :mod:`ibmdn.models.gan`.
"""

from __future__ import annotations

from ibmdn.models.blocks import ibmdb
from ibmdn.models.imdn import imdn_net
from ibmdn.models.registry import register_model
from ibmdn.models.skeleton import DistillationSR
from ibmdn.ops import IBMD, parse_pattern

ATTENTIONS = ("cca", "esa", "hfab", "chfab", "chfab_out")
"""The attention blocks of Table III (and CHFAB's second reading)."""

STABLE_INVOLUTION = {"norm": "ln", "layer_scale": 0.1}
"""Involution options of the stable IBMDN (module docstring)."""

IBMD_IBSI = IBMD.rsplit("-", 1)[0] + "-IBsI"
"""The IBMD pattern with the authors' code's last block ``IBsI`` in place of the paper's ``III``."""


def rfdn_ibmd_net(scale: int, attention: str = "chfab", channels: int = 50, pattern: str = IBMD,
                  involution: dict | None = None, attention_kw: dict | None = None,
                  bsconv: str = "u") -> DistillationSR:
    """RFDN_IBMD: IBMDBs (BSConv / involution by depth) with the given attention."""
    blocks = [ibmdb(channels, (*codes, "Bs"), attention=attention, attention_kw=attention_kw, involution=involution,
                    bsconv=bsconv)
              for codes in parse_pattern(pattern)]
    return DistillationSR(scale, channels, blocks, fuse_activation="lrelu")


def _imdn_ibmd(attention: str):
    def build(scale: int, **kw) -> DistillationSR:
        return imdn_net(scale, pattern=IBMD, last_op="Bs", attention=attention, **kw)

    build.__doc__ = f"IMDN_IBMD with {attention.upper()}: BSConv-U + involution by depth (paper Tables II/III)."
    return build


def _rfdn_ibmd(attention: str):
    def build(scale: int, **kw) -> DistillationSR:
        return rfdn_ibmd_net(scale, attention=attention, **kw)

    build.__doc__ = f"RFDN_IBMD with {attention.upper()}: RFDN-50, BSConv-U + involution by depth (Tables II/III)."
    return build


for _att in ATTENTIONS:
    register_model(f"imdn_ibmd_{_att}", family="ibmdn")(_imdn_ibmd(_att))
    register_model(f"rfdn_ibmd_{_att}", family="ibmdn")(_rfdn_ibmd(_att))


@register_model(family="ibmdn")
def ibmdn(scale: int, **kw) -> DistillationSR:
    """IBMDN, the proposed network: RFDN_IBMD with CHFAB, 50 channels, 6 IBMDBs."""
    return rfdn_ibmd_net(scale, attention="chfab", **kw)


@register_model(family="ibmdn")
def ibmdn_stable(scale: int, **kw) -> DistillationSR:
    """IBMDN with stable involutions (per-pixel LayerNorm kernel generator, residual scale 0.1)."""
    inv = {**STABLE_INVOLUTION, **kw.pop("involution", {})}
    return rfdn_ibmd_net(scale, attention="chfab", involution=inv, attention_kw={"chfab": {"involution": inv}}, **kw)
