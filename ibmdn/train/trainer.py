"""The training loop behind ``ibmdn train`` (one process, or DDP under ``torchrun``).

``train`` builds the model from the registry, the loss (:mod:`ibmdn.train.losses`, or the GAN of
:mod:`ibmdn.train.gan` with ``--gan``), Adam with the profile's iteration-based schedule
(:func:`lr_at`, a pure function of the step: the scheduler's whole state is the step), the patch
loader (:mod:`ibmdn.train.data`), and runs ``cfg.iterations`` steps. Every ``val_every`` steps rank 0
validates PSNR-Y on ``val_set`` through :func:`ibmdn.evaluate.evaluate` (the evaluation protocol of
every table); a tqdm bar shows loss, lr, it/s, ETA and the last validation PSNR.

Run folder (``--out``, default ``runs/<model>_x<scale>_<profile>``; ``runs/`` is git-ignored):

* ``config.json``: the resolved recipe, the training images used, padded to the patch and left out, the
  loss description;
* ``log.csv``: ``step, lr, loss, <loss parts>, val_psnr, it_per_s, data_s, elapsed_s`` every ``log_every``
  steps (losses averaged over the interval and the processes) and at every validation;
* ``last.pth``: everything needed to continue: the model (the generator's weights under ``"model"``,
  so ``ibmdn eval --weights last.pth`` works), the optimiser (and the discriminator's), step, best PSNR,
  elapsed time, the torch / CUDA / numpy / python RNG states and the recipe. The data order needs no
  state (a pure function of seed and step). ``--resume`` restores it, cuts ``log.csv`` back to that step
  and goes on;
  a resumed run ends bitwise equal to an uninterrupted one on CPU (tested after ``kill -9``);
* ``best.pth``: model weights at the best validation PSNR (+ step, PSNR);
* ``final.pth`` + ``final.json``: the final weights alone (our own small file, loadable with
  ``ibmdn eval --weights``) and their provenance (git, versions, device, recipe, budget, validation,
  wall time, the log rows).

Every file is written to a temporary name and renamed (a killed run never leaves a truncated file).
Memory format: channels-last on CPU and NCHW on GPUs unless ``--channels-last`` / ``--no-channels-last``
says otherwise (:func:`ibmdn.train.config.for_device`). ``--bf16`` and ``--compile`` are off by default.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ibmdn.errors import IbmdnError
from ibmdn.fileio import atomic_torch_save, atomic_write_bytes, sha256_file
from ibmdn.train.config import TrainConfig, config_from_dict, for_device, resolve_config, resume_differences
from ibmdn.train.data import (
    PatchDataset,
    load_images,
    loader_throughput,
    make_loader,
    resolve_train_sets,
    resolve_workers,
    to_device,
)
from ibmdn.train.distributed import (
    DistInfo,
    barrier,
    broadcast_float,
    cleanup,
    init_distributed,
    local_device,
    mean_over_ranks,
)
from ibmdn.train.task import SRTask, autocast, lr_at

CHECKPOINT_FORMAT = "ibmdn-train-v1"


class TrainError(IbmdnError):
    """A training run that cannot start or continue (bad model name, existing or missing run folder...)."""


# ------------------------------------------------------------------------------------------ file helpers


def atomic_json(obj: Any, path: Path) -> None:
    from ibmdn.results import dumps_json

    atomic_write_bytes(path, dumps_json(obj).encode("utf-8"))


def rng_state() -> dict[str, Any]:
    """Every RNG a run may touch, in a form ``torch.load(weights_only=True)`` accepts."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------- the loop


@dataclass
class RunState:
    step: int = 0
    best_psnr: float = float("-inf")
    best_step: int = -1
    last_psnr: float = float("nan")
    elapsed: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


def _build(model_name: str, scale: int, cfg: TrainConfig):
    """(generator, discriminator or None) from the registry, with one-line errors for bad names."""
    from ibmdn.models import build_model, model_spec

    if cfg.gan:
        from ibmdn.models.gan import GAN_PAIRS

        if model_name not in GAN_PAIRS:
            raise TrainError(
                f"--gan expects a Table V row name, one of {', '.join(GAN_PAIRS)}; got {model_name!r}"
            )
        g_name, d_name = GAN_PAIRS[model_name]
    else:
        g_name, d_name = model_name, None
    try:
        spec = model_spec(g_name)
    except KeyError as e:
        raise TrainError(str(e.args[0])) from None
    if scale not in spec.scales:
        raise TrainError(f"model {g_name!r} supports scales {spec.scales}, not {scale}")
    try:
        g = build_model(g_name, scale, **cfg.model_kwargs)
        d = build_model(d_name, scale) if d_name else None
    except TypeError as e:
        raise TrainError(f"model_kwargs {cfg.model_kwargs} do not fit {g_name!r}: {e}") from None
    return g, d


def init_from(model: nn.Module, path: str) -> dict[str, Any]:
    """Copy the tensors of the state dict at ``path`` into ``model`` where name and shape match.

    Returns what was done (recorded in ``config.json``): the file's sha256, how many tensors were
    copied, and the names of those kept from the fresh initialisation.
    """
    p = Path(path)
    if not p.is_file():
        raise TrainError(f"init_weights: no such file {p}")
    sd = torch.load(p, map_location="cpu", weights_only=True)
    sd = sd.get("model", sd) if isinstance(sd, dict) else sd
    own = model.state_dict()
    take = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    if not take:
        raise TrainError(f"init_weights: no tensor of {p} fits the model")
    model.load_state_dict(take, strict=False)
    return {"path": str(p), "sha256": sha256_file(p), "copied": len(take),
            "kept_fresh": sorted(k for k in own if k not in take)}


def _log_fields(task) -> list[str]:
    parts = ["l1", "perceptual", "reg"] + (
        ["adv", "d_loss", "d_real", "d_fake"] if task.kind == "gan" else []
    )
    return ["step", "lr", "loss", *parts, "val_psnr", "it_per_s", "data_s", "elapsed_s"]


def _trim_log(path: Path, upto: int) -> None:
    """Keep the header and the rows with ``step <= upto`` (a killed run may log past its checkpoint)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = lines[:1] + [ln for ln in lines[1:] if ln.strip() and int(ln.split(",", 1)[0]) <= upto]
    atomic_write_bytes(path, "".join(keep).encode("utf-8"))


def _read_log(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def run_progress(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """How far a run folder's training is, from its ``config.json`` and ``log.csv``: ``step``, ``iterations``,
    ``elapsed_s`` (training time so far, over every session), ``left_s`` (at the pace so far) and the last
    validation PSNR (``val_psnr``, NaN before the first); ``None`` without a logged step."""
    import json

    run_dir = Path(run_dir)
    log = _read_log(run_dir / "log.csv")
    try:
        iterations = int(json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["config"]["iterations"])
    except (OSError, ValueError, KeyError):
        return None
    if not log:
        return None
    step, elapsed = int(log[-1]["step"]), float(log[-1]["elapsed_s"])
    vals = [float(r["val_psnr"]) for r in log if r.get("val_psnr")]
    return {"step": step, "iterations": iterations, "elapsed_s": elapsed,
            "left_s": elapsed / step * (iterations - step) if step else math.nan,
            "val_psnr": vals[-1] if vals else math.nan}


def recalibrate_bn(model: nn.Module, batches: list[torch.Tensor], cfg: TrainConfig, device: torch.device) -> bool:
    """Precise BatchNorm: replace every BN's running statistics by their average over ``batches``.

    The model runs in train mode without gradients, each BN with ``momentum=None`` (cumulative average)
    after a reset, so that its running mean and variance are the mean over the batches of the batch
    statistics; the momentum is restored afterwards. Returns False (nothing done) when the model has no
    BatchNorm. Why: the exponential running average (momentum 0.1, about the last 20 batches) of a
    network whose weights move fast, under a short high-lr schedule, lags and is noisy; evaluated with it,
    IBMDN's validation PSNR jumps between checks (the docstring of :mod:`ibmdn.train.config`).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns or not batches:
        return False
    was_training = model.training
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    try:
        with torch.no_grad(), autocast(cfg, device):
            for x in batches:
                model(to_device(x, device, cfg.channels_last))
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.train(was_training)
    return True


def bn_batches(images, cfg: TrainConfig) -> list[torch.Tensor]:
    """The fixed LR batches of :func:`recalibrate_bn`: ``cfg.bn_recalibrate`` batches of the training
    recipe's size, drawn by their own seed (the same patches at every validation, none of the RNG state
    of the run consumed, so that resumed runs stay exact)."""
    if cfg.bn_recalibrate <= 0:
        return []
    ds = PatchDataset(images, cfg.patch_size, cfg.seed + 7919, cfg.augment)
    b = cfg.batch_size
    return [torch.stack([ds[i * b + k][0] for k in range(b)]) for i in range(cfg.bn_recalibrate)]


def validate(
    task, cfg: TrainConfig, scale: int, device: torch.device, data_root=None, cache_dir=None,
    bn_data: list[torch.Tensor] | None = None,
) -> float:
    """Mean PSNR-Y of the generator on ``cfg.val_set`` (evaluation protocol of the tables).

    With ``bn_data`` (see :func:`bn_batches`), the generator's BatchNorm statistics are re-estimated on
    it first, in place: the checkpoints written after a validation carry the statistics it used.
    """
    from ibmdn.evaluate import evaluate

    model = task.generator
    was_training = model.training
    try:
        recalibrate_bn(model, bn_data or [], cfg, device)
        df = evaluate(model, cfg.val_set, scale, device=device, data_root=data_root, cache_dir=cache_dir)
    finally:
        model.train(was_training)
    return float(df["psnr"].mean())


def train(
    model_name: str,
    scale: int,
    cfg: TrainConfig,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    device: str = "auto",
    data_root=None,
    weights_root=None,
    cache_dir=None,
    progress: bool = True,
    time_limit: float = 0.0,
) -> dict[str, Any]:
    """Train ``model_name`` at ``scale`` with recipe ``cfg``; returns a summary (also in ``final.json``).

    ``time_limit`` (minutes, 0: none) ends the run early, after the step during which this session's
    wall time passed the limit: it validates, writes ``last.pth`` (so ``--resume`` continues the same
    recipe) and finishes as usual; ``final.json`` then records ``stopped_early`` and the steps actually
    run (the recipe's ``iterations`` is unchanged, so the lr schedule is the recipe's). It is not part of
    the recipe: a time-limited run is the first ``steps`` iterations of the full one.

    SIGTERM (``kill``, a scheduler's preemption) and a first Ctrl-C stop the run the same way, after the
    current step; a second Ctrl-C interrupts at once (the last periodic checkpoint stays).

    Raises:
        TrainError / ConfigError / TrainDataError: bad user input (one-line CLI errors).
    """
    from ibmdn.inference import resolve_device

    dev = resolve_device(device)
    info = init_distributed(dev)
    dev = local_device(dev, info)
    try:
        return _train(
            model_name, scale, cfg, out, resume, dev, info, data_root, weights_root, cache_dir, progress,
            time_limit,
        )
    finally:
        cleanup(info)


@dataclass
class _Run:
    """What every step of one run needs: identity, recipe, task, files, placement, validation data."""

    model_name: str
    scale: int
    cfg: TrainConfig
    task: Any
    run_dir: Path
    device: torch.device
    info: DistInfo
    data_root: Any = None
    cache_dir: Any = None
    bn_data: list[torch.Tensor] = field(default_factory=list)

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pth"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log.csv"


def _check_start(run_dir: Path, resume: bool, cfg: TrainConfig, device: torch.device) -> None:
    """A fresh run needs an empty folder, a resumed one its ``last.pth``; bf16 needs a device that has it."""
    last_path = run_dir / "last.pth"
    if resume and not last_path.is_file():
        raise TrainError(f"--resume: no checkpoint {last_path}")
    if not resume and last_path.exists():
        raise TrainError(
            f"{run_dir} already holds a run (last.pth); pass --resume to continue it or a new --out"
        )
    if cfg.amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TrainError("--bf16: this GPU does not support bfloat16")


def _saved_config(run_dir: Path) -> TrainConfig | None:
    """The recipe a run folder's ``config.json`` recorded (None without a readable one)."""
    try:
        return config_from_dict(json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["config"])
    except (OSError, ValueError, KeyError, IbmdnError):
        return None


def _restore(run: _Run) -> RunState:
    """Load ``last.pth`` into the task and the RNGs; the run state it was saved with."""
    ck = torch.load(run.last_path, map_location="cpu", weights_only=True)
    if ck.get("format") != CHECKPOINT_FORMAT:
        raise TrainError(f"{run.last_path} is not an ibmdn training checkpoint")
    if (ck["model_name"], ck["scale"]) != (run.model_name, run.scale):
        raise TrainError(
            f"{run.last_path} trains {ck['model_name']} x{ck['scale']}, not {run.model_name} x{run.scale}"
        )
    diff = resume_differences(config_from_dict(ck["config"]), run.cfg)
    if diff:
        raise TrainError(f"--resume with a different recipe would not continue the same run: {'; '.join(diff)}")
    run.task.load_state_dict(ck)
    set_rng_state(ck["rng"])
    return RunState(ck["step"], ck["best_psnr"], ck["best_step"], ck["last_psnr"], ck["elapsed"],
                    list(ck.get("history", [])))


def _data(run: _Run, start: int):
    """(training images, the loader from step ``start``, loader workers); fills ``run.bn_data``."""
    cfg, info = run.cfg, run.info
    sets = resolve_train_sets(cfg.train_sets, run.data_root)
    if not info.is_main:  # rank 0 first: it fills the LR cache the others then read
        barrier(info)
    images = load_images(sets, run.scale, cfg.patch_size, run.data_root, run.cache_dir, verbose=info.is_main)
    if info.is_main:
        barrier(info)
    run.bn_data = bn_batches(images, cfg) if info.is_main and cfg.val_every > 0 else []
    workers = resolve_workers(cfg.workers, run.device)
    loader = make_loader(PatchDataset(images, cfg.patch_size, cfg.seed, cfg.augment), start, cfg.iterations,
                         cfg.batch_size, info.rank, info.world_size, workers,
                         pin_memory=run.device.type == "cuda")
    return images, loader, workers


def _open_files(run: _Run, resume: bool, step: int, images, workers: int, init) -> None:
    """Rank 0: the run folder, ``config.json`` and ``log.csv`` (cut back to ``step`` when resuming)."""
    if not run.info.is_main:
        return
    from ibmdn.models import count_params

    run.run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run.run_dir.glob(".*.tmp"):  # left by a process killed in the middle of a write
        stale.unlink(missing_ok=True)
    if resume:
        _trim_log(run.log_path, step)
    else:
        run.log_path.unlink(missing_ok=True)
    task, cfg = run.task, run.cfg
    atomic_json({"model": run.model_name, "scale": run.scale, "config": cfg.to_dict(), "budget": cfg.budget,
                 "world_size": run.info.world_size, "device": str(run.device), "workers": workers,
                 "train_sets": images.sets, "train_images": len(images), "skipped_images": images.skipped,
                 "padded_images": images.padded, "params": count_params(task.generator),
                 "loss": task.describe(), "init": init}, run.run_dir / "config.json")
    if not run.log_path.is_file():
        with open(run.log_path, "w", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=_log_fields(task)).writeheader()


def _write_log(run: _Run, row: dict[str, Any]) -> None:
    if run.info.is_main:
        with open(run.log_path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=_log_fields(run.task), extrasaction="ignore").writerow(row)


def _validate(run: _Run, state: RunState, done: int) -> None:
    """Validate (rank 0, broadcast), record the PSNR and keep ``best.pth``."""
    psnr = (validate(run.task, run.cfg, run.scale, run.device, run.data_root, run.cache_dir, run.bn_data)
            if run.info.is_main else 0.0)
    psnr = broadcast_float(psnr, run.info, run.device)
    state.last_psnr = psnr
    state.history.append({"step": done, "psnr": psnr})
    if psnr > state.best_psnr:
        state.best_psnr, state.best_step = psnr, done
        if run.info.is_main:
            atomic_torch_save({"model": run.task.generator.state_dict(), "step": done, "psnr": psnr,
                               "model_name": run.model_name, "scale": run.scale}, run.run_dir / "best.pth")


def _save_last(run: _Run, state: RunState, done: int) -> None:
    """``last.pth``: everything a resumed run needs to continue bitwise (rank 0)."""
    if run.info.is_main:
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "model_name": run.model_name, "scale": run.scale,
                           "config": run.cfg.to_dict(), "step": done, **run.task.state_dict(),
                           "best_psnr": state.best_psnr, "best_step": state.best_step,
                           "last_psnr": state.last_psnr, "elapsed": state.elapsed, "history": state.history,
                           "rng": rng_state()}, run.last_path)


@contextlib.contextmanager
def _stop_requests():
    """While the loop runs: a list that SIGTERM and a first SIGINT append to (a request to stop as a time limit
    does: after the step, validate, checkpoint, finish); a second SIGINT raises KeyboardInterrupt at once.
    Outside the main thread (where handlers cannot be set) the list stays empty."""
    asked: list[int] = []

    def handler(signum, frame):
        if signum == signal.SIGINT and asked:
            raise KeyboardInterrupt
        asked.append(signum)
        print(f"\n{signal.Signals(signum).name}: stopping after this step (checkpoint, then exit; --resume "
              f"continues){'; Ctrl-C again to interrupt at once' if signum == signal.SIGINT else ''}",
              file=sys.stderr, flush=True)

    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):
                previous[sig] = signal.signal(sig, handler)
        yield asked
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def _loop(run: _Run, state: RunState, loader, progress: bool, time_limit: float) -> bool:
    """Steps ``state.step`` to the end (or to ``time_limit`` minutes, or to a stop request); whether it stopped
    early."""
    from tqdm.auto import tqdm

    cfg, task, info, device = run.cfg, run.task, run.info, run.device
    bar = tqdm(total=cfg.iterations, initial=state.step, disable=not (progress and info.is_main), unit="it",
               dynamic_ncols=True, desc=f"{run.model_name} x{run.scale} {cfg.profile}", mininterval=1.0)
    acc: dict[str, torch.Tensor] = {}
    n_acc, data_time, t_interval = 0, 0.0, time.perf_counter()
    t_run, elapsed0 = time.perf_counter(), state.elapsed
    lr, stopped_early = lr_at(cfg, state.step), False
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(_stop_requests())
        stack.callback(bar.close)
        it = iter(loader)
        for step in range(state.step, cfg.iterations):
            t0 = time.perf_counter()
            lr_u8, hr_u8 = next(it)
            x, y = to_device(lr_u8, device, cfg.channels_last), to_device(hr_u8, device, cfg.channels_last)
            data_time += time.perf_counter() - t0
            lr = task.set_step(step)
            for k, v in task.train_step(x, y, step).items():
                acc[k] = acc[k] + v if k in acc else v.clone()
            n_acc += 1
            done = state.step = step + 1
            bar.update(1)
            # every process decides alike (rank 0's clock and signals), so DDP stays in step; under DDP without
            # a time limit only every log_every steps, where the loop synchronises anyway
            if time_limit > 0 or not info.enabled or done % cfg.log_every == 0:
                over = bool(stop) or (time_limit > 0 and time.perf_counter() - t_run > time_limit * 60)
                stopped_early = broadcast_float(float(over), info, device) > 0.5 and done < cfg.iterations
            end = done == cfg.iterations or stopped_early
            is_val = cfg.val_every > 0 and (done % cfg.val_every == 0 or end)
            if is_val:
                _validate(run, state, done)
            if done % cfg.log_every == 0 or end or is_val:
                means = mean_over_ranks({k: float(v) / n_acc for k, v in acc.items()}, info, device)
                now = time.perf_counter()
                _write_log(run, {"step": done, "lr": f"{lr:.6g}", **{k: f"{v:.8g}" for k, v in means.items()},
                                 "val_psnr": f"{state.last_psnr:.4f}" if is_val else "",
                                 "it_per_s": f"{n_acc / max(now - t_interval, 1e-9):.4g}",
                                 "data_s": f"{data_time:.4g}", "elapsed_s": f"{elapsed0 + now - t_run:.1f}"})
                post = {"loss": f"{means['loss']:.4g}", "lr": f"{lr:.2e}"}
                if not math.isnan(state.last_psnr):
                    post["val"] = f"{state.last_psnr:.2f}dB"
                bar.set_postfix(post, refresh=False)
                acc, n_acc, data_time, t_interval = {}, 0, 0.0, time.perf_counter()
            if done % cfg.ckpt_every == 0 or end:
                state.elapsed = elapsed0 + time.perf_counter() - t_run
                _save_last(run, state, done)
            if stopped_early:
                break
    state.elapsed = elapsed0 + time.perf_counter() - t_run
    return stopped_early


def _train(model_name, scale, cfg: TrainConfig, out, resume, device, info: DistInfo, data_root, weights_root,
           cache_dir, progress, time_limit=0.0) -> dict[str, Any]:
    """The run, as named steps: check, build, restore, data, files, loop, finish."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(out or f"runs/{model_name}_x{scale}_{cfg.profile}{'_gan' if cfg.gan else ''}")
    cfg = for_device(cfg, device, _saved_config(run_dir) if resume else None)
    _check_start(run_dir, resume, cfg, device)
    seed_everything(cfg.seed)  # identical initial weights on every process
    g, d = _build(model_name, scale, cfg)
    init = init_from(g, cfg.init_weights) if cfg.init_weights and not resume else None
    if cfg.gan:
        from ibmdn.train.gan import GANTask

        task = GANTask(cfg, g, d, device, info, weights_root)
    else:
        task = SRTask(cfg, g, device, info, weights_root)
    from ibmdn.results import git_info

    git_start = git_info()  # the code that trains (the tree may move on before the run ends)
    run = _Run(model_name, scale, cfg, task, run_dir, device, info, data_root, cache_dir)
    state = _restore(run) if resume else RunState()
    images, loader, workers = _data(run, state.step)
    _open_files(run, resume, state.step, images, workers, init)
    stopped_early = _loop(run, state, loader, progress, time_limit)
    summary = (_finish(model_name, scale, cfg, task, state, run_dir, images, info, device, stopped_early, git_start)
               if info.is_main else {})
    barrier(info)
    return summary


def _finish(
    model_name, scale, cfg, task, state: RunState, run_dir: Path, images, info, device, stopped_early: bool,
    git_start: dict[str, Any],
) -> dict[str, Any]:
    """``final.pth`` (weights only) and ``final.json`` (provenance, budget, validation, log rows)."""
    from ibmdn.models import count_params
    from ibmdn.results import provenance

    final = run_dir / "final.pth"
    atomic_torch_save(task.generator.state_dict(), final)
    summary = {
        "model": model_name,
        "scale": scale,
        "profile": cfg.profile,
        "budget": cfg.budget,
        "params": count_params(task.generator),
        "steps": state.step,
        "stopped_early": bool(stopped_early),
        "hr_pixels_seen": state.step * cfg.batch_size * cfg.patch_size**2,
        "wall_s": round(state.elapsed, 1),
        "val_set": cfg.val_set,
        "val_psnr": None if math.isnan(state.last_psnr) else state.last_psnr,
        "best_psnr": None if state.best_step < 0 else state.best_psnr,
        "best_step": state.best_step,
        "val_history": state.history,
        "weights": final.name,
        "weights_sha256": sha256_file(final),
    }
    meta = provenance(
        **summary,
        config=cfg.to_dict(),
        loss=task.describe(),
        world_size=info.world_size,
        train_device=str(device),
        train_sets=images.sets,
        train_images=len(images),
        skipped_images=len(images.skipped),
        padded_images=len(images.padded),
        torch_threads=torch.get_num_threads(),
        log=_read_log(run_dir / "log.csv"),
        git=git_start,
    )
    atomic_json(meta, run_dir / "final.json")
    return summary


# ---------------------------------------------------------------------------------------- command line


def _overrides(args) -> dict[str, Any]:
    o = {
        "iterations": args.iterations,
        "batch_size": args.batch_size,
        "patch_size": args.patch_size,
        "lr": args.lr,
        "val_every": args.val_every,
        "seed": args.seed,
        "workers": args.workers,
        "threads": args.threads,
        "train_sets": args.train_sets,
        "init_weights": getattr(args, "init", None),
        "channels_last": args.channels_last,
    }
    for flag, key, value in (
        (args.gan, "gan", True),
        (args.bf16, "amp", "bf16"),
        (args.compile, "compile", True),
    ):
        if flag:
            o[key] = value
    return o


def bench_loader(
    cfg: TrainConfig, scale: int, batches: int, device: str = "auto", data_root=None, cache_dir=None
) -> dict[str, float]:
    """Batches/s of the training loader alone (no model), with the recipe's batch, patch and workers."""
    from ibmdn.inference import resolve_device

    dev = resolve_device(device)
    images = load_images(
        resolve_train_sets(cfg.train_sets, data_root), scale, cfg.patch_size, data_root, cache_dir
    )
    workers = resolve_workers(cfg.workers, dev)
    loader = make_loader(
        PatchDataset(images, cfg.patch_size, cfg.seed, cfg.augment),
        0,
        batches + 1,
        cfg.batch_size,
        workers=workers,
        pin_memory=dev.type == "cuda",
    )
    res = loader_throughput(loader, batches, dev, for_device(cfg, dev).channels_last)
    res.update(workers=workers, batch_size=cfg.batch_size, patch_size=cfg.patch_size, images=len(images))
    return res


def train_command(args) -> int:
    """``ibmdn train --model NAME --scale S --profile smoke|short|paper [--config FILE] [--out DIR] ...``."""
    cfg = resolve_config(args.profile, args.config, _overrides(args))
    if args.bench_loader:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        r = bench_loader(cfg, args.scale, args.bench_loader, args.device, args.data_root)
        print(
            f"loader: {r['batches_per_s']:.1f} batches/s ({r['samples_per_s']:.0f} patches/s), batch "
            f"{r['batch_size']}, HR patch {r['patch_size']}, {r['workers']} worker(s), {r['images']} images"
        )
        return 0
    summary = train(
        args.model,
        args.scale,
        cfg,
        args.out,
        args.resume,
        args.device,
        args.data_root,
        args.weights_root,
        progress=not args.no_progress,
        time_limit=args.time_limit,
    )
    if summary:
        val = (
            f", {summary['val_set']} PSNR-Y {summary['val_psnr']:.3f} dB"
            if summary["val_psnr"] is not None
            else ""
        )
        print(
            f"trained {summary['model']} x{summary['scale']} ({summary['profile']}): "
            f"{summary['steps']} steps in {summary['wall_s']:.0f} s "
            f"({summary['steps'] / max(summary['wall_s'], 1e-9):.2f} steps/s, validation included){val}",
            file=sys.stderr,
        )
    return 0
