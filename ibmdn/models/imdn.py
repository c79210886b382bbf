"""IMDN (Hui et al., ACM MM 2019) and the paper's IMDN_ICMD (Table I).

* ``imdn``: 64 channels, 6 IMDBs (CCA r=16), LeakyReLU 0.05; 694,404 / 703,059 / 715,176 parameters
  (x2/x3/x4). Official checkpoints (github.com/Zheng222/IMDN, no licence: local verification only).
* ``imdn_icmd``: the paper's Table I row 4: the seven ``I`` positions of ``CCC-CCC-CIC-CIC-ICI-III``
  (letters = c1, c2, c3 of each block; c4 stays a conv) become involution(64); 493,664 at x2 (paper
  494K).
* The IBMD forms of the IMDN skeleton (``imdn_ibmd_*``) are in :mod:`ibmdn.models.ibmdn`.

How an involution replaces IMDB's 48 -> 64 steps is an interpretation; see :mod:`ibmdn.models.blocks`.
"""

from __future__ import annotations

from ibmdn.models.blocks import IMDB
from ibmdn.models.pretrained import Checkpoint, register_checkpoint
from ibmdn.models.registry import register_model
from ibmdn.models.skeleton import DistillationSR, convert_distillation
from ibmdn.ops import ICMD, parse_pattern


def imdn_net(scale: int, pattern: str = "CCC-CCC-CCC-CCC-CCC-CCC", last_op: str = "C", channels: int = 64,
             attention: str = "cca", attention_kw: dict | None = None, involution: dict | None = None) -> DistillationSR:
    """IMDN skeleton with one IMDB per block of ``pattern`` (3 codes for c1..c3) and ``last_op`` for c4."""
    blocks = [
        IMDB(channels, (*codes, last_op), attention=attention, attention_kw=attention_kw, bsconv="u",
             involution=involution)
        for codes in parse_pattern(pattern)
    ]
    return DistillationSR(scale, channels, blocks, fuse_activation="lrelu")


@register_model(family="imdn")
def imdn(scale: int, **kw) -> DistillationSR:
    """IMDN: 64 channels, 6 IMDBs with CCA (r=16)."""
    return imdn_net(scale, **kw)


@register_model(family="imdn")
def imdn_icmd(scale: int, **kw) -> DistillationSR:
    """IMDN_ICMD: IMDN with involution at the I positions of CCC-CCC-CIC-CIC-ICI-III (paper Table I)."""
    return imdn_net(scale, pattern=ICMD, **kw)


_IMDN_SHA = {
    2: "740b39653592bd3f49955a21cd9e16f2d37f2c413368cc09327601b8fbe42ce1",
    3: "11b1716a19bc16e5e353e1db798d476169338e631eb170c82d765559888cb028",
    4: "e660c38221147217a136debeb99eb304d62d9c0f73ac421ed66281b619719714",
}


def convert_imdn(sd):
    """Official IMDN names (IMDB1.c1 ... c5, cca) -> ours (blocks.0.convs.0 ... fuse, attention)."""
    rules = [(r"^c([1-4])\.", lambda m: f"convs.{int(m.group(1)) - 1}."), (r"^c5\.", "fuse."), (r"^cca\.", "attention.")]
    return convert_distillation(sd, "IMDB", rules)


for _s, _sha in _IMDN_SHA.items():
    register_checkpoint(Checkpoint(
        model="imdn", scale=_s, path=f"official/IMDN/IMDN_x{_s}.pth", sha256=_sha, convert=convert_imdn,
        source="github.com/Zheng222/IMDN @ 8f158e6 checkpoints/ (no licence: local verification only)",
        url=f"https://github.com/Zheng222/IMDN/raw/master/checkpoints/IMDN_x{_s}.pth",
    ))
