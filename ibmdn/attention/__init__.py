"""Attention blocks: ``(channels, **kw) -> module`` mapping a tensor to one of the same shape.

``make_attention(name, channels)`` is the single place a block name ("cca", "esa", "esa_bsrn", "hfab",
"chfab", "chfab_out", "none") becomes a module, so that attention is data in every block and model.
"""

from __future__ import annotations

from torch import nn

from ibmdn.attention.cca import CCA, contrast_and_mean
from ibmdn.attention.chfab import CHFAB
from ibmdn.attention.esa import ESA

__all__ = ["ATTENTIONS", "CCA", "CHFAB", "ESA", "contrast_and_mean", "make_attention"]

ATTENTIONS = ("none", "cca", "esa", "esa_bsrn", "hfab", "chfab", "chfab_out")


def make_attention(name: str, channels: int, **kwargs) -> nn.Module:
    """Build an attention block by name; ``kwargs`` go to its constructor (e.g. ``reduction`` for CCA)."""
    if name == "none":
        return nn.Identity()
    if name == "cca":
        return CCA(channels, **kwargs)
    if name == "esa":
        return ESA(channels, **kwargs)
    if name == "esa_bsrn":
        return ESA(channels, **{"mid_channels": 16, "op": "Bs", "activation": "gelu", **kwargs})
    if name == "hfab":
        from ibmdn.attention.hfab import HFAB

        return HFAB(channels, **kwargs)
    if name == "chfab":
        return CHFAB(channels, **kwargs)
    if name == "chfab_out":
        return CHFAB(channels, **{"contrast": "output", **kwargs})
    raise ValueError(f"unknown attention {name!r}; known: {', '.join(ATTENTIONS)}")
