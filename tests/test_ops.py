"""Operators: involution against an explicit per-pixel loop, gradcheck, BSConv against plain convs."""

import pytest
import torch
import torch.nn.functional as F

from ibmdn.models import count_params
from ibmdn.ops import BSConvS, BSConvU, Involution2d, bsconv_s_regularizer, make_op, parse_pattern
from ibmdn.ops.involution import group_channels_for


def involution_loop(x: torch.Tensor, kernel: torch.Tensor, k: int, stride: int) -> torch.Tensor:
    """out[c,h,w] = sum_ij W[g(c),i,j,h,w] x[c, h*s+i-k//2, w*s+j-k//2], written as plainly as possible."""
    b, c, height, width = x.shape
    g, _, ho, wo = kernel.shape[1:]
    gc = c // g
    p = k // 2
    out = torch.zeros(b, c, ho, wo, dtype=x.dtype)
    for n in range(b):
        for ch in range(c):
            for h in range(ho):
                for w in range(wo):
                    acc = 0.0
                    for i in range(k):
                        for j in range(k):
                            yy, xx = h * stride + i - p, w * stride + j - p
                            if 0 <= yy < height and 0 <= xx < width:
                                acc += kernel[n, ch // gc, i * k + j, h, w] * x[n, ch, yy, xx]
                    out[n, ch, h, w] = acc
    return out


@pytest.mark.parametrize("channels,group_channels,k,stride,size", [
    (16, 16, 3, 1, (5, 7)), (32, 16, 3, 1, (4, 4)), (12, 4, 5, 1, (6, 5)), (16, 8, 3, 2, (7, 6)), (10, 16, 3, 1, (3, 4)),
])
@pytest.mark.parametrize("impl", ["unfold", "shift"])
def test_involution_matches_loop(channels, group_channels, k, stride, size, impl):
    torch.manual_seed(0)
    m = Involution2d(channels, channels, k, stride=stride, group_channels=group_channels, impl=impl).eval()
    x = torch.randn(2, channels, *size)
    with torch.no_grad():
        kernel = m.kernel(x)
        ref = involution_loop(x, kernel, k, stride)
        out = m(x)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()


@pytest.mark.parametrize("impl", ["unfold", "shift"])
def test_involution_gradcheck(impl):
    torch.manual_seed(0)
    m = Involution2d(8, 8, 3, group_channels=4, impl=impl).double().eval()
    x = torch.randn(1, 8, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,), eps=1e-6, atol=1e-5)


def test_involution_param_counts_and_rules():
    assert count_params(Involution2d(64, 64)) == 1668
    assert count_params(Involution2d(48, 48)) == 951
    assert group_channels_for(50, 16) == 10 and group_channels_for(48, 16) == 16 and group_channels_for(7, 16) == 7
    with pytest.raises(ValueError, match="keeps the channel count"):
        Involution2d(48, 64)
    with pytest.raises(ValueError, match="impl"):
        Involution2d(16, 16, impl="cuda-magic")


def test_bsconv_u_equals_pointwise_then_depthwise():
    torch.manual_seed(0)
    m = BSConvU(6, 10, 3)
    x = torch.randn(2, 6, 9, 8)
    ref = F.conv2d(F.conv2d(x, m.pw.weight), m.dw.weight, m.dw.bias, padding=1, groups=10)
    assert torch.allclose(m(x), ref, atol=1e-6)
    assert count_params(BSConvU(64, 64)) == 4736


def test_bsconv_s_equals_composition_and_regulariser():
    torch.manual_seed(0)
    m = BSConvS(48, 48, 3)
    assert m.pw1.out_channels == 12 and count_params(m) == 1632
    assert count_params(BSConvS(64, 64)) == 2688
    x = torch.randn(1, 48, 6, 6)
    ref = F.conv2d(F.conv2d(F.conv2d(x, m.pw1.weight), m.pw2.weight), m.dw.weight, m.dw.bias, padding=1, groups=48)
    assert torch.allclose(m(x), ref, atol=1e-5)
    # regulariser: zero for orthonormal rows, positive otherwise, and it reaches the first pointwise weight
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(48, 12))
        m.pw1.weight.copy_(q.t().reshape(12, 48, 1, 1))
    assert m.orthonormal_loss().item() < 1e-5
    with torch.no_grad():
        m.pw1.weight.mul_(2)
    loss = bsconv_s_regularizer(torch.nn.Sequential(m, BSConvU(4, 4)))
    assert loss.item() > 1
    loss.backward()
    assert m.pw1.weight.grad is not None and m.pw1.weight.grad.abs().sum() > 0


def test_operators_interchangeable():
    x = torch.randn(1, 16, 8, 8)
    for code in ("C", "Bs", "I"):
        for variant in ("u", "s"):
            assert make_op(code, 16, 16, 3, bsconv=variant)(x).shape == x.shape
    assert parse_pattern("BsBsBs-BsIBs-III") == [("Bs", "Bs", "Bs"), ("Bs", "I", "Bs"), ("I", "I", "I")]
    for bad in ("BsX", "", "Bs--I", "bs"):
        with pytest.raises(ValueError, match="pattern"):
            parse_pattern(bad)
