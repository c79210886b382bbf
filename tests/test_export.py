"""ONNX export (``ibmdn export``) and the ONNX Runtime engine: every exported network equals PyTorch,
the statistics form tiles exactly, and the command's refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

from ibmdn.cli import main
from ibmdn.export import OrtNetwork, export_onnx, not_exportable, session
from ibmdn.fuse import fuse_for_inference
from ibmdn.inference import tiled_approx, tiled_exact
from ibmdn.models import build_model, list_models, model_spec
from ibmdn.shipped import load_model, shipped_weights

pytestmark = pytest.mark.usefixtures("one_thread")

EXPORTED = [n for n in list_models() if not_exportable(n) is None]


@pytest.fixture(scope="module")
def lr_image(data_root):
    """Set5's butterfly at x2, LR (128 x 128), through the benchmark loader: ``1 x 3 x H x W`` in [0, 1]."""
    from ibmdn.data.datasets import BenchmarkSet

    s = BenchmarkSet("set5", 2, root=data_root, cache=False)
    lr = s.load(next(f for f in s.files if f.stem == "butterfly")).lr
    return torch.from_numpy(lr.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]


def _network(name: str, scale: int):
    """The fused network with its shipped weights, else randomly initialised (seeded): equivalence holds
    for any weights."""
    if shipped_weights(name, scale):
        return load_model(name, scale, None)[0]
    torch.manual_seed(0)
    return fuse_for_inference(build_model(name, scale=scale).eval())


def test_not_exported():
    assert "bicubic" not in EXPORTED and not any(n.endswith("_d") for n in EXPORTED)
    assert {"esrgan_d", "gan_imdn_ibmd_d"} <= set(list_models()) - set(EXPORTED)
    assert {"ibmdn_stable", "esrgan_g", "esrt", "fmen_s", "gan_imdn_ibmd_g"} <= set(EXPORTED)


@pytest.mark.parametrize("name", EXPORTED)
def test_network_exports_and_matches_pytorch(name, lr_image):
    """Every network except bicubic and the discriminators: fused, standard ONNX operators, dynamic batch,
    height and width, and ONNX Runtime's output within 1e-4 of PyTorch's on real image crops of two sizes
    (the second a batch of two)."""
    scale = min(model_spec(name).scales)
    model = _network(name, scale)
    proto = export_onnx(model)
    assert {node.domain for node in proto.graph.node} == {""}  # the standard operator set only
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3])), dims
    sess = session(proto.SerializeToString())
    crops = [lr_image[:, :, 40:64, 50:70],  # 24 x 20, and a batch of two 17 x 23
             torch.cat([lr_image[:, :, 70:87, 10:33], lr_image[:, :, 90:107, 80:103]])]
    for x in crops:
        with torch.inference_mode():
            ref = model(x).numpy()
        got = sess.run(["sr"], {"lr": x.numpy()})[0]
        assert got.shape == ref.shape == (x.shape[0], 3, scale * x.shape[2], scale * x.shape[3])
        err = float(np.abs(got - ref).max())
        assert err < 1e-4, (name, tuple(x.shape), err)


def test_segment_attention_equals_esrt_attention():
    """ESRT's attention as exported: the same function for every token count (segments with and without a
    shorter last one, fewer tokens than segments)."""
    from ibmdn.export import SegmentAttention
    from ibmdn.models.esrt import EfficientMultiHeadAttention

    torch.manual_seed(0)
    attention = EfficientMultiHeadAttention(32, num_heads=4, num_splits=4).eval()
    with torch.inference_mode():
        for n in (1, 3, 4, 7, 16, 391):
            x = torch.randn(2, n, 32)
            torch.testing.assert_close(SegmentAttention(attention)(x), attention(x), rtol=0, atol=1e-5)


def test_statistics_form_tiles_exactly(lr_image, tmp_path):
    """The statistics form cut into one graph per pass: ONNX Runtime's exact tiling equals untiled PyTorch
    within 1e-4 (the shipped IBMDN, CHFAB in every block); per-tile statistics are visibly off."""
    model = _network("ibmdn_stable", 2)
    engine = OrtNetwork(model, "ibmdn_stable", 2, cache_dir=tmp_path)
    assert engine.n_stats == 6
    x = lr_image[:, :, 40:56, :]  # 16 x 128: tiles of 16 with 51 pixels of context see parts of the strip
    with torch.inference_mode():
        ref = model(x)
    out = tiled_exact(engine, x, 2, tile=16)
    assert len(engine.parts()) == engine.n_stats + 1
    err = (out - ref).abs().max().item()
    assert err < 1e-4, err
    approx = torch.zeros_like(ref)

    def sink(y0, y1, x0, x1, core):
        approx[:, :, 2 * y0:2 * y1, 2 * x0:2 * x1] = core

    tiled_approx(model, x, 2, 16, 51, sink)
    approx_err = (approx - ref).abs().max().item()
    assert approx_err > 1e-4 and approx_err > 100 * err, (approx_err, err)  # the test has teeth
    assert list((tmp_path / "onnx").glob("ibmdn_stable_x2_stats_*.onnx"))  # cached for the next run


def test_export_command(tmp_path, capsys):
    """Writes a checked graph with its metadata; never overwrites without --overwrite; refuses the networks
    that are not exported, by name."""
    import onnx

    torch.manual_seed(0)
    ckpt = tmp_path / "rfdn_x2.pth"
    torch.save(build_model("rfdn", scale=2).state_dict(), ckpt)
    out = tmp_path / "net.onnx"
    argv = ["export", "rfdn", "--scale", "2", "--weights", str(ckpt), "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "wrote" in err and "max |ONNX Runtime - PyTorch|" in err
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["ibmdn_network"] == "rfdn" and meta["ibmdn_scale"] == "2" and meta["ibmdn_fused"] == "True"
    before = out.read_bytes()
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == before
    refused = (("esrgan_d", "discriminator"), ("bicubic", "bicubic"), ("no_such_net", "unknown model"))
    for name, expected in refused:
        assert main(["export", name, "--scale", "4", "--out", str(tmp_path / f"{name}.onnx")]) == 2
        assert expected in capsys.readouterr().err
        assert not (tmp_path / f"{name}.onnx").exists()


def test_unfused_network_with_batchnorm_runs_under_onnxruntime(lr_image, tmp_path):
    """The trained (unfused) form, whose BatchNorms hold 0-d step counters, is cached and run as well:
    the cache key covers 0-d buffers, and ONNX Runtime equals PyTorch in eval mode within 1e-4."""
    from ibmdn.export import fingerprint

    torch.manual_seed(0)
    model = build_model("ibmdn", scale=2).eval()
    assert any(b.dim() == 0 for b in model.buffers())
    key = fingerprint(model, {})
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean.add_(1e-3)
    assert fingerprint(model, {}) != key and fingerprint(model, {"stats_io": True}) != fingerprint(model, {})
    engine = OrtNetwork(model, "ibmdn", 2, cache_dir=tmp_path)
    x = lr_image[:, :, 40:64, 50:70]
    with torch.inference_mode():
        ref = model(x)
    err = (engine(x) - ref).abs().max().item()
    assert err < 1e-4, err
    assert list((tmp_path / "onnx").glob("ibmdn_x2_*.onnx"))
