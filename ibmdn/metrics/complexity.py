"""Model cost: parameters, multiply-accumulates (MACs), latency and peak memory.

Conventions follow the efficient-SR literature and the NTIRE challenges (docs/protocol.md):

* **Parameters**: learnable tensors only (BatchNorm running statistics are buffers, not counted).
* **MACs** are counted by forward hooks, one multiply-add = 1 (the "Multi-Adds" of IMDN / BSRN, what
  fvcore calls FLOPs). Rules per module call (biases, activations, normalisation, pooling, pixel
  shuffle, interpolation and additions are free, as in those papers):

  - ``Conv1d/2d/3d``: ``output.numel() * in_channels / groups * prod(kernel_size)``;
  - ``ConvTranspose1d/2d/3d``: ``input.numel() * out_channels / groups * prod(kernel_size)``;
  - ``Linear``: ``output.numel() * in_features``;
  - **self-declared cost**: any module with a method ``extra_macs(input, output) -> int`` gets it added
    at each call, *in addition to* what its child modules count. ``input`` is the first positional
    input tensor of ``forward`` and ``output`` its output (a tensor, or whatever ``forward`` returns).
    Operators whose work generic counters cannot see declare it this way: involution's per-pixel
    kernel application (``K^2 * C * H * W`` products, skipped by fvcore), attention's ``matmul``s,
    a re-parameterised conv applied through ``F.conv2d``. Example::

        class Involution(nn.Module):
            def extra_macs(self, x, out):  # kernel generation is counted by its child convs
                return out.numel() * self.kernel_size ** 2

  Costs computed by functional calls (``F.conv2d``, ``torch.matmul``) in a module without
  ``extra_macs`` are not seen.
* The reference input is the LR image whose upscaled output is 1280 x 720 (:func:`lr_size_for_output`,
  ``ceil(1280 / s) x ceil(720 / s)``: 640x360, 427x240, 320x180; IMDN's 158.8G / 71.5G / 40.9G use these),
  batch 1; NTIRE's convention (256 x 256 LR) is one argument away.
* **Latency**: median of ``repeats`` timed forward passes after ``warmup`` untimed ones, under
  ``torch.inference_mode``, batch as given; CUDA events (and a synchronisation) on GPU,
  ``time.perf_counter`` on CPU.
* **Peak memory** of a call (:func:`peak_memory`, MiB): on CUDA ``torch.cuda.max_memory_allocated`` after a
  reset, above what was allocated before; on a CPU the peak of the tensor memory the call adds (the
  allocator's events, replayed in order) and the rise of the peak resident set (``VmHWM``, Linux).
"""

from __future__ import annotations

import copy
import ctypes
import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

MIB = 2**20
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def lr_size_for_output(width: int = 1280, height: int = 720, scale: int = 4) -> tuple[int, int]:
    """(width, height) of the LR input whose x``scale`` output covers ``width x height``: ceil division."""
    return math.ceil(width / scale), math.ceil(height / scale)


def _first_tensor(inputs):
    for x in inputs:
        if isinstance(x, torch.Tensor):
            return x
    return None


def _module_macs(module: nn.Module, inputs, output) -> int:
    x = _first_tensor(inputs)
    macs = 0
    if isinstance(module, _CONV) and isinstance(output, torch.Tensor):
        macs += output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    elif isinstance(module, _CONV_T) and x is not None:
        macs += x.numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    elif isinstance(module, nn.Linear) and isinstance(output, torch.Tensor):
        macs += output.numel() * module.in_features
    extra = getattr(module, "extra_macs", None)
    if callable(extra):
        macs += int(extra(x, output))
    return macs


def _as_input(lr_shape: Sequence[int] | torch.Tensor, device, dtype) -> torch.Tensor:
    if isinstance(lr_shape, torch.Tensor):
        return lr_shape
    shape = tuple(int(s) for s in lr_shape)
    if len(shape) == 2:
        shape = (1, 3) + shape
    elif len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4:
        raise ValueError(f"lr_shape must be (H, W), (C, H, W) or (N, C, H, W), got {lr_shape}")
    return torch.rand(shape, device=device, dtype=dtype)


def count_macs(model: nn.Module, lr_shape: Sequence[int] | torch.Tensor, by_module: bool = False,
               meta: bool = True):
    """Multiply-accumulates of one forward pass (rules in the module docstring).

    Args:
        model: the network (run once in eval mode under ``torch.no_grad``; its mode is restored).
            With ``meta`` (default) a copy runs on PyTorch's ``meta`` device, which propagates shapes
            without computing, so 720p counts take milliseconds; a model that cannot run there
            (data-dependent Python control flow, custom kernels) is run for real instead.
            ``extra_macs`` must therefore use only shapes of its arguments.
        lr_shape: the input: ``(H, W)`` (batch 1, RGB), ``(C, H, W)``, ``(N, C, H, W)`` or a tensor.
            Note the order: height first; :func:`lr_size_for_output` returns (width, height).
        by_module: also return ``{module name: MACs}`` for modules that counted something.

    Returns:
        total MACs (int), or ``(total, breakdown)`` with ``by_module``.
    """
    if meta and not isinstance(lr_shape, torch.Tensor):
        try:
            shape = tuple(_as_input(lr_shape, "meta", torch.float32).shape)
            return count_macs(copy.deepcopy(model).to("meta"), torch.empty(shape, device="meta"), by_module,
                              meta=False)
        except Exception:  # noqa: BLE001 - fall back to a real forward pass
            pass
    try:
        p = next(model.parameters())
        device, dtype = p.device, p.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    x = _as_input(lr_shape, device, dtype)
    counts: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        counted = isinstance(module, _CONV + _CONV_T + (nn.Linear,))
        if counted or callable(getattr(module, "extra_macs", None)):
            def hook(mod, inputs, output, _name=name or type(module).__name__):
                counts[_name] = counts.get(_name, 0) + _module_macs(mod, inputs, output)

            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    total = sum(counts.values())
    return (total, {k: v for k, v in counts.items() if v}) if by_module else total


def macs_at_output(model: nn.Module, scale: int, width: int = 1280, height: int = 720) -> int:
    """MACs for an LR input whose x``scale`` output is ``width x height`` (default 720p)."""
    w, h = lr_size_for_output(width, height, scale)
    return count_macs(model, (1, 3, h, w))


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing to wait for on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (CUDA events on GPU)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(float(start.elapsed_time(end)))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000.0)
    return times


def latency(model: nn.Module, input: torch.Tensor, device="cpu", warmup: int = 10,
            repeats: int = 50) -> float:
    """Median forward time in milliseconds (:func:`time_calls` under ``torch.inference_mode``)."""
    device = torch.device(device)
    model = model.to(device).eval()
    x = input.to(device)
    with torch.inference_mode():
        return float(statistics.median(time_calls(lambda: model(x), device, warmup, repeats)))


def cpu_peak_tensor_bytes(fn: Callable[[], object]) -> int:
    """Peak of tensor memory that ``fn()`` adds on the CPU (PyTorch allocator events, replayed in order)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    events.sort(key=lambda e: e.start_ns())
    cur = peak = 0
    for e in events:
        cur += e.nbytes()
        peak = max(peak, cur)
    return int(peak)


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def cpu_peak_rss_bytes(fn: Callable[[], object]) -> int | None:
    """Rise of the peak resident set (``VmHWM``) over the resident set before ``fn()``; None if unavailable."""
    gc.collect()
    _malloc_trim()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        return None
    before = _proc_status_kib("VmRSS")
    fn()
    peak = _proc_status_kib("VmHWM")
    if before is None or peak is None:
        return None
    return max(0, peak - before) * 1024


def cuda_peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def peak_memory(fn: Callable[[], object], device: torch.device) -> dict[str, float]:
    """``{"peak_mem": MiB[, "peak_rss": MiB]}`` of one call of ``fn`` (methods in the module docstring)."""
    if device.type == "cuda":
        return {"peak_mem": cuda_peak_bytes(fn, device) / MIB}
    out = {"peak_mem": cpu_peak_tensor_bytes(fn) / MIB}
    rss = cpu_peak_rss_bytes(fn)
    if rss is not None:
        out["peak_rss"] = rss / MIB
    return out
