"""Training recipes, schedule, patches, losses and the command line (fast, in-process)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ibmdn.data.imresize import downscale
from ibmdn.errors import IbmdnError
from ibmdn.train.config import PROFILES, ConfigError, TrainConfig, resolve_config
from ibmdn.train.data import (
    PatchDataset,
    StepBatches,
    TrainDataError,
    TrainImages,
    load_images,
    min_side_for,
    pad_to_patch,
)
from ibmdn.train.losses import PerceptualLoss, SRLoss, vgg16_features, vgg16_layer_names
from ibmdn.train.trainer import lr_at, rng_state, set_rng_state

# --------------------------------------------------------------------------------------- recipes


def test_profiles_are_typed_and_recorded():
    paper = PROFILES["paper"]
    assert (paper.patch_size, paper.batch_size, paper.lr, paper.betas) == (192, 16, 2e-4, (0.9, 0.999))
    assert (paper.schedule, paper.lr_step, paper.lr_gamma, paper.perceptual_layer) == (
        "step",
        200_000,
        0.5,
        "relu2_2",
    )
    assert paper.bsconv_s_weight == 0.0 and paper.perceptual_weight > 0 and paper.l1_weight == 1.0  # L1 + perceptual only
    assert (paper.gan_pixel_weight, paper.gan_perceptual_weight, paper.gan_adv_weight) == (1e-2, 1.0, 5e-3)
    short = PROFILES["short"]
    assert short.perceptual_weight == 0 and short.budget["iterations"] == short.iterations
    assert short.bn_recalibrate > 0 and paper.bn_recalibrate == 0  # precise BN for the short checks
    with pytest.raises(dataclasses.FrozenInstanceError):
        paper.lr = 1.0  # type: ignore[misc]
    for name, cfg in PROFILES.items():
        assert cfg.profile == name


def test_config_file_and_flags_override_in_order(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("lr = 1\niterations = 7\nbetas = [0.5, 0.9]\n[model_kwargs]\nchannels = 16\n")
    cfg = resolve_config("smoke", f, {"iterations": 9, "seed": None})
    assert (cfg.lr, cfg.iterations, cfg.betas, cfg.model_kwargs) == (1.0, 9, (0.5, 0.9), {"channels": 16})
    assert isinstance(cfg.lr, float)
    for text, match in [
        ("nope = 1", "unknown config field"),
        ("iterations = 'x'", "expected int"),
        ("schedule = 'linear'", "schedule"),
        ("patch_size = 0", "patch_size"),
        ("profile = 'paper'", "profile"),
        ("lr = ", "TOML"),
    ]:
        f.write_text(text + "\n")
        with pytest.raises(ConfigError, match=match):
            resolve_config("smoke", f)
    with pytest.raises(ConfigError, match="profile"):
        resolve_config("huge")
    assert issubclass(ConfigError, IbmdnError)


def test_lr_schedules():
    paper = PROFILES["paper"]
    assert lr_at(paper, 0) == 2e-4 and lr_at(paper, 199_999) == 2e-4
    assert lr_at(paper, 200_000) == 1e-4 and lr_at(paper, 400_000) == 5e-5
    cos = TrainConfig(
        profile="short", schedule="cosine", lr=1e-3, iterations=100, warmup=10, min_lr_ratio=0.01
    )
    assert math.isclose(lr_at(cos, 0), 1e-4) and math.isclose(lr_at(cos, 9), 1e-3)
    assert math.isclose(lr_at(cos, 10), 1e-3) and lr_at(cos, 99) < 2e-5
    assert all(lr_at(cos, i) >= lr_at(cos, i + 1) for i in range(10, 99))


def test_rng_state_round_trip():
    state = rng_state()
    a = (torch.rand(3), np.random.rand(), __import__("random").random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


# --------------------------------------------------------------------------------------- patches


def _images(scale=2, sizes=((40, 52), (64, 48))):
    """Smooth random images (no clipping in MATLAB's uint8 passes), each patch position unique."""
    rng = np.random.default_rng(0)
    hr = []
    for h, w in sizes:
        yy, xx = np.mgrid[0:h, 0:w] / 7.0
        planes = [
            np.sin(yy * rng.uniform(0.5, 1.5) + xx * rng.uniform(0.5, 1.5) + rng.uniform(0, 6)) for _ in "rgb"
        ]
        hr.append(np.round(128 + 80 * np.stack(planes, -1) + rng.normal(0, 4, (h, w, 3))).astype(np.uint8))
    return TrainImages(
        hr, [downscale(x, scale) for x in hr], [f"i{k}" for k in range(len(hr))], ["synthetic"], [], scale
    )


def test_patches_are_aligned_deterministic_and_augmented():
    images = _images()
    ds = PatchDataset(images, 16, seed=3)
    lr, hr = ds[5]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16) and lr.dtype == torch.uint8
    assert torch.equal(ds[5][0], lr) and torch.equal(PatchDataset(images, 16, seed=3)[5][1], hr)
    assert not torch.equal(PatchDataset(images, 16, seed=4)[5][1], hr)
    # LR/HR alignment under every symmetry: the LR patch is the crop of the LR image at the HR position / s
    plain = PatchDataset(images, 16, seed=3, augment=False)
    for i in range(20):
        lr_p, hr_p = plain.sample(i)
        found = [
            (j, y, x)
            for j, (H, L) in enumerate(zip(images.hr, images.lr))
            for y in range(0, H.shape[0] - 15, 2)
            for x in range(0, H.shape[1] - 15, 2)
            if np.array_equal(H[y : y + 16, x : x + 16], hr_p)
        ]
        assert len(found) == 1
        j, y, x = found[0]
        assert np.array_equal(images.lr[j][y // 2 : y // 2 + 8, x // 2 : x // 2 + 8], lr_p)
    # the 8 symmetries act identically on LR and HR: away from the patch border, the LR patch is the
    # MATLAB downscaling of the HR patch (+-1 level: a transposed patch swaps the order of the two passes)
    seen = set()
    for i in range(40):
        lr_p, hr_p = ds.sample(i)
        diff = downscale(np.ascontiguousarray(hr_p), 2).astype(int) - lr_p.astype(int)
        assert np.abs(diff[2:-2, 2:-2]).max() <= 1
        seen.add(hr_p.tobytes())
    assert len(seen) > 30


def test_images_are_drawn_in_proportion_to_their_crop_positions():
    """Each image is drawn with probability (valid crop positions) / (all positions), positions uniformly."""
    sizes = ((16, 16), (16, 40), (32, 32), (48, 24))  # HR; patch 16, x2 -> LR crop positions 1, 13, 81, 85
    images = _images(sizes=sizes)
    for k, h in enumerate(images.hr):
        h[:] = k  # image k is constant k
        images.lr[k][:] = k
    ds = PatchDataset(images, 16, seed=0, augment=False)
    expected = np.array([1 * 1, 1 * 13, 9 * 9, 17 * 5])
    assert list(ds.positions()) == list(expected)
    n = 6000
    draws = [ds.sample(i) for i in range(n)]
    counts = np.bincount([int(hr[0, 0, 0]) for _, hr in draws], minlength=len(sizes))
    p = expected / expected.sum()
    # within 4.5 binomial standard deviations of n p (a fixed seed: the test is deterministic)
    assert np.all(np.abs(counts - n * p) <= 4.5 * np.sqrt(n * p * (1 - p)) + 1), (counts, n * p)
    # a pure function of (seed, index): another instance gives the same draws
    again = PatchDataset(images, 16, seed=0, augment=False)
    assert all(np.array_equal(again.sample(i)[1], draws[i][1]) for i in range(0, n, 97))
    # every crop position of an image is reachable: the 16 x 40 image (HR) has 13 horizontal positions
    plain = _images(sizes=((16, 40),))
    ds = PatchDataset(plain, 16, seed=1, augment=False)
    seen = {ds.sample(i)[0].tobytes() for i in range(400)}
    assert len(seen) == 13


def test_rank_slices_make_the_global_batch():
    one = list(StepBatches(3, 6, 8))
    two = [list(StepBatches(3, 6, 8, rank=r, world_size=2)) for r in range(2)]
    assert one == [a + b for a, b in zip(*two)]
    assert one[0] == list(range(24, 32))
    with pytest.raises(TrainDataError, match="divisible"):
        StepBatches(0, 1, 6, world_size=4)


def test_training_images_smaller_than_the_patch_are_padded(data_root):
    images = load_images(["T91"], 2, 96, root=data_root, verbose=False)
    assert not images.skipped and len(images) == 91 and images.padded
    assert all(min(h.shape[:2]) >= 96 for h in images.hr)
    assert all(lr.shape[:2] == (h.shape[0] // 2, h.shape[1] // 2) for h, lr in zip(images.hr, images.lr))
    with pytest.raises(TrainDataError, match="smaller --patch-size"):
        load_images(["T91"], 2, 4000, root=data_root, verbose=False)
    with pytest.raises(TrainDataError, match="multiple of the scale"):
        load_images(["T91"], 3, 64, root=data_root)


def test_reflection_padding_to_the_patch():
    hr = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    out = pad_to_patch(hr, 8)
    assert out.shape == (8, 8, 3)
    assert np.array_equal(out[1:6, 0:7], hr)  # 3 rows: 1 above, 2 below; 1 column: on the right
    assert np.array_equal(out[0], out[2])  # reflected about the border row, which is not repeated
    assert np.array_equal(out[6], out[4]) and np.array_equal(out[7], out[3])
    assert np.array_equal(out[:, 7], out[:, 5])
    assert pad_to_patch(hr, 4) is hr
    assert min_side_for(192) == 65 and min_side_for(96) == 33
    # one mirror copy per end at most: the largest padding does not exceed side - 1
    for patch in (16, 96, 192):
        side = min_side_for(patch)
        assert -(-(patch - side) // 2) <= side - 1 and -(-(patch - side + 1) // 2) > side - 2


def test_every_t91_bsd200_image_is_used_at_the_paper_patch(data_root):
    """Paper recipe (patch 192, x2) on T91 + BSD200: all 291 images are used, T91's small ones padded."""
    from ibmdn.data.datasets import available

    have = {n.lower() for n in available("train", data_root)}
    if not {"t91", "bsd200"} <= have:
        pytest.skip(f"T91 and BSD200 are not both under {data_root} (have {sorted(have)})")
    images = load_images(["T91", "BSD200"], 2, 192, root=data_root, verbose=False)
    assert len(images) == 291 and images.skipped == []
    assert len(images.padded) > 0 and all(n.startswith("T91/") for n in images.padded)
    assert all(min(h.shape[:2]) >= 192 for h in images.hr)
    ds = PatchDataset(images, 192, seed=0)
    assert (ds.positions() >= 1).all() and len(ds.positions()) == 291


# ---------------------------------------------------------------------------------------- losses


def test_vgg16_layer_indices_match_torchvision():
    import torchvision

    names = vgg16_layer_names()
    assert (names["relu2_2"], names["conv5_3"], names["relu5_3"]) == (8, 28, 29)
    ours = vgg16_features(names["relu5_3"])
    with torch.device("meta"):  # structure only: no 138M-parameter initialisation
        ref = torchvision.models.vgg16(weights=None).features[:30]
    assert [type(m) for m in ours] == [type(m) for m in ref]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }


def test_perceptual_loss_random_backbone_and_gradients():
    torch.manual_seed(0)
    loss = PerceptualLoss("relu2_2", "mse", backbone="vgg16-random")
    hr = torch.rand(2, 3, 24, 24)
    sr = hr.clone().requires_grad_(True)
    assert loss(sr, hr).item() == 0
    val = loss(sr + 0.1, hr)
    val.backward()
    assert val.item() > 0 and sr.grad is not None
    assert not any(p.requires_grad for p in loss.parameters())
    assert "random" in loss.describe()["weights"]
    with pytest.raises(IbmdnError, match="unknown VGG16 layer"):
        PerceptualLoss("relu9_9", backbone="vgg16-random")


def test_perceptual_loss_with_the_prepared_vgg16(monkeypatch, weights_root, tmp_path):
    import os
    from pathlib import Path

    from ibmdn.metrics.lpips import backbones_dir

    candidates = [Path(os.environ["IBMDN_BACKBONES"])] if os.environ.get("IBMDN_BACKBONES") else []
    candidates += [backbones_dir(weights_root)]
    have = [c for c in candidates if (c / "vgg16_features.pth").is_file()]
    if not have:
        pytest.skip("no prepared VGG16 backbone (run `ibmdn weights prepare-lpips`)")
    monkeypatch.setenv("IBMDN_BACKBONES", str(have[0]))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # skip torchvision's cache
    loss = PerceptualLoss("relu2_2", "mse")
    assert loss.describe()["weights"].startswith("prepared:")
    hr = torch.rand(1, 3, 32, 32)
    assert loss(hr.flip(-1), hr).item() > 0


def test_sr_loss_parts_and_regulariser():
    from ibmdn.models import build_model

    torch.manual_seed(0)
    model = build_model("ibmdn", 2, channels=16, pattern="BsBsBs", bsconv="s")  # BSConv-S: the regulariser applies
    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    total, parts = SRLoss(1.0, None, 0.0, 0.1)(model(x), y, model)
    assert set(parts) == {"l1", "reg"} and parts["reg"].item() > 0
    assert torch.isclose(total, parts["l1"] + parts["reg"])
    _, parts = SRLoss(1.0, None, 0.0, 0.1)(model(x), y, build_model("imdn", 2, channels=16, pattern="CCC"))
    assert parts["reg"].item() == 0  # no BSConv-S


# ---------------------------------------------------------------------------------------- command line


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_cli_errors_are_one_line(capsys, data_root, monkeypatch, tmp_path, keep_threads):
    from ibmdn.cli import main

    monkeypatch.setenv("IBMDN_DATA", str(data_root))
    base = ["train", "--scale", "2", "--profile", "smoke", "--threads", "1", "--out", str(tmp_path / "r")]
    for extra, msg in [
        (["--model", "no_such_model"], "unknown model"),
        (["--model", "ibmdn", "--patch-size", "33"], "multiple of the scale"),
        (["--model", "ibmdn", "--train-sets", "Nope"], "not found"),
        (["--model", "rfdn", "--gan"], "Table V"),
        (["--model", "ibmdn", "--config", str(tmp_path / "missing.toml")], "config file not found"),
    ]:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1 and "Traceback" not in err, err


def _tiny(**fields) -> TrainConfig:
    """The smoke recipe on T91 for a 16-channel, two-block IBMDN, one thread, with ``fields`` changed."""
    return dataclasses.replace(PROFILES["smoke"], train_sets="T91", threads=1,
                               model_kwargs={"channels": 16, "pattern": "BsBsBs-IBsI"}, **fields)


def test_gpu_options_do_not_break_cpu(tmp_path, data_root, keep_threads):
    """bf16 autocast + channels_last on CPU: a tiny run with a validation at the end."""
    from ibmdn.train.trainer import train

    cfg = _tiny(iterations=2, val_every=2, amp="bf16", channels_last=True)
    summary = train("ibmdn", 2, cfg, out=tmp_path, device="cpu", data_root=data_root, progress=False)
    assert math.isfinite(summary["val_psnr"]) and summary["steps"] == 2
    meta = __import__("json").loads((tmp_path / "final.json").read_text())
    assert meta["config"]["amp"] == "bf16" and meta["budget"]["profile"] == "smoke" and meta["git"]
    assert (tmp_path / "best.pth").is_file() and (tmp_path / "final.pth").is_file()


def test_loader_benchmark(data_root, capsys, monkeypatch, keep_threads):
    from ibmdn.cli import main

    monkeypatch.setenv("IBMDN_DATA", str(data_root))
    assert (
        main(
            [
                "train",
                "--model",
                "ibmdn",
                "--scale",
                "2",
                "--profile",
                "smoke",
                "--train-sets",
                "T91",
                "--bench-loader",
                "20",
            ]
        )
        == 0
    )
    assert "batches/s" in capsys.readouterr().out


def test_time_limit_stops_validates_and_resumes(tmp_path, data_root, keep_threads):
    """--time-limit ends the run after the step that crossed it: validated, checkpointed, resumable."""
    import json

    from ibmdn.train.trainer import train

    cfg = _tiny(iterations=50, val_every=1000, ckpt_every=1000)
    # a limit of ~0 s: the run stops after its first step
    summary = train("ibmdn", 2, cfg, out=tmp_path, device="cpu", data_root=data_root, progress=False,
                    time_limit=1e-6)
    meta = json.loads((tmp_path / "final.json").read_text())
    assert summary["steps"] == 1 and meta["stopped_early"] is True
    assert meta["hr_pixels_seen"] == cfg.batch_size * cfg.patch_size**2
    assert math.isfinite(summary["val_psnr"]) and [h["step"] for h in meta["val_history"]] == [1]
    ck = torch.load(tmp_path / "last.pth", map_location="cpu", weights_only=True)
    assert ck["step"] == 1
    # resumed without a limit, it runs the recipe's remaining steps
    summary = train("ibmdn", 2, cfg, out=tmp_path, resume=True, device="cpu", data_root=data_root,
                    progress=False)
    meta = json.loads((tmp_path / "final.json").read_text())
    assert summary["steps"] == 50 and meta["stopped_early"] is False


def test_memory_format_default_follows_the_device_and_a_resumed_run_keeps_its_own(tmp_path, data_root,
                                                                                  keep_threads):
    """``channels_last=None``: channels-last on CPU, NCHW on CUDA, the saved run's layout on resume (a run
    started NCHW, e.g. before this default, resumes NCHW instead of refusing a changed recipe); a flag
    given on the command line wins and lands in the recorded recipe."""
    import json

    from ibmdn.cli import build_parser
    from ibmdn.train.config import for_device
    from ibmdn.train.trainer import _overrides, train

    auto = _tiny(iterations=4, val_every=1000, ckpt_every=1000)
    assert auto.channels_last is None and PROFILES["short"].channels_last is None
    assert for_device(auto, torch.device("cpu")).channels_last is True
    assert for_device(auto, torch.device("cuda")).channels_last is False
    nchw = dataclasses.replace(auto, channels_last=False)
    assert for_device(nchw, torch.device("cpu")) is nchw
    assert for_device(auto, torch.device("cpu"), saved=nchw).channels_last is False
    with pytest.raises(ConfigError, match="channels_last"):
        resolve_config("smoke", overrides={"channels_last": "yes"})
    args = build_parser().parse_args(["train", "--model", "ibmdn", "--scale", "2", "--no-channels-last"])
    assert _overrides(args)["channels_last"] is False
    args = build_parser().parse_args(["train", "--model", "ibmdn", "--scale", "2"])
    assert _overrides(args)["channels_last"] is None

    def recorded(run):
        return json.loads((run / "config.json").read_text())["config"]["channels_last"]

    train("ibmdn", 2, auto, out=tmp_path / "cpu", device="cpu", data_root=data_root, progress=False)
    assert recorded(tmp_path / "cpu") is True
    train("ibmdn", 2, nchw, out=tmp_path / "old", device="cpu", data_root=data_root, progress=False,
          time_limit=1e-6)
    summary = train("ibmdn", 2, auto, out=tmp_path / "old", resume=True, device="cpu", data_root=data_root,
                    progress=False)
    assert summary["steps"] == 4 and recorded(tmp_path / "old") is False


# ------------------------------------------------------------------------------------- precise BN


def test_recalibrate_bn_averages_batch_statistics_and_restores_momentum():
    """Running mean = mean of the batch means, running var = mean of the (unbiased) batch variances."""
    from torch import nn

    from ibmdn.train.trainer import bn_batches, recalibrate_bn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    cfg = dataclasses.replace(PROFILES["smoke"], batch_size=2, patch_size=16, bn_recalibrate=3)
    batches = bn_batches(_images(), cfg)
    assert len(batches) == 3 and batches[0].shape == (2, 3, 8, 8) and batches[0].dtype == torch.uint8
    assert all(torch.equal(a, b) for a, b in zip(batches, bn_batches(_images(), cfg)))  # fixed patches
    before = torch.random.get_rng_state()
    model.eval()
    assert recalibrate_bn(model, batches, cfg, torch.device("cpu")) is True
    assert torch.equal(before, torch.random.get_rng_state()) and model.training is False
    bn = model[1]
    with torch.no_grad():
        feats = [model[0](b.float() / 255) for b in batches]
    mean = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.var((0, 2, 3), unbiased=True) for f in feats]).mean(0)
    assert torch.allclose(bn.running_mean, mean, atol=1e-6) and torch.allclose(bn.running_var, var, atol=1e-6)
    assert bn.momentum == 0.1 and int(bn.num_batches_tracked) == 3
    assert recalibrate_bn(nn.Conv2d(3, 3, 1), batches, cfg, torch.device("cpu")) is False
    assert bn_batches(_images(), dataclasses.replace(cfg, bn_recalibrate=0)) == []
    with pytest.raises(ConfigError, match="bn_recalibrate"):
        dataclasses.replace(cfg, bn_recalibrate=-1)


def test_validation_with_precise_bn_saves_the_statistics_it_used(tmp_path, data_root, keep_threads):
    """The weights a run saves carry the re-estimated statistics: evaluated again, the same PSNR."""
    import json

    from ibmdn.evaluate import evaluate
    from ibmdn.models import build_model
    from ibmdn.train.trainer import train

    cfg = _tiny(iterations=3, val_every=3, bn_recalibrate=2, lr=5e-3)
    summary = train("ibmdn", 2, cfg, out=tmp_path, device="cpu", data_root=data_root, progress=False)
    assert json.loads((tmp_path / "final.json").read_text())["config"]["bn_recalibrate"] == 2
    model = build_model("ibmdn", scale=2, **cfg.model_kwargs)
    model.load_state_dict(torch.load(tmp_path / "final.pth", map_location="cpu", weights_only=True))
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert int(bn.num_batches_tracked) == 2  # reset and re-counted over the 2 batches
    psnr = float(evaluate(model, "Set5", 2, device="cpu", data_root=data_root)["psnr"].mean())
    assert psnr == pytest.approx(summary["val_psnr"], abs=1e-4)  # summation order only


def test_sweep_collects_finished_runs_and_renders(tmp_path, data_root, keep_threads):
    """Two tiny runs -> one long table (final, best PSNR, wall time) named by folder -> README section."""
    import json

    from ibmdn.experiments.readme import render_short_sweep
    from ibmdn.experiments.sweep import collect_runs, main
    from ibmdn.results import read_meta, read_table
    from ibmdn.train.trainer import train

    for name, lr in (("ibmdn", 5e-4), ("ibmdn_lr1e-3", 1e-3)):
        train("ibmdn", 2, _tiny(iterations=2, val_every=2, lr=lr), out=tmp_path / "runs" / name, device="cpu",
              data_root=data_root, progress=False)
    runs = sorted((tmp_path / "runs").iterdir())
    df, meta = collect_runs(runs, "short_cpu")
    assert sorted(set(df["weights"])) == ["smoke-default", "smoke-lr1e-3"] and len(df) == 6
    final = json.loads((runs[1] / "final.json").read_text())
    psnr = df[(df["weights"] == "smoke-lr1e-3") & (df["metric"] == "psnr")]["value"].item()
    assert psnr == final["val_psnr"] and meta["runs"]["ibmdn-smoke-lr1e-3"]["config"]["lr"] == 1e-3
    assert main(["--table", "short_cpu", "--runs", *map(str, runs), "--command", "test", "--out",
                 str(tmp_path / "results"), "--figures", str(tmp_path / "figures")]) == 0
    assert (tmp_path / "figures" / "short_cpu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = read_table(tmp_path / "results" / "short_cpu.csv")
    table.attrs["meta"] = read_meta(tmp_path / "results" / "short_cpu.csv")
    md = render_short_sweep(table)
    assert "`smoke-lr1e-3`" in md and "test" in md and f"{psnr:.3f}" in md
    with pytest.raises(SystemExit, match="no final.json"):
        collect_runs([tmp_path], "short_cpu")


def test_init_from_copies_matching_tensors_and_keeps_the_rest(tmp_path):
    """x3/x4 from an x2 body: every tensor of the same name and shape is copied, the upsampler stays fresh."""
    from ibmdn.models import build_model
    from ibmdn.train.trainer import TrainError, init_from

    torch.manual_seed(0)
    x2 = build_model("ibmdn_stable", 2, channels=20, pattern="BsIBs-III")
    path = tmp_path / "x2.pth"
    torch.save(x2.state_dict(), path)
    torch.manual_seed(1)
    x4 = build_model("ibmdn_stable", 4, channels=20, pattern="BsIBs-III")
    fresh = x4.upsample[0].weight.detach().clone()
    info = init_from(x4, str(path))
    assert info["kept_fresh"] == ["upsample.0.bias", "upsample.0.weight"] and len(info["sha256"]) == 64
    assert torch.equal(x4.conv_first.weight, x2.conv_first.weight)
    assert torch.equal(x4.upsample[0].weight, fresh)
    with pytest.raises(TrainError, match="no such file"):
        init_from(x4, str(tmp_path / "missing.pth"))
    torch.save({"other": torch.zeros(1)}, tmp_path / "foreign.pth")
    with pytest.raises(TrainError, match="no tensor"):
        init_from(x4, str(tmp_path / "foreign.pth"))


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "configs").rglob("*.toml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_committed_config_resolves(path):
    """Each recipe in configs/ names only known fields with valid values, under the profile its header uses."""
    head = path.read_text(encoding="utf-8")
    profile = next((p for p in PROFILES if f"--profile {p}" in head), "short")
    cfg = resolve_config(profile, path)
    assert cfg.profile == profile and cfg.iterations > 0
