"""The generator / discriminator pairs of the paper's Table V (x4 GANs with IBMD blocks).

The paper replaces ESRGAN's generator and discriminator "for feature extraction" by IMDN_IBMD,
RFDN_IBMD, ESRT_IMDN_IBMD and ESRT_RFDN_IBMD, and reports G / D counts (209K / 580K, 657K / 287K,
620K / 247K, 690K / 323K) without saying how a distillation network becomes a discriminator; its G
counts also differ from the same networks' counts in its Table VI (e.g. ESRT_IMDN_IBMD x4: 620K vs
841K). Nothing in the paper pins the discriminator down, so this is our construction, stated once:

* ``gan_<name>_g`` is the registered x4 network ``<name>`` itself (IMDN_IBMD and RFDN_IBMD with CHFAB,
  as in the paper's Tables IV-VI).
* ``gan_<name>_d`` (:class:`TrunkDiscriminator`) judges an HR image: a learned 4x4 / stride-4 patchify
  conv to the generator's width, the same six IBMD blocks as the generator, and a 3x3 conv to a
  1-channel map of patch logits (each logit sees one LR-sized patch). Table V's ESRT-variant D counts
  are close to those networks without their upsamplers, which is what this construction resembles.

``GAN_PAIRS`` maps each Table V row to its (generator, discriminator) names; ESRGAN's own pair
(``esrgan_g`` / ``esrgan_d``, PyTorch-GAN form) is the first row.
"""

from __future__ import annotations

import torch
from torch import nn

from ibmdn.models.blocks import IMDB, ibmdb
from ibmdn.models.registry import register_model
from ibmdn.ops import IBMD, parse_pattern

GAN_PAIRS: dict[str, tuple[str, str]] = {
    "esrgan": ("esrgan_g", "esrgan_d"),
    "imdn_ibmd": ("gan_imdn_ibmd_g", "gan_imdn_ibmd_d"),
    "rfdn_ibmd": ("gan_rfdn_ibmd_g", "gan_rfdn_ibmd_d"),
    "esrt_imdn_ibmd": ("gan_esrt_imdn_ibmd_g", "gan_esrt_imdn_ibmd_d"),
    "esrt_rfdn_ibmd": ("gan_esrt_rfdn_ibmd_g", "gan_esrt_rfdn_ibmd_d"),
}
_GENERATORS = {"imdn_ibmd": "imdn_ibmd_chfab", "rfdn_ibmd": "ibmdn",
               "esrt_imdn_ibmd": "esrt_imdn_ibmd", "esrt_rfdn_ibmd": "esrt_rfdn_ibmd"}
# (block kind, width) of each discriminator's trunk: the generator's blocks and width
_TRUNKS = {"imdn_ibmd": ("imdb", 64), "rfdn_ibmd": ("rfdb", 50), "esrt_imdn_ibmd": ("imdb", 64),
           "esrt_rfdn_ibmd": ("rfdb", 64)}


class TrunkDiscriminator(nn.Module):
    """HR image -> patch logits through a patchify conv, IBMD blocks and a 3x3 conv (see module docstring)."""

    def __init__(self, block: str, channels: int, pattern: str = IBMD, downscale: int = 4,
                 attention: str = "chfab", in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, downscale, stride=downscale),
                                  nn.LeakyReLU(0.2, inplace=True))
        make = {"imdb": lambda codes: IMDB(channels, (*codes, "Bs"), attention=attention, bsconv="u"),
                "rfdb": lambda codes: ibmdb(channels, (*codes, "Bs"), attention=attention)}[block]
        self.blocks = nn.Sequential(*(make(codes) for codes in parse_pattern(pattern)))
        self.conv_last = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_last(self.blocks(self.stem(x)))


def _generator(net: str):
    def build(scale: int, **kw) -> nn.Module:
        from ibmdn.models.registry import build_model

        return build_model(_GENERATORS[net], scale, **kw)

    build.__doc__ = f"Table V generator {net.upper()}: the x4 network {_GENERATORS[net]}."
    return build


def _discriminator(net: str):
    def build(scale: int, **kw) -> nn.Module:
        del scale  # judges HR images; the structure does not depend on the SR scale
        block, width = _TRUNKS[net]
        return TrunkDiscriminator(block, width, **kw)

    build.__doc__ = f"Discriminator for the Table V {net.upper()} GAN: patchify conv + IBMD blocks + patch logits."
    return build


for _net in _GENERATORS:
    register_model(f"gan_{_net}_g", scales=(4,), family="gan")(_generator(_net))
    register_model(f"gan_{_net}_d", scales=(4,), family="gan")(_discriminator(_net))
