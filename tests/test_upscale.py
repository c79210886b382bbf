"""``ibmdn upscale``: bad files, no overwriting, formats and bit depths, default weights, exact tiling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ibmdn.cli import main
from ibmdn.data.io import read_image_info
from ibmdn.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A (randomly initialised, seeded) ibmdn x2 state dict: what `ibmdn train` writes as final.pth."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "ibmdn_x2_test.pth"
    torch.save(build_model("ibmdn", scale=2).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """One ONNX graph cache for the module: tests upscaling with the same checkpoint export it once."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture
def onnxruntime(monkeypatch, onnx_cache):
    """The onnxruntime engine's packages (skips without them) and the module's graph cache."""
    for mod in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(mod)
    monkeypatch.setenv("IBMDN_CACHE", str(onnx_cache))
    return "onnxruntime"


@pytest.fixture(params=["torch", "onnxruntime"])
def engine(request):
    """``--engine``: the onnxruntime engine must behave as the torch engine."""
    return request.getfixturevalue("onnxruntime") if request.param == "onnxruntime" else "torch"


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _run(*argv) -> int:
    return main(["upscale", *map(str, argv), "--no-progress"])


def test_folder_with_a_bad_file(tmp_path, checkpoint, capsys, engine):
    """Acceptance 5: good files written, the bad one named, exit status non-zero, nothing overwritten."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    Image.fromarray(_rgb(12, 10, 1)).save(src / "a.png")
    Image.fromarray(_rgb(9, 14, 2)).save(src / "b.jpg", quality=95)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 3)
    Image.fromarray(_rgb(8, 8, 3)).save(src / "c.png")
    (src / "notes.txt").write_text("not an image, ignored in folders")
    (out / "c.png").write_bytes(b"precious")  # an existing output
    rc = _run(src, "--model", "ibmdn", "--scale", 2, "--weights", checkpoint, "--out", out,
              "--engine", engine)
    err = capsys.readouterr().err
    assert rc != 0
    assert "broken.png" in err and "c.png exists" in err and "--overwrite" in err
    assert (out / "c.png").read_bytes() == b"precious"
    assert not (out / "broken.png").exists() and not (out / "notes.png").exists()
    a, b = read_image_info(out / "a.png"), read_image_info(out / "b.jpg")
    assert (a.width, a.height, a.format) == (20, 24, "PNG")
    assert (b.width, b.height, b.format) == (28, 18, "JPEG")
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries
    # with --overwrite and only good inputs: everything written, status 0
    rc = _run(src / "c.png", src / "a.png", "--model", "ibmdn", "--scale", 2, "--weights", checkpoint, "--out", out,
              "--overwrite", "--engine", engine)
    assert rc == 0 and read_image_info(out / "c.png").width == 16


def test_keeps_bit_depth_gray_and_alpha(tmp_path, checkpoint, engine):
    from ibmdn.upscale import _write_png16

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    rng = np.random.default_rng(0)
    with open(src / "deep.png", "wb") as f:
        _write_png16(f, rng.integers(0, 65536, (10, 9, 3), dtype=np.uint16))
    Image.fromarray(_rgb(10, 9)[:, :, 0]).save(src / "gray.png")
    rgba = np.dstack([_rgb(10, 9), np.full((10, 9), 255, np.uint8)])
    rgba[:, :4, 3] = 0  # left part fully transparent
    Image.fromarray(rgba).save(src / "alpha.png")
    assert _run(src, "--model", "ibmdn", "--scale", 2, "--weights", checkpoint, "--out", out,
                "--engine", engine) == 0
    deep = read_image_info(out / "deep.png")
    assert (deep.bits, deep.channels, deep.width, deep.height) == (16, 3, 18, 20)
    from ibmdn.data.io import _decode_png16

    samples = _decode_png16(out / "deep.png")
    assert samples.dtype == np.uint16 and np.any(samples % 257 != 0)  # not an 8-bit image stretched
    gray = read_image_info(out / "gray.png")
    assert gray.channels == 1 and gray.bits == 8
    with Image.open(out / "alpha.png") as im:
        assert im.mode == "RGBA" and im.size == (18, 20)
        a = np.asarray(im)[:, :, 3]
    assert a[:, :6].max() <= 8 and a[:, 10:].min() >= 247


def test_no_shipped_weights_is_a_clear_error(tmp_path, monkeypatch, capsys, engine):
    import ibmdn.shipped as shipped

    monkeypatch.setattr(shipped, "WEIGHTS_DIR", tmp_path / "none")
    Image.fromarray(_rgb(8, 8)).save(tmp_path / "x.png")
    rc = _run(tmp_path / "x.png", "--scale", 4, "--out", tmp_path / "out", "--engine", engine)
    err = capsys.readouterr().err
    assert rc == 2 and "--weights" in err and "untrained" in err
    assert not (tmp_path / "out" / "x.png").exists()


def test_shipped_weights_found_described_and_checked(tmp_path, monkeypatch, checkpoint):
    import ibmdn.shipped as shipped
    from ibmdn.errors import ChecksumError
    from ibmdn.fileio import sha256_file

    wdir = tmp_path / "weights"
    wdir.mkdir()
    pth = wdir / "ibmdn_x2_short.pth"
    pth.write_bytes(checkpoint.read_bytes())
    (wdir / "ibmdn_x2_smoke.pth").write_bytes(checkpoint.read_bytes())
    meta = {"model": "ibmdn", "scale": 2, "profile": "short", "steps": 400, "val_set": "set5", "best_psnr": 33.1,
            "weights_sha256": sha256_file(pth), "git": {"sha": "0123456789abcdef", "dirty": False},
            "date_utc": "2026-11-26T12:00:00+00:00", "config": {"batch_size": 16, "patch_size": 96}}
    (wdir / "ibmdn_x2_short.json").write_text(json.dumps(meta))
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", wdir)
    text = shipped.describe_shipped_weights()
    assert "ibmdn_x2_short.pth" in text and "400 steps" in text and "33.10 dB" in text and "0123456789" in text
    assert "ibmdn_x2_smoke.pth: no provenance file" in text
    path, desc = shipped.resolve_weights("ibmdn", 2, None)
    assert path == str(pth) and "short" in desc  # 'short' preferred over 'smoke'
    code = "import sys; from ibmdn.cli import main; sys.exit(main(['upscale', '--help']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "Default weights" in out.stdout
    meta["weights_sha256"] = "0" * 64
    (wdir / "ibmdn_x2_short.json").write_text(json.dumps(meta))
    with pytest.raises(ChecksumError):
        shipped.resolve_weights("ibmdn", 2, None)


def test_exact_tiles_equal_untiled():
    """Acceptance 4 (tiling): tiled output equals untiled within 1e-4, CHFAB's global pooling included."""
    from ibmdn.fuse import fuse_for_inference
    from ibmdn.inference import exact_tiling_supported, receptive_radius, tiled_exact

    torch.manual_seed(0)
    model = build_model("ibmdn", scale=2, pattern="BsIBs-III").eval()  # 2 blocks: receptive radius 19
    g = torch.Generator().manual_seed(1)
    for name, m in model.named_modules():  # trained-like statistics, and gates that depend on the pooling
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        if name.endswith("attention.descriptor"):
            m.weight.data.mul_(30)
        if name.endswith("attention.bn_out"):
            m.weight.data.mul_(10)
    fused = fuse_for_inference(model)
    assert exact_tiling_supported(fused) and not exact_tiling_supported(model)
    assert receptive_radius(fused) == 19
    # a non-stationary image (dark top-left, bright bottom-right): per-tile statistics differ from the image's
    ramp = torch.linspace(0, 1, 70)[:, None] * torch.linspace(0, 1, 61)[None, :]
    x = (0.7 * ramp + 0.3 * torch.rand(1, 3, 70, 61, generator=g)).clamp(0, 1)
    with torch.inference_mode():
        ref = model(x)
        out = tiled_exact(fused, x, 2, tile=16)
        naive = torch.zeros_like(ref)
        from ibmdn.inference import tiled_approx

        def sink(y0, y1, x0, x1, core):
            naive[:, :, 2 * y0:2 * y1, 2 * x0:2 * x1] = core

        tiled_approx(fused, x, 2, 16, 19, sink)
    err, naive_err = (out - ref).abs().max().item(), (naive - ref).abs().max().item()
    assert err < 1e-4, err
    # per-tile statistics (one pass, same context) differ by far more than float rounding: the test has
    # teeth (an untrained network's output depends only weakly on its attention, hence the ratio)
    assert naive_err > 20 * err and naive_err > 1e-5, (naive_err, err)


def test_onnxruntime_engine_equals_torch_engine(tmp_path, checkpoint, onnxruntime):
    """``--engine onnxruntime`` writes the torch engine's output (up to a rounding flip of one level) untiled,
    tiled exactly (the statistics form: one ONNX graph per pass) and tiled approximately."""
    from ibmdn.data.io import read_image

    Image.fromarray(_rgb(21, 17, 5)).save(tmp_path / "a.png")
    for mode in ([], ["--tile", "8"], ["--tile", "8", "--approx-tiles"]):
        outs = {}
        for e in ("torch", "onnxruntime"):
            out = tmp_path / f"{e}{len(mode)}"
            assert _run(tmp_path / "a.png", "--model", "ibmdn", "--scale", 2, "--weights", checkpoint,
                        "--out", out, "--engine", e, *mode) == 0
            outs[e] = read_image(out / "a.png").astype(int)
        assert outs["torch"].shape == (42, 34, 3)
        assert np.abs(outs["torch"] - outs["onnxruntime"]).max() <= 1, mode
        assert (outs["torch"] != outs["onnxruntime"]).mean() < 0.01, mode


def test_onnxruntime_engine_is_fp32_only(tmp_path, checkpoint, capsys, onnxruntime):
    Image.fromarray(_rgb(8, 8)).save(tmp_path / "x.png")
    rc = _run(tmp_path / "x.png", "--model", "ibmdn", "--scale", 2, "--weights", checkpoint,
              "--out", tmp_path / "out", "--engine", onnxruntime, "--precision", "bf16")
    assert rc == 2 and "fp32" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_4k_input_upscales_under_4_gb(tmp_path, checkpoint):
    """Acceptance 4 (memory): a 3840x2160 input at x4 on CPU, peak resident memory of the process < 4 GB."""
    torch.manual_seed(0)
    ck = tmp_path / "ibmdn_x4.pth"
    torch.save(build_model("ibmdn", scale=4).state_dict(), ck)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (2160, 3840, 3), dtype=np.uint8)).save(tmp_path / "4k.png")
    code = ("import resource, sys; from ibmdn.cli import main; "
            f"rc = main(['upscale', {str(tmp_path / '4k.png')!r}, '--scale', '4', '--weights', {str(ck)!r}, "
            f"'--out', {str(tmp_path / 'out')!r}, '--approx-tiles', '--tile', '256', '--no-progress']); "
            "print('maxrss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    kib = int(res.stdout.split("maxrss_kib")[1].split()[0])
    assert kib < 4 * 2**20, f"peak RSS {kib / 2**20:.2f} GiB"
    info = read_image_info(tmp_path / "out" / "4k.png")
    assert (info.width, info.height) == (15360, 8640)


def test_weights_below_bicubic_warn(tmp_path, capsys):
    import ibmdn.shipped as shipped

    meta = {"model": "ibmdn", "scale": 2, "val_set": "Set5", "best_psnr": 33.1, "steps": 400}
    s = shipped.Shipped(tmp_path / "ibmdn_x2_short.pth", "ibmdn", 2, "short", meta)
    assert "below bicubic" in shipped.below_bicubic(s) and "33.66" in shipped.below_bicubic(s)
    assert shipped.below_bicubic(shipped.Shipped(s.path, "ibmdn", 2, "short", {**meta, "best_psnr": 35.0})) is None
    assert shipped.below_bicubic(shipped.Shipped(s.path, "ibmdn", 2, "short", None)) is None


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_committed_weights_reproduce_their_validation(scale, data_root):
    """The weights shipped in the package: sidecar sha256, provenance, and their recorded Set5 PSNR-Y
    re-measured here on CPU in strict fp32 (1e-3 dB for CPU-trained weights; 0.1 dB for weights trained on a
    GPU, whose cuDNN convolutions ran in TF32 there)."""
    import ibmdn.shipped as shipped
    from ibmdn.evaluate import evaluate
    from ibmdn.fileio import sha256_file

    found = shipped.shipped_weights(scale=scale)
    if not found:
        pytest.skip(f"no x{scale} weights shipped")
    for s in found:
        m = s.meta
        assert m["weights_sha256"] == sha256_file(s.path) and len(m["git"]["sha"]) == 40
        assert m["profile"] == s.tag.split("-", 1)[0] and m["steps"] > 0 and m["log"], "provenance incomplete"
        model = build_model(s.model, scale=scale, weights=str(s.path))
        psnr = float(evaluate(model, "Set5", scale, device="cpu", data_root=data_root)["psnr"].mean())
        tol = 0.1 if "cuda" in str(m.get("train_device")) else 1e-3
        assert abs(psnr - m["val_psnr"]) < tol, (s.path.name, psnr, m["val_psnr"])
        assert shipped.below_bicubic(s) is None, f"{s.path.name} scores below bicubic"


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_default_weights_are_never_much_worse_than_bicubic(scale, data_root):
    """``ibmdn upscale``'s default network and weights (fused, as the command runs them) on full-contrast
    patterns and the most contrasted Urban100 tiles: no image more than 1 dB below bicubic interpolation
    (the faithful IBMDN's eval-mode blow-up made some 10-15 dB worse)."""
    import ibmdn.shipped as shipped
    from ibmdn.experiments.stability import MUCH_WORSE_DB, contrast_suite, versus_bicubic

    if not shipped.shipped_weights(shipped.DEFAULT_MODEL, scale):
        pytest.skip(f"no {shipped.DEFAULT_MODEL} x{scale} weights shipped")
    model, desc = shipped.load_model(shipped.DEFAULT_MODEL, scale, None)
    df = versus_bicubic(model, scale, contrast_suite(scale, root=data_root))
    assert len(df) > 20 and (df["gain"] >= -MUCH_WORSE_DB).all(), (desc, df.sort_values("gain").head().to_string())


def test_shipped_weights_carry_their_benchmark_numbers():
    """The numbers --help shows for each shipped checkpoint are the committed four-benchmark evaluation."""
    from ibmdn.results import read_table
    from ibmdn.shipped import shipped_weights

    table = read_table(Path(__file__).resolve().parents[1] / "results" / "shipped_eval.csv")
    for s in shipped_weights():
        psnr = s.meta["benchmarks"]["psnr"]
        assert set(psnr) == {"set5", "set14", "bsd100", "urban100"}
        for dataset, value in psnr.items():
            row = table[(table.model == s.model) & (table.scale == s.scale) & (table.dataset == dataset)
                        & (table.metric == "psnr") & (table.weights == f"shipped-{s.tag}")]
            assert value == pytest.approx(float(row["value"].iloc[0]), abs=1e-4)


def test_shipped_curves_figure_draws_every_shipped_checkpoint(tmp_path, monkeypatch):
    """The figure of the shipped weights' validation curves has one panel per shipped scale and one curve per
    checkpoint, from the histories in their provenance."""
    import matplotlib.figure

    from ibmdn.experiments import plots
    from ibmdn.shipped import shipped_weights

    root = Path(__file__).resolve().parents[1]
    drawn = {}
    save = plots._paper_save
    monkeypatch.setattr(plots, "_paper_save", lambda fig, png: drawn.setdefault("fig", fig) and save(fig, png))
    png = plots.shipped_curves_figure(tmp_path / "shipped.png", root / "results" / "bicubic_eval.csv")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ships = shipped_weights()
    axes = drawn["fig"].axes
    assert isinstance(drawn["fig"], matplotlib.figure.Figure) and len(axes) == len({s.scale for s in ships})
    for ax, scale in zip(axes, sorted({s.scale for s in ships})):
        curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
        assert len(curves) == sum(s.scale == scale for s in ships)
        hist = [s for s in ships if s.scale == scale][0].meta["val_history"]
        assert list(curves[0].get_ydata()) == [h["psnr"] for h in hist]
