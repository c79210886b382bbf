"""FMEN: Fast and Memory-Efficient Network (Du et al., NTIRE 2022 efficient SR challenge).

Paper: Du, Liu, Tang, Wu, "Fast and Memory-Efficient Network Towards Efficient Image
Super-Resolution", CVPR workshops 2022. Official code and the published re-parameterised FMEN-S
checkpoint: github.com/NJU-Jet/FMEN (Apache-2.0). Independent implementation; the blocks live in
:mod:`ibmdn.attention.hfab`. FMEN is the origin of HFAB, one of the attention options of the IBMDN
paper's Table III, and a strong lightweight baseline.

Structure (``channels`` C, trunk ERBs at C channels, attention branches at ``mid_channels`` m)::

    conv_first -> warmup [3x3 conv -> HFAB(m - 4, num_erb[0] ERBs)]
               -> blocks x num_blocks [ERB(C) -> HFAB(m, num_erb[i + 1] ERBs)]
               -> conv_after_body -> (+ conv_first output) -> upsample [3x3 conv -> pixel shuffle]

Two forms: ``deploy=True`` (default; plain 3x3 convs, the form of the published checkpoint) and
``deploy=False`` (training form with BatchNorm and RRRBs). :meth:`FMEN.reparameterize` turns the
second into the first; in eval mode both compute the same function.

Registered variants (FMEN-S, the NTIRE 2022 entry: C=50, m=16, 4 blocks, num_erb=(2, 1, 1, 1, 1)):

* ``fmen_s``: deploy form, 341,066 parameters at x4 (the official ``TEST_FMEN``; x2 324,830, x3 331,595).
* ``fmen_s_train``: training form of the same network, 1,045,866 parameters at x4 (BN affine
  included; x2 1,029,630, x3 1,036,395).

Faithful oddities of the official design: the warm-up HFAB is 4 channels narrower (m - 4 = 12) than
the others; there is no mean shift, and the published weights expect pixels in 0-255 (they are
wrapped by :class:`ibmdn.models.pretrained.ValueRange` when loaded, so the interface stays [0, 1]).
Only x4 deploy weights exist; the lightweight-SR FMEN (748K) and the training-form weights are not
published.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from ibmdn.attention.hfab import ERB, HFAB, ERBDeploy, HFABDeploy
from ibmdn.models.pretrained import Checkpoint, StateDict, register_checkpoint, rename_keys
from ibmdn.models.registry import register_model
from ibmdn.ops.reparam import reparameterize_children

__all__ = ["FMEN", "FMENBlock", "convert_official", "fmen_s", "fmen_s_train"]


class FMENBlock(nn.Module):
    """``attn(trunk(x))``: a trunk operator followed by a high-frequency attention block."""

    def __init__(self, trunk: nn.Module, attn: nn.Module):
        super().__init__()
        self.trunk = trunk
        self.attn = attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.trunk(x))


class FMEN(nn.Module):
    """Fast and memory-efficient SR network.

    Args:
        scale: upscaling factor.
        channels: trunk width ``C``.
        mid_channels: width of the HFAB branches of the body blocks.
        num_blocks: number of ERB -> HFAB blocks after the warm-up.
        num_erb: ERBs inside each HFAB, warm-up first (length ``num_blocks + 1``).
        warmup_mid_channels: branch width of the warm-up HFAB (default ``mid_channels - 4``, as official).
        ratio: RRRB expansion ratio (training form only; the deploy form has no expansion).
        in_channels: image channels in.
        out_channels: image channels out.
        deploy: build the re-parameterised form (plain convs) instead of the training form.
    """

    def __init__(
        self,
        scale: int,
        channels: int = 50,
        mid_channels: int = 16,
        num_blocks: int = 4,
        num_erb: Sequence[int] = (2, 1, 1, 1, 1),
        warmup_mid_channels: int | None = None,
        ratio: int = 2,
        in_channels: int = 3,
        out_channels: int = 3,
        deploy: bool = True,
    ):
        super().__init__()
        num_erb = tuple(num_erb)
        if len(num_erb) != num_blocks + 1:
            raise ValueError(f"num_erb needs num_blocks + 1 = {num_blocks + 1} entries, got {num_erb}")
        warmup_mid = mid_channels - 4 if warmup_mid_channels is None else warmup_mid_channels
        self.deploy = deploy

        def erb() -> nn.Module:
            return ERBDeploy(channels) if deploy else ERB(channels, ratio)

        def hfab(mid: int, n: int) -> nn.Module:
            return HFABDeploy(channels, mid, n) if deploy else HFAB(channels, mid, n, ratio)

        self.conv_first = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.warmup = FMENBlock(nn.Conv2d(channels, channels, 3, padding=1), hfab(warmup_mid, num_erb[0]))
        self.blocks = nn.ModuleList(FMENBlock(erb(), hfab(mid_channels, n)) for n in num_erb[1:])
        self.conv_after_body = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsample = nn.Sequential(
            nn.Conv2d(channels, out_channels * scale**2, 3, padding=1), nn.PixelShuffle(scale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        h = self.warmup(feat)
        for block in self.blocks:
            h = block(h)
        return self.upsample(self.conv_after_body(h) + feat)

    def reparameterize(self, **_) -> FMEN:
        """A deploy-form copy (BN folded with running statistics; compare in eval mode)."""
        out = reparameterize_children(copy.deepcopy(self))
        out.deploy = True
        return out


_OFFICIAL_RULES: list[tuple[str, str]] = [
    (r"^head\.", "conv_first."),
    (r"^warmup\.0\.", "warmup.trunk."),
    (r"^warmup\.1\.", "warmup.attn."),
    (r"^ERBs\.(\d+)\.", r"blocks.\1.trunk."),
    (r"^HFABs\.(\d+)\.", r"blocks.\1.attn."),
    (r"\.squeeze\.", ".conv_squeeze."),
    (r"\.excitate\.", ".conv_excite."),
    (r"\.convs\.(\d+)\.", r".erbs.\1."),
    (r"\.rep_conv\.", "."),
    (r"^lr_conv\.", "conv_after_body."),
    (r"^tail\.0\.", "upsample.0."),
]


def convert_official(sd: StateDict) -> StateDict:
    """Official ``TEST_FMEN`` key names (head, warmup, ERBs, HFABs, lr_conv, tail) -> :class:`FMEN`."""
    return rename_keys(sd, _OFFICIAL_RULES)


_FMEN_S = dict(channels=50, mid_channels=16, num_blocks=4, num_erb=(2, 1, 1, 1, 1))


@register_model("fmen_s", scales=(2, 3, 4), family="fmen")
def fmen_s(scale: int, **kwargs) -> FMEN:
    """FMEN-S (NTIRE 2022), deploy form: 50 ch, 4 ERB+HFAB blocks; 341,066 params at x4."""
    return FMEN(scale, **{**_FMEN_S, "deploy": True, **kwargs})


@register_model("fmen_s_train", scales=(2, 3, 4), family="fmen")
def fmen_s_train(scale: int, **kwargs) -> FMEN:
    """FMEN-S, training form (BatchNorm + RRRBs); ``.reparameterize()`` gives ``fmen_s``."""
    return FMEN(scale, **{**_FMEN_S, "deploy": False, **kwargs})


register_checkpoint(
    Checkpoint(
        model="fmen_s",
        scale=4,
        path="official/FMEN/test_weights.pt",
        sha256="d5534eba1feacfdd4043d9175d3bf0730b1ab4c91ba5c3f40a2282cd496fb4a5",
        convert=convert_official,
        value_range=255,
        source="github.com/NJU-Jet/FMEN @ a1def169d0e2c99ecebdb1b08bf567f329c3a566, test_weights.pt, "
        "Apache-2.0",
        url="https://github.com/NJU-Jet/FMEN/raw/a1def169d0e2c99ecebdb1b08bf567f329c3a566/test_weights.pt",
    )
)
