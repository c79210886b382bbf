"""``evaluate`` and ``ibmdn eval`` end to end, including a benchmark folder full of awkward files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_data_io import png16, png_header_only

from ibmdn.cli import main
from ibmdn.evaluate import evaluate, forward_ensemble, forward_tiled, summarize, weights_tag
from ibmdn.metrics.quality import Protocol
from ibmdn.models import build_model

RNG = np.random.default_rng(0)

HANDLED = ["c_palette", "d_rgba", "e_16bit", "f_cmyk", "g_exif"]
REJECTED = {"h_truncated": "truncated", "i_text": "not an image", "j_tiny": "too small",
            "k_bomb": "too large"}


def smooth(h=64, w=72) -> np.ndarray:
    """A natural-ish image (smooth gradients + texture) so that bicubic scores are finite."""
    y, x = np.mgrid[0:h, 0:w] / 8.0
    img = np.stack([np.sin(x) * 60 + 120, np.cos(y) * 60 + 120, np.sin(x + y) * 50 + 110], -1)
    return np.clip(img + RNG.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture()
def bench(tmp_path, monkeypatch):
    """``<tmp>/data/benchmark/Mixed/HR`` with 2 plain, 5 handled and 4 rejected files; cache in tmp."""
    monkeypatch.setenv("IBMDN_CACHE", str(tmp_path / "cache"))
    hr = tmp_path / "data" / "benchmark" / "Mixed" / "HR"
    hr.mkdir(parents=True)
    Image.fromarray(smooth()).save(hr / "a_plain.png")
    Image.fromarray(smooth(60, 80)).save(hr / "b_plain.bmp")
    Image.fromarray(smooth()).quantize(64).save(hr / "c_palette.png")
    rgba = np.dstack([smooth(), np.full((64, 72), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(hr / "d_rgba.png")
    png16(hr / "e_16bit.png", smooth().astype(np.uint16) * 257, filters=(0, 1, 2))
    Image.fromarray(smooth()).convert("CMYK").save(hr / "f_cmyk.jpg", quality=95)
    im = Image.fromarray(smooth(48, 80))
    exif = im.getexif()
    exif[0x0112] = 8
    im.save(hr / "g_exif.jpg", exif=exif, quality=95)
    Image.fromarray(smooth()).save(hr / "h_truncated.png")
    data = (hr / "h_truncated.png").read_bytes()
    (hr / "h_truncated.png").write_bytes(data[: len(data) // 3])
    (hr / "i_text.png").write_text("hello, I am not a PNG\n")
    Image.fromarray(smooth(3, 3)).save(hr / "j_tiny.png")
    png_header_only(hr / "k_bomb.png", 30000, 30000)
    return tmp_path / "data"


def _eval(bench, tmp_path, *extra):
    return main(["eval", "--model", "bicubic", "--scale", "2", "--datasets", "mixed",
                 "--data-root", str(bench), "--out", str(tmp_path / "out"), "--device", "cpu", *extra])


def test_bad_file_stops_eval_with_clear_error(bench, tmp_path, capsys):
    rc = _eval(bench, tmp_path)
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    assert "ibmdn: error:" in err and "h_truncated.png" in err and "truncated" in err
    assert not (tmp_path / "out").exists()


def test_skip_bad_reports_and_goes_on(bench, tmp_path, capsys):
    rc = _eval(bench, tmp_path, "--skip-bad")
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Traceback" not in captured.err
    for name, reason in REJECTED.items():
        assert f"{name}." in captured.err and reason in captured.err
    summary = pd.read_csv(tmp_path / "out" / "bicubic_x2_none.csv")
    assert list(summary.columns) == ["table", "model", "weights", "scale", "dataset", "metric", "value",
                                     "unit", "n_images", "source"]
    assert set(summary["metric"]) == {"psnr", "ssim"} and (summary["n_images"] == 7).all()
    assert (summary["dataset"] == "mixed").all() and (summary["source"] == "measured").all()
    per = pd.read_csv(tmp_path / "out" / "bicubic_x2_none_per_image.csv")
    assert sorted(set(per["image"])) == ["a_plain", "b_plain"] + HANDLED
    assert per["value"].map(lambda v: len(str(v).split(".")[-1]) <= 4).all()  # 4 decimals
    meta = json.loads((tmp_path / "out" / "bicubic_x2_none.meta.json").read_text())
    prov = meta["provenance"]
    assert prov["protocol"]["crop_border"] is None and prov["protocol"]["y_only"] is True
    assert {s["image"] for s in prov["skipped"]} == set(REJECTED)
    for key in ("git", "versions", "device", "argv", "date_utc"):
        assert key in prov
    assert "mixed" in captured.out and "psnr" in captured.out  # the printed summary


def test_rerun_gives_identical_csv(bench, tmp_path, capsys):
    assert _eval(bench, tmp_path, "--skip-bad") == 0
    first = (tmp_path / "out" / "bicubic_x2_none.csv").read_bytes()
    assert _eval(bench, tmp_path, "--skip-bad") == 0  # second run reads the LR cache
    assert (tmp_path / "out" / "bicubic_x2_none.csv").read_bytes() == first


def test_handled_files_are_scored_like_their_rule(bench, tmp_path):
    df = evaluate(build_model("bicubic", scale=2), "mixed", 2, skip_bad=True, data_root=bench)
    ok = df[df["error"] == ""].set_index("image")
    assert ok.loc["g_exif", ["height", "width"]].tolist() == [80, 48]  # EXIF 8 rotates 48x80 -> 80x48
    assert np.isfinite(ok["psnr"]).all() and (ok["psnr"] > 15).all()
    assert df[df["error"] != ""]["image"].tolist() == list(REJECTED)


def test_user_errors_exit_2_without_traceback(bench, tmp_path, capsys):
    rc = main(["eval", "--model", "no_such_model", "--scale", "2", "--datasets", "mixed",
               "--data-root", str(bench)])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown model" in err and "Traceback" not in err
    rc = main(["eval", "--model", "bicubic", "--scale", "2", "--datasets", "set99",
               "--data-root", str(bench)])
    err = capsys.readouterr().err
    assert rc == 2 and "set99" in err and "Traceback" not in err
    rc = main(["eval", "--model", "bicubic", "--scale", "2", "--datasets", "set5", "--data-root",
               str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert rc == 2 and "IBMDN_DATA" in err


def test_tiled_inference_equals_whole_image():
    m = build_model("bicubic", scale=3)
    x = torch.rand(1, 3, 45, 70)
    whole = m(x)
    for tile in (16, 20, 64):
        assert torch.equal(forward_tiled(m, x, 3, tile), whole)
    lin = build_model("bicubic", scale=2, quantize=False)
    torch.testing.assert_close(forward_tiled(lin, x, 2, 8, overlap=4), lin(x))


def test_self_ensemble_of_symmetric_model_is_neutral():
    m = build_model("bicubic", scale=2, quantize=False)
    x = torch.rand(1, 3, 20, 26)
    torch.testing.assert_close(forward_ensemble(m, x), m(x), atol=1e-6, rtol=0)
    # the transforms are undone: a non-symmetric "model" (shift) survives the ensemble unchanged
    shift = lambda t: torch.roll(t, 1, dims=-1)
    y = forward_ensemble(shift, x)
    assert y.shape == x.shape


def test_evaluate_set5_with_options(data_root, tmp_path):
    m = build_model("bicubic", scale=4)
    plain = evaluate(m, "Set5", 4, data_root=data_root, cache_dir=tmp_path)
    tiled = evaluate(m, "set5", 4, data_root=data_root, cache_dir=tmp_path, tile=24)
    assert list(plain.columns) == ["dataset", "image", "scale", "height", "width", "psnr", "ssim", "error"]
    np.testing.assert_array_equal(plain["psnr"], tiled["psnr"])
    # quantised bicubic is not transpose-equivariant (the pass order swaps): close, not equal
    ens = evaluate(m, "set5", 4, data_root=data_root, cache_dir=tmp_path, tile=24, self_ensemble=True)
    np.testing.assert_allclose(plain["psnr"], ens["psnr"], atol=0.01)
    s = summarize(plain)
    assert list(s["metric"]) == ["psnr", "ssim"] and (s["n_images"] == 5).all()
    assert abs(s.set_index("metric").loc["psnr", "value"] - 28.43) < 0.01
    rounded = evaluate(m, "set5", 4, Protocol(round_y=True), data_root=data_root, cache_dir=tmp_path)
    assert 0 < plain["psnr"].mean() - rounded["psnr"].mean() < 0.15


def test_eval_with_lpips(lpips_backbones, bench, tmp_path, capsys):
    assert _eval(bench, tmp_path, "--skip-bad", "--lpips") == 0
    summary = pd.read_csv(tmp_path / "out" / "bicubic_x2_none.csv")
    lp = summary[summary["metric"] == "lpips"]
    assert len(lp) == 1 and 0 < lp["value"].iloc[0] < 1 and str(lp["unit"].iloc[0]) == "1"


def test_weights_tag():
    assert weights_tag(None) == "none" and weights_tag("official") == "official"
    assert weights_tag("/x/My Run_v2.pth") == "my-run_v2"


def test_set_without_usable_images_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IBMDN_CACHE", str(tmp_path / "cache"))
    hr = tmp_path / "data" / "benchmark" / "Bad" / "HR"
    hr.mkdir(parents=True)
    (hr / "x.png").write_text("not an image")
    rc = main(["eval", "--model", "bicubic", "--scale", "2", "--datasets", "bad", "--skip-bad",
               "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "no usable image in Bad" in err and "Traceback" not in err
