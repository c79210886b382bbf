"""Operators: involution against an explicit per-pixel loop, gradcheck, BSConv against plain convs."""

import pytest
import torch
import torch.nn.functional as F

from ibmdn.models import count_params
from ibmdn.ops import BSConvS, BSConvU, Involution2d, bsconv_s_regularizer, make_op, parse_pattern
from ibmdn.ops.involution import group_channels_for, involution_fused, involution_unfold, set_involution_impl

pytestmark = pytest.mark.usefixtures("one_thread")


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
@pytest.mark.parametrize("impl", ["unfold", "shift", "fused", "conv"])
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


@pytest.mark.parametrize("impl", ["unfold", "shift", "fused", "conv"])
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


# ------------------------------------------------------------- fused involution (own backward, any layout)


def _layout(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t.contiguous()


def _fused_inputs(b, c, g, k, size, channels_last, dtype):
    """``x`` (B, C, H, W) and the generator-like kernel (B, G*K*K, H, W), both in the requested layout."""
    x = _layout(torch.randn(b, c, *size, dtype=dtype), channels_last).requires_grad_()
    kernel = _layout(torch.randn(b, g * k * k, *size, dtype=dtype), channels_last).requires_grad_()
    return x, kernel


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("c,g,k,size", [(4, 2, 3, (5, 6)), (6, 2, 3, (5, 6)), (3, 3, 5, (2, 3))])
def test_fused_involution_gradcheck(c, g, k, size, channels_last):
    """Hand-written backward against finite differences (the last case has taps beyond the image)."""
    torch.manual_seed(0)
    x, kernel = _fused_inputs(2, c, g, k, size, channels_last, torch.float64)

    def f(x, kernel):
        return involution_fused(x, kernel.unflatten(1, (g, k * k)), k)

    assert torch.autograd.gradcheck(f, (x, kernel), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_involution_equals_unfold_and_keeps_the_layout(channels_last):
    torch.manual_seed(0)
    c, g, k, size = 6, 2, 3, (5, 6)
    x, kernel = _fused_inputs(2, c, g, k, size, channels_last, torch.float32)
    weight = torch.randn(2, c, *size)
    grads = {}
    for impl in ("unfold", "fused"):
        xi, ki = (x, kernel) if impl == "fused" else (x.detach().contiguous().requires_grad_(),
                                                      kernel.detach().contiguous().requires_grad_())
        fn = involution_fused if impl == "fused" else involution_unfold
        out = fn(xi, ki.unflatten(1, (g, k * k)), k)
        (out * weight).sum().backward()
        grads[impl] = (out.detach(), xi.grad, ki.grad)
        if impl == "fused":  # output and gradients in the input's memory format: no layout conversion
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            assert out.is_contiguous(memory_format=fmt)
            assert xi.grad.is_contiguous(memory_format=fmt) and ki.grad.is_contiguous(memory_format=fmt)
    for ref, got, name in zip(grads["unfold"], grads["fused"], ("output", "grad x", "grad kernel")):
        assert torch.allclose(got, ref, atol=1e-5), (name, (got - ref).abs().max())


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_involution_module_train_gradients_equal_unfold(channels_last, stride):
    """Train mode (batch statistics): output, input and parameter gradients of ``impl="fused"`` equal the
    reference's (stride 2 takes the shift form)."""
    torch.manual_seed(0)
    ref = Involution2d(8, 8, 3, stride=stride, group_channels=4, impl="unfold").train()
    fused = Involution2d(8, 8, 3, stride=stride, group_channels=4, impl="fused").train()
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(2, 8, 6, 7)
    target = torch.randn(2, 8, 6 // stride, 7 // stride + 7 % stride)
    results = []
    for m, cl in ((ref, False), (fused, channels_last)):
        m = m.to(memory_format=torch.channels_last) if cl else m
        xi = _layout(x.detach(), cl).requires_grad_()
        out = m(xi)
        F.mse_loss(out, target).backward()
        results.append((out.detach(), xi.grad, {n: p.grad for n, p in m.named_parameters()}))
    (out_r, gx_r, gp_r), (out_f, gx_f, gp_f) = results
    assert torch.allclose(out_f, out_r, atol=1e-5) and torch.allclose(gx_f, gx_r, atol=1e-5)
    assert gp_r.keys() == gp_f.keys()
    for name in gp_r:
        assert torch.allclose(gp_f[name], gp_r[name], atol=1e-5), name


def test_fused_involution_under_compile_takes_the_shift_form():
    """Traced by ``torch.compile`` (whole graph), ``fused`` is the shift form: same forward and gradients."""
    torch.manual_seed(0)
    m = Involution2d(8, 8, 3, group_channels=4, impl="fused").eval()
    x = torch.randn(2, 8, 6, 7, requires_grad=True)
    ref = m(x)
    (gx_ref,) = torch.autograd.grad(ref.square().sum(), x)
    out = torch.compile(m, backend="aot_eager", fullgraph=True)(x)
    (gx,) = torch.autograd.grad(out.square().sum(), x)
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(gx, gx_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["ibmdn", "ibmdn_stable"])
def test_networks_train_in_channels_last_with_fused_involution(name):
    """A train-mode step of the paper's networks on a channels-last batch (the trainer's
    ``channels_last`` flow) runs and gives the NCHW loss and gradients. float64: the BatchNorm kernel
    generators of ``ibmdn`` at batch 2 amplify float32 rounding far beyond any layout effect."""
    from ibmdn.models import build_model

    torch.manual_seed(0)
    net = build_model(name, 2).double().train()
    set_involution_impl(net, "fused")
    x, y = torch.rand(2, 3, 16, 16, dtype=torch.float64), torch.rand(2, 3, 32, 32, dtype=torch.float64)
    results = {}
    for cl in (False, True):
        net.zero_grad()
        net = net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        out = net(_layout(x, cl))
        loss = F.l1_loss(out, y)
        loss.backward()
        if cl:
            assert out.is_contiguous(memory_format=torch.channels_last)
        grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        results[cl] = (loss.item(), grads)
    (loss_a, ga), (loss_b, gb) = results[False], results[True]
    assert loss_b == pytest.approx(loss_a, rel=1e-4)
    assert ga.keys() == gb.keys() and len(ga) > 0
    for n in ga:
        err, size = (gb[n] - ga[n]).norm().item(), ga[n].norm().item()
        assert err <= 1e-4 * size + 1e-12, (n, err, size)
