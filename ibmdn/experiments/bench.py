"""``ibmdn bench``: speed and memory of the networks under the same optimisations, in one run.

For each model, each execution *path* and each involution *implementation* it measures, on one device
and one thread count:

* ``params`` (count) and ``macs`` (multiply-adds, :func:`ibmdn.metrics.complexity.count_macs`, which
  counts involution's per-pixel application through ``extra_macs``) of the architecture (``weights``
  = ``reference``; a fused network has the same function but merged weights, so its own counts are
  not the architecture's);
* ``latency`` (ms): all (model, path, implementation) callables are prepared first (built, compiled or
  exported, ``warmup`` untimed calls), then timed *interleaved in rounds* (:func:`interleaved_calls`):
  ``rounds`` rounds, in each of which every callable runs one untimed call and then ``repeats // rounds``
  timed ones, the order rotated from round to round, so that a machine whose speed drifts slows all paths
  alike. Batch 1, under ``torch.inference_mode``. ``latency`` is the median of all timed calls, with
  ``latency_min`` and ``latency_iqr``; ``latency_round1`` ... ``latency_round<R>`` are the per-round
  medians and ``latency_best`` the lowest of them (the least-disturbed round). CPU:
  ``time.perf_counter`` around each call; CUDA: CUDA events (as :func:`ibmdn.metrics.complexity.time_calls`);
* ``latency_vs_peer`` and ``latency_vs_reference`` (ratio, unit ``1``; rows of ``ibmdn``'s fastest path):
  :func:`acceptance`'s ratios of ibmdn's fastest path to ``rfdn_aim``'s fastest and to ibmdn's fastest
  unfused ``unfold`` path (fastest: lowest ``latency_best``): the ratio of the two paths' ``latency_best``,
  with ``_median``, the median over rounds of the ratio of per-round medians, and ``_min`` / ``_max``, the
  lowest and highest round's ratio (the spread the drift leaves; :func:`_ratio` says why the headline
  is the best rounds' ratio);
* ``peak_mem`` (MiB), measured in a separate pass when a callable is prepared, before any timing: CUDA:
  ``torch.cuda.max_memory_allocated`` over the whole preparation of the path (moving
  the model and input to the GPU, compiling, capturing, warm-up) minus what was allocated
  before it: weights and input are included (under 3 MiB for these networks) and so is a CUDA graph's
  private memory pool, which a reset after warm-up would hide (compiled paths then read 0: the first
  CUDA run, 2026-11-26, measured it that way and its compiled-path memory is void). CPU:
  PyTorch keeps no counter, so one forward pass runs under ``torch.profiler`` with
  ``profile_memory=True`` and the allocation / free events of PyTorch's CPU allocator are replayed in
  time order; the peak of the running sum is the peak of tensor memory the pass adds (activations,
  output, inductor's buffers). Allocations that bypass PyTorch's allocator (oneDNN scratch space,
  the Python heap) are not seen: ``peak_rss`` (MiB, CPU only) is the second, coarser measure: the
  rise of the process's peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs`` after
  ``malloc_trim``) over its resident set before the pass; it includes everything but also allocator
  caching effects, and reads 0 where the OS does not allow the reset. ONNX Runtime allocates outside
  PyTorch, so ``ort`` paths have no ``peak_mem`` row, only ``peak_rss``, taken over the first call of a
  fresh session of the same graph (ONNX Runtime keeps its buffers in an arena after the first call, so a
  later call would read close to 0);
* ``compile_time`` (s) of compiled paths: the first call, which traces and compiles; of ``ort`` paths:
  the ONNX export, the session's creation and the first call;
* ``train_step`` (ms) and ``train_peak_mem`` (MiB): the trainer's own step (:func:`trainer_step`, the
  ``short`` profile's loss and optimiser) at batch 16 with HR 192x192 patches (LR 192/scale), median of
  ``train_repeats`` after two warm-up steps, for the ``train_paths`` (eager, compiled); ``dataset`` is
  ``hr192-b16``. ``ibmdn bench-train`` (:func:`bench_train`) measures training steps alone, of several
  networks and speed options interleaved in rounds, with the ratio to a reference network and its
  spread over the rounds.

Paths (``--paths``, tokens joined by ``-``): ``eager`` (the module as built); ``compiled``
(``torch.compile``, inductor, weights frozen for inference with ``freezing=True``; on CUDA with
``mode="reduce-overhead"``, i.e. CUDA graphs; ``-nchw`` turns off inductor's layout optimisation, which
converts convolutions to channels-last); ``fused`` (:func:`ibmdn.fuse.fuse_for_inference`: BatchNorms
folded, shared-input 1x1 convs stacked, global fusion incremental); ``fused-compiled``; ``ort`` and
``fused-ort``: the network exported to ONNX and run by ONNX Runtime (:class:`ibmdn.export.OrtNetwork`,
CPU, fp32, as many threads as PyTorch; no other token combines with it). Suffixes:
``-cl`` runs in ``channels_last``; ``-bf16`` / ``-fp16`` cast model and input to that type; CUDA runs
strict fp32 (TF32 off) unless ``-tf32``. Implementations (``--impl``): the involution application,
``unfold`` (reference) and ``shift``; models without involution are measured once per path, and so are
``ort`` paths (the exported graph applies involution in its ``conv`` form,
:func:`ibmdn.export.prepare_for_export`). A path a network or the installation does not support (``ort``
without the optional ONNX packages, for a network that is not exported, or on CUDA) is skipped, and
the reason is logged and kept in the sidecar (``skipped``).

Each row is one number in the project's LONG schema (``table=bench``): ``weights`` is
``<path>[-<impl>]`` (e.g. ``eager-unfold``, ``fused-compiled-shift``, ``compiled`` for a model without
involution), ``dataset`` the input as ``lr<H>x<W>`` (``lr128x128``; ``--sizes 180x320`` is the
320x180 -> 1280x720 geometry of docs/protocol.md), ``n_images`` the number of timed runs (of a round for
``latency_round<k>``, the number of rounds for the ratios). Written to
``<out>/bench-<device>.csv`` + ``.meta.json`` (threads, load average before and after, versions);
:func:`ibmdn.experiments.plots.bench_figure` draws ``figures/bench-<device>.png`` from the CSV.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ibmdn.errors import IbmdnError
from ibmdn.experiments.readme import latency_metric, ratio_text
from ibmdn.metrics.complexity import MIB, cpu_peak_rss_bytes, peak_memory, sync, time_calls

PATH_TOKENS = ("eager", "compiled", "fused", "ort", "cl", "nchw", "bf16", "fp16", "tf32")
DEFAULT_PATHS = ("eager", "compiled", "fused", "fused-compiled")
DEFAULT_MODELS = ("ibmdn", "rfdn_aim", "imdn", "depthibn")


# ----------------------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class Path_:
    """A parsed execution path (``fused-compiled-cl``)."""

    name: str
    fused: bool
    compiled: bool
    channels_last: bool
    dtype: torch.dtype
    layout_optimization: bool = True
    tf32: bool = False
    ort: bool = False

    @classmethod
    def parse(cls, name: str) -> Path_:
        tokens = name.split("-")
        bad = [t for t in tokens if t not in PATH_TOKENS]
        if bad or not tokens:
            raise IbmdnError(f"bad path {name!r}: tokens must be among {', '.join(PATH_TOKENS)}")
        if "eager" in tokens and "compiled" in tokens:
            raise IbmdnError(f"bad path {name!r}: eager and compiled exclude each other")
        if "nchw" in tokens and ("compiled" not in tokens or "cl" in tokens):
            raise IbmdnError(f"bad path {name!r}: nchw applies to compiled paths without cl")
        clash = [t for t in tokens if t not in ("ort", "fused")]
        if "ort" in tokens and clash:
            raise IbmdnError(f"bad path {name!r}: ort (ONNX Runtime, fp32, its own graph optimisation) combines "
                             f"with fused only (ort, fused-ort), not with {', '.join(clash)}")
        dtype = torch.bfloat16 if "bf16" in tokens else torch.float16 if "fp16" in tokens else torch.float32
        return cls(name, "fused" in tokens, "compiled" in tokens, "cl" in tokens, dtype, "nchw" not in tokens,
                   "tf32" in tokens, "ort" in tokens)


def has_involution(model: nn.Module) -> bool:
    from ibmdn.ops.involution import Involution2d

    return any(isinstance(m, Involution2d) or getattr(m, "is_involution", False) for m in model.modules())


@contextlib.contextmanager
def _inductor_inference_config(layout_optimization: bool = True):
    import torch._inductor.config as ic

    with ic.patch(freezing=True, layout_optimization=layout_optimization):
        yield


def prepare(model: nn.Module, path: Path_, impl: str | None, device: torch.device, example: torch.Tensor,
            ) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, float]:
    """Build the inference callable of ``path`` and the input it takes; returns (fn, input, compile_s).

    Compiled paths are compiled here (their first call, timed, is the returned compile time).
    """
    from ibmdn.fuse import fuse_for_inference
    from ibmdn.ops.involution import set_involution_impl

    model = model.eval()
    if impl is not None:
        set_involution_impl(model, impl)
    if path.fused:
        model = fuse_for_inference(model, impl=impl or "shift")
    model = model.to(device=device, dtype=path.dtype)
    x = example.to(device=device, dtype=path.dtype)
    if path.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    fn: Callable = model
    compile_s = math.nan
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = path.tf32
        torch.backends.cuda.matmul.allow_tf32 = path.tf32
    if path.compiled:
        # CUDA: CUDA graphs as well (mode "reduce-overhead", the compiled peers in docs/protocol.md)
        fn = torch.compile(model, mode="reduce-overhead" if device.type == "cuda" else None)
        with _inductor_inference_config(path.layout_optimization), torch.inference_mode():
            sync(device)
            t0 = time.perf_counter()
            fn(x)
            sync(device)
            compile_s = time.perf_counter() - t0
    return fn, x, compile_s


def ort_unsupported(name: str, device: torch.device) -> str | None:
    """Why the ``ort`` paths are not measured for network ``name`` on ``device``, or None when they are."""
    from ibmdn.export import OnnxUnavailableError, not_exportable, require_onnx

    if device.type != "cpu":
        return "ort paths are measured on the CPU only"
    try:
        require_onnx()
    except OnnxUnavailableError as e:
        return str(e)
    return not_exportable(name)


def ort_engine(model: nn.Module, path: Path_, name: str, scale: int, cache_dir: str):
    """The ONNX Runtime engine of ``path`` (``ort`` or ``fused-ort``), exported when first called; its graph
    is kept in ``cache_dir`` so that a second engine of the same network (:func:`_ort_memory`) reads it."""
    from ibmdn.export import OrtNetwork
    from ibmdn.fuse import fuse_for_inference

    model = model.eval()
    if path.fused:
        model = fuse_for_inference(model)
    return OrtNetwork(model, name, scale, device="cpu", cache_dir=cache_dir)


def _ort_memory(engine, x: torch.Tensor) -> dict[str, float]:
    """``peak_rss`` of the first call of a fresh session of ``engine``'s graph (module docstring)."""
    from ibmdn.export import OrtNetwork

    fresh = OrtNetwork(engine.network, engine.name, engine.scale, device="cpu", cache_dir=engine.cache_dir)
    fresh.plain  # noqa: B018 - the session is created before the measured call
    rss = cpu_peak_rss_bytes(lambda: fresh(x))
    return {} if rss is None else {"peak_rss": rss / MIB}


# ---------------------------------------------------------------------------------------- timing


def _quantiles(times: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else [times[0]] * 3
    return float(statistics.median(times)), float(min(times)), float(q[2] - q[0])


# ---------------------------------------------------------------------------------------- memory


# ---------------------------------------------------------------------------------------- training


TRAIN_VARIANTS: dict[str, dict] = {
    "default": {},
    "nchw": {"channels_last": False},
    "reference": {"involution_impl": "unfold"},
    "shift": {"involution_impl": "shift"},
    "cl": {"channels_last": True},
    "bf16": {"amp": "bf16"},
    "cl-bf16": {"channels_last": True, "amp": "bf16"},
    "compiled": {"compile": True},
    "compiled-cl": {"compile": True, "channels_last": True},
}
"""Training-step variants: recipe fields that change only the speed of a step (``default``: the recipe as
the trainer runs it, channels-last on CPU since the default follows the device; ``nchw`` and ``cl``: the
layout forced; ``reference``: the unfold involution)."""


def trainer_step(name: str, scale: int, device: torch.device, batch: int = 8, hr: int = 64,
                 overrides: dict | None = None, profile: str = "short") -> Callable[[], None]:
    """The trainer's own step (:meth:`ibmdn.train.task.SRTask.train_step`: the profile's loss, Adam,
    lr schedule, memory format, autocast and involution implementation) on fixed random uint8 patches of
    the recipe's batch and size, moved to the device as the trainer moves its batches."""
    from ibmdn.models import build_model
    from ibmdn.train.config import for_device, resolve_config
    from ibmdn.train.data import to_device
    from ibmdn.train.distributed import DistInfo
    from ibmdn.train.task import SRTask

    cfg = for_device(resolve_config(profile, overrides={"batch_size": batch, "patch_size": hr, **(overrides or {})}),
                     device)
    torch.manual_seed(0)
    task = SRTask(cfg, build_model(name, scale, **cfg.model_kwargs), device, DistInfo())
    g = torch.Generator().manual_seed(0)
    lr_u8 = torch.randint(0, 256, (batch, 3, hr // scale, hr // scale), generator=g, dtype=torch.uint8)
    hr_u8 = torch.randint(0, 256, (batch, 3, hr, hr), generator=g, dtype=torch.uint8)
    x, y = to_device(lr_u8, device, cfg.channels_last), to_device(hr_u8, device, cfg.channels_last)
    state = {"step": 0}

    def step() -> None:
        task.set_step(state["step"])
        task.train_step(x, y, state["step"])
        state["step"] += 1

    step.task = task  # type: ignore[attr-defined]  # for inspection (tests)
    return step


def interleaved_calls(fns: dict[str, Callable[[], object]], device: torch.device, rounds: int, calls: int,
                      warmup: int = 2, settle: int = 0) -> dict[str, list[list[float]]]:
    """Per entry and round, the ms of its ``calls`` timed calls (:func:`time_calls`). Every entry gets
    ``warmup`` untimed calls first; then in each of ``rounds`` rounds the entries take turns, each with
    ``settle`` untimed calls before its timed ones, the order rotated from round to round. A machine whose
    speed drifts slows them alike, so per-round ratios hold."""
    keys = list(fns)
    for k in keys:
        time_calls(fns[k], device, warmup, 0)
    out: dict[str, list[list[float]]] = {k: [] for k in keys}
    for r in range(rounds):
        start = r * len(keys) // rounds
        for k in keys[start:] + keys[:start]:
            out[k].append(time_calls(fns[k], device, settle, calls))
    return out


def interleaved_times(fns: dict[str, Callable[[], object]], device: torch.device, rounds: int, steps: int,
                      warmup: int = 2) -> dict[str, list[float]]:
    """Per entry, the median ms of ``steps`` calls in each of ``rounds`` rounds (:func:`interleaved_calls`)."""
    return {k: [statistics.median(ts) for ts in per_round]
            for k, per_round in interleaved_calls(fns, device, rounds, steps, warmup).items()}


def bench_train(models: tuple[str, ...], variants: tuple[str, ...], scale: int = 2, batch: int = 8, hr: int = 64,
                device: str = "cpu", threads: int | None = 2, rounds: int = 5, steps: int = 5,
                reference: str = "imdn:default", log: Callable[[str], None] = lambda m: None) -> pd.DataFrame:
    """Training step of every (model, variant), measured interleaved in rounds (long rows, ``table=bench``).

    Rows per entry: ``train_step`` (median over rounds of the per-round medians, ms) with ``train_step_min``
    / ``train_step_max`` (fastest and slowest round), and ``train_step_ratio`` (median over rounds of the
    entry's time divided by ``reference``'s in the same round) with ``_min`` / ``_max``. ``weights`` is the
    variant; models without involution skip the involution-only variants.
    """
    from ibmdn.inference import resolve_device
    from ibmdn.models import build_model

    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    unknown = [v for v in variants if v not in TRAIN_VARIANTS]
    if unknown:
        raise IbmdnError(f"unknown training variant(s) {unknown}; known: {', '.join(TRAIN_VARIANTS)}")
    fns: dict[str, Callable[[], None]] = {}
    for name in models:
        inv = has_involution(build_model(name, scale))
        for v in variants:
            if not inv and "involution_impl" in TRAIN_VARIANTS[v]:
                continue
            log(f"  building {name} {v}")
            fns[f"{name}:{v}"] = trainer_step(name, scale, dev, batch, hr, TRAIN_VARIANTS[v])
    if reference not in fns:
        raise IbmdnError(f"reference {reference!r} is not among the measured entries {sorted(fns)}")
    times = interleaved_times(fns, dev, rounds, steps)
    ds = f"hr{hr}-b{batch}"
    rows = []
    for key, ts in times.items():
        name, v = key.split(":")
        ratios = [t / r for t, r in zip(ts, times[reference])]
        for metric, vals, unit in (("train_step", ts, "ms"), ("train_step_ratio", ratios, "1")):
            rows += [_row(name, v, ds, metric, statistics.median(vals), unit, len(vals)),
                     _row(name, v, ds, f"{metric}_min", min(vals), unit, len(vals)),
                     _row(name, v, ds, f"{metric}_max", max(vals), unit, len(vals))]
        log(f"  {name:14s} {v:10s} {statistics.median(ts):8.1f} ms/step  x{statistics.median(ratios):.2f} "
            f"of {reference} (rounds {min(ratios):.2f}-{max(ratios):.2f})")
    df = pd.DataFrame(rows)
    df["scale"] = scale
    return df


def bench_train_command(args) -> int:
    """``ibmdn bench-train --models ... --variants ...``: the trainer's step, interleaved in rounds."""
    from ibmdn.results import provenance, write_table

    models, variants = _csv_list(args.models), _csv_list(args.variants)
    load_before = _load_average()
    df = bench_train(models, variants, args.scale, args.batch, args.hr, args.device, args.threads or None,
                     args.rounds, args.steps, args.reference, log=_log)
    dev = "cuda" if "cuda" in str(args.device) else "cpu"
    out = Path(args.out) / f"bench-train-{dev}.csv"
    params = {k: v for k, v in vars(args).items() if k not in ("handler", "func")}
    meta = provenance(parameters=params, threads=args.threads or torch.get_num_threads(),
                      load_average_before=load_before, load_average_after=_load_average(),
                      variants={v: TRAIN_VARIANTS[v] for v in variants},
                      command="ibmdn bench-train " + " ".join(sys.argv[2:]))
    write_table(df, out, meta, decimals=4)
    print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------------------------------- the run


@dataclass
class BenchConfig:
    models: tuple[str, ...] = DEFAULT_MODELS
    paths: tuple[str, ...] = DEFAULT_PATHS
    impls: tuple[str, ...] = ("unfold", "shift")
    sizes: tuple[tuple[int, int], ...] = ((128, 128),)
    scale: int = 4
    device: str = "cpu"
    threads: int | None = 2
    warmup: int = 5
    repeats: int = 20
    rounds: int = 5
    train: bool = True
    train_paths: tuple[str, ...] = ("eager",)
    train_repeats: int = 10
    train_batch: int = 16
    train_hr: int = 192
    profile: bool = False


def _row(model, weights, dataset, metric, value, unit, n=None) -> dict:
    return {"table": "bench", "model": model, "weights": weights, "scale": None, "dataset": dataset,
            "metric": metric, "value": float(value), "unit": unit, "n_images": n, "source": "measured"}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _profile_table(fn: Callable[[], object], device: torch.device | None = None, rows: int = 25) -> str:
    """Top operators of three calls: by self CPU time, or on CUDA by self device time (kernels)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device is not None and device.type == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        for _ in range(3):
            fn()
        sync(device or torch.device("cpu"))
    return prof.key_averages(group_by_input_shape=not cuda).table(
        sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total", row_limit=rows,
        max_name_column_width=60, max_shapes_column_width=60)


@dataclass
class _Prepared:
    """One (model, path, implementation, size), ready to be timed: its call and what preparing it measured."""

    model: str
    tag: str
    dataset: str
    call: Callable[[], object]
    compile_s: float
    mem: dict[str, float]


def _prepare_entry(name: str, path: Path_, impl: str | None, device: torch.device, size: tuple[int, int],
                   cfg: BenchConfig, onnx_dir: str) -> tuple[_Prepared, str | None]:
    """Build, compile or export and warm up one entry, and measure its memory (a pass of its own, before any
    timing); returns it with its profile table (``cfg.profile``) or None."""
    from ibmdn.models import build_model

    torch.manual_seed(0)
    model = build_model(name, scale=cfg.scale)
    example = torch.rand(1, 3, *size)
    tag = path.name if impl is None else f"{path.name}-{impl}"
    ds = f"lr{size[0]}x{size[1]}"
    if path.ort:
        engine = ort_engine(model, path, name, cfg.scale, onnx_dir)
        t0 = time.perf_counter()
        engine(example)  # exports the graph and creates the session
        compile_s = time.perf_counter() - t0

        def call():
            return engine(example)

        with torch.inference_mode():
            time_calls(call, device, cfg.warmup, 0)
        return _Prepared(name, tag, ds, call, compile_s, _ort_memory(engine, example)), None
    if device.type == "cuda":  # whole-path peak (see the module docstring)
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    fn, x, compile_s = prepare(model, path, impl, device, example)

    def call():
        if device.type == "cuda":  # the flags are global; each path runs under its own
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = path.tf32
        return fn(x)

    with _inductor_inference_config(path.layout_optimization), torch.inference_mode():
        time_calls(call, device, cfg.warmup, 0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            mem = {"peak_mem": (torch.cuda.max_memory_allocated(device) - base) / MIB}
        else:
            mem = peak_memory(call, device)
        prof = _profile_table(call, device) if cfg.profile else None
    return _Prepared(name, tag, ds, call, compile_s, mem), prof


def _failed(errors: list[str], log: Callable[[str], None], what: str, e: Exception) -> None:
    """Record and report one failed measurement (the run goes on)."""
    msg = f"{what}: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"
    errors.append(msg)
    log(f"  FAILED {msg}")


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = _log) -> tuple[pd.DataFrame, dict]:
    """Measure everything of ``cfg`` with ``cfg.threads`` CPU threads (restored afterwards).

    Returns:
        (LONG table, extra provenance: ``profiles``, ``errors``, ``skipped`` (paths not measured, with the
        reason) and ``acceptance`` (:func:`acceptance` per input size, when ``ibmdn`` was measured)).
    """
    if cfg.rounds < 1 or cfg.repeats < cfg.rounds:
        raise IbmdnError(f"--repeats ({cfg.repeats}) must be at least --rounds ({cfg.rounds}), which must be >= 1")
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run_bench(cfg, log)
    finally:
        torch.set_num_threads(threads_before)


def _latency_rows(p: _Prepared, per_round: list[list[float]]) -> list[dict]:
    times = [t for ts in per_round for t in ts]
    med, lo, iqr = _quantiles(times)
    n = len(times)
    rows = [_row(p.model, p.tag, p.dataset, "latency", med, "ms", n),
            _row(p.model, p.tag, p.dataset, "latency_min", lo, "ms", n),
            _row(p.model, p.tag, p.dataset, "latency_iqr", iqr, "ms", n)]
    medians = [statistics.median(ts) for ts in per_round]
    rows += [_row(p.model, p.tag, p.dataset, f"latency_round{k}", m, "ms", len(ts))
             for k, (m, ts) in enumerate(zip(medians, per_round), 1)]
    rows.append(_row(p.model, p.tag, p.dataset, "latency_best", min(medians), "ms", len(medians)))
    return rows


def _run_bench(cfg: BenchConfig, log: Callable[[str], None]) -> tuple[pd.DataFrame, dict]:
    from ibmdn.inference import resolve_device
    from ibmdn.metrics.complexity import count_macs, count_params
    from ibmdn.models import build_model

    device = resolve_device(cfg.device)
    paths = [Path_.parse(p) for p in cfg.paths]
    rows: list[dict] = []
    profiles: dict[str, str] = {}
    errors: list[str] = []
    skipped: list[str] = []
    prepared: dict[str, _Prepared] = {}
    impls_of: dict[str, list[str | None]] = {}
    torch._dynamo.reset()
    # every compiled entry stays alive until the rounds end: one cache entry each on its class's forward
    dynamo_limits = torch._dynamo.config.patch(recompile_limit=64, accumulated_recompile_limit=1024)
    with tempfile.TemporaryDirectory(prefix="ibmdn-bench-onnx-") as onnx_dir, dynamo_limits:
        for name in cfg.models:
            try:
                probe = build_model(name, scale=cfg.scale)
            except (KeyError, ValueError) as e:
                raise IbmdnError(str(e).strip("'\"")) from None
            rows.append(_row(name, "reference", "", "params", count_params(probe), "count"))
            for h, w in cfg.sizes:
                rows.append(_row(name, "reference", f"lr{h}x{w}", "macs", count_macs(probe, (1, 3, h, w)), "count"))
            impls_of[name] = list(cfg.impls) if has_involution(probe) else [None]
            ort_why = ort_unsupported(name, device) if any(p.ort for p in paths) else None
            for path in paths:
                if path.ort and ort_why:
                    skipped.append(f"{name} {path.name}: {ort_why}")
                    log(f"  skipped {skipped[-1]}")
                    continue
                for impl in [None] if path.ort else impls_of[name]:
                    for size in cfg.sizes:
                        what = f"{name} {path.name}{'' if impl is None else '-' + impl} lr{size[0]}x{size[1]}"
                        try:
                            entry, prof = _prepare_entry(name, path, impl, device, size, cfg, onnx_dir)
                        except Exception as e:  # noqa: BLE001 - one failing path must not lose the run
                            _failed(errors, log, what, e)
                            continue
                        prepared[what] = entry
                        if prof:
                            profiles[what] = prof
                        rows += [_row(name, entry.tag, entry.dataset, k, v, "MiB", 1) for k, v in entry.mem.items()]
                        if not math.isnan(entry.compile_s):
                            rows.append(_row(name, entry.tag, entry.dataset, "compile_time", entry.compile_s, "s", 1))
                        mem = ", ".join(f"{k} {v:.1f} MiB" for k, v in entry.mem.items())
                        extra = "" if math.isnan(entry.compile_s) else f", compile {entry.compile_s:.1f} s"
                        log(f"  prepared {what}: {mem}{extra}")
        calls = cfg.repeats // cfg.rounds
        log(f"  timing {len(prepared)} entries interleaved: {cfg.rounds} rounds of {calls} calls each")
        # a recompilation now would time something else than what was prepared: fail instead
        with torch.inference_mode(), torch._dynamo.config.patch(error_on_recompile=True):
            times = interleaved_calls({k: e.call for k, e in prepared.items()}, device, cfg.rounds, calls,
                                      warmup=0, settle=1)
    for what, entry in prepared.items():
        per_round = times[what]
        rows += _latency_rows(entry, per_round)
        medians = [statistics.median(ts) for ts in per_round]
        log(f"  {what:44s} {statistics.median([t for ts in per_round for t in ts]):8.1f} ms "
            f"(rounds {min(medians):.1f}-{max(medians):.1f})")
    prepared.clear()
    gc.collect()
    torch._dynamo.reset()
    if cfg.train:
        for name in cfg.models:
            rows += _train_rows(name, impls_of[name], device, cfg, errors, log)
    df = pd.DataFrame(rows)
    df["scale"] = cfg.scale
    accept = [acceptance(df, f"lr{h}x{w}") for h, w in cfg.sizes] if "ibmdn" in cfg.models else []
    ratio_rows = [r for a in accept for r in acceptance_rows(a, cfg.rounds)]
    if ratio_rows:
        df = pd.concat([df, pd.DataFrame(ratio_rows).assign(scale=cfg.scale)], ignore_index=True)
    return df, {"profiles": profiles, "errors": errors, "skipped": skipped, "acceptance": accept}


def _train_rows(name: str, impls: list[str | None], device: torch.device, cfg: BenchConfig, errors: list[str],
                log: Callable[[str], None]) -> list[dict]:
    """The training step of ``name`` on ``cfg.train_paths`` (module docstring)."""
    rows = []
    for tp in cfg.train_paths:
        for impl in impls:
            compiled = tp == "compiled"
            tag = tp if impl is None else f"{tp}-{impl}"
            ds = f"hr{cfg.train_hr}-b{cfg.train_batch}"
            try:
                over = {"compile": compiled, **({"involution_impl": impl} if impl else {})}
                step = trainer_step(name, cfg.scale, device, cfg.train_batch, cfg.train_hr, over)
                times = time_calls(step, device, 2, cfg.train_repeats)
                mem = peak_memory(step, device)
            except Exception as e:  # noqa: BLE001
                _failed(errors, log, f"{name} train {tag}", e)
                continue
            finally:
                torch._dynamo.reset()
            med = statistics.median(times)
            rows += [_row(name, tag, ds, "train_step", med, "ms", len(times)),
                     _row(name, tag, ds, "train_peak_mem", mem["peak_mem"], "MiB", 1)]
            log(f"  {name:10s} train {tag:18s} {ds}: {med:8.1f} ms/step, peak {mem['peak_mem']:.0f} MiB")
            del step
            gc.collect()
    return rows


# ---------------------------------------------------------------------------------------- summary


def best_paths(df: pd.DataFrame, dataset: str, metric: str | None = None) -> pd.DataFrame:
    """Per model: the path with the lowest ``metric`` on ``dataset`` (default: ``latency_best`` where the
    table has rounds, else ``latency``), with that value in column ``latency``."""
    sub = df[df["dataset"] == dataset]
    metric = metric or latency_metric(sub)
    sub = sub[sub["metric"] == metric]
    rows = []
    for model, g in sub.groupby("model", sort=True):
        best = g.loc[g["value"].idxmin()]
        rows.append({"model": model, "weights": best["weights"], "latency": float(best["value"])})
    return pd.DataFrame(rows)


def _value(df: pd.DataFrame, model: str, weights: str, dataset: str, metric: str) -> float | None:
    s = df[(df["model"] == model) & (df["weights"] == weights) & (df["dataset"] == dataset) & (df["metric"] == metric)]
    return float(s["value"].iloc[0]) if len(s) else None


def _round_medians(df: pd.DataFrame, model: str, weights: str, dataset: str) -> list[float]:
    """The ``latency_round<k>`` values of one path, in round order (empty for a table without rounds)."""
    s = df[(df["model"] == model) & (df["weights"] == weights) & (df["dataset"] == dataset)
           & df["metric"].str.fullmatch(r"latency_round\d+")]
    return [v for _, v in sorted(zip(s["metric"].str[len("latency_round"):].astype(int), s["value"].astype(float)))]


def _ratio(df: pd.DataFrame, dataset: str, a: tuple[str, str, float], b: tuple[str, str, float]) -> dict:
    """``{"": ratio, "_median": ..., "_min": ..., "_max": ...}`` of path ``a`` = (model, weights, ms) to path
    ``b``. ``""``: the ratio of the two paths' least-disturbed rounds (lowest per-round median each);
    ``_median``: the median over rounds of the per-round ratio; ``_min`` / ``_max``: its extremes (``""`` lies
    between them). A table without rounds gives the ratio of ``ms`` alone.

    Why the best rounds: interleaving cancels a drift that slows every path alike, but on a shared host the
    disturbance is not alike. Memory-bound paths (ibmdn's many small element-wise and 1x1 operators) slow
    down in rounds where compute-bound ones (rfdn_aim's 3x3 convolutions) do not move, so the median of
    per-round ratios follows how many rounds happened to be disturbed. The ratio of each path's
    undisturbed speed is the quantity that reproduces (the runs that show it: docs/RESULTS.md, "Which
    ratio reproduces"); the median and the extremes show the disturbed view."""
    ra, rb = _round_medians(df, a[0], a[1], dataset), _round_medians(df, b[0], b[1], dataset)
    if ra and len(ra) == len(rb):
        per_round = [x / y for x, y in zip(ra, rb)]
        return {"": min(ra) / min(rb), "_median": statistics.median(per_round), "_min": min(per_round),
                "_max": max(per_round)}
    return {"": a[2] / b[2]}


def acceptance(df: pd.DataFrame, dataset: str, model: str = "ibmdn", peer: str = "rfdn_aim") -> dict:
    """Issue 5, acceptance 2: ratios of ``model``'s fastest path against the peer's and the unfold reference's.

    Fastest: the lowest ``latency_best`` (the least-disturbed round's median; ``latency``, the median of all
    calls, for a table without rounds). ``latency_vs_peer`` / ``latency_vs_reference``: the ratio of the
    least-disturbed rounds, with the median over rounds of the per-round ratio and its extremes
    (:func:`_ratio`). Memory:
    ``model``'s fastest path that has a ``peak_mem`` row (``memory_path``; ``ort`` paths have none) against
    ``eager-unfold``.
    """
    sub = df[df["dataset"] == dataset]
    lat = sub[sub["metric"] == latency_metric(sub)]
    has_mem = set(df.loc[(df["dataset"] == dataset) & (df["metric"] == "peak_mem") & (df["model"] == model),
                         "weights"])

    def fastest(m: str, cond=lambda w: True):
        g = lat[(lat["model"] == m) & lat["weights"].map(cond)]
        if g.empty:
            return None, None
        r = g.loc[g["value"].idxmin()]
        return r["weights"], float(r["value"])

    out: dict = {"dataset": dataset}
    w_m, t_m = fastest(model)
    w_p, t_p = fastest(peer)
    w_r, t_r = fastest(model, lambda w: w.endswith("-unfold") and "fused" not in w)
    out.update(model_path=w_m, model_ms=t_m, peer=peer, peer_path=w_p, peer_ms=t_p, reference_path=w_r,
               reference_ms=t_r)
    for key, w_o, t_o, o in (("latency_vs_peer", w_p, t_p, peer), ("latency_vs_reference", w_r, t_r, model)):
        if t_m and t_o:
            out.update({key + k: v for k, v in _ratio(df, dataset, (model, w_m, t_m), (o, w_o, t_o)).items()})
    w_mem, _ = fastest(model, lambda w: w in has_mem)
    m_m = _value(df, model, w_mem, dataset, "peak_mem") if w_mem else None
    m_r = _value(df, model, "eager-unfold", dataset, "peak_mem")
    out.update(memory_path=w_mem, model_peak_mib=m_m, reference_peak_mib=m_r)
    if m_m is not None and m_r:
        out["memory_vs_reference"] = m_m / m_r
    out["targets_met"] = {k: (out.get(k) is not None and out[k] <= 0.5)
                          for k in ("latency_vs_peer", "latency_vs_reference", "memory_vs_reference")}
    return out


def acceptance_rows(acc: dict, rounds: int, model: str = "ibmdn") -> list[dict]:
    """The latency ratios of :func:`acceptance` as rows of ``model``'s fastest path (unit ``1``)."""
    return [_row(model, acc["model_path"], acc["dataset"], key + k, acc[key + k], "1", rounds)
            for key in ("latency_vs_peer", "latency_vs_reference") for k in ("", "_median", "_min", "_max")
            if key + k in acc]


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Wide view: one row per (model, weights, dataset), columns latency / latency_min / the fastest and slowest
    round's median (``round_min`` / ``round_max``) / peak_mem / ..."""
    keep = ["latency", "latency_min", "peak_mem", "peak_rss", "compile_time", "train_step", "train_peak_mem"]
    sub = df[df["metric"].isin(keep)]
    wide = sub.pivot_table(index=["model", "dataset", "weights"], columns="metric", values="value", sort=True)
    wide = wide[[c for c in keep if c in wide.columns]]
    rounds = df[df["metric"].str.fullmatch(r"latency_round\d+")].groupby(["model", "dataset", "weights"])["value"]
    if len(rounds):
        wide.insert(min(2, wide.shape[1]), "round_min", rounds.min())
        wide.insert(min(3, wide.shape[1]), "round_max", rounds.max())
    return wide.round(1)


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _parse_size(s: str) -> tuple[int, int]:
    try:
        if "x" in s:
            h, w = s.lower().split("x")
            return int(h), int(w)
        return int(s), int(s)
    except ValueError:
        raise IbmdnError(f"bad size {s!r}: use N or HxW (LR pixels)") from None


def _csv_list(s: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in s.split(",") if t.strip())


def bench_command(args) -> int:
    """``ibmdn bench --models ... --impl ... --paths ... --device ... --sizes ...``."""
    from ibmdn.results import provenance, write_table

    cfg = BenchConfig(
        models=_csv_list(args.models), paths=_csv_list(args.paths), impls=_csv_list(args.impl),
        sizes=tuple(_parse_size(s) for s in _csv_list(args.sizes)), scale=args.scale, device=args.device,
        threads=args.threads or None, warmup=args.warmup, repeats=args.repeats, rounds=args.rounds,
        train=not args.no_train,
        train_paths=_csv_list(args.train_paths), train_repeats=args.train_repeats, profile=args.profile,
    )
    if cfg.repeats < 20:
        print("ibmdn: warning: fewer than 20 timed runs; the issue's protocol asks for at least 20", file=sys.stderr)
    for p in cfg.paths:
        Path_.parse(p)
    from ibmdn.inference import resolve_device

    device = resolve_device(cfg.device)
    load_before = _load_average()
    df, extra = run_bench(cfg)
    load_after = _load_average()
    threads = cfg.threads or torch.get_num_threads()
    dev = device.type
    out = Path(args.out) / f"bench-{dev}.csv"
    accept = extra["acceptance"]
    meta = provenance(
        parameters={k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()},
        threads=threads, load_average_before=load_before, load_average_after=load_after,
        memory_method=("cuda max_memory_allocated minus allocated before" if dev == "cuda" else
                       "peak_mem: replayed PyTorch CPU allocator events (torch.profiler profile_memory); "
                       "peak_rss: VmHWM rise after malloc_trim + clear_refs (ort: first call of a fresh session)"),
        acceptance=accept, errors=extra["errors"], skipped=extra["skipped"],
        command="ibmdn bench " + " ".join(sys.argv[2:]),
    )
    write_table(df, out, meta, decimals=3)
    if extra["profiles"]:
        prof_path = Path(args.out) / f"bench-{dev}-profile.txt"
        prof_path.write_text("\n\n".join(f"== {k}\n{v}" for k, v in extra["profiles"].items()))
        print(f"wrote {prof_path}")
    fig = None
    if not args.no_plot:
        from ibmdn.experiments.plots import bench_figure

        fig = bench_figure(out, Path(args.figures) / f"bench-{dev}.png")
    cost = df[df["metric"].isin(["params", "macs"])].pivot_table(index="model", columns=["metric", "dataset"],
                                                                 values="value", sort=True)
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print("architecture (weights=reference): parameters and multiply-adds")
        print(cost.to_string(float_format=lambda v: f"{v:,.0f}"))
        print(summary_table(df).to_string())
    for ds in sorted(d for d in df["dataset"].dropna().unique() if str(d).startswith("lr")):
        best = best_paths(df, ds)
        print(f"fastest per network ({ds}): " + "; ".join(f"{r.model} {r.weights} {r.latency:.1f} ms"
                                                           for r in best.itertuples()))
    for why in extra["skipped"]:
        print(f"skipped: {why}")
    for a in accept:
        print(f"acceptance ({a['dataset']}): ibmdn {a['model_path']} {a['model_ms'] or float('nan'):.1f} ms; "
              f"{a['peer']} {a['peer_path']} {a['peer_ms'] or float('nan'):.1f} ms -> {ratio_text(a, 'latency_vs_peer')}; "
              f"unfold reference {a['reference_path']} {a['reference_ms'] or float('nan'):.1f} ms -> "
              f"{ratio_text(a, 'latency_vs_reference')}; peak memory of {a['memory_path']} vs eager-unfold "
              f"{a.get('memory_vs_reference', float('nan')):.2f}x; targets (<= 0.5x) met: {a['targets_met']}")
    print(f"load average before {load_before}, after {load_after} ({os.cpu_count()} CPUs, {threads} threads)")
    print(f"wrote {out}" + (f" and {fig}" if fig else ""))
    return 1 if extra["errors"] else 0
