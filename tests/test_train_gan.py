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


def test_adversarial_stage_starts_the_generator_optimizer_afresh(one_thread):
    """The warm-up's Adam moments (fitted to L1 gradients) are dropped at the first adversarial step, so that
    step is the first of a new Adam; a warm-up step keeps them, and the discriminator is untouched until then."""
    from ibmdn.models import build_model
    from ibmdn.train.distributed import DistInfo
    from ibmdn.train.gan import GANTask

    torch.manual_seed(0)
    g_name, d_name = GAN_PAIRS["imdn_ibmd"]
    cfg = dataclasses.replace(PROFILES["smoke"], gan=True, gan_warmup=2, perceptual_backbone="vgg16-random")
    task = GANTask(cfg, build_model(g_name, 4), build_model(d_name, 4), torch.device("cpu"), DistInfo())
    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    steps = lambda opt: {int(st["step"]) for st in opt.state.values()}
    for step in range(2):
        task.set_step(step)
        task.train_step(x, y, step)
    assert steps(task.opt_g) == {2} and not task.opt_d.state  # warm-up: one Adam, D waits
    task.set_step(2)
    task.train_step(x, y, 2)
    assert steps(task.opt_g) == {1} and steps(task.opt_d) == {1}  # a new Adam for the adversarial stage
    task.set_step(3)
    task.train_step(x, y, 3)
    assert steps(task.opt_g) == {2}  # and only once


def test_adversarial_stage_starts_at_gan_lr_and_keeps_the_schedule_shape():
    from ibmdn.train.task import lr_at

    cfg = dataclasses.replace(PROFILES["study"], gan=True, gan_warmup=750, gan_lr=1e-4, d_lr=2e-3)
    plain = dataclasses.replace(cfg, gan_lr=0.0)
    assert [lr_at(cfg, s) for s in (0, 49, 749)] == [lr_at(plain, s) for s in (0, 49, 749)]  # L1 stage as before
    assert lr_at(cfg, 750) == pytest.approx(1e-4) and lr_at(plain, 750) == pytest.approx(5.3e-4, rel=0.01)
    factor = 1e-4 / lr_at(plain, 750)
    for s in (750, 1000, 1499):
        assert lr_at(cfg, s) == pytest.approx(factor * lr_at(plain, s))
        assert lr_at(cfg, s, base=2e-3) == pytest.approx(factor * lr_at(plain, s, base=2e-3))  # D alike
    sr = dataclasses.replace(cfg, gan=False)  # only GAN runs have an adversarial stage
    assert lr_at(sr, 1000) == lr_at(plain, 1000)


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
