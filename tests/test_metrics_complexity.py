"""Parameter and MAC counting, the extra_macs hook protocol, latency and memory helpers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ibmdn.metrics.complexity import (
    count_macs,
    count_params,
    latency,
    lr_size_for_output,
    macs_at_output,
    peak_memory,
)


class PerPixel(nn.Module):
    """A module whose work is an elementwise product that no generic counter sees."""

    def __init__(self, k: int = 9):
        super().__init__()
        self.k = k
        self.gen = nn.Conv2d(4, k, 1)

    def forward(self, x):
        w = self.gen(x)
        return x * w.mean(1, keepdim=True)

    def extra_macs(self, x, out):
        return out.numel() * self.k


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.pp = PerPixel()
        self.up = nn.ConvTranspose2d(4, 2, 2, stride=2)
        self.fc = nn.Linear(2, 5)

    def forward(self, x):
        y = self.up(self.pp(self.dw(self.conv(x))))
        return self.fc(y.mean((2, 3)))


def _expected(h, w):
    conv = h * w * 4 * 3 * 9
    dw = h * w * 4 * 1 * 9
    gen = h * w * 9 * 4
    extra = h * w * 4 * 9
    up = h * w * 4 * 2 * 4  # input elements * out_channels * k*k
    fc = 5 * 2
    return conv + dw + gen + extra + up + fc


def test_count_macs_rules_and_extra_macs_protocol():
    m = Toy()
    assert count_macs(m, (8, 6)) == _expected(8, 6)
    assert count_macs(m, (1, 3, 8, 6), meta=False) == _expected(8, 6)
    total, parts = count_macs(m, (3, 8, 6), by_module=True)
    assert total == sum(parts.values())
    assert parts["pp"] == 8 * 6 * 4 * 9 and parts["pp.gen"] == 8 * 6 * 9 * 4
    assert m.training  # mode restored


def test_count_macs_falls_back_when_meta_fails():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            y = self.conv(x)
            return y if float(y.sum()) != 12345.678 else -y  # needs real values

    assert count_macs(DataDependent(), (4, 4)) == 4 * 4 * 3 * 3


def test_params_and_sizes():
    m = Toy()
    assert count_params(m) == sum(p.numel() for p in m.parameters())
    m.fc.requires_grad_(False)
    assert count_params(m, trainable_only=True) == count_params(m) - 15
    assert lr_size_for_output(1280, 720, 2) == (640, 360)
    assert lr_size_for_output(1280, 720, 3) == (427, 240)
    assert lr_size_for_output(1280, 720, 4) == (320, 180)


def test_latency_and_memory_on_cpu():
    m = nn.Conv2d(3, 3, 3, padding=1)
    ms = latency(m, torch.rand(1, 3, 16, 16), "cpu", warmup=1, repeats=3)
    assert ms > 0
    mem = peak_memory(lambda: torch.zeros(1 << 20), torch.device("cpu"))  # 4 MiB of float32
    assert 4 <= mem["peak_mem"] < 5


@pytest.mark.gpu
def test_latency_and_memory_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    m = nn.Conv2d(3, 3, 3, padding=1)
    assert latency(m, torch.rand(1, 3, 64, 64), "cuda", warmup=2, repeats=5) > 0
    x = torch.rand(1, 3, 64, 64, device="cuda")
    assert peak_memory(lambda: m.cuda()(x), torch.device("cuda"))["peak_mem"] > 0


# published multiply-adds at 1280x720 output (IMDN paper; BSRN paper), tolerance 2 %
PUBLISHED_MACS = [("imdn", 2, 158.8e9), ("imdn", 3, 71.5e9), ("imdn", 4, 40.9e9), ("bsrn", 4, 19.4e9)]


@pytest.mark.parametrize("name,scale,macs", PUBLISHED_MACS)
def test_published_macs(name, scale, macs):
    from ibmdn.models import build_model, list_models

    if name not in list_models():
        pytest.skip(f"model {name!r} not registered yet")
    ours = macs_at_output(build_model(name, scale=scale), scale)
    assert abs(ours - macs) / macs <= 0.02, (name, scale, ours / 1e9)
