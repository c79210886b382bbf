"""DepthIBN: the IBMDN authors' own NTIRE 2025 efficient-SR network (team 41; class ``IBMDN`` in their code).

48 channels; head BSConv-U 3 -> 48; 6 RFDB-style blocks without ESA and without block residual, each
three (1x1 distillation 48 -> 24 + LeakyReLU; operator 48 -> 48 + input, LeakyReLU) steps and a BSConv-S
48 -> 24 last step, concat 96 -> 1x1 -> CCA (r=16); operators ``BsBsBs-BsBsBs-BsIBs-BsIBs-IBsI-IBsI``
with Bs = BSConv-S and I = involution(48, K3, r4, groups of 16, BN); fusion 1x1 288 -> 48 + LeakyReLU,
BSConv-U 3x3 + global skip, 3x3 48 -> 3 s^2 + pixel shuffle. 105,528 / 112,023 / 121,116 parameters.
Note the last block is ``IBsI``, not the paper's ``III``. Checkpoint: x4 only (DIV2K + LSDIR; not the
paper's table model).
"""

from __future__ import annotations

from ibmdn.models.blocks import ibmdb
from ibmdn.models.pretrained import Checkpoint, register_checkpoint
from ibmdn.models.registry import register_model
from ibmdn.models.skeleton import DistillationSR, convert_distillation
from ibmdn.ops import parse_pattern

PATTERN = "BsBsBs-BsBsBs-BsIBs-BsIBs-IBsI-IBsI"


@register_model(family="depthibn")
def depthibn(scale: int, channels: int = 48, pattern: str = PATTERN, involution: dict | None = None) -> DistillationSR:
    """DepthIBN (the authors' NTIRE 2025 network): 48 channels, BSConv-S / involution blocks with CCA."""
    blocks = [ibmdb(channels, (*codes, "Bs"), attention="cca", bsconv="s", involution=involution)
              for codes in parse_pattern(pattern)]
    return DistillationSR(scale, channels, blocks, head_op="Bs", tail_op="Bs", fuse_activation="lrelu")


def convert_depthibn(sd):
    """Authors' names (B1.c1_d, c1_r.{pw1,pw2,dw} or mmcv conv1.conv/conv1.bn/conv2.conv, cca) -> ours."""
    rules = [
        (r"^c([1-3])_d\.", lambda m: f"distill.{int(m.group(1)) - 1}."),
        (r"^c([1-3])_r\.", lambda m: f"refine.{int(m.group(1)) - 1}."),
        (r"^c4\.", "last."), (r"^c5\.", "fuse."), (r"^cca\.", "attention."),
        (r"conv1\.conv\.", "conv1."), (r"conv1\.bn\.", "bn1."), (r"conv2\.conv\.", "conv2."),
    ]
    return convert_distillation(sd, "B", rules)


register_checkpoint(Checkpoint(
    model="depthibn", scale=4, path="official/DepthIBN/team41_DepthIBN.pth",
    sha256="06aa6ac22823e1b75404b281590fc1a18dd9cf98ead84c3c304c08ab82830d84", convert=convert_depthibn,
    source="github.com/akramkhatami/NTIRE2025_ESR @ 251343a model_zoo/team41_DepthIBN.pth (MIT)",
    url="https://github.com/Amazingren/NTIRE2025_ESR/raw/main/model_zoo/team41_DepthIBN.pth",
))
