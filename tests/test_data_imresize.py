"""MATLAB-exact imresize: byte-identical Set5 LR (the acceptance check), and the torch twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ibmdn.data.imresize import contributions, downscale, imresize, imresize_torch, modcrop, output_length
from ibmdn.data.io import read_image

SET5 = ("baby", "bird", "butterfly", "head", "woman")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set5_lr_byte_identical_to_official(data_root, scale):
    """15 of 15: our LR of every Set5 image equals the official MATLAB LR_bicubic PNG byte for byte."""
    base = data_root / "benchmark" / "Set5"
    if not (base / "LR_bicubic").is_dir():
        pytest.skip("no official Set5 LR in the data root")
    for name in SET5:
        hr = modcrop(read_image(base / "HR" / f"{name}.png"), scale)
        ours = downscale(hr, scale)
        official = read_image(base / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
        assert ours.shape == official.shape, name
        assert np.array_equal(ours, official), f"{name} x{scale}: {(ours != official).sum()} pixels differ"


def test_uint8_rounding_between_passes_matters(data_root):
    """Without MATLAB's per-pass uint8 rounding a visible share of pixels would differ (docs/protocol.md)."""
    hr = modcrop(read_image(data_root / "benchmark" / "Set5" / "HR" / "butterfly.png"), 4)
    exact = imresize(hr, 1 / 4)
    float_path = np.clip(np.floor(imresize(hr.astype(np.float64), 1 / 4) + 0.5), 0, 255).astype(np.uint8)
    assert (exact != float_path).mean() > 0.02


def test_output_sizes_and_modcrop():
    assert output_length(255, 1 / 4) == 64 and output_length(256, 1 / 4) == 64 and output_length(10, 3) == 30
    img = np.zeros((103, 77, 3), np.uint8)
    assert modcrop(img, 4).shape == (100, 76, 3)
    assert imresize(img, 1 / 3).shape == (35, 26, 3)


def test_weights_sum_to_one_and_indices_mirror():
    for n, scale in ((10, 1 / 4), (7, 1 / 3), (5, 4.0), (9, 0.5)):
        w, idx = contributions(n, output_length(n, scale), scale)
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)
        assert idx.min() >= 0 and idx.max() < n


def test_constant_image_stays_constant():
    img = np.full((12, 18, 3), 77, np.uint8)
    for s in (2, 3, 4, 1 / 2, 1 / 3, 1 / 4):
        assert (imresize(img, s) == 77).all()


def test_identity_scale_is_identity():
    img = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imresize(img, 1.0), img)


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3, 1 / 4])
def test_torch_matches_numpy(scale):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255
    # float path
    ref = imresize(img.astype(np.float64) / 255, scale)
    out = imresize_torch(x, scale)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-12)
    # quantized path = MATLAB's uint8 path
    q = imresize_torch(x, scale, quantize=True)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(np.floor(q * 255 + 0.5).astype(np.uint8), imresize(img, scale))


def test_torch_batched_float32():
    x = torch.rand(2, 3, 8, 10)
    y = imresize_torch(x, 3)
    assert y.shape == (2, 3, 24, 30) and y.dtype == torch.float32
