"""RFDN (Liu et al., ECCV-W 2020) and the paper's RFDN_ICMD variants (Table I).

* ``rfdn``: the paper's form (48 channels, 6 RFDBs, CCA r=4 in place of ESA); 534,036 / 540,531 /
  549,624 parameters. The block has no residual (as the official code; the paper's figure is silent).
* ``rfdn_aim``: the AIM 2020 code and checkpoint (50 channels, 4 RFDBs with ESA); 417,212 / 423,977 /
  433,448. Its checkpoint was trained on 0-255 pixels (wrapped by :class:`~ibmdn.models.pretrained.ValueRange`).
* ``rfdn_icmd_4b`` / ``rfdn_icmd_6b`` (Table I): RFDN-50 with ``CCC-CIC-ICI-III`` (4 blocks) or
  ``CCC-CCC-CIC-CIC-ICI-III`` (6 blocks) over the three refinements of each block, involution(50) at I,
  CCA r=16 in place of ESA (the configuration that reproduces the paper's 262K / 424K).
* The IBMD forms of the RFDN skeleton (``rfdn_ibmd_*``, ``ibmdn``) are in :mod:`ibmdn.models.ibmdn`.

Involution at 50 channels needs a group size dividing 50 (rule in :mod:`ibmdn.ops.involution`).
"""

from __future__ import annotations

from ibmdn.models.blocks import RFDB
from ibmdn.models.pretrained import Checkpoint, register_checkpoint
from ibmdn.models.registry import register_model
from ibmdn.models.skeleton import DistillationSR, convert_distillation
from ibmdn.ops import ICMD, parse_pattern


def rfdn_net(scale: int, pattern: str, channels: int = 50, last_op: str = "C", attention: str = "esa",
             attention_kw: dict | None = None, bsconv: str = "u", involution: dict | None = None) -> DistillationSR:
    """RFDN skeleton: one RFDB per block of ``pattern`` (3 refinement codes) with ``last_op`` as its last 3x3."""
    blocks = [
        RFDB(channels, (*codes, last_op), attention=attention, attention_kw=attention_kw, bsconv=bsconv,
             involution=involution)
        for codes in parse_pattern(pattern)
    ]
    return DistillationSR(scale, channels, blocks, fuse_activation="lrelu")


@register_model(family="rfdn")
def rfdn(scale: int, **kw) -> DistillationSR:
    """RFDN as the paper counts it: 48 channels, 6 RFDBs, CCA (r=4) in place of ESA."""
    return rfdn_net(scale, "-".join(["CCC"] * 6), channels=48, attention="cca",
                    attention_kw={"cca": {"reduction": 4}}, **kw)


@register_model(family="rfdn")
def rfdn_aim(scale: int, **kw) -> DistillationSR:
    """RFDN, AIM 2020 code: 50 channels, 4 RFDBs with ESA."""
    return rfdn_net(scale, "-".join(["CCC"] * 4), channels=50, attention="esa", **kw)


@register_model(family="rfdn")
def rfdn_icmd_4b(scale: int, **kw) -> DistillationSR:
    """RFDN_ICMD 4B: RFDN-50, CCC-CIC-ICI-III, CCA (r=16) (paper Table I)."""
    return rfdn_net(scale, "CCC-CIC-ICI-III", attention="cca", **kw)


@register_model(family="rfdn")
def rfdn_icmd_6b(scale: int, **kw) -> DistillationSR:
    """RFDN_ICMD 6B: RFDN-50, CCC-CCC-CIC-CIC-ICI-III, CCA (r=16) (paper Table I)."""
    return rfdn_net(scale, ICMD, attention="cca", **kw)


def convert_rfdn(sd):
    """Official RFDN names (B1.c1_d, c1_r, ..., c4, c5, esa) -> ours (distill, refine, last, fuse, attention)."""
    rules = [
        (r"^c([1-3])_d\.", lambda m: f"distill.{int(m.group(1)) - 1}."),
        (r"^c([1-3])_r\.", lambda m: f"refine.{int(m.group(1)) - 1}."),
        (r"^c4\.", "last."), (r"^c5\.", "fuse."), (r"^esa\.", "attention."),
    ]
    return convert_distillation(sd, "B", rules)


register_checkpoint(Checkpoint(
    model="rfdn_aim", scale=4, path="official/RFDN/RFDN_AIM.pth",
    sha256="11af8ec8ebd68689e90ef1e29044f9804c72d3bd9f7573820b7b26035782760c", convert=convert_rfdn,
    value_range=255, source="github.com/njulj/RFDN @ 7cf4e25 trained_model/RFDN_AIM.pth (MIT)",
    url="https://github.com/njulj/RFDN/raw/master/trained_model/RFDN_AIM.pth",
))
