"""The GAN trainer of Table V: ESRGAN's relativistic average GAN, the paper's generator/discriminator pairs.

Pairs come from :data:`ibmdn.models.gan.GAN_PAIRS` (``--model esrgan|imdn_ibmd|rfdn_ibmd|esrt_imdn_ibmd|
esrt_rfdn_ibmd --gan --scale 4``). The objective is ESRGAN's (Wang et al. 2018; the paper gives none):

* generator: ``gan_pixel_weight * L1 + gan_perceptual_weight * perceptual + gan_adv_weight * L_G^Ra``
  (1e-2, 1, 5e-3), plus the BSConv-S regulariser of the generator when it has BSConv-S;
* relativistic average discriminator (Jolicoeur-Martineau 2018), ``C`` the logits, ``E`` the mean over the
  batch (and over the patch map of patch discriminators):
  ``L_D = -E[log s(C(hr) - E C(sr))]/2 - E[log(1 - s(C(sr) - E C(hr)))]/2`` and ``L_G^Ra`` the same with
  the labels swapped (computed with :class:`torch.nn.BCEWithLogitsLoss`);
* pixel-loss warm-up: for the first ``gan_warmup`` iterations the generator is trained with L1 alone (weight
  1) and the discriminator waits; ESRGAN starts from a PSNR-oriented pre-trained generator, which this stands
  for (set ``gan_warmup`` to 0 to start adversarial at once). The adversarial stage is ESRGAN's second stage:
  a new run with a new optimizer at 1e-4. Here it starts the generator's Adam afresh and scales the schedule
  to start at ``gan_lr`` (1e-4; the warm-up's cosine is at about 5e-4 there). Without either, the study's
  first ESRGAN run (2026-12-07) went from Set5 29.05 dB at the switch (step 750) to 9.2 dB 250 steps later,
  its output mean on butterfly a quarter of the image's: Adam's second-moment estimate, fitted to L1 gradients
  far smaller than the perceptual term's and adapting over about 1/(1 - beta2) = 1,000 steps, made the first
  adversarial updates several times the learning rate. From the generator of step 750, 25 adversarial steps
  with a new Adam at 5e-4 still reached 14.0 dB; at 1e-4 they gave 27.3 dB, and 26.9 after 50 (probes with
  ``ibmdn train --gan --init``, not recorded runs);
* perceptual: L1 of VGG16 ``conv5_3`` features before activation (ESRGAN: VGG19 ``conv5_4``, which has no
  offline source here; documented deviation), backbone from :mod:`ibmdn.train.losses`.

The generator step calls the discriminator module itself (not its DDP wrapper: it is not updated
there, so its gradients need no synchronisation); the discriminator step runs two DDP forward/backward
passes (real, then fake) whose gradients accumulate, as BasicSR's ESRGAN model does, so that DDP sees
exactly one backward per forward. Both networks follow the same lr schedule (``d_lr`` sets D's peak).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ibmdn.ops.bsconv import bsconv_s_regularizer
from ibmdn.train.config import TrainConfig
from ibmdn.train.distributed import DistInfo
from ibmdn.train.losses import has_bsconv_s
from ibmdn.train.task import autocast, build_perceptual, lr_at, make_adam, prepare_model, wrap_for_training


def relativistic_loss(real: torch.Tensor, fake: torch.Tensor, real_is_real: bool) -> torch.Tensor:
    """RaGAN loss; ``real_is_real=True`` is the discriminator's objective, False the generator's."""
    a, b = real - fake.mean(), fake - real.mean()
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    if real_is_real:
        return 0.5 * (
            F.binary_cross_entropy_with_logits(a, one) + F.binary_cross_entropy_with_logits(b, zero)
        )
    return 0.5 * (F.binary_cross_entropy_with_logits(a, zero) + F.binary_cross_entropy_with_logits(b, one))


class GANTask:
    """Generator + discriminator, their Adam optimisers and ESRGAN's losses (see module docstring)."""

    kind = "gan"

    def __init__(
        self,
        cfg: TrainConfig,
        generator: nn.Module,
        discriminator: nn.Module,
        device: torch.device,
        info: DistInfo,
        weights_root=None,
    ):
        self.cfg, self.device = cfg, device
        self.g = prepare_model(generator, cfg, device, info)
        self.d = prepare_model(discriminator, cfg, device, info)
        self.g_net = wrap_for_training(self.g, cfg, device, info)
        self.d_net = wrap_for_training(self.d, cfg, device, info)
        self.opt_g = make_adam(self.g.parameters(), cfg, cfg.lr)
        self.d_lr = cfg.d_lr or cfg.lr
        self.opt_d = make_adam(self.d.parameters(), cfg, self.d_lr)
        self.perceptual = (
            build_perceptual(
                cfg, cfg.gan_perceptual_layer, cfg.gan_perceptual_criterion, device, weights_root
            )
            if cfg.gan_perceptual_weight > 0
            else None
        )
        self.use_reg = cfg.bsconv_s_weight > 0 and has_bsconv_s(self.g)

    @property
    def generator(self) -> nn.Module:
        return self.g

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": "gan",
            "discriminator": getattr(self.d, "model_name", type(self.d).__name__),
            "gan": "relativistic average (ESRGAN)",
            "pixel_weight": self.cfg.gan_pixel_weight,
            "perceptual_weight": self.cfg.gan_perceptual_weight,
            "adv_weight": self.cfg.gan_adv_weight,
            "warmup_pixel_only": self.cfg.gan_warmup,
            "bsconv_s_weight": self.cfg.bsconv_s_weight if self.use_reg else 0.0,
        }
        if self.perceptual is not None:
            d["perceptual"] = self.perceptual.describe()
        return d

    def set_step(self, step: int) -> float:
        lr = lr_at(self.cfg, step)
        for g in self.opt_g.param_groups:
            g["lr"] = lr
        for g in self.opt_d.param_groups:
            g["lr"] = lr_at(self.cfg, step, base=self.d_lr)
        return lr

    def train_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        warm = step < cfg.gan_warmup
        if step == cfg.gan_warmup > 0:  # the adversarial stage: a new optimizer (module docstring)
            self.opt_g.state.clear()
        self.g.train()
        self.d.train()
        parts: dict[str, torch.Tensor] = {}
        # generator
        self.d.requires_grad_(False)
        with autocast(cfg, self.device):
            sr = self.g_net(x)
            srf = sr.float()
            if warm:
                parts["l1"] = F.l1_loss(srf, y)
            else:
                parts["l1"] = cfg.gan_pixel_weight * F.l1_loss(srf, y)
                if self.perceptual is not None:
                    parts["perceptual"] = cfg.gan_perceptual_weight * self.perceptual(srf, y)
                real = self.d(y).float().detach()
                fake = self.d(sr).float()
                parts["adv"] = cfg.gan_adv_weight * relativistic_loss(real, fake, real_is_real=False)
            if self.use_reg:
                parts["reg"] = cfg.bsconv_s_weight * bsconv_s_regularizer(self.g).to(srf.device)
        total = sum(parts.values())
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.g.parameters(), cfg.grad_clip)
        self.opt_g.step()
        out = {"loss": total.detach(), **{k: v.detach() for k, v in parts.items()}}
        if warm:
            return out
        # discriminator: real pass then fake pass, one DDP backward each (gradients accumulate)
        self.d.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        fake_in = sr.detach()
        with torch.no_grad(), autocast(cfg, self.device):
            fake_ref = self.d(fake_in).float()
        with autocast(cfg, self.device):
            real = self.d_net(y).float()
            l_real = 0.5 * F.binary_cross_entropy_with_logits(real - fake_ref.mean(), torch.ones_like(real))
        l_real.backward()
        with autocast(cfg, self.device):
            fake = self.d_net(fake_in).float()
            l_fake = 0.5 * F.binary_cross_entropy_with_logits(
                fake - real.detach().mean(), torch.zeros_like(fake)
            )
        l_fake.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.d.parameters(), cfg.grad_clip)
        self.opt_d.step()
        out.update(
            d_loss=(l_real + l_fake).detach(), d_real=real.detach().mean(), d_fake=fake.detach().mean()
        )
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.g.state_dict(),
            "optimizer": self.opt_g.state_dict(),
            "discriminator": self.d.state_dict(),
            "d_optimizer": self.opt_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["model"], strict=True)
        self.opt_g.load_state_dict(state["optimizer"])
        self.d.load_state_dict(state["discriminator"], strict=True)
        self.opt_d.load_state_dict(state["d_optimizer"])
