"""Involution (Li et al., CVPR 2021, "Involution: Inverting the Inherence of Convolution for Visual Recognition").

A per-pixel, channel-shared kernel is generated from the input itself and applied to its KxK
neighbourhood:

    W = conv2(ReLU(BN(conv1(x))))                       # conv1: C -> C/r (no bias), conv2: C/r -> K^2 G
    out[c, h, w] = sum_{i,j} W[g(c), i, j, h, w] * x[c, h+i-K//2, w+j-K//2]   (zero padding)

with ``G = C / group_channels`` groups, each kernel shared by the ``group_channels`` channels of a
group; no bias and no channel mixing in the application. At C=64 (r 4, groups of 16): 1,668
parameters; C=48: 951.

Interpretations and deviations (documented choices):

* **Channels not divisible by ``group_channels``.** The official code fails for them (e.g. RFDN's 50
  channels). Rule used here: ``group_channels`` becomes the largest divisor of C not above the
  requested value (50 -> 10, i.e. 5 groups); C/r uses floor division (50 / 4 -> 12). The audit table
  shows the effect on the paper's counts.
* **Signature.** ``nn.Conv2d``'s ``(in_channels, out_channels, kernel_size, stride, padding, bias)`` so
  that any operator stands in any block. Involution cannot change the channel count:
  ``in_channels != out_channels`` raises ``ValueError``. ``bias`` is accepted for interchangeability and
  refers to the kernel generator's last 1x1 conv (which has a bias in the original); the application
  itself has none. ``padding`` must be ``None`` or ``K//2`` (the original's only mode).
* **Implementations** (``impl``): ``"unfold"`` is the reference (``nn.Unfold`` builds the K^2-fold
  unfolded tensor, as the official PyTorch form); ``"shift"`` accumulates K^2 shifted slices of the
  input times the matching kernel plane, in place, and never materialises the unfolded tensor (peak
  memory O(C H W) instead of O(K^2 C H W), forward and backward; ``torch.compile`` fuses it into one
  loop on CPU and one Triton kernel on CUDA). Both give the same result (tests compare them with an
  explicit per-pixel loop, and forward and gradients with each other). The inference form with the
  kernel generator's BatchNorm folded is :class:`FusedInvolution` (:meth:`Involution2d.reparameterize`). ``"fused"``
  (:func:`involution_fused`) computes the forward as ``"shift"`` and replaces autograd's record of the
  K^2 multiply-adds by one hand-written backward that also works on shifted sub-rectangles; it keeps only
  ``x`` and the kernel for the backward and runs on NCHW and channels-last tensors without changing their
  layout (the trainer's default on CPU). ``"conv"`` (:func:`involution_conv`) is ``"unfold"`` with the
  unfolding done by a grouped one-hot convolution: the form ONNX graphs use. All four give the same
  function.
* Stride > 1 (kernel generated on an average-pooled input, as the original) is supported by both paths;
  the pooling uses ``ceil_mode`` so that odd sizes work (the original fails on them).

* **Kernel-generator normalisation** (``norm``). ``"bn"`` (default) is the original's BatchNorm. It makes
  the involution a different function in training and in inference: with batch statistics the hidden
  features are normalised per batch, so the generated kernel does not grow with the input's scale and
  ``Inv(a x) = a Inv(x)``; with running statistics (eval mode) the kernel is an affine function of ``x``
  and the involution becomes *quadratic* in ``x``. Three involutions chained with identity residuals
  (the paper's last ``III`` block) are then a polynomial of degree about 8 in eval mode, and a
  high-contrast input can drive it far outside the range it was trained on
  (``results/involution_stability.csv``). RedNet, where involution comes from, hides this with a
  BatchNorm after every involution, zero-initialised residual branches and batch 2048; an SR trunk
  has none of these. ``"ln"`` normalises the hidden features per pixel over their channels
  (LayerNorm, no running statistics): the same function in both modes, the kernel invariant to the
  input's scale as in the BN form's training mode, and local, so tiled inference stays exact.
  ``"none"`` drops the normalisation (``conv1`` then has a bias): the same function in both modes, but
  quadratic in ``x`` in both. See ``docs/networks.md`` for the choice of the stable IBMDN.
* **Residual-branch scale** (``layer_scale``, 0 = off): a learnable per-channel factor on the output,
  initialised to ``layer_scale`` (LayerScale, Touvron et al. 2021). Every involution of the paper's
  networks sits on a residual branch (``r + Inv(r)`` in the blocks and in CHFAB's ERB); a small
  initial scale starts each branch close to the identity path.

Sub-module names ``conv1``, ``bn1``, ``conv2`` are ours; the converter of the authors' DepthIBN
checkpoint maps ``conv1.conv / conv1.bn / conv2.conv`` (mmcv ``ConvModule``) onto them.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ibmdn.ops.reparam import InferenceOnly, fold_bn_after


def group_channels_for(channels: int, group_channels: int) -> int:
    """Largest divisor of ``channels`` that is at most ``group_channels`` (see module docstring)."""
    if channels <= 0 or group_channels <= 0:
        raise ValueError(f"channels and group_channels must be positive, got {channels}, {group_channels}")
    return max(d for d in range(1, min(channels, group_channels) + 1) if channels % d == 0)


def involution_unfold(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1) -> torch.Tensor:
    """Reference application: ``kernel`` is (B, G, K*K, H_out, W_out)."""
    b, c, _, _ = x.shape
    g, kk, h, w = kernel.shape[1:]
    cols = F.unfold(x, kernel_size, padding=(kernel_size - 1) // 2, stride=stride)
    cols = cols.view(b, g, c // g, kk, h, w)
    return (kernel.unsqueeze(2) * cols).sum(dim=3).view(b, c, h, w)


def involution_conv(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1) -> torch.Tensor:
    """The unfold application with the unfolding done by a convolution: a grouped ``K x K`` convolution
    whose fixed weight holds the K^2 one-hot taps (one group per channel) yields ``F.unfold``'s columns in
    ``F.unfold``'s order (channel-major, then tap). The same numbers (each column entry is one input value
    times 1 plus zeros), for graph exporters: ``F.unfold`` becomes index ``Gather`` nodes in ONNX, which
    ONNX Runtime runs several times slower than this one ``Conv``."""
    b, c, _, _ = x.shape
    g, kk, h, w = kernel.shape[1:]
    taps = torch.eye(kk, dtype=x.dtype, device=x.device).view(kk, 1, kernel_size, kernel_size).repeat(c, 1, 1, 1)
    cols = F.conv2d(x, taps, stride=stride, padding=(kernel_size - 1) // 2, groups=c)
    cols = cols.view(b, g, c // g, kk, h, w)
    return (kernel.unsqueeze(2) * cols).sum(dim=3).view(b, c, h, w)


@torch.library.custom_op("ibmdn::zero_pad2d", mutates_args=())
def zero_pad2d(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``F.pad(x, (pad,) * 4)`` as an operator ``torch.compile`` does not look into (see :func:`involution_shift`).

    The output is NCHW-contiguous (the layout the fake below promises). For an NCHW input only the
    border is zeroed before the interior is copied: 5x faster than ``F.pad``, which fills the whole
    output first (0.31 vs 1.5 ms, 50 channels at 128x128, one thread).
    """
    if not x.is_contiguous():
        return F.pad(x, (pad, pad, pad, pad)).contiguous()
    h, w = x.shape[-2:]
    out = x.new_empty(*x.shape[:-2], h + 2 * pad, w + 2 * pad)
    out[..., :pad, :].zero_()
    out[..., h + pad:, :].zero_()
    out[..., pad:h + pad, :pad].zero_()
    out[..., pad:h + pad, w + pad:].zero_()
    out[..., pad:h + pad, pad:w + pad].copy_(x)
    return out


@zero_pad2d.register_fake
def _(x: torch.Tensor, pad: int) -> torch.Tensor:
    return x.new_empty(*x.shape[:-2], x.shape[-2] + 2 * pad, x.shape[-1] + 2 * pad)


def _zero_pad2d_backward(ctx, grad: torch.Tensor):
    p = ctx.pad
    return grad[..., p:grad.shape[-2] - p, p:grad.shape[-1] - p], None


def _zero_pad2d_setup(ctx, inputs, output) -> None:
    ctx.pad = inputs[1]


zero_pad2d.register_autograd(_zero_pad2d_backward, setup_context=_zero_pad2d_setup)


@torch.library.custom_op("ibmdn::contiguous_copy", mutates_args=())
def contiguous_copy(x: torch.Tensor) -> torch.Tensor:
    """A contiguous (NCHW) copy of ``x`` that ``torch.compile`` does not look into (see :func:`involution_shift`)."""
    return x.clone(memory_format=torch.contiguous_format)


@contiguous_copy.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return x.new_empty(x.shape)


contiguous_copy.register_autograd(lambda ctx, grad: grad, setup_context=lambda ctx, inputs, output: None)


def involution_shift(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int, stride: int = 1) -> torch.Tensor:
    """Shift-and-accumulate application: memory O(C H W) instead of O(K^2 C H W).

    Two forms of the same sum, chosen by execution mode (both differentiable):

    * eager, stride 1: each tap is accumulated in place (``addcmul_``) into the sub-rectangle of the
      output it reaches; no padded copy of ``x``, the zero padding is implicit. Autograd supports the
      in-place accumulation here (no product needs the running sum), so training uses it too.
    * under ``torch.compile`` (and for stride > 1): K^2 shifted slices of a zero-padded copy, summed out
      of place, which inductor fuses into one loop (one Triton kernel on CUDA). The padded copy is made
      by :func:`zero_pad2d`, an operator inductor does not inline: inlined, the padding becomes a
      bounds mask on each of the K^2 loads, which made the fused CPU loop ~4x slower (measured, torch
      2.14, 50 channels at 128x128: 5.8 ms vs 1.2 ms including the following add + LeakyReLU). The
      kernel is read through :func:`contiguous_copy` for the same reason: with frozen weights, inductor
      runs the 1x1 convolution that generates it in channels-last layout, and a loop that reads an NCHW
      input and a channels-last kernel (stride K^2 G along W) is not vectorised: IBMDN's 50-channel
      application took 13 ms per call (one thread, LR 128x128), 3.1 ms with the NCHW copy (the copy
      included).
    """
    b, c, height, width = x.shape
    g, _, h, w = kernel.shape[1:]
    gc = c // g
    pad = (kernel_size - 1) // 2
    if stride == 1 and not torch.compiler.is_compiling():
        xv = x.view(b, g, gc, height, width)
        centre = pad * kernel_size + pad
        out = xv * kernel[:, :, centre].unsqueeze(2)
        for i in range(kernel_size):
            for j in range(kernel_size):
                di, dj = i - pad, j - pad
                if (di, dj) == (0, 0) or abs(di) >= height or abs(dj) >= width:
                    continue
                oy, ox = slice(max(0, -di), height - max(0, di)), slice(max(0, -dj), width - max(0, dj))
                iy, ix = slice(max(0, di), height - max(0, -di)), slice(max(0, dj), width - max(0, -dj))
                out[..., oy, ox].addcmul_(xv[..., iy, ix], kernel[:, :, i * kernel_size + j, oy, ox].unsqueeze(2))
        return out.view(b, c, h, w)
    xp = zero_pad2d(x, pad) if pad else x
    if torch.compiler.is_compiling():
        kernel = contiguous_copy(kernel)
    xp = xp.view(b, g, gc, height + 2 * pad, width + 2 * pad)
    out = None
    for i in range(kernel_size):
        for j in range(kernel_size):
            patch = xp[..., i: i + stride * (h - 1) + 1: stride, j: j + stride * (w - 1) + 1: stride]
            term = patch * kernel[:, :, i * kernel_size + j].unsqueeze(2)
            out = term if out is None else out + term
    return out.reshape(b, c, h, w)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """``channels_last`` for an NHWC-dense tensor that is not NCHW-contiguous too, else NCHW."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _tap_rects(kernel_size: int, height: int, width: int):
    """``(tap, out_rect, in_rect)`` for every tap except the centre that reaches the image (stride 1).

    ``out_rect`` are the output pixels whose neighbour at this tap lies inside the image, ``in_rect``
    those neighbours: ``out[out_rect] += kernel[tap, out_rect] * x[in_rect]`` (zero padding implicit).
    """
    pad = kernel_size // 2
    for i in range(kernel_size):
        for j in range(kernel_size):
            di, dj = i - pad, j - pad
            if (di, dj) == (0, 0) or abs(di) >= height or abs(dj) >= width:
                continue
            out_rect = (slice(max(0, -di), height - max(0, di)), slice(max(0, -dj), width - max(0, dj)))
            in_rect = (slice(max(0, di), height - max(0, -di)), slice(max(0, dj), width - max(0, -dj)))
            yield i * kernel_size + j, out_rect, in_rect


class _FusedInvolution(torch.autograd.Function):
    """Stride-1 application, forward and backward by shift-and-accumulate (see :func:`involution_fused`)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: torch.Tensor, kernel_size: int) -> torch.Tensor:
        ctx.save_for_backward(x, kernel)
        ctx.kernel_size = kernel_size
        g = kernel.shape[1]
        height, width = x.shape[-2:]
        centre = (kernel_size // 2) * (kernel_size + 1)
        out = torch.empty_like(x, memory_format=_memory_format(x))
        xv, ov = x.unflatten(1, (g, -1)), out.unflatten(1, (g, -1))  # views in either layout
        torch.mul(xv, kernel[:, :, centre].unsqueeze(2), out=ov)
        for t, (oy, ox), (iy, ix) in _tap_rects(kernel_size, height, width):
            ov[..., oy, ox].addcmul_(xv[..., iy, ix], kernel[:, :, t, oy, ox].unsqueeze(2))
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        x, kernel = ctx.saved_tensors
        k = ctx.kernel_size
        g = kernel.shape[1]
        height, width = x.shape[-2:]
        centre = (k // 2) * (k + 1)
        fmt = _memory_format(x)
        # the incoming gradient in the input's layout, so that the loops below walk one layout
        # (no copy in a consistent NCHW or channels-last flow)
        grad_out = grad_out.contiguous(memory_format=fmt)
        gv, xv = grad_out.unflatten(1, (g, -1)), x.unflatten(1, (g, -1))
        grad_x = grad_kernel = None
        if ctx.needs_input_grad[0]:
            # out[p] = sum_t kernel[t, p] x[p + d_t]  =>  grad_x[p + d_t] += grad_out[p] kernel[t, p]
            grad_x = torch.empty_like(x, memory_format=fmt)
            gxv = grad_x.unflatten(1, (g, -1))
            torch.mul(gv, kernel[:, :, centre].unsqueeze(2), out=gxv)
            for t, (oy, ox), (iy, ix) in _tap_rects(k, height, width):
                gxv[..., iy, ix].addcmul_(gv[..., oy, ox], kernel[:, :, t, oy, ox].unsqueeze(2))
        if ctx.needs_input_grad[1]:
            # grad_kernel[t, p] = sum over the group's channels of grad_out[p] x[p + d_t], 0 where p + d_t
            # is padding; the products go through one reused x-sized buffer
            grad_kernel = torch.zeros_like(kernel)  # the kernel's strides (e.g. a channels-last conv output)
            buf = torch.empty_like(xv)
            torch.sum(torch.mul(gv, xv, out=buf), dim=2, out=grad_kernel[:, :, centre])
            for t, (oy, ox), (iy, ix) in _tap_rects(k, height, width):
                prod = buf[..., : oy.stop - oy.start, : ox.stop - ox.start]
                torch.mul(gv[..., oy, ox], xv[..., iy, ix], out=prod)
                torch.sum(prod, dim=2, out=grad_kernel[:, :, t, oy, ox])
        return grad_x, grad_kernel, None


def involution_fused(x: torch.Tensor, kernel: torch.Tensor, kernel_size: int,
                     stride: int = 1) -> torch.Tensor:
    """Shift-and-accumulate application with its own backward: no K^2-fold tensor in either pass.

    Forward: the sum of :func:`involution_shift`'s eager form (same taps in the same order, so the same
    result). Backward, written out instead of recorded by autograd, over the same shifted
    sub-rectangles: ``grad_x[in_rect] += grad_out[out_rect] * kernel[tap, out_rect]`` (the kernel plane
    broadcast over its group's channels) and ``grad_kernel[tap, out_rect] = sum_{c in group}
    grad_out[c, out_rect] * x[c, in_rect]``. Only ``x`` and ``kernel`` are saved for the backward, and
    the backward is one call instead of autograd's walk through the K^2 recorded multiply-adds.

    Layout: NCHW and channels-last inputs are used as they are (the group split is a view in either
    layout; the kernel is read through its own strides); the output and ``grad_x`` come in the input's
    memory format, ``grad_kernel`` in the kernel's strides. No layout copy is made, except of an incoming
    gradient whose layout differs from the input's.

    Stride > 1, and code traced by ``torch.compile``, use :func:`involution_shift`: its plain tensor code
    is what the compiler fuses, while this function's accumulation into strided ``out=`` views is
    rejected by the tracer (it would break the graph or fail with ``fullgraph``). Second derivatives
    are not supported (``once_differentiable``).
    """
    if stride != 1 or torch.compiler.is_compiling():
        return involution_shift(x, kernel, kernel_size, stride)
    if x.dtype != kernel.dtype:  # e.g. under autocast: the in-place accumulation needs one dtype
        dtype = torch.promote_types(x.dtype, kernel.dtype)
        x, kernel = x.to(dtype), kernel.to(dtype)
    return _FusedInvolution.apply(x, kernel, kernel_size)


IMPLS = {"unfold": involution_unfold, "shift": involution_shift, "fused": involution_fused, "conv": involution_conv}
"""Application implementations by name (all exact: they differ in memory and speed only)."""
_IMPLS = IMPLS


class PixelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of each pixel of an NCHW tensor (no running statistics).

    The output keeps the input's memory format (:func:`_memory_format`). The normalisation itself runs on
    the channels-last view; handing that view on to an NCHW network would switch the next convolutions to
    channels-last and back, a layout change per involution.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return y.contiguous(memory_format=_memory_format(x))


NORMS = ("bn", "ln", "none")
"""Kernel-generator normalisations (module docstring)."""


def make_generator_norm(norm: str, channels: int) -> nn.Module:
    """The normalisation between the kernel generator's two 1x1 convs: ``bn``, ``ln`` or ``none``."""
    if norm not in NORMS:
        raise ValueError(f"involution norm must be one of {NORMS}, got {norm!r}")
    return {"bn": nn.BatchNorm2d, "ln": PixelLayerNorm, "none": lambda c: nn.Identity()}[norm](channels)


class Involution2d(nn.Module):
    """Involution with a normalised + ReLU kernel generator (K, stride, reduction, group_channels,
    normalisation and residual-branch scale configurable; see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, bias: bool = True, reduction: int = 4, group_channels: int = 16,
                 impl: str = "unfold", norm: str = "bn", layer_scale: float = 0.0):
        super().__init__()
        if in_channels != out_channels:
            raise ValueError(f"involution keeps the channel count: in_channels {in_channels} != out_channels "
                             f"{out_channels}")
        if kernel_size % 2 != 1:
            raise ValueError(f"involution needs an odd kernel_size, got {kernel_size}")
        if padding not in (None, kernel_size // 2):
            raise ValueError(f"involution supports only 'same' padding ({kernel_size // 2}), got {padding}")
        if impl not in _IMPLS:
            raise ValueError(f"impl must be one of {sorted(_IMPLS)}, got {impl!r}")
        if layer_scale < 0:
            raise ValueError(f"layer_scale must be >= 0 (0: off), got {layer_scale}")
        self.channels = in_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.group_channels = group_channels_for(in_channels, group_channels)
        self.groups = in_channels // self.group_channels
        self.impl = impl
        self.norm = norm
        mid = max(1, in_channels // reduction)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=norm == "none")
        self.bn1 = make_generator_norm(norm, mid)
        self.conv2 = nn.Conv2d(mid, kernel_size * kernel_size * self.groups, 1, bias=bias)
        self.scale = nn.Parameter(torch.full((1, in_channels, 1, 1), float(layer_scale))) if layer_scale else None
        # ceil_mode: the pooled size equals the strided output size ceil(H / stride) also for odd H
        # (the original's floor-mode pooling fails on odd sizes)
        self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """The generated per-pixel kernels, shape (B, G, K*K, H_out, W_out)."""
        k = self.conv2(F.relu(self.bn1(self.conv1(self.pool(x)))))
        b, _, h, w = k.shape
        return k.view(b, self.groups, self.kernel_size * self.kernel_size, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _IMPLS[self.impl](x, self.kernel(x), self.kernel_size, self.stride)
        return out if self.scale is None else out * self.scale

    def extra_macs(self, x: torch.Tensor, out: torch.Tensor) -> int:
        """Multiply-adds of the per-pixel application (generic counters see only the 1x1 convs)."""
        return out.numel() * self.kernel_size * self.kernel_size

    def extra_repr(self) -> str:
        return (f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, groups={self.groups}, "
                f"group_channels={self.group_channels}, impl={self.impl!r}, norm={self.norm!r}")

    def reparameterize(self, *, impl: str | None = None, **_) -> nn.Module:
        """The eval-only :class:`FusedInvolution` (stride 1; a strided involution is returned as an eval copy)."""
        if self.stride != 1:
            return copy.deepcopy(self).eval()
        return FusedInvolution(self, impl)


class FusedInvolution(InferenceOnly):
    """Involution with the kernel generator's BatchNorm folded into its first 1x1 (stride 1 only).

    ``hidden = gen1(x)`` (C -> C/r, bias), ``kernel = gen2(relu(norm(hidden)))`` (``norm`` is the identity
    for a BatchNorm generator, folded, and the per-pixel LayerNorm of ``norm="ln"``) (C/r -> K^2 G), then
    the per-pixel application by ``impl``. :meth:`apply_hidden` takes a precomputed ``hidden`` (when
    ``gen1`` is stacked into a 1x1 conv shared with other layers reading the same input).
    """

    is_involution = True  # :func:`set_involution_impl` switches it too

    def __init__(self, inv: Involution2d, impl: str | None = None):
        super().__init__()
        if inv.stride != 1:
            raise ValueError("FusedInvolution supports stride 1 only")
        self.channels, self.kernel_size, self.groups = inv.channels, inv.kernel_size, inv.groups
        self.impl = impl or inv.impl
        if isinstance(inv.bn1, nn.BatchNorm2d):
            self.gen1, self.norm = fold_bn_after(inv.conv1, inv.bn1), nn.Identity()
        else:  # per-pixel LayerNorm or none: nothing to fold
            self.gen1, self.norm = copy.deepcopy(inv.conv1), copy.deepcopy(inv.bn1)
        self.gen2 = copy.deepcopy(inv.conv2)
        self.scale = None if inv.scale is None else nn.Parameter(inv.scale.detach().clone(), requires_grad=False)

    def kernel_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        k = self.gen2(F.relu(self.norm(hidden)))
        return k.view(k.shape[0], self.groups, self.kernel_size * self.kernel_size, k.shape[2], k.shape[3])

    def apply_hidden(self, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        out = _IMPLS[self.impl](x, self.kernel_from_hidden(hidden), self.kernel_size, 1)
        return out if self.scale is None else out * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply_hidden(x, self.gen1(x))

    def extra_macs(self, x: torch.Tensor, out: torch.Tensor) -> int:
        return out.numel() * self.kernel_size * self.kernel_size


def set_involution_impl(module: nn.Module, impl: str) -> nn.Module:
    """Switch every involution in ``module`` to ``impl`` (a key of :data:`IMPLS`); returns module.

    Acts on :class:`Involution2d` and on any module declaring ``is_involution = True`` (the inference
    form :class:`FusedInvolution`).
    """
    if impl not in _IMPLS:
        raise ValueError(f"impl must be one of {sorted(_IMPLS)}, got {impl!r}")
    for m in module.modules():
        if isinstance(m, Involution2d) or getattr(m, "is_involution", False):
            m.impl = impl
    return module
