"""Conv-like operators sharing ``nn.Conv2d``'s signature, and the table that names them.

Operator codes used in depth patterns (``"BsBsBs-BsBsBs-BsIBs-BsIBs-IBsI-III"``):
``C`` plain convolution, ``Bs`` BSConv (the variant, U or S, is a model argument), ``I`` involution.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from torch import nn

from ibmdn.ops.bsconv import BSConvS, BSConvU, bsconv_s_regularizer
from ibmdn.ops.involution import Involution2d, set_involution_impl

__all__ = [
    "OP_CODES",
    "BSConvS",
    "BSConvU",
    "Involution2d",
    "bsconv_s_regularizer",
    "make_op",
    "parse_pattern",
    "set_involution_impl",
]

OP_CODES = ("C", "Bs", "I")
_BSCONV = {"u": BSConvU, "s": BSConvS}


ICMD = "CCC-CCC-CIC-CIC-ICI-III"
"""The paper's involution-by-depth pattern (Table I): plain 3x3 (C) early, involution (I) late, 6 blocks."""
IBMD = "BsBsBs-BsBsBs-BsIBs-BsIBs-IBsI-III"
"""The paper's BSConv / involution-by-depth pattern (Tables II-VI): BSConv (Bs) early, involution late."""


def parse_pattern(pattern: str) -> list[tuple[str, ...]]:
    """``"BsBsBs-BsIBs"`` -> ``[("Bs","Bs","Bs"), ("Bs","I","Bs")]``; blocks separated by ``-``."""
    blocks = []
    for part in pattern.split("-"):
        tokens = re.findall(r"Bs|C|I", part)
        if "".join(tokens) != part or not tokens:
            raise ValueError(f"bad operator pattern {pattern!r}: block {part!r} (codes: {', '.join(OP_CODES)})")
        blocks.append(tuple(tokens))
    return blocks


def make_op(code: str, in_channels: int, out_channels: int, kernel_size: int = 3, *, bsconv: str = "u",
            involution: dict | None = None) -> nn.Module:
    """Build the operator named by ``code`` with 'same' padding.

    Args:
        code: ``"C"``, ``"Bs"`` or ``"I"``.
        bsconv: which BSConv ``"Bs"`` means: ``"u"`` (BSConv-U) or ``"s"`` (BSConv-S).
        involution: extra keyword arguments for :class:`Involution2d` (reduction, group_channels, impl).
    """
    factories: dict[str, Callable[..., nn.Module]] = {
        "C": nn.Conv2d,
        "Bs": _BSCONV[bsconv],
        "I": partial(Involution2d, **(involution or {})),
    }
    if code not in factories:
        raise ValueError(f"unknown operator code {code!r} (codes: {', '.join(OP_CODES)})")
    return factories[code](in_channels, out_channels, kernel_size, padding=kernel_size // 2)
