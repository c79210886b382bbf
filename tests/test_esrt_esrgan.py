"""ESRT and ESRGAN (PyTorch-GAN form): exact parameter counts, shapes, odd sizes, gradients, determinism."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ibmdn.models.esrgan as esrgan_mod
import ibmdn.models.esrt as esrt_mod
from ibmdn.models.registry import build_model, count_params, list_models

ESRT_COUNTS = {
    "esrt": {2: 677_783, 3: 770_263, 4: 751_767},
    "esrt_64": {2: 2_697_149, 3: 3_066_429, 4: 2_992_573},
}


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny tensors: one thread is as fast and does not degrade when other jobs share the 2 cores
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_registered():
    assert {"esrt", "esrt_64", "esrgan_g", "esrgan_d"} <= set(list_models())
    assert list_models("esrt*", scale=3) == ["esrt", "esrt_64", "esrt_imdn_ibmd", "esrt_rfdn_ibmd"]


@pytest.mark.parametrize("name", sorted(ESRT_COUNTS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_esrt_param_counts(name, scale):
    assert count_params(build_model(name, scale=scale)) == ESRT_COUNTS[name][scale]


def test_esrt_token_dims():
    for name, dim in (("esrt", 288), ("esrt_64", 576)):
        attn = build_model(name, scale=2).body[0].transformer.layers[0].attn
        assert attn.reduce.in_features == dim and attn.proj.out_features == dim
        assert attn.attn_scale == pytest.approx((dim // 8) ** -0.5)  # official quirk: full-dim head size


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("hw", [(24, 24), (17, 23)])
def test_esrt_shapes_any_size(scale, hw):
    torch.manual_seed(0)
    model = esrt_mod.esrt(scale).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, *hw))
    assert y.shape == (1, 3, hw[0] * scale, hw[1] * scale)
    assert torch.isfinite(y).all()


def test_esrt_64_shape_odd():
    model = esrt_mod.esrt_64(3).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, 9, 7))
    assert y.shape == (2, 3, 27, 21)


def test_esrt_tiny_input():
    # fewer than num_splits tokens per segment must not crash (segment length floors at one token)
    model = esrt_mod.ESRT(scale=2, channels=16, num_blocks=1, low_repeats=1).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 2, 3)).shape == (1, 3, 4, 6)


def _reference_emha(attn: esrt_mod.EfficientMultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """Explicit softmax attention within consecutive token segments (length N // splits, remainder last)."""
    x = attn.reduce(x)
    b, n, c = x.shape
    h = attn.num_heads
    q, k, v = attn.qkv(x).reshape(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4)
    seg = n // attn.num_splits
    out = torch.zeros(b, h, n, c // h)
    for start in range(0, n, seg):
        sl = slice(start, start + seg)
        w = (q[:, :, sl] @ k[:, :, sl].transpose(-2, -1)) * (c * 2 // h) ** -0.5
        out[:, :, sl] = w.softmax(-1) @ v[:, :, sl]
    return attn.proj(out.transpose(1, 2).reshape(b, n, c))


@pytest.mark.parametrize("n", [24 * 24, 17 * 23])  # 4 segments; 4 segments + a remainder of 3 tokens
def test_emha_matches_explicit_segment_attention(n):
    torch.manual_seed(1)
    attn = esrt_mod.EfficientMultiHeadAttention(288, num_heads=8, num_splits=4)
    x = torch.randn(2, n, 288)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), _reference_emha(attn, x), rtol=1e-4, atol=1e-5)


def test_transformer_fold_is_unfold_adjoint_at_identity():
    # zero attention/MLP output: the transformer returns fold(unfold(x)) = x * (patches covering a pixel)
    et = esrt_mod.EfficientTransformer(16, depth=1)
    for p in et.parameters():
        nn.init.zeros_(p)
    x = torch.rand(1, 16, 5, 7)
    cover = F.fold(F.unfold(torch.ones_like(x), 3, padding=1), (5, 7), 3, padding=1)
    torch.testing.assert_close(et(x), x * cover)


def test_esrt_block_hook():
    seen = []

    def factory(index: int, channels: int) -> nn.Module:
        seen.append((index, channels))
        return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())

    model = esrt_mod.ESRT(scale=4, channels=16, num_blocks=5, block_factory=factory).eval()
    assert seen == [(i, 16) for i in range(5)]
    assert len(model.body[0].blocks) == 5
    assert model.body[0].fuse.in_channels == 5 * 16
    blocks = sum(count_params(b) for b in model.body[0].blocks)
    assert blocks == 5 * (16 * 16 * 9 + 16)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 11, 6)).shape == (1, 3, 44, 24)
    # transformer_depth=0 removes only the transformer
    no_t = esrt_mod.ESRT(scale=4, channels=16, num_blocks=5, block_factory=factory, transformer_depth=0)
    assert count_params(model) - count_params(no_t) == count_params(model.body[0].transformer)


def test_esrt_converter_names():
    conv = esrt_mod._rename_official
    assert conv("head.0.weight") == "conv_first.weight"
    assert conv("reduce.bias") == "conv_after_body.bias"
    assert conv("tail.0.2.weight") == "upsample.0.2.weight"
    assert conv("tail.1.weight") == "upsample.1.weight"
    assert conv("up.1.conv.weight") == "upsample_shallow.1.weight"
    assert conv("body.0.encoder3.decoder_low.layer1.conv1.bias") == "body.0.blocks.2.low.unit1.conv2.bias"
    assert conv("body.0.encoder1.alise.weight1.scale") == "body.0.blocks.0.refine.unused_scale"
    assert conv("body.0.encoder1.alise2.conv.weight") == "body.0.blocks.0.fuse.weight"
    assert conv("body.0.attention.atten.qkv.weight") == "body.0.transformer.layers.0.attn.qkv.weight"
    assert conv("body.0.attention.mlp.fc2.bias") == "body.0.transformer.layers.0.mlp.2.bias"
    ours = esrt_mod.esrt(2).state_dict()
    assert "body.0.blocks.1.encoder.unit2.act.weight" in ours
    assert "body.0.blocks.1.encoder.unused_scale" in ours


def test_esrgan_param_counts():
    g = build_model("esrgan_g", scale=4)
    d = build_model("esrgan_d", scale=4)
    assert count_params(g) == 38_549_123
    assert count_params(d) == 4_693_697
    assert count_params(g) + count_params(d) == 43_242_820
    # the discriminator's structure does not depend on the SR scale
    assert all(count_params(build_model("esrgan_d", scale=s)) == 4_693_697 for s in (2, 3))
    # x2: one sub-pixel stage fewer (conv 64->256: 147,712 parameters)
    x2, x4 = (count_params(esrgan_mod.RRDBNet(s, num_blocks=1)) for s in (2, 4))
    assert x4 - x2 == 147_712


def test_esrgan_structure_facts():
    g = esrgan_mod.RRDBNet(4, num_blocks=2)
    convs = g.body[0].dense_blocks[0].convs
    assert [c.in_channels for c in convs] == [64, 128, 192, 256, 320]
    assert [c.out_channels for c in convs] == [64] * 5
    assert sum(isinstance(m, nn.PixelShuffle) for m in g.upsample) == 2
    d = esrgan_mod.PatchDiscriminator()
    assert [s[0].out_channels for s in d.stages] == [64, 128, 256, 512]
    assert not isinstance(d.stages[0][1], nn.BatchNorm2d) and isinstance(d.stages[1][1], nn.BatchNorm2d)


def test_esrgan_generator_forward_tiny():
    torch.manual_seed(0)
    g = esrgan_mod.esrgan_g(4).eval()
    with torch.no_grad():
        y = g(torch.rand(1, 3, 8, 8))
    assert y.shape == (1, 3, 32, 32) and torch.isfinite(y).all()


@pytest.mark.parametrize("hw,out", [((32, 32), (2, 2)), ((40, 36), (3, 3)), ((17, 23), (2, 2))])
def test_discriminator_patch_map(hw, out):
    d = esrgan_mod.PatchDiscriminator().eval()
    with torch.no_grad():
        assert d(torch.rand(2, 3, *hw)).shape == (2, 1, *out)
    d3 = esrgan_mod.PatchDiscriminator(stages=(8, 16, 32)).eval()
    with torch.no_grad():
        assert d3(torch.rand(1, 3, *hw)).shape == (1, 1, *(math.ceil(s / 8) for s in hw))


def test_discriminator_stage_hook():
    def stage(index: int, cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2))

    d = esrgan_mod.PatchDiscriminator(stages=(8, 16), stage_factory=stage)
    assert count_params(d) == (3 * 8 * 16 + 8) + (8 * 16 * 16 + 16) + (16 * 9 + 1)
    assert d(torch.rand(1, 3, 16, 16)).shape == (1, 1, 4, 4)


def _grads_finite(model: nn.Module, x: torch.Tensor) -> None:
    model.train()
    model.zero_grad()
    model(x).square().mean().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for name, p in trainable:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_esrt_gradients():
    torch.manual_seed(0)
    model = esrt_mod.esrt(3)
    _grads_finite(model, torch.rand(2, 3, 9, 11))
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert len(frozen) == 12 and all(n.endswith("unused_scale") for n in frozen)


def test_esrgan_gradients():
    torch.manual_seed(0)
    _grads_finite(esrgan_mod.RRDBNet(4, num_blocks=2), torch.rand(1, 3, 6, 6))
    _grads_finite(esrgan_mod.PatchDiscriminator(), torch.rand(2, 3, 32, 32))


@pytest.mark.parametrize(
    "build,shape",
    [
        (lambda: esrt_mod.esrt(2), (1, 3, 12, 10)),
        (lambda: esrgan_mod.RRDBNet(4, num_blocks=2), (1, 3, 8, 8)),
        (lambda: esrgan_mod.PatchDiscriminator().eval(), (1, 3, 32, 32)),
    ],
)
def test_same_seed_same_output(build, shape):
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = build()
        x = torch.rand(*shape)
        with torch.no_grad():
            outs.append(model(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
