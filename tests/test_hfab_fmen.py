"""HFAB / RRRB re-parameterisation and the FMEN-S network (CPU, fast)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

import ibmdn.models.fmen  # noqa: F401  (registers fmen_s, fmen_s_train and the official checkpoint)
from ibmdn.attention.hfab import ERB, HFAB, RRRB, ERBDeploy, HFABDeploy
from ibmdn.models.fmen import FMEN
from ibmdn.models.pretrained import get_checkpoint
from ibmdn.models.registry import build_model, count_params
from ibmdn.ops.reparam import reparameterized

REPO = Path(__file__).resolve().parents[1]


def _root(env: str, default: Path) -> Path | None:
    path = Path(os.environ.get(env) or default)
    return path if path.is_dir() else None


WEIGHTS = _root("IBMDN_WEIGHTS", REPO.parent / "shared" / "weights")
DATA = _root("IBMDN_DATA", REPO.parent / "shared" / "data")
FMEN_FILE = "official/FMEN/test_weights.pt"
needs_weights = pytest.mark.skipif(
    WEIGHTS is None or not (WEIGHTS / FMEN_FILE).is_file(),
    reason="FMEN weights not found: set IBMDN_WEIGHTS (e.g. ../shared/weights)",
)
needs_set5 = pytest.mark.skipif(
    DATA is None or not (DATA / "benchmark/Set5/LR_bicubic/X4").is_dir(),
    reason="Set5 not found: set IBMDN_DATA (e.g. ../shared/data)",
)


def _randomize_bn(module: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            c = bn.num_features
            with torch.no_grad():
                bn.running_mean.copy_(torch.randn(c, generator=generator) * 0.5)
                bn.running_var.copy_(torch.rand(c, generator=generator) * 1.5 + 0.25)
                bn.weight.copy_(1 + 0.3 * torch.randn(c, generator=generator))
                bn.bias.copy_(0.3 * torch.randn(c, generator=generator))


@pytest.fixture
def gen() -> torch.Generator:
    torch.manual_seed(0)
    return torch.Generator().manual_seed(0)


# ---------------------------------------------------------------- blocks


def test_hfab_param_counts():
    assert count_params(HFAB(64, mid_channels=16, num_erb=1)) == 39_440
    assert count_params(HFABDeploy(64, mid_channels=16, num_erb=1)) == 23_152
    assert count_params(HFAB(64).reparameterize()) == 23_152


def test_rrrb_reparameterized_equals_training_form(gen):
    block = RRRB(16, ratio=2)
    x = torch.randn(2, 16, 11, 9, generator=gen)
    conv = block.reparameterize()
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.padding == (1, 1)
    torch.testing.assert_close(conv(x), block(x), atol=1e-5, rtol=0)


def test_erb_reparameterized_equals_training_form(gen):
    block = ERB(12)
    x = torch.randn(1, 12, 8, 10, generator=gen)
    deploy = block.reparameterize()
    assert isinstance(deploy, ERBDeploy)
    torch.testing.assert_close(deploy(x), block(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels,mid,num_erb", [(64, 16, 1), (50, 12, 2)])
def test_hfab_deploy_equals_training_form_in_eval(gen, channels, mid, num_erb):
    block = HFAB(channels, mid_channels=mid, num_erb=num_erb)
    _randomize_bn(block, gen)
    block.eval()
    x = torch.randn(2, channels, 13, 17, generator=gen)
    deploy = block.reparameterize()
    assert isinstance(deploy, HFABDeploy)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deploy.modules())
    with torch.no_grad():
        ref, out = block(x), deploy(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    # the package's walker gives the same module type and result, and leaves the input untouched
    generic = reparameterized(block, impl="shift")  # options meant for other blocks are ignored
    assert isinstance(generic, HFABDeploy) and isinstance(block.erbs[0].conv1, RRRB)
    torch.testing.assert_close(generic(x), ref, atol=1e-5, rtol=0)


def test_hfab_training_mode_gradients_finite(gen):
    block = HFAB(32, mid_channels=16).train()
    x = torch.randn(2, 32, 10, 10, generator=gen, requires_grad=True)
    out = block(x)
    assert out.shape == x.shape
    out.square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters())


# ---------------------------------------------------------------- FMEN


def test_fmen_s_param_counts():
    assert count_params(build_model("fmen_s", 4)) == 341_066
    assert count_params(build_model("fmen_s", 2)) == 324_830
    assert count_params(build_model("fmen_s", 3)) == 331_595
    assert count_params(build_model("fmen_s_train", 4)) == 1_045_866


@pytest.mark.parametrize("name", ["fmen_s", "fmen_s_train"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fmen_shapes(name, scale):
    model = build_model(name, scale).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, 12, 10))
    assert y.shape == (1, 3, 12 * scale, 10 * scale)


@pytest.mark.parametrize("name", ["fmen_s", "fmen_s_train"])
def test_fmen_gradients_finite(name, gen):
    model = build_model(name, 2).train()
    x = torch.rand(2, 3, 12, 12, generator=gen)
    loss = (model(x) - torch.rand(2, 3, 24, 24, generator=gen)).abs().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_fmen_train_reparameterizes_into_fmen_s(gen):
    train = build_model("fmen_s_train", 4)
    _randomize_bn(train, gen)
    train.eval()
    deploy = train.reparameterize()
    assert deploy.deploy and isinstance(deploy, FMEN)
    assert count_params(deploy) == 341_066
    # the folded weights load strictly into the registered deploy model
    target = build_model("fmen_s", 4)
    target.load_state_dict(deploy.state_dict(), strict=True)
    x = torch.rand(1, 3, 16, 12, generator=gen)
    with torch.no_grad():
        ref = train(x)
        torch.testing.assert_close(target.eval()(x), ref, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(deploy(x), ref, atol=1e-4, rtol=1e-4)


def test_fmen_bad_num_erb():
    with pytest.raises(ValueError, match="num_erb"):
        FMEN(4, num_blocks=4, num_erb=(1, 1))


# ---------------------------------------------------------------- official checkpoint


@needs_weights
def test_official_checkpoint_strict_load():
    ck = get_checkpoint("fmen_s", 4)
    assert ck.value_range == 255 and ck.path == FMEN_FILE
    model = build_model("fmen_s", 4, weights="official", weights_root=WEIGHTS)  # strict inside
    assert getattr(model, "value_range", None) == 255  # ValueRange wrapper: [0, 1] interface
    with torch.no_grad():
        y = model.eval()(torch.rand(1, 3, 8, 8))
    assert y.shape == (1, 3, 32, 32) and torch.isfinite(y).all()
    assert -0.2 < float(y.mean()) < 1.2


# Set5 PSNR with the official weights: tests/test_pretrained.py (all official checkpoints, one place).
