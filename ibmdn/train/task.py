"""One training step's pieces, shared by the plain SR trainer and the GAN of Table V.

The learning-rate schedule (:func:`lr_at`, a pure function of the step), the bf16 autocast, how a model is
prepared (involution implementation, SyncBatchNorm, device, memory format) and wrapped (DDP, compile), the
optimiser, the perceptual loss, and :class:`SRTask`, the plain SR network trained with
:class:`~ibmdn.train.losses.SRLoss`. :mod:`ibmdn.train.trainer` runs the loop over a task;
:mod:`ibmdn.train.gan` defines the other task.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ibmdn.train.config import TrainConfig
from ibmdn.train.distributed import DistInfo
from ibmdn.train.losses import PerceptualLoss, SRLoss

# ---------------------------------------------------------------------------------------------- schedule


def lr_at(cfg: TrainConfig, step: int, base: float | None = None) -> float:
    """Learning rate of step ``step`` (0-based): linear warm-up, then step halving or cosine decay; a GAN run's
    adversarial stage (``step >= gan_warmup > 0``) scaled to start at ``gan_lr``."""
    lr = _schedule(cfg, step, cfg.lr if base is None else base)
    if cfg.gan and cfg.gan_lr > 0 and 0 < cfg.gan_warmup <= step:
        lr *= cfg.gan_lr / _schedule(cfg, cfg.gan_warmup, cfg.lr)
    return lr


def _schedule(cfg: TrainConfig, step: int, lr: float) -> float:
    if step < cfg.warmup:
        return lr * (step + 1) / cfg.warmup
    if cfg.schedule == "step":
        return lr * cfg.lr_gamma ** (step // cfg.lr_step)
    t = (step - cfg.warmup) / max(1, cfg.iterations - cfg.warmup)
    low = lr * cfg.min_lr_ratio
    return low + (lr - low) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


# -------------------------------------------------------------------------------------------- SR task


def autocast(cfg: TrainConfig, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")


def wrap_for_training(model: nn.Module, cfg: TrainConfig, device: torch.device, info: DistInfo) -> nn.Module:
    """The module the training forward calls: DDP-wrapped when distributed, compiled on request."""
    net: nn.Module = model
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile:
        net = torch.compile(net)
    return net


def prepare_model(model: nn.Module, cfg: TrainConfig, device: torch.device, info: DistInfo) -> nn.Module:
    """Involution implementation, SyncBatchNorm (CUDA DDP), device and memory format."""
    from ibmdn.ops.involution import set_involution_impl

    impl = cfg.involution_impl
    if impl == "auto":
        impl = "fused" if device.type == "cpu" else ""
    if impl:
        set_involution_impl(model, impl)
    if info.enabled and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def make_adam(params, cfg: TrainConfig, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def build_perceptual(cfg: TrainConfig, layer: str, criterion: str, device: torch.device, weights_root=None):
    return PerceptualLoss(layer, criterion, cfg.perceptual_backbone, weights_root).to(device)


class SRTask:
    """A plain SR network trained with :class:`~ibmdn.train.losses.SRLoss`."""

    kind = "sr"

    def __init__(
        self, cfg: TrainConfig, model: nn.Module, device: torch.device, info: DistInfo, weights_root=None
    ):
        self.cfg, self.device = cfg, device
        self.model = prepare_model(model, cfg, device, info)
        self.net = wrap_for_training(self.model, cfg, device, info)
        self.opt = make_adam(self.model.parameters(), cfg, cfg.lr)
        perceptual = (
            build_perceptual(cfg, cfg.perceptual_layer, cfg.perceptual_criterion, device, weights_root)
            if cfg.perceptual_weight > 0
            else None
        )
        self.loss = SRLoss(cfg.l1_weight, perceptual, cfg.perceptual_weight, cfg.bsconv_s_weight)

    @property
    def generator(self) -> nn.Module:
        return self.model

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": "sr",
            "l1_weight": self.cfg.l1_weight,
            "bsconv_s_weight": self.cfg.bsconv_s_weight,
            "perceptual_weight": self.cfg.perceptual_weight,
        }
        if self.loss.perceptual is not None:
            d["perceptual"] = self.loss.perceptual.describe()
        return d

    def set_step(self, step: int) -> float:
        lr = lr_at(self.cfg, step)
        for g in self.opt.param_groups:
            g["lr"] = lr
        return lr

    def train_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        self.model.train()
        with autocast(self.cfg, self.device):
            sr = self.net(x)
            total, parts = self.loss(sr, y, self.model)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if self.cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        return {"loss": total.detach(), **{k: v.detach() for k, v in parts.items()}}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"], strict=True)
        self.opt.load_state_dict(state["optimizer"])
