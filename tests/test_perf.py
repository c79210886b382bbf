"""Fast paths are exact: involution implementations, inference re-parameterisation, bench plumbing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ibmdn.models import build_model, list_models
from ibmdn.ops.involution import IMPLS, Involution2d, involution_shift, involution_unfold, set_involution_impl

pytestmark = pytest.mark.usefixtures("one_thread")


SHAPES = [  # (batch, channels, group_channels, kernel, stride, height, width)
    (2, 16, 16, 3, 1, 9, 11),
    (1, 50, 10, 3, 1, 12, 10),  # 50 channels: groups of 10 (RFDN width)
    (2, 12, 4, 5, 1, 7, 6),
    (1, 16, 8, 3, 2, 9, 8),  # strided, odd size
    (1, 8, 8, 3, 1, 1, 5),  # a one-pixel-high map
    (1, 8, 4, 7, 1, 3, 4),  # kernel larger than the map
]


@pytest.mark.parametrize("b,c,gc,k,stride,h,w", SHAPES)
def test_shift_equals_unfold_forward_and_gradients(b, c, gc, k, stride, h, w):
    """Acceptance 1: fp32 forward and gradients (input, kernel) of 'shift' equal the unfold reference (1e-5)."""
    torch.manual_seed(0)
    g = c // gc
    ho, wo = -(-h // stride), -(-w // stride)
    grads = {}
    for impl in ("unfold", "shift"):
        x = torch.randn(b, c, h, w, requires_grad=True)
        kern = torch.randn(b, g, k * k, ho, wo, requires_grad=True)
        with torch.no_grad():
            x.copy_(torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(1)))
            kern.copy_(torch.randn(b, g, k * k, ho, wo, generator=torch.Generator().manual_seed(2)))
        out = IMPLS[impl](x, kern, k, stride)
        go = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
        (out * go).sum().backward()
        grads[impl] = (out.detach(), x.grad, kern.grad)
    for ref, got, name in zip(grads["unfold"], grads["shift"], ("output", "grad input", "grad kernel")):
        assert torch.allclose(got, ref, atol=1e-5, rtol=1e-5), f"{name}: {(got - ref).abs().max()}"


def test_involution_module_gradients_match_between_impls():
    torch.manual_seed(0)
    m = Involution2d(50, 50, 3)
    x = torch.randn(2, 50, 10, 9)
    res = {}
    for impl in ("unfold", "shift"):
        m.zero_grad()
        set_involution_impl(m, impl)
        xi = x.clone().requires_grad_(True)
        m(xi).square().mean().backward()
        res[impl] = (xi.grad.clone(), [p.grad.clone() for p in m.parameters()])
    assert torch.allclose(res["shift"][0], res["unfold"][0], atol=1e-6)
    for a, b in zip(res["shift"][1], res["unfold"][1]):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compiled_shift_equals_unfold():
    """The form torch.compile (inductor) generates, forward and backward."""
    torch.manual_seed(0)
    x = torch.randn(1, 20, 12, 11, requires_grad=True)
    kern = torch.randn(1, 2, 9, 12, 11, requires_grad=True)
    fn = torch.compile(involution_shift)
    out = fn(x, kern, 3)
    out.square().sum().backward()
    gx, gk = x.grad.clone(), kern.grad.clone()
    x.grad = kern.grad = None
    ref = involution_unfold(x, kern, 3)
    ref.square().sum().backward()
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(gx, x.grad, atol=1e-5) and torch.allclose(gk, kern.grad, atol=1e-4)


@pytest.mark.parametrize("pad", [0, 1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_zero_pad2d_equals_f_pad(pad, channels_last):
    import torch.nn.functional as F

    from ibmdn.ops.involution import zero_pad2d

    x = torch.randn(2, 3, 5, 4)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    y = zero_pad2d(x, pad)
    assert y.is_contiguous() and torch.equal(y, F.pad(x, (pad,) * 4))
    y.square().sum().backward()
    assert torch.equal(x.grad, 2 * x.detach())


def test_contiguous_copy_is_an_nchw_copy_with_identity_gradient():
    from ibmdn.ops.involution import contiguous_copy

    x = torch.randn(2, 5, 4, 3).to(memory_format=torch.channels_last).requires_grad_()
    y = contiguous_copy(x)
    assert y.is_contiguous() and torch.equal(y, x) and y.data_ptr() != x.data_ptr()
    (y * torch.arange(120.0).view(2, 5, 4, 3)).sum().backward()
    assert torch.equal(x.grad, torch.arange(120.0).view(2, 5, 4, 3))


@pytest.mark.parametrize("path", ["fused-compiled", "fused-compiled-cl"])
def test_compiled_frozen_fused_network_equals_eager(path, one_thread):
    """The bench's fastest CPU path (fuse + inductor with frozen, channels-last convolutions): there the
    generated kernels are channels-last, and the involution reads its kernel through ``contiguous_copy``
    and its padded input through ``zero_pad2d`` (both promise NCHW outputs to the compiler; before they
    kept that promise, the channels-last path failed to compile)."""
    from ibmdn.experiments.bench import Path_, prepare

    torch.manual_seed(0)
    model = _randomise_bn(build_model("ibmdn", scale=2, channels=16, pattern="BsIBs-IBsI")).eval()
    x = torch.rand(1, 3, 24, 19)
    with torch.inference_mode():
        ref = model(x)
        fn, xc, _ = prepare(model, Path_.parse(path), "shift", torch.device("cpu"), x)
        out = fn(xc)
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()


# ------------------------------------------------------------------------------------------ fusion


def _randomise_bn(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model


@pytest.mark.parametrize("name", [n for n in list_models() if not n.endswith("_d")])
def test_every_network_has_an_exact_inference_form(name):
    """fuse_for_inference runs on every registered network (each block ignores the options that are not
    its own) and equals its eval-mode form within 1e-5."""
    from ibmdn.fuse import fuse_for_inference

    torch.manual_seed(0)
    from ibmdn.models.registry import model_spec

    model = _randomise_bn(build_model(name, scale=model_spec(name).scales[0])).eval()
    x = torch.rand(1, 3, 20, 17)
    with torch.no_grad():
        ref, out = model(x), fuse_for_inference(model, impl="shift")(x)
    assert (out - ref).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name,impls", [("ibmdn", ("shift", "unfold")), ("depthibn", ("shift",)), ("rfdn_aim", ("shift",)),
                                          ("imdn", ("shift",)), ("rfdn_ibmd_cca", ("shift",))])
def test_fuse_for_inference_is_exact(name, impls):
    """fuse_for_inference equals the eval-mode network within 1e-5 (fp32), with and without the merges."""
    from ibmdn.fuse import fuse_for_inference

    torch.manual_seed(0)
    model = _randomise_bn(build_model(name, scale=2)).eval()
    x = torch.rand(1, 3, 20, 17)  # ESA (rfdn_aim) needs >= 17 pixels
    with torch.no_grad():
        ref = model(x)
        for kw in ({}, {"merge_bsconv_s": True}, {"merge_bsconv_s": False, "merge_chfab_head": False}):
            for impl in impls:
                fused = fuse_for_inference(model, impl=impl, **kw)
                out = fused(x)
                assert torch.allclose(out, ref, atol=1e-5), (name, kw, impl, (out - ref).abs().max())
    assert model.training is False and any(p.requires_grad for p in model.parameters())  # original untouched


def test_chfab_without_sigmoid_bn_builds_and_fuses_exactly():
    """The ablation ``CHFAB(sigmoid_bn=False)``: 2 C parameters fewer per block, still fused exactly."""
    from ibmdn.fuse import fuse_for_inference
    from ibmdn.models import count_params

    kw = {"channels": 16, "pattern": "BsIBs-IBsI"}
    torch.manual_seed(0)
    model = _randomise_bn(build_model("ibmdn", scale=2, attention_kw={"chfab": {"sigmoid_bn": False}}, **kw))
    assert count_params(build_model("ibmdn", scale=2, **kw)) - count_params(model) == 2 * 2 * 16
    model.eval()
    x = torch.rand(1, 3, 12, 13)
    with torch.no_grad():
        assert torch.allclose(fuse_for_inference(model)(x), model(x), atol=1e-5)


def _randomize_bn(module: nn.Module) -> nn.Module:
    """Non-trivial running statistics and affine terms, so that folding them is tested."""
    g = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return module.eval()


def _blocks():
    from ibmdn.attention.cca import CCA
    from ibmdn.attention.chfab import CHFAB
    from ibmdn.models.blocks import ibmdb

    return {  # name: (constructor, input channels)
        "involution": (lambda: Involution2d(16, 16, 3), 16),
        "involution-ln": (lambda: Involution2d(16, 16, 3, norm="ln"), 16),
        "cca": (lambda: CCA(32), 32), "chfab": (lambda: CHFAB(50), 50),
        "ibmdb": (lambda: ibmdb(50, ("Bs", "I", "I", "Bs")), 50), "ibmdb-s": (lambda: ibmdb(50, bsconv="s"), 50),
        "imdn": (lambda: build_model("imdn", scale=2), 3), "ibmdn": (lambda: build_model("ibmdn", scale=3), 3)}


@pytest.mark.parametrize("name", list(_blocks()))
def test_each_block_owns_an_exact_reparameterisation(name):
    """``block.reparameterize()`` returns a new, inference-only module equal to the block in eval mode."""
    from ibmdn.ops.reparam import InferenceOnly

    torch.manual_seed(0)
    make, channels = _blocks()[name]
    block = _randomize_bn(make())
    before = {k: v.clone() for k, v in block.state_dict().items()}
    x = torch.rand(1, channels, 11, 9)
    with torch.no_grad():
        fused = block.reparameterize(impl="shift")
        assert isinstance(fused, InferenceOnly) and fused is not block
        torch.testing.assert_close(fused(x), block(x), atol=1e-5, rtol=0)
    assert all(torch.equal(before[k], v) for k, v in block.state_dict().items())  # the original is unchanged
    with pytest.raises(RuntimeError, match="inference-only"):
        fused.train()


def test_fused_network_is_inference_only_and_switchable():
    from ibmdn.fuse import fuse_for_inference
    from ibmdn.ops.involution import FusedInvolution

    fused = fuse_for_inference(build_model("ibmdn", scale=2))
    with pytest.raises(RuntimeError, match="inference-only"):
        fused.train()
    fused.eval()  # allowed
    assert not any(p.requires_grad for p in fused.parameters())
    invs = [m for m in fused.modules() if isinstance(m, FusedInvolution)]
    assert invs and all(m.impl == "shift" for m in invs)
    set_involution_impl(fused, "unfold")
    assert all(m.impl == "unfold" for m in invs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())


def test_fused_network_uses_less_memory_than_unfold_reference():
    """The memory half of acceptance 2 at a small size (the bench measures it at 128x128)."""
    from ibmdn.fuse import fuse_for_inference
    from ibmdn.metrics.complexity import cpu_peak_tensor_bytes

    model = build_model("ibmdn", scale=4).eval()
    fused = fuse_for_inference(model)
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        model(x)
        fused(x)
        ref = cpu_peak_tensor_bytes(lambda: model(x))
        got = cpu_peak_tensor_bytes(lambda: fused(x))
    assert 0 < got <= 0.5 * ref, (got, ref)


# ------------------------------------------------------------------------------------------ bench


def test_cpu_peak_tensor_bytes_sees_allocations():
    from ibmdn.metrics.complexity import cpu_peak_tensor_bytes

    def fn():
        a = torch.empty(4 << 20, dtype=torch.uint8)
        b = torch.empty(2 << 20, dtype=torch.uint8)
        del a, b

    assert 6 << 20 <= cpu_peak_tensor_bytes(fn) < 7 << 20


def test_path_parsing():
    from ibmdn.errors import IbmdnError
    from ibmdn.experiments.bench import Path_

    p = Path_.parse("fused-compiled-cl")
    assert p.fused and p.compiled and p.channels_last and p.dtype == torch.float32
    assert Path_.parse("compiled-nchw").layout_optimization is False
    assert Path_.parse("eager-bf16").dtype == torch.bfloat16
    for bad in ("eager-compiled", "turbo", "eager-nchw"):
        with pytest.raises(IbmdnError):
            Path_.parse(bad)


def test_bench_rows_table_plot_and_acceptance(tmp_path):
    from ibmdn.experiments.bench import BenchConfig, acceptance, run_bench, summary_table
    from ibmdn.experiments.plots import bench_figure
    from ibmdn.results import read_table, write_table

    cfg = BenchConfig(models=("ibmdn", "rfdn_aim"), paths=("eager", "fused"), impls=("unfold", "shift"),
                      sizes=((16, 16),), threads=1, warmup=1, repeats=3, rounds=1, train=False, profile=True)
    df, extra = run_bench(cfg, log=lambda s: None)
    assert not extra["errors"], extra["errors"]
    assert len(extra["profiles"]) == 6 and all("Self CPU" in t for t in extra["profiles"].values())
    path = write_table(df, tmp_path / "bench-cpu.csv", {"test": True})
    back = read_table(path)
    w = set(back.loc[back["model"] == "ibmdn", "weights"])
    assert {"eager-unfold", "eager-shift", "fused-shift", "fused-unfold", "reference"} <= w
    assert {"eager", "fused", "reference"} == set(back.loc[back["model"] == "rfdn_aim", "weights"])
    assert {"latency", "latency_min", "peak_mem", "params", "macs"} <= set(back["metric"])
    lat = back[back["metric"] == "latency"]
    assert (lat["n_images"] == 3).all() and (lat["value"] > 0).all()
    macs = back[(back["metric"] == "macs") & (back["model"] == "ibmdn")]["value"].iloc[0]
    assert macs > 0
    acc = acceptance(back, "lr16x16")
    assert acc["reference_path"] == "eager-unfold" and set(acc["targets_met"]) == {
        "latency_vs_peer", "latency_vs_reference", "memory_vs_reference"}
    assert len(summary_table(back))
    png = bench_figure(path, tmp_path / "bench-cpu.png")
    assert png.stat().st_size > 1000


def test_bench_path_ort_tokens():
    from ibmdn.errors import IbmdnError
    from ibmdn.experiments.bench import Path_

    assert Path_.parse("ort").ort and not Path_.parse("ort").fused
    p = Path_.parse("fused-ort")
    assert p.ort and p.fused and not p.compiled and p.dtype == torch.float32
    assert not Path_.parse("fused-compiled-cl-bf16").ort
    for bad in ("compiled-ort", "fused-compiled-ort", "ort-cl", "ort-bf16", "ort-fp16", "eager-ort"):
        with pytest.raises(IbmdnError, match="ort .*combines with fused only"):
            Path_.parse(bad)


def test_bench_interleaved_calls_rotate_rounds():
    from ibmdn.experiments.bench import interleaved_calls

    order = []
    fns = {k: (lambda k=k: order.append(k)) for k in "abcd"}
    out = interleaved_calls(fns, torch.device("cpu"), rounds=4, calls=2, warmup=1, settle=1)
    assert {k: [len(r) for r in rs] for k, rs in out.items()} == {k: [2, 2, 2, 2] for k in "abcd"}
    rounds = order[4:]  # after one warm-up call each: per round, every entry 1 settle + 2 timed calls
    starts = [rounds[i * 12] for i in range(4)]
    assert starts == ["a", "b", "c", "d"] and all(rounds[i:i + 3] == [rounds[i]] * 3 for i in range(0, 48, 3))


def test_bench_engines_interleaved_in_rounds_with_ratio_spread(tmp_path):
    """Every (model, path) of two networks, PyTorch and ONNX Runtime, timed in rounds: per-round medians,
    and acceptance ratios whose median over rounds lies within their spread."""
    pytest.importorskip("onnxruntime")
    from ibmdn.experiments.bench import BenchConfig, acceptance, run_bench, summary_table
    from ibmdn.experiments.plots import bench_figure
    from ibmdn.results import read_table, write_table

    cfg = BenchConfig(models=("imdn", "ibmdn"), paths=("eager", "fused", "fused-ort"), impls=("unfold", "shift"),
                      sizes=((16, 16),), threads=1, warmup=1, repeats=4, rounds=2, train=False)
    df, extra = run_bench(cfg, log=lambda s: None)
    assert not extra["errors"] and not extra["skipped"], extra
    path = write_table(df, tmp_path / "bench-cpu.csv", {"test": True})
    back = read_table(path)
    assert bench_figure(path, tmp_path / "bench-cpu.png").stat().st_size > 1000
    lat = back[back["metric"] == "latency"]
    assert set(zip(lat["model"], lat["weights"])) == {
        ("imdn", "eager"), ("imdn", "fused"), ("imdn", "fused-ort"), ("ibmdn", "eager-unfold"),
        ("ibmdn", "eager-shift"), ("ibmdn", "fused-unfold"), ("ibmdn", "fused-shift"), ("ibmdn", "fused-ort")}
    assert (lat["n_images"] == 4).all() and (lat["value"] > 0).all()
    for model, weights in zip(lat["model"], lat["weights"]):
        got = back[(back["model"] == model) & (back["weights"] == weights)]
        assert {"latency_round1", "latency_round2"} <= set(got["metric"]) and "latency_round3" not in set(got["metric"])
        assert (got.loc[got["metric"].str.startswith("latency_round"), "n_images"] == 2).all()
        assert ("peak_mem" in set(got["metric"])) != weights.endswith("ort")  # ONNX Runtime: peak_rss only
    assert (back.loc[back["weights"] == "fused-ort", "metric"] == "compile_time").sum() == 2
    wide = summary_table(back)
    assert len(wide) == 8 and (wide["round_min"] <= wide["round_max"]).all()
    acc = extra["acceptance"][0]
    assert acc["memory_path"] != "fused-ort" and "latency_vs_peer" not in acc  # no rfdn_aim measured
    peer = acceptance(back, "lr16x16", peer="imdn")
    for a, key in ((acc, "latency_vs_reference"), (peer, "latency_vs_reference"), (peer, "latency_vs_peer")):
        assert a[key + "_min"] <= a[key] <= a[key + "_max"], (key, a)
    ratio = back[back["metric"].str.startswith("latency_vs_reference")]
    assert set(ratio["metric"]) == {"latency_vs_reference", "latency_vs_reference_median", "latency_vs_reference_min",
                                    "latency_vs_reference_max"}
    assert set(ratio["weights"]) == {acc["model_path"]} and (ratio["unit"] == "1").all()
    assert float(ratio.loc[ratio["metric"] == "latency_vs_reference", "value"].iloc[0]) == pytest.approx(
        acc["latency_vs_reference"], abs=1e-3)


def test_bench_command_writes_rounds_ratios_and_fastest_paths(tmp_path, capsys):
    import re

    from ibmdn.cli import main
    from ibmdn.results import read_meta

    code = main(["bench", "--models", "imdn,ibmdn", "--paths", "eager,fused", "--impl", "unfold,shift", "--sizes", "16",
                 "--threads", "1", "--warmup", "1", "--repeats", "4", "--rounds", "2", "--no-train", "--no-plot",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "fastest per network (lr16x16): ibmdn " in out and "imdn " in out
    assert "acceptance (lr16x16)" in out and "x (median of rounds " in out
    meta = read_meta(tmp_path / "bench-cpu.csv")["provenance"]
    assert meta["parameters"]["rounds"] == 2 and meta["skipped"] == [] and meta["command"].startswith("ibmdn bench")
    assert "latency_vs_reference_min" in meta["acceptance"][0]
    for bad, why in ((["--repeats", "2", "--rounds", "3"], "must be at least --rounds"),
                     (["--paths", "compiled-ort"], "ort .*combines with fused only")):
        assert main(["bench", "--models", "imdn", "--no-train", "--no-plot", "--out", str(tmp_path), *bad]) == 2
        assert re.search(why, capsys.readouterr().err)


def test_bench_ratio_is_the_undisturbed_rounds_and_does_not_follow_how_many_were_disturbed():
    """A disturbance that slows one network's rounds and not the other's (memory-bound against
    compute-bound paths on a shared host) moves the median of per-round ratios with the number of
    disturbed rounds; the headline ratio (least-disturbed round of each path) stays, and the fastest path is
    chosen by the same statistic."""
    import pandas as pd

    from ibmdn.experiments.bench import _row, acceptance, best_paths

    def table(ibmdn_rounds):
        rows = []
        for model, weights, rounds in (("ibmdn", "compiled-shift", ibmdn_rounds),
                                       ("ibmdn", "compiled-unfold", [r * 1.1 for r in ibmdn_rounds]),
                                       ("rfdn_aim", "compiled", [100.0] * 5)):
            rows += [_row(model, weights, "lr8x8", f"latency_round{k}", v, "ms", 4) for k, v in enumerate(rounds, 1)]
            rows += [_row(model, weights, "lr8x8", "latency", sorted(rounds)[2], "ms", 20),
                     _row(model, weights, "lr8x8", "latency_best", min(rounds), "ms", 5)]
        return pd.DataFrame(rows)

    calm, busy = table([90, 91, 120, 121, 90]), table([120, 90, 121, 122, 123])
    a, b = acceptance(calm, "lr8x8"), acceptance(busy, "lr8x8")
    assert a["latency_vs_peer"] == pytest.approx(0.90) and b["latency_vs_peer"] == pytest.approx(0.90)
    assert a["latency_vs_peer_median"] == pytest.approx(0.91) and b["latency_vs_peer_median"] == pytest.approx(1.21)
    for acc in (a, b):
        assert acc["latency_vs_peer_min"] <= acc["latency_vs_peer"] <= acc["latency_vs_peer_max"]
        assert acc["latency_vs_reference"] == pytest.approx(1 / 1.1)
    assert b["model_path"] == "compiled-shift" and b["model_ms"] == 90
    assert best_paths(busy, "lr8x8").set_index("model")["latency"].to_dict() == {"ibmdn": 90, "rfdn_aim": 100}


@pytest.mark.slow
def test_bench_compiled_paths_stay_compiled_through_the_rounds():
    """Compiled entries of one class live side by side (one dynamo cache entry each) and are timed in rounds
    without a recompilation (the rounds would raise); bf16 is a path like the others."""
    from ibmdn.experiments.bench import BenchConfig, run_bench

    cfg = BenchConfig(models=("ibmdn",), paths=("fused-compiled", "fused-compiled-cl-bf16"), impls=("shift",),
                      sizes=((16, 16),), threads=1, warmup=1, repeats=2, rounds=2, train=False)
    df, extra = run_bench(cfg, log=lambda s: None)
    assert not extra["errors"], extra["errors"]
    lat = df[df["metric"] == "latency_round2"]
    assert set(lat["weights"]) == {"fused-compiled-shift", "fused-compiled-cl-bf16-shift"}


def test_bench_ort_without_onnx_packages_is_skipped(monkeypatch):
    import ibmdn.export
    from ibmdn.experiments.bench import BenchConfig, run_bench

    def missing():
        raise ibmdn.export.OnnxUnavailableError("no onnxruntime here")

    monkeypatch.setattr(ibmdn.export, "require_onnx", missing)
    cfg = BenchConfig(models=("imdn",), paths=("eager", "ort"), sizes=((16, 16),), threads=1, warmup=1, repeats=2,
                      rounds=2, train=False)
    df, extra = run_bench(cfg, log=lambda s: None)
    assert extra["skipped"] == ["imdn ort: no onnxruntime here"] and not extra["errors"]
    assert set(df.loc[df["metric"] == "latency", "weights"]) == {"eager"}


def test_trainer_step_is_the_trainers_own_and_updates_weights():
    from ibmdn.experiments.bench import trainer_step
    from ibmdn.train.task import SRTask

    step = trainer_step("ibmdn", 2, torch.device("cpu"), batch=2, hr=16, overrides={"channels_last": True})
    task = step.task
    assert isinstance(task, SRTask) and task.cfg.channels_last and task.cfg.batch_size == 2
    before = task.model.conv_first.weight.detach().clone()
    step()
    assert not torch.equal(before, task.model.conv_first.weight.detach())


def test_bench_train_interleaves_and_reports_ratios():
    from ibmdn.experiments.bench import bench_train

    df = bench_train(("imdn", "ibmdn"), ("default", "reference"), batch=2, hr=16, threads=None, rounds=2, steps=1)
    got = {(r.model, r.weights) for r in df.itertuples()}
    assert got == {("imdn", "default"), ("ibmdn", "default"), ("ibmdn", "reference")}  # no involution in imdn
    ref = df[(df.model == "imdn") & (df.metric == "train_step_ratio")]
    assert float(ref["value"].iloc[0]) == 1.0
    steps = df[df.metric == "train_step"]
    assert (steps["value"] > 0).all() and (steps["n_images"] == 2).all()
    with pytest.raises(Exception, match="unknown training variant"):
        bench_train(("imdn",), ("turbo",), batch=2, hr=16, threads=None)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_shift_and_fused_match_reference():
    """On CUDA: shift (eager and compiled: inductor emits one Triton kernel) equals unfold, fused equals eager."""
    from ibmdn.fuse import fuse_for_inference

    torch.manual_seed(0)
    dev = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    x = torch.randn(2, 50, 33, 31, device=dev, requires_grad=True)
    kern = torch.randn(2, 5, 9, 33, 31, device=dev, requires_grad=True)
    for fn in (involution_shift, torch.compile(involution_shift)):
        out = fn(x, kern, 3)
        gx, gk = torch.autograd.grad(out.square().sum(), (x, kern))
        ref = involution_unfold(x, kern, 3)
        rx, rk = torch.autograd.grad(ref.square().sum(), (x, kern))
        assert torch.allclose(out, ref, atol=1e-5)
        assert torch.allclose(gx, rx, atol=1e-4) and torch.allclose(gk, rk, atol=1e-4)
    model = _randomise_bn(build_model("ibmdn", scale=4)).eval().to(dev)
    img = torch.rand(1, 3, 64, 48, device=dev)
    with torch.inference_mode():
        assert torch.allclose(fuse_for_inference(model)(img), model(img), atol=1e-5)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_committed_bench_tables_are_consistent(device):
    """results/bench-<device>.csv: schema, provenance (commit, device), and the acceptance ratios stored
    in its sidecar recomputed from its own rows (nothing typed in)."""
    from pathlib import Path

    from ibmdn.experiments.bench import acceptance
    from ibmdn.results import read_meta, read_table

    path = Path(__file__).resolve().parents[1] / "results" / f"bench-{device}.csv"
    if not path.is_file():
        pytest.skip(f"{path.name} not committed")
    df = read_table(path, "long")
    prov = read_meta(path)["provenance"]
    assert len(prov["git"]["sha"]) == 40 and prov["device"]["cpu_count"] >= 1
    if device == "cuda":
        assert prov["device"]["cuda"].startswith("NVIDIA")
    for stored in prov["acceptance"]:
        again = acceptance(df, stored["dataset"])
        for k in ("latency_vs_peer", "latency_vs_reference", "memory_vs_reference"):
            if k in stored:
                assert again[k] == pytest.approx(stored[k], abs=1e-3), k  # CSV keeps 1 us
    mem = df[(df["metric"] == "peak_mem") & df["weights"].str.contains("compiled")]
    if device == "cuda":  # whole-path memory: a CUDA graph's pool is counted, never 0
        assert (mem["value"] > 0).all()
