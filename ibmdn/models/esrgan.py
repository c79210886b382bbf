"""ESRGAN generator (RRDB network) and patch discriminator, in the form the IBMDN paper counts.

Origin: Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks", ECCV
Workshops 2018. The IBMDN paper (arXiv 2503.14779, Table V and section III.D: "the ESRGAN model at
scale x4 has been trained with around 43 million parameters"; Table V: G=38.5M, D=4.6M, 43.2M) counts
the PyTorch-GAN implementation (github.com/eriklindernoren/PyTorch-GAN,
``implementations/esrgan/models.py``), whose shapes this module reproduces; names follow BasicSR.

Generator (:class:`RRDBNet`)::

    f = conv_first(x)                           3x3, 3 -> C
    f = f + conv_body(body(f))                  num_blocks RRDBs, 3x3 C -> C
    y = conv_last(lrelu(conv_hr(upsample(f))))  upsample per factor 2: 3x3 C -> 4C, LReLU, PixelShuffle(2);
                                                conv_hr 3x3 C -> C; conv_last 3x3 C -> 3

* RRDB = 3 dense blocks, ``x + res_scale * dense(dense(dense(x)))``; a dense block has 5 3x3 convs,
  conv ``i`` sees the block input and all previous outputs (C + i*G channels) and outputs G channels
  (the last outputs C), LeakyReLU after the first four, ``x + res_scale * last``. In PyTorch-GAN every
  conv outputs ``filters`` channels, i.e. growth G = C = 64 (ESRGAN's paper / BasicSR use G = 32,
  16.7M parameters). res_scale 0.2 at both levels.
* Upsampling: per factor 2, conv 3x3 C->4C, LeakyReLU, PixelShuffle(2) (sub-pixel, as PyTorch-GAN;
  ESRGAN/BasicSR use nearest interpolation + conv instead).
* LeakyReLU slope: 0.01 (PyTorch-GAN's ``nn.LeakyReLU()`` default; ESRGAN uses 0.2) - an argument.
* No input normalisation inside the network: it takes and returns [0, 1] images like every model of
  this package (PyTorch-GAN normalises its data with ImageNet mean/std outside the network).

Discriminator (:class:`PatchDiscriminator`): a fully convolutional patch discriminator. Its stage
structure is data: ``stages=(64, 128, 256, 512)`` gives 4 stages, each conv 3x3 stride 1 (+ BatchNorm
except in the first stage) + LeakyReLU(0.2), conv 3x3 stride 2 + BatchNorm + LeakyReLU(0.2); then a 3x3
conv to a 1-channel map of logits, one per (2**len(stages))-pixel patch of the HR image (H/16 x W/16
for 4 stages; sizes that are not multiples round up, as stride-2 convs with padding 1 do). A stage can be
replaced through ``stage_factory(index, in_channels, out_channels) -> nn.Module`` (each stage must
halve the spatial size), which is the hook for discriminators built from other blocks (Table V).

Parameter counts (exact, x4): generator 38,549,123; discriminator 4,693,697 (BatchNorm running
statistics are buffers, not counted); total 43,242,820 = the paper's 43.2M.

The discriminator judges HR-sized images, so its structure does not depend on the SR scale: the
registered ``esrgan_d`` builder accepts ``scale`` only to fit the registry's ``fn(scale, **kwargs)``
interface and ignores it.

Table V of the paper replaces ESRGAN's generator and discriminator by its own networks ("we use the
IMDN_IBMD, RFDN_IBMD, ESRT_RFDN_IBMD and ESRT_IMDN_IBMD models instead of the generator and
discriminator sections for feature extraction") and reports G / D counts of 209K / 580K (IMDN_IBMD),
657K / 287K (RFDN_IBMD), 620K / 247K (ESRT_IMDN_IBMD) and 690K / 323K (ESRT_RFDN_IBMD). The paper
does not describe how a distillation network becomes a discriminator; the G counts disagree with the
same networks' x4 counts in Table VI (206K, 187K, 841K, 917K), and for the ESRT variants D equals the
x2 total minus the two 64-channel x2 upsampling paths (see :mod:`ibmdn.models.esrt`). Those variants are
not registered here; ``RRDBNet`` and ``PatchDiscriminator`` are the ESRGAN row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ibmdn.models.registry import register_model

StageFactory = Callable[[int, int, int], nn.Module]
"""``factory(index, in_channels, out_channels) -> nn.Module`` halving the spatial size."""

__all__ = [
    "RRDB",
    "DenseResidualBlock",
    "PatchDiscriminator",
    "RRDBNet",
    "StageFactory",
    "discriminator_stage",
]


class DenseResidualBlock(nn.Module):
    """Residual dense block: ``num_layers`` densely connected 3x3 convs, ``x + res_scale * last``.

    Args:
        channels: input/output channels C.
        growth: output channels of every conv but the last (which outputs C); PyTorch-GAN: G = C.
        num_layers: convs in the block (5).
        res_scale: residual scaling (0.2).
        negative_slope: LeakyReLU slope after every conv but the last.
    """

    def __init__(
        self,
        channels: int = 64,
        growth: int = 64,
        num_layers: int = 5,
        res_scale: float = 0.2,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * growth, channels if i == num_layers - 1 else growth, 3, padding=1)
            for i in range(num_layers)
        )
        self.act = nn.LeakyReLU(negative_slope, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs[:-1]:
            feats.append(self.act(conv(torch.cat(feats, dim=1))))
        return x + self.res_scale * self.convs[-1](torch.cat(feats, dim=1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: ``x + res_scale * dense_blocks(x)``."""

    def __init__(
        self,
        channels: int = 64,
        growth: int = 64,
        num_dense: int = 3,
        num_layers: int = 5,
        res_scale: float = 0.2,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.dense_blocks = nn.Sequential(
            *(
                DenseResidualBlock(channels, growth, num_layers, res_scale, negative_slope)
                for _ in range(num_dense)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.dense_blocks(x)


class RRDBNet(nn.Module):
    """ESRGAN generator as in PyTorch-GAN (see the module docstring).

    Args:
        scale: upscaling factor, a power of two (one sub-pixel stage per factor 2).
        in_channels: image channels in and out.
        channels: feature channels (64).
        num_blocks: RRDBs in the body (23).
        growth: dense growth channels (64 in PyTorch-GAN).
        num_dense: dense blocks per RRDB (3).
        num_layers: convs per dense block (5).
        res_scale: residual scaling of dense blocks and RRDBs (0.2).
        negative_slope: LeakyReLU slope (0.01 as PyTorch-GAN's default).
    """

    def __init__(
        self,
        scale: int = 4,
        in_channels: int = 3,
        channels: int = 64,
        num_blocks: int = 23,
        growth: int = 64,
        num_dense: int = 3,
        num_layers: int = 5,
        res_scale: float = 0.2,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        if scale < 1 or scale & (scale - 1):
            raise ValueError(f"RRDBNet upsamples by powers of two, not {scale}")
        self.conv_first = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.body = nn.Sequential(
            *(
                RRDB(channels, growth, num_dense, num_layers, res_scale, negative_slope)
                for _ in range(num_blocks)
            )
        )
        self.conv_body = nn.Conv2d(channels, channels, 3, padding=1)
        up: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            up += [
                nn.Conv2d(channels, 4 * channels, 3, padding=1),
                nn.LeakyReLU(negative_slope, inplace=True),
                nn.PixelShuffle(2),
            ]
        self.upsample = nn.Sequential(*up)
        self.conv_hr = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)
        self.conv_last = nn.Conv2d(channels, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        return self.conv_last(self.act(self.conv_hr(self.upsample(feat))))


def discriminator_stage(
    in_channels: int, out_channels: int, batch_norm_first: bool = True, negative_slope: float = 0.2
) -> nn.Sequential:
    """conv 3x3 s1 (+BN) + LReLU, conv 3x3 s2 + BN + LReLU: halves H and W."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1)]
    if batch_norm_first:
        layers.append(nn.BatchNorm2d(out_channels))
    layers += [
        nn.LeakyReLU(negative_slope, inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(negative_slope, inplace=True),
    ]
    return nn.Sequential(*layers)


class PatchDiscriminator(nn.Module):
    """Fully convolutional discriminator -> (B, 1, ceil(H/2**S), ceil(W/2**S)) logits, S = len(stages).

    Args:
        in_channels: image channels.
        stages: output channels of the stages, each halving the spatial size.
        negative_slope: LeakyReLU slope of the default stages (0.2).
        first_stage_batch_norm: BatchNorm after the first stage's stride-1 conv (PyTorch-GAN: no).
        stage_factory: ``factory(index, in_channels, out_channels)`` replacing the default stages.
    """

    def __init__(
        self,
        in_channels: int = 3,
        stages: Sequence[int] = (64, 128, 256, 512),
        negative_slope: float = 0.2,
        first_stage_batch_norm: bool = False,
        stage_factory: StageFactory | None = None,
    ) -> None:
        super().__init__()
        if not stages:
            raise ValueError("a discriminator needs at least one stage")
        if stage_factory is None:

            def stage_factory(index: int, cin: int, cout: int) -> nn.Module:
                return discriminator_stage(cin, cout, index > 0 or first_stage_batch_norm, negative_slope)

        widths = [in_channels, *stages]
        self.stages = nn.ModuleList(stage_factory(i, widths[i], widths[i + 1]) for i in range(len(stages)))
        self.conv_last = nn.Conv2d(widths[-1], 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.conv_last(x)


@register_model("esrgan_g", scales=(2, 4), family="esrgan")
def esrgan_g(scale: int, **kwargs) -> RRDBNet:
    """ESRGAN generator as counted by the paper (PyTorch-GAN): 64 ch, 23 RRDB, growth 64, 38.5M at x4."""
    return RRDBNet(scale=scale, **kwargs)


@register_model("esrgan_d", scales=(2, 3, 4), family="esrgan")
def esrgan_d(scale: int, **kwargs) -> PatchDiscriminator:
    """ESRGAN patch discriminator (PyTorch-GAN), 4.69M; judges HR images, ``scale`` is ignored."""
    del scale  # the discriminator sees HR images: its structure is the same for every SR scale
    return PatchDiscriminator(**kwargs)
