"""Acceptance 4: the Table V GAN trainer runs on CPU with finite losses for every pair of GAN_PAIRS."""

from __future__ import annotations

import csv
import dataclasses
import math

import pytest
import torch

from ibmdn.models.gan import GAN_PAIRS
from ibmdn.train.config import PROFILES
from ibmdn.train.gan import relativistic_loss
from ibmdn.train.trainer import train


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("pair", [p for p in GAN_PAIRS if p != "esrgan"])
def test_gan_pair_trains_with_finite_losses(pair, tmp_path, data_root, one_thread):
    # step 0: pixel-only warm-up; step 1: adversarial (G and D updated); random VGG (no download in CI)
    cfg = dataclasses.replace(PROFILES["smoke"], gan=True, train_sets="T91", patch_size=32, batch_size=2,
                              iterations=2, gan_warmup=1, ckpt_every=2, threads=1,
                              perceptual_backbone="vgg16-random")
    train(pair, 4, cfg, out=tmp_path, device="cpu", data_root=data_root, progress=False)
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert rows[0]["adv"] == "" and rows[0]["d_loss"] == ""  # warm-up: pixel loss only
    for key in ("loss", "l1", "perceptual", "adv", "d_loss", "d_real", "d_fake"):
        assert math.isfinite(float(rows[1][key])), (key, rows[1])
    ck = torch.load(tmp_path / "last.pth", weights_only=True)
    assert {"model", "optimizer", "discriminator", "d_optimizer"} <= set(ck)


def test_esrgan_pair_one_adversarial_step(one_thread):
    """ESRGAN's 38M-parameter generator: one adversarial step of the task alone (no run folder to write)."""
    from ibmdn.models import build_model
    from ibmdn.train.distributed import DistInfo
    from ibmdn.train.gan import GANTask

    torch.set_num_threads(1)
    torch.manual_seed(0)
    g_name, d_name = GAN_PAIRS["esrgan"]
    cfg = dataclasses.replace(PROFILES["smoke"], gan=True, perceptual_backbone="vgg16-random")
    task = GANTask(cfg, build_model(g_name, 4), build_model(d_name, 4), torch.device("cpu"), DistInfo())
    task.set_step(0)
    out = task.train_step(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 32, 32), step=0)
    assert {"l1", "perceptual", "adv", "d_loss"} <= set(out)
    assert all(math.isfinite(float(v)) for v in out.values()), out


def test_relativistic_loss_prefers_the_right_side():
    real, fake = torch.full((4, 1, 2, 2), 3.0), torch.full((4, 1, 2, 2), -3.0)
    assert relativistic_loss(real, fake, real_is_real=True) < 0.01  # D is right: small D loss
    assert relativistic_loss(real, fake, real_is_real=False) > 5  # G is losing: large G loss
    same = torch.zeros(2, 1)
    assert torch.isclose(relativistic_loss(same, same, True), torch.tensor(math.log(2)))


def test_gan_rejects_a_plain_model_name(tmp_path, data_root):
    from ibmdn.train.trainer import TrainError

    cfg = dataclasses.replace(PROFILES["smoke"], gan=True)
    with pytest.raises(TrainError, match="Table V"):
        train("ibmdn", 4, cfg, out=tmp_path, device="cpu", data_root=data_root, progress=False)
