"""PSNR / SSIM / Y conversion, and the bicubic baseline table of docs/protocol.md through the eval code."""

from __future__ import annotations

import os
from dataclasses import FrozenInstanceError, asdict

import numpy as np
import pytest
import torch

from ibmdn.metrics.quality import Protocol, psnr, rgb_to_y, ssim, tensor_to_uint8, uint8_to_tensor

RNG = np.random.default_rng(0)

# docs/protocol.md: the standard bicubic table (PSNR, SSIM), Y channel, crop = scale
BICUBIC = {
    ("set5", 2): (33.66, 0.9299), ("set5", 3): (30.39, 0.8682), ("set5", 4): (28.42, 0.8104),
    ("set14", 2): (30.24, 0.8688), ("set14", 3): (27.55, 0.7742), ("set14", 4): (26.00, 0.7027),
    ("bsd100", 2): (29.56, 0.8431), ("bsd100", 3): (27.21, 0.7385), ("bsd100", 4): (25.96, 0.6675),
    ("urban100", 2): (26.88, 0.8403), ("urban100", 3): (24.46, 0.7349), ("urban100", 4): (23.14, 0.6577),
}
PSNR_TOL, SSIM_TOL = 0.03, 0.002


def test_protocol_is_frozen_and_recorded():
    p = Protocol()
    assert p.border(4) == 4 and Protocol(crop_border=0).border(4) == 0
    d = asdict(p)
    assert d["y_only"] and not d["round_y"] and d["ssim_window"] == 11 and d["ssim_sigma"] == 1.5
    with pytest.raises(FrozenInstanceError):
        p.y_only = False


def test_rgb_to_y_bt601():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [10, 200, 30]]], np.uint8)
    y = rgb_to_y(img)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y[0, :3], [16.0, 235.0, 16 + 65.481], atol=1e-12)
    np.testing.assert_allclose(y[0, 3], 16 + (65.481 * 10 + 128.553 * 200 + 24.966 * 30) / 255, atol=1e-12)
    assert rgb_to_y(img, round_y=True)[0, 2] == 81.0


def test_psnr_known_value_and_identity():
    hr = RNG.integers(20, 230, (32, 32, 3), dtype=np.uint8)
    assert psnr(hr, hr, 2) == float("inf")
    sr = hr.copy()
    sr[..., :] += 5  # Y shifts by 5 * 219 / 255 everywhere
    expected = 10 * np.log10(255**2 / (5 * 219 / 255) ** 2)
    assert psnr(sr, hr, 2) == pytest.approx(expected, abs=1e-9)
    rgb = Protocol(y_only=False)
    assert psnr(sr, hr, 2, rgb) == pytest.approx(10 * np.log10(255**2 / 25), abs=1e-9)


def test_border_crop_ignores_edges():
    hr = RNG.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[:3] = 0
    sr[:, -3:] = 255
    assert psnr(sr, hr, 3) == float("inf")
    assert psnr(sr, hr, 3, Protocol(crop_border=2)) < 30


def _ssim_matlab(a: np.ndarray, b: np.ndarray) -> float:
    """MATLAB's ``ssim_index`` written out: 11x11 Gaussian (sigma 1.5) by ``filter2(..., 'valid')``,
    population statistics, K = (0.01, 0.03), L = 255, mean of the map (an independent reference)."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.arange(11, dtype=np.float64) - 5.0
    g = np.exp(-(x**2) / (2.0 * 1.5**2))
    g /= g.sum()

    def f(z):
        return sliding_window_view(sliding_window_view(z, 11, axis=0) @ g, 11, axis=1) @ g

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = f(a), f(b)
    saa, sbb, sab = f(a * a) - ma * ma, f(b * b) - mb * mb, f(a * b) - ma * mb
    return float((((2 * ma * mb + c1) * (2 * sab + c2)) / ((ma * ma + mb * mb + c1) * (saa + sbb + c2))).mean())


def test_ssim_equals_the_matlab_formula_on_benchmark_images(data_root):
    """scikit-image's SSIM, as the protocol calls it, against MATLAB's formula on real bicubic outputs."""
    from ibmdn.data.datasets import BenchmarkSet
    from ibmdn.evaluate import super_resolve
    from ibmdn.models import build_model

    worst, n = 0.0, 0
    for dataset in ("set5", "set14"):
        bench = BenchmarkSet(dataset, 3, root=data_root)
        for path in bench.files:
            item = bench.load(path)
            sr = super_resolve(build_model("bicubic", 3), item.lr, 3)
            a, b = rgb_to_y(sr)[3:-3, 3:-3], rgb_to_y(item.hr)[3:-3, 3:-3]
            worst = max(worst, abs(ssim(sr, item.hr, 3) - _ssim_matlab(a, b)))
            n += 1
    assert n == 19 and worst <= 1e-6
    hr = RNG.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    assert ssim(hr, hr, 4) == pytest.approx(1.0, abs=1e-12)


def test_metric_input_checks():
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(a, a[:10], 2)
    with pytest.raises(TypeError, match="uint8"):
        psnr(a.astype(np.float32), a, 2)
    with pytest.raises(ValueError, match="SSIM window"):
        ssim(a[:14], a[:14], 2)


def test_gray_as_y_scores_gray_level():
    g = RNG.integers(0, 256, (30, 30), dtype=np.uint8)
    hr = np.repeat(g[..., None], 3, 2)
    sr = np.clip(hr.astype(int) + 4, 0, 255).astype(np.uint8)
    p = Protocol(gray_as_y=True)
    assert psnr(sr, hr, 2, p, gray=False) == pytest.approx(psnr(sr, hr, 2))
    gap = psnr(sr, hr, 2) - psnr(sr, hr, 2, p, gray=True)
    assert gap == pytest.approx(20 * np.log10(255 / 219), abs=0.02)


def test_tensor_to_uint8_rounds_half_up_and_clamps():
    t = torch.tensor([[[-0.2, 0.0, 0.5 / 255, 1.5 / 255, 1.0, 1.7]]]).permute(0, 1, 2)  # 1 x 1 x 6
    t = t.expand(3, 1, 6)
    out = tensor_to_uint8(t)
    assert out.shape == (1, 6, 3) and out.dtype == np.uint8
    assert list(out[0, :, 0]) == [0, 0, 1, 2, 255, 255]
    img = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(tensor_to_uint8(uint8_to_tensor(img)), img)
    with pytest.raises(ValueError):
        tensor_to_uint8(torch.zeros(2, 3, 4, 4))


def _bicubic_table(data_root, dataset, tmp_path_factory):
    from ibmdn.evaluate import evaluate, summarize
    from ibmdn.models import build_model

    cache = tmp_path_factory.mktemp("lrcache")
    # gray_as_y: the classic table scores Set14's single-channel ``bridge`` on its gray level
    protocol = Protocol(gray_as_y=True)
    for scale in (2, 3, 4):
        per = evaluate(build_model("bicubic", scale=scale), dataset, scale, protocol, "cpu",
                       data_root=data_root, cache_dir=cache)
        s = summarize(per).set_index("metric")["value"]
        ref_psnr, ref_ssim = BICUBIC[(dataset, scale)]
        assert abs(s["psnr"] - ref_psnr) <= PSNR_TOL, (dataset, scale, s["psnr"], ref_psnr)
        assert abs(s["ssim"] - ref_ssim) <= SSIM_TOL, (dataset, scale, s["ssim"], ref_ssim)


@pytest.mark.parametrize("dataset", ["set5", "set14"])
def test_bicubic_baseline_table(data_root, dataset, tmp_path_factory):
    _bicubic_table(data_root, dataset, tmp_path_factory)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("IBMDN_SLOW") != "1", reason="BSD100/Urban100 take ~3-7 min: IBMDN_SLOW=1")
@pytest.mark.parametrize("dataset", ["bsd100", "urban100"])
def test_bicubic_baseline_table_large_sets(data_root, dataset, tmp_path_factory):
    _bicubic_table(data_root, dataset, tmp_path_factory)


def test_set14_default_protocol_differs_only_by_bridge(data_root, tmp_path):
    """Default (every image RGB, BT.601 Y) vs the MATLAB gray convention: only ``bridge`` moves."""
    from ibmdn.evaluate import evaluate
    from ibmdn.models import build_model

    m = build_model("bicubic", scale=4)
    a = evaluate(m, "set14", 4, Protocol(), data_root=data_root, cache_dir=tmp_path).set_index("image")
    b = evaluate(m, "set14", 4, Protocol(gray_as_y=True), data_root=data_root, cache_dir=tmp_path)
    b = b.set_index("image")
    moved = (a["psnr"] - b["psnr"]).abs() > 1e-9
    assert list(a.index[moved]) == ["bridge"]
    gap = a.loc["bridge", "psnr"] - b.loc["bridge", "psnr"]
    assert gap == pytest.approx(20 * np.log10(255 / 219), abs=0.05)
