"""The involution is the same function in training and inference (stable form), and stays bounded.

Root cause tested here (see ``ibmdn/ops/involution.py`` and ``ibmdn/experiments/stability.py``): with a
BatchNorm in the kernel generator, the involution is positively homogeneous in training mode (batch
statistics) but quadratic in eval mode (running statistics). The stable form (per-pixel LayerNorm)
is homogeneous and identical in both modes.
"""

from __future__ import annotations

import pytest
import torch

from ibmdn.ops import Involution2d

pytestmark = pytest.mark.usefixtures("one_thread")


def _trained_involution(norm: str) -> Involution2d:
    torch.manual_seed(0)
    inv = Involution2d(16, 16, 3, norm=norm, layer_scale=0.1 if norm == "ln" else 0.0, impl="shift")
    inv.train()
    with torch.no_grad():
        for _ in range(5):  # some running statistics, as after training
            inv(torch.rand(4, 16, 12, 12))
    return inv


def test_layernorm_involution_is_one_function_in_train_and_eval_mode():
    inv = _trained_involution("ln")
    x = 10 * torch.randn(3, 16, 10, 11)  # hidden variance far above LayerNorm's eps: homogeneity is exact
    with torch.no_grad():
        train_out = inv.train()(x)
        eval_out = inv.eval()(x)
        assert torch.equal(train_out, eval_out)
        for mode in (True, False):
            inv.train(mode)
            torch.testing.assert_close(inv(3.0 * x), 3.0 * inv(x), rtol=1e-4, atol=1e-3)  # Inv(a x) = a Inv(x), |out| ~ 30


def test_pixel_layernorm_is_a_layernorm_over_channels_and_keeps_the_memory_format():
    from ibmdn.ops.involution import PixelLayerNorm

    torch.manual_seed(0)
    norm = PixelLayerNorm(6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 6, 5, 7)
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    ref = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
    for fmt in (torch.contiguous_format, torch.channels_last):
        y = norm(x.contiguous(memory_format=fmt))
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
        assert y.is_contiguous(memory_format=fmt)  # no layout switch for the convolution after it


def test_batchnorm_involution_is_homogeneous_in_training_but_quadratic_in_eval_mode():
    inv = _trained_involution("bn")
    x = 4.0 * torch.rand(2, 16, 10, 10)
    with torch.no_grad():
        inv.train()
        torch.testing.assert_close(inv(2.0 * x), 2.0 * inv(x), rtol=1e-3, atol=1e-4)
        inv.eval()
        big = 1000.0
        ratio = (inv(2 * big * x).norm() / inv(big * x).norm()).item()
    assert ratio == pytest.approx(4.0, rel=0.05)  # degree 2: kernel affine in x, times x


def test_stable_ibmdn_option_values_and_fusion():
    from ibmdn.fuse import fuse_for_inference
    from ibmdn.models import build_model
    from ibmdn.ops.involution import PixelLayerNorm

    torch.manual_seed(0)
    m = build_model("ibmdn_stable", 2, channels=20, pattern="BsIBs-III")
    invs = [mod for mod in m.modules() if isinstance(mod, Involution2d)]
    assert invs and all(isinstance(i.bn1, PixelLayerNorm) and i.scale is not None for i in invs)
    assert all(float(i.scale.detach().mean()) == pytest.approx(0.1) for i in invs)
    assert len(invs) == 4 + 2 * 2  # four in the blocks, two in each block's CHFAB
    m.train()
    m(torch.rand(2, 3, 16, 16))
    m.eval()
    x = torch.rand(1, 3, 20, 18)
    torch.testing.assert_close(fuse_for_inference(m)(x), m(x), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def briefly_trained(tmp_path_factory, data_root):
    """ibmdn_stable after 60 steps of the trainer (batch 4, HR 32, lr 1e-3). The faithful form needs a
    longer run to show its eval-mode blow-up (``results/involution_stability.csv`` measures it)."""
    from ibmdn.train.config import resolve_config
    from ibmdn.train.trainer import train

    cfg = resolve_config("smoke", overrides={"iterations": 60, "lr": 1e-3, "train_sets": "T91", "threads": 1,
                                             "ckpt_every": 60})
    out = {}
    for name in ("ibmdn_stable",):
        run = tmp_path_factory.mktemp(name)
        train(name, 2, cfg, out=run, device="cpu", data_root=data_root, progress=False)
        out[name] = run / "final.pth"
    return out


def _metrics(name: str, weights, data_root) -> dict[str, float]:
    from ibmdn.experiments.stability import high_contrast_patches, stability_metrics
    from ibmdn.models import build_model

    patches = high_contrast_patches(2, n=40, size=24, root=data_root)
    return stability_metrics(build_model(name, 2, weights=str(weights)), patches, batch=40)


def test_briefly_trained_stable_ibmdn_is_bounded_and_agrees_with_training_mode(briefly_trained, data_root):
    """Bound: eval-mode outputs of the 40 most contrasted T91 patches stay within [-0.5, 1.5] (an error of
    more than 127 grey levels before clamping is what a blow-up looks like, never what a network trained
    on [0, 1] targets outputs on its own training patches), and grow linearly with the input (exponent
    within 0.2 of 1, like the training-mode network). Train/eval agreement: what remains between the
    two modes is CHFAB's BatchNorms (batch against running statistics), no involution: the outputs of
    the same batch agree to at least 30 dB PSNR."""
    from ibmdn.experiments.stability import OUT_OF_RANGE

    m = _metrics("ibmdn_stable", briefly_trained["ibmdn_stable"], data_root)
    assert m["patches_out_of_range"] == 0 and m["patches_nonfinite"] == 0, m
    assert m["max_abs_output"] <= 1 + OUT_OF_RANGE, m
    assert abs(m["growth_eval"] - 1) < 0.2 and abs(m["growth_train"] - 1) < 0.2, m
    assert m["train_eval_psnr"] >= 30, m
