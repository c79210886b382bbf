"""Tables I-VI of the paper: train each network under a profile, evaluate it, compare with the paper.

One function per table (:func:`table1` ... :func:`table6`), each returning the measured numbers in the LONG
schema of :mod:`ibmdn.results` (``table, model, weights, scale, dataset, metric, value, unit, n_images,
source=measured``), and :func:`compare`, the join with the paper's numbers (``reported/paper.csv``) that
the notebooks display. The provenance the notebooks write beside the CSV is in ``df.attrs["provenance"]``.

Training (:mod:`ibmdn.train`, called, not re-implemented)
    Every trained row is ``ibmdn.train.train(model, scale, recipe)`` with the profile's recipe
    (``smoke``: CI, seconds; ``short``: the same small budget for every model; ``paper``: the paper's
    schedule, GPU). Runs live in ``<runs_dir>/<model>_x<scale>_<profile>[_gan]`` (the trainer's own
    default names, so a run made with ``ibmdn train`` is picked up) and are reused when their
    ``final.pth`` exists and their recorded recipe equals this one (a different recipe is an error, not a
    silent retrain); an interrupted run (``last.pth`` only) is resumed. ``rfdn_ibmd_chfab`` *is*
    ``ibmdn`` (same builder), so both names share the ``ibmdn`` runs. The row's ``weights`` column is the
    profile name; the budget of every run (iterations, batch, patch) is in the provenance.
    Adjustments to the profile, recorded in the recipe: ``threads`` (see below) and, when the profile's
    HR patch is not a multiple of the scale (32 and 64 at x3), the patch rounded up to the next multiple.

Evaluation (:func:`ibmdn.evaluate.evaluate`, the protocol of docs/protocol.md)
    The profile also fixes what is evaluated (:data:`EVAL_PLANS`): ``smoke`` scores the two smallest
    Set5 images only (``n_images`` says so; ESRT and ESRGAN take minutes per full set on two CPU cores),
    ``short`` and ``paper`` the whole of each table's benchmarks. LPIPS (AlexNet, RGB, whole image,
    :mod:`ibmdn.metrics.lpips`) is computed where the paper reports it (Tables II-V). Evaluations are
    cached in the run folder (``eval/``), keyed by the weights' sha256, the images and the protocol, so
    that re-running a notebook retrains and re-evaluates nothing and writes the same CSV.

Table VI has three kinds of rows: the published checkpoints evaluated here (IMDN, BSRN at x2/x3/x4;
RFDN-AIM, FMEN-S, DepthIBN at x4), read from ``results/checkpoint_eval.csv`` (four benchmarks, written
by ``ibmdn eval-checkpoints``) when it exists and otherwise evaluated here on the profile's datasets
(whole sets); the paper's own networks trained here; and the literature rows the paper prints, quoted.
RFDN-AIM and FMEN-S are not the networks of the paper's RFDN and FMEN rows (4-block AIM 2020 RFDN,
433K; FMEN-S, 0.33M, vs the paper's 550K and 769K): they are shown beside, not against, those rows.

Threads: CPU work runs on ``threads`` torch threads (default 1). On a shared 2-core machine two threads
of small kernels wait for each other (one training step of IMDN on 4 x 16 x 16 patches took 7 s with
two threads under load, 0.2 s with one), and a fixed count keeps the floating-point summation order,
hence the numbers, independent of the machine's core count.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ibmdn.metrics.registry import METRICS
from ibmdn.results import LONG_COLUMNS, provenance, read_table, reported

__all__ = [
    "DATASETS", "DATASET_NAMES", "EVAL_PLANS", "SHIPPED", "TABLES", "EvalPlan", "TableSpec", "compare", "run_dir",
    "table1", "table2", "table3", "table4", "table5", "table6", "trained_checkpoint", "trained_table",
    "trained_weights",
]

DATASETS = ("set5", "set14", "bsd100", "urban100")
DATASET_NAMES = {"set5": "Set5", "set14": "Set14", "bsd100": "BSD100", "urban100": "Urban100"}
"""How the benchmarks are spelt in tables and figures (the ``dataset`` column is lowercase)."""


@dataclass(frozen=True)
class EvalPlan:
    """What a profile evaluates: benchmark sets (intersected with a table's) and images per set.

    Attributes:
        datasets: benchmark sets the profile may evaluate.
        max_images: score only the ``max_images`` smallest images of each set (by pixel count, then name);
            None: every image.
    """

    datasets: tuple[str, ...]
    max_images: int | None = None


EVAL_PLANS: dict[str, EvalPlan] = {
    "smoke": EvalPlan(("set5",), max_images=2),
    "short": EvalPlan(DATASETS),
    "paper": EvalPlan(DATASETS),
}


@dataclass(frozen=True)
class TableSpec:
    """One trained table of the paper.

    Attributes:
        name: ``table1`` ... ``table6`` (the ``table`` column, and the paper's values in reported/paper.csv).
        title: what the table studies.
        models: registered model names, or Table V row names (:data:`ibmdn.models.gan.GAN_PAIRS`) if ``gan``.
        scales: upscaling factors.
        datasets: the benchmarks the paper reports for it.
        metrics: the quality metrics the paper reports (``psnr``, ``ssim``, ``lpips``).
        gan: train each row as the Table V GAN pair named by it.
        epochs: the paper's budget, in its (undefined) epochs.
    """

    name: str
    title: str
    models: tuple[str, ...]
    scales: tuple[int, ...]
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    gan: bool = False
    epochs: str = ""


_PSNR_SSIM = ("psnr", "ssim")
_WITH_LPIPS = ("psnr", "ssim", "lpips")
_ATTENTIONS = ("cca", "esa", "hfab", "chfab")

TABLES: dict[str, TableSpec] = {t.name: t for t in (
    TableSpec("table1", "Involution by depth (ICMD) in IMDN, RFDN (4 and 6 blocks) and BSRN, x2",
              ("imdn", "rfdn", "bsrn", "imdn_icmd", "rfdn_icmd_4b", "rfdn_icmd_6b", "bsrn_icmd"), (2,), DATASETS,
              _PSNR_SSIM, epochs="100 epochs, every model retrained"),
    TableSpec("table2", "ICMD vs IBMD (BSConv + involution) in IMDN and RFDN, Set5 x2",
              ("imdn_icmd", "imdn_ibmd_cca", "rfdn_icmd_6b", "rfdn_ibmd_cca"), (2,), ("set5",), _WITH_LPIPS,
              epochs="100 epochs"),
    TableSpec("table3", "Attention ablation CCA / ESA / HFAB / CHFAB in IMDN_IBMD and RFDN_IBMD, Set5 x2",
              tuple(f"imdn_ibmd_{a}" for a in _ATTENTIONS) + tuple(f"rfdn_ibmd_{a}" for a in _ATTENTIONS), (2,),
              ("set5",), _WITH_LPIPS, epochs="100 epochs"),
    TableSpec("table4", "ESRT with IBMD blocks, Set5 x2", ("esrt_64", "esrt_imdn_ibmd", "esrt_rfdn_ibmd"), (2,),
              ("set5",), _WITH_LPIPS, epochs="300 epochs"),
    TableSpec("table5", "GANs whose generator and discriminator are IBMD networks, Set5 x4",
              ("esrgan", "imdn_ibmd", "rfdn_ibmd", "esrt_imdn_ibmd", "esrt_rfdn_ibmd"), (4,), ("set5",), _WITH_LPIPS,
              gan=True, epochs="700 epochs"),
    TableSpec("table6", "Comparison with the state of the art, x2 / x3 / x4 (the paper's networks)",
              ("imdn_ibmd_chfab", "rfdn_ibmd_chfab", "esrt_imdn_ibmd", "esrt_rfdn_ibmd"), (2, 3, 4), DATASETS,
              _PSNR_SSIM, epochs="not stated"),
)}

RUN_ALIASES = {"rfdn_ibmd_chfab": "ibmdn"}
"""Registered names that build the same network as another; their runs are shared."""

CHECKPOINT_NOTES = {
    "rfdn_aim": "AIM 2020 RFDN checkpoint (4 blocks, 50 ch, 433K at x4): not the network of the paper's RFDN "
                "row (quoted below)",
    "fmen_s": "FMEN-S checkpoint (the small FMEN, NTIRE 2022): not the FMEN of the paper's row (quoted below)",
    "depthibn": "the authors' NTIRE 2025 network (their code's class IBMDN); not in the paper's tables",
}
QUOTED_NOTE = "quoted from the paper (not reproduced here)"
REFERENCE_NOTE = "bicubic upscaling of the same LR images: the floor (not a row of the paper)"

METRIC_DECIMALS = {name: m.decimals for name, m in METRICS.items()}


# ---------------------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (0: leave as is), restoring the previous count."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def _captured(log: Path) -> Iterator[None]:
    """Send prints and warnings of the block to ``log`` (a notebook shows only the results)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                yield
        finally:
            text = buf.getvalue() + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
            with open(log, "a", encoding="utf-8") as f:
                f.write(text)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def recipe(profile: str, scale: int, gan: bool = False, threads: int = 1):
    """The profile's :class:`~ibmdn.train.TrainConfig` for ``scale`` (see the module docstring)."""
    from ibmdn.train import PROFILES, resolve_config

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    base = PROFILES[profile]
    overrides: dict[str, Any] = {"threads": threads}
    if gan:
        overrides["gan"] = True
    if base.patch_size % scale:
        overrides["patch_size"] = scale * math.ceil(base.patch_size / scale)
    return resolve_config(profile, overrides=overrides)


def run_dir(model: str, scale: int, profile: str, runs_dir: str | os.PathLike = "runs", gan: bool = False) -> Path:
    """``<runs_dir>/<model>_x<scale>_<profile>[_gan]``, the trainer's default run folder."""
    name = model if gan else RUN_ALIASES.get(model, model)
    return Path(runs_dir) / f"{name}_x{scale}_{profile}{'_gan' if gan else ''}"


SHIPPED = "shipped"
"""The profile name that stands for the package's shipped checkpoints (``ibmdn/weights``) instead of a run."""


def trained_checkpoint(model: str, scale: int, profile: str = SHIPPED,
                       runs_dir: str | os.PathLike = "runs") -> tuple[str, Path | None, str, str]:
    """The trained network a figure or Table VI shows: ``(model, weights file or None, weights label, note)``.

    ``profile`` ``shipped``: the best shipped checkpoint of ``ibmdn upscale``'s default network at ``scale``
    (the model becomes that network); otherwise the profile's run ``<runs_dir>/<model>_x<scale>_<profile>``.
    None when there is no such checkpoint (the caller says so).
    """
    if profile == SHIPPED:
        from ibmdn.shipped import DEFAULT_MODEL, shipped_weights

        found = shipped_weights(DEFAULT_MODEL, scale)
        if not found:
            return DEFAULT_MODEL, None, "none", f"no shipped x{scale} checkpoint of {DEFAULT_MODEL}"
        steps = (found[0].meta or {}).get("steps") or 0
        return (DEFAULT_MODEL, found[0].path, f"shipped-{found[0].tag}",
                f"shipped checkpoint {found[0].path.name} ({steps:,} iterations)")
    final = run_dir(model, scale, profile, runs_dir) / "final.pth"
    if not final.is_file():
        return model, None, "none", f"no trained x{scale} checkpoint for profile {profile} ({final.parent.name})"
    steps = json.loads((final.parent / "final.json").read_text(encoding="utf-8")).get("steps") or 0
    return model, final, profile, f"{profile}, {steps:,} iterations ({final.parent.name})"


def shipped_rows(shipped_csv: str | os.PathLike | None, datasets: str = "auto", runs_dir: str | os.PathLike = "runs",
                 device: str = "cpu", data_root=None, weights_root=None) -> tuple[pd.DataFrame, str]:
    """Table VI's rows of the shipped checkpoints: read from ``shipped_csv`` (``ibmdn eval-checkpoints``) when it
    exists, else evaluated here on the whole of each benchmark."""
    rows: list[dict[str, Any]] = []
    found = []
    for scale in TABLES["table6"].scales:
        model, weights, label, _ = trained_checkpoint("", scale, SHIPPED)
        if weights is not None:
            found.append((model, scale, weights, label))
    sets = _datasets(DATASETS, EvalPlan(DATASETS), datasets)
    if shipped_csv and Path(shipped_csv).is_file():
        ck = read_table(shipped_csv)
        for model, scale, _, label in found:
            sel = ck[(ck["model"] == model) & (ck["scale"] == scale) & (ck["weights"] == label)
                     & ck["metric"].isin(_PSNR_SSIM) & ck["dataset"].isin(sets)]
            rows += [{**r, "table": "table6"} for r in sel[list(LONG_COLUMNS)].to_dict("records")]
        origin = f"read from {Path(shipped_csv).name}"
    else:
        for model, scale, weights, label in found:
            for dataset in sets:
                summary = evaluate_weights(model, scale, str(weights), _sha256(weights), dataset, EvalPlan(DATASETS),
                                           Path(runs_dir) / "shipped" / "eval", Path(runs_dir), device, data_root,
                                           weights_root)
                rows += _long_rows("table6", model, label, scale, summary, _PSNR_SSIM)
        origin = "evaluated here"
    rows += [_params_row("table6", model, label, scale) for model, scale, _, label in found]
    return _frame(rows), origin


def _check_recipe(folder: Path, cfg) -> dict[str, Any]:
    """The run's ``final.json``; raises when it was trained with another recipe than ``cfg``."""
    from ibmdn.errors import IbmdnError
    from ibmdn.train.config import config_from_dict, resume_differences

    info = json.loads((folder / "final.json").read_text(encoding="utf-8"))
    diff = resume_differences(config_from_dict(info["config"]), cfg)
    if diff:
        raise IbmdnError(f"{folder} was trained with another recipe ({'; '.join(diff)}); delete it or pass "
                         f"another runs_dir")
    return info


def trained_weights(model: str, scale: int, profile: str = "smoke", runs_dir: str | os.PathLike = "runs",
                    gan: bool = False, device: str = "cpu", data_root=None, weights_root=None,
                    threads: int = 1) -> tuple[Path, dict[str, Any]]:
    """``final.pth`` of the profile's run of ``model`` (trained or resumed first when needed) and its record.

    Returns:
        the weights file and a summary: ``run``, ``budget``, ``steps``, ``weights_sha256``, ``reused``.
    """
    from ibmdn.train import train

    cfg = recipe(profile, scale, gan, threads)
    folder = run_dir(model, scale, profile, runs_dir, gan)
    final = folder / "final.pth"
    reused = final.is_file()
    if not reused:
        name = model if gan else RUN_ALIASES.get(model, model)
        with _captured(folder / "notebook.log"):
            train(name, scale, cfg, out=folder, resume=(folder / "last.pth").is_file(), device=device,
                  data_root=data_root, weights_root=weights_root, progress=False)
    info = _check_recipe(folder, cfg)
    return final, {"model": model, "scale": scale, "run": folder.name, "budget": info.get("budget", cfg.budget),
                   "steps": info.get("steps"), "weights_sha256": info.get("weights_sha256") or _sha256(final),
                   "reused": reused, "gan": gan}


def _subset_root(dataset: str, max_images: int | None, data_root, work: Path) -> tuple[Any, list[str]]:
    """A data root holding only the ``max_images`` smallest images of ``dataset`` (links), and their names."""
    from ibmdn.data.datasets import image_files, resolve_set
    from ibmdn.data.io import read_image_info

    hr_dir = resolve_set(dataset, "benchmark", data_root)
    files = image_files(hr_dir)
    if max_images is None or max_images >= len(files):
        return data_root, [f.stem for f in files]
    sizes = sorted(files, key=lambda p: (read_image_info(p).width * read_image_info(p).height, p.name))
    chosen = sorted(sizes[:max_images], key=lambda p: p.name)
    folder = work / "subsets" / f"{hr_dir.parent.name}-{max_images}" / "benchmark" / hr_dir.parent.name / "HR"
    folder.mkdir(parents=True, exist_ok=True)
    for p in chosen:
        link, target = folder / p.name, p.resolve()
        if link.is_symlink() and link.resolve() != target:  # the data root moved
            link.unlink()
        if not link.is_symlink():
            link.symlink_to(target)
    return folder.parent.parent.parent, [p.stem for p in chosen]


def evaluate_weights(model: str, scale: int, weights: str | None, weights_id: str, dataset: str, plan: EvalPlan,
                     cache: Path | None, work: Path, device: str = "cpu", data_root=None, weights_root=None,
                     lpips: bool = False) -> pd.DataFrame:
    """PSNR / SSIM (and LPIPS) means of ``model`` with ``weights`` on ``dataset``, cached in ``cache``.

    An evaluation with LPIPS also serves later requests without it (same weights, images and protocol).

    Returns:
        columns ``dataset, scale, metric, value, unit, n_images`` (:func:`ibmdn.evaluate.summarize`).
    """
    from ibmdn.evaluate import evaluate, summarize
    from ibmdn.metrics.quality import Protocol

    root, images = _subset_root(dataset, plan.max_images, data_root, work)

    def cache_file(with_lpips: bool) -> Path | None:
        key = json.dumps({"model": model, "scale": scale, "weights": weights_id, "dataset": dataset, "images": images,
                          "protocol": asdict(Protocol()), "lpips": with_lpips}, sort_keys=True)
        name = f"{dataset}_x{scale}_{hashlib.sha256(key.encode()).hexdigest()[:16]}.csv"
        return None if cache is None else cache / name

    for candidate in dict.fromkeys([cache_file(True), cache_file(lpips)]):
        if candidate is not None and candidate.is_file():
            return pd.read_csv(candidate, keep_default_na=False)
    from tqdm import TqdmWarning

    from ibmdn.models import build_model

    net = build_model(model, scale, weights=weights, weights_root=weights_root)
    with warnings.catch_warnings():  # tqdm.auto in a kernel without ipywidgets (no bar is shown anyway)
        warnings.filterwarnings("ignore", category=TqdmWarning)
        summary = summarize(evaluate(net, dataset, scale, device=device, lpips=lpips, data_root=root,
                                     weights_root=weights_root))
    path = cache_file(lpips)
    if path is not None:
        from ibmdn.results import atomic_write_bytes

        atomic_write_bytes(path, summary.to_csv(index=False, float_format="%.17g").encode())
    return summary


def _long_rows(table: str, model: str, weights: str, scale: int, summary: pd.DataFrame,
               metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    keep = summary[summary["metric"].isin(metrics)]
    return [{"table": table, "model": model, "weights": weights, "scale": scale, "dataset": r.dataset,
             "metric": r.metric, "value": float(r.value), "unit": r.unit, "n_images": int(r.n_images),
             "source": "measured"} for r in keep.itertuples(index=False)]


def _params_row(table: str, model: str, weights: str, scale: int) -> dict[str, Any]:
    from ibmdn.models import build_model, count_params

    return {"table": table, "model": model, "weights": weights, "scale": scale, "dataset": "", "metric": "params",
            "value": float(count_params(build_model(model, scale))), "unit": "count", "n_images": None,
            "source": "measured"}


def _datasets(spec_datasets: tuple[str, ...], plan: EvalPlan, datasets: str) -> tuple[str, ...]:
    if datasets in ("", "auto"):
        return tuple(d for d in spec_datasets if d in plan.datasets)
    wanted = tuple(d.strip().lower() for d in datasets.split(",") if d.strip())
    return tuple(d for d in spec_datasets if d in wanted)


DECIMALS = 4
"""Measured values are rounded to this many decimals, as written to the CSVs (the notebooks show the same)."""


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(LONG_COLUMNS))
    df["n_images"] = df["n_images"].astype("Int64")
    df["value"] = df["value"].astype(float).round(DECIMALS)
    keys = ["table", "model", "weights", "scale", "dataset", "metric"]
    return df.sort_values(keys, kind="mergesort").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ tables


def trained_table(name: str, profile: str = "smoke", datasets: str = "auto", runs_dir: str | os.PathLike = "runs",
                  device: str = "cpu", data_root=None, weights_root=None, threads: int = 1) -> pd.DataFrame:
    """The measured rows of trained table ``name`` under ``profile`` (LONG schema, see the module docstring).

    Args:
        name: ``table1`` ... ``table6`` (Table VI: only its trained rows; :func:`table6` adds the others).
        profile: ``smoke``, ``short`` or ``paper``.
        datasets: ``auto`` (the table's benchmarks that the profile evaluates) or a comma-separated list.
        runs_dir: where runs are trained and reused.
        device: ``cpu``, ``cuda``, ``auto``.
        data_root / weights_root: roots (default: ``$IBMDN_DATA`` / ``$IBMDN_WEIGHTS``).
        threads: torch CPU threads for training and evaluation (0: torch's default).
    """
    from ibmdn.models.gan import GAN_PAIRS

    spec = TABLES[name]
    plan = EVAL_PLANS[profile]
    sets = _datasets(spec.datasets, plan, datasets)
    runs_dir = Path(runs_dir)
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    with torch_threads(threads):
        for model in spec.models:
            for scale in spec.scales:
                weights, info = trained_weights(model, scale, profile, runs_dir, spec.gan, device, data_root,
                                                weights_root, threads)
                runs.append(info)
                gen, disc = GAN_PAIRS[model] if spec.gan else (model, None)
                for dataset in sets:
                    summary = evaluate_weights(gen, scale, str(weights), info["weights_sha256"], dataset, plan,
                                               weights.parent / "eval", runs_dir, device, data_root, weights_root,
                                               lpips="lpips" in spec.metrics)
                    rows += _long_rows(name, gen, profile, scale, summary, spec.metrics)
                rows.append(_params_row(name, gen, profile, scale))
                if disc:
                    rows.append(_params_row(name, disc, profile, scale))
                    total = rows[-1]["value"] + rows[-2]["value"]
                    rows.append({**rows[-1], "model": "esrgan" if model == "esrgan" else f"gan_{model}",
                                 "value": total})
        for scale in spec.scales:  # the floor every trained number should clear, on the same images
            for dataset in sets:
                summary = evaluate_weights("bicubic", scale, None, "none", dataset, plan, runs_dir / "bicubic" / "eval",
                                           runs_dir, device, data_root, weights_root, lpips="lpips" in spec.metrics)
                rows += _long_rows(name, "bicubic", "none", scale, summary, spec.metrics)
    df = _frame(rows)
    df.attrs["provenance"] = provenance(
        command=f"ibmdn.experiments.tables.{name}", table=name, title=spec.title, profile=profile,
        budget=recipe(profile, spec.scales[0], spec.gan, threads).budget, paper_budget=spec.epochs,
        eval_plan=asdict(plan), datasets=list(sets), runs=runs, threads=threads,
        parameters={"profile": profile, "datasets": datasets, "device": str(device), "threads": threads})
    return df


def table1(**kw) -> pd.DataFrame:
    """Table I: IMDN, RFDN, BSRN and their ICMD forms, x2, trained under the profile."""
    return trained_table("table1", **kw)


def table2(**kw) -> pd.DataFrame:
    """Table II: ICMD vs IBMD in IMDN and RFDN, Set5 x2, PSNR / SSIM / LPIPS."""
    return trained_table("table2", **kw)


def table3(**kw) -> pd.DataFrame:
    """Table III: the attention ablation in IMDN_IBMD and RFDN_IBMD, Set5 x2."""
    return trained_table("table3", **kw)


def table4(**kw) -> pd.DataFrame:
    """Table IV: ESRT (64 channels) and ESRT with IMDN_IBMD / RFDN_IBMD blocks, Set5 x2."""
    return trained_table("table4", **kw)


def table5(**kw) -> pd.DataFrame:
    """Table V: the GANs (generator metrics, G / D / total parameters), Set5 x4."""
    return trained_table("table5", **kw)


def checkpoint_rows(checkpoint_csv: str | os.PathLike | None, profile: str = "smoke", datasets: str = "auto",
                    runs_dir: str | os.PathLike = "runs", device: str = "cpu", data_root=None,
                    weights_root=None) -> tuple[pd.DataFrame, str]:
    """Table VI's published-checkpoint rows, and where they come from.

    From ``checkpoint_csv`` (``ibmdn eval-checkpoints``) when it exists, else evaluated here on the whole
    of each of the profile's datasets.
    """
    from ibmdn.experiments.checkpoints import CHECKPOINTS

    rows: list[dict[str, Any]] = []
    if checkpoint_csv and Path(checkpoint_csv).is_file():
        ck = read_table(checkpoint_csv)
        ck = ck[ck["weights"] == "official"]
        for r in ck.itertuples(index=False):
            if (r.model, int(r.scale)) in CHECKPOINTS and r.metric in _PSNR_SSIM:
                rows.append({"table": "table6", "model": r.model, "weights": "official", "scale": int(r.scale),
                             "dataset": r.dataset, "metric": r.metric, "value": float(r.value), "unit": r.unit,
                             "n_images": None if pd.isna(r.n_images) else int(r.n_images), "source": "measured"})
        origin = f"read from {Path(checkpoint_csv).name}"
    else:
        plan = EvalPlan(EVAL_PLANS[profile].datasets)  # whole sets: these numbers are compared exactly
        sets = _datasets(DATASETS, plan, datasets)
        work = Path(runs_dir)
        for model, scale in CHECKPOINTS:
            for dataset in sets:
                summary = evaluate_weights(model, scale, "official", "official", dataset, plan,
                                           work / "checkpoints" / "eval", work, device, data_root, weights_root)
                rows += _long_rows("table6", model, "official", scale, summary, _PSNR_SSIM)
        origin = f"evaluated here on {', '.join(sets)} ({Path(checkpoint_csv).name if checkpoint_csv else 'no file'}" \
                 f" absent)"
    for model, scale in CHECKPOINTS:
        rows.append(_params_row("table6", model, "official", scale))
    return _frame(rows), origin


def table6(profile: str = SHIPPED, datasets: str = "auto", runs_dir: str | os.PathLike = "runs",
           checkpoint_csv: str | os.PathLike | None = "results/checkpoint_eval.csv",
           shipped_csv: str | os.PathLike | None = "results/shipped_eval.csv", device: str = "cpu",
           data_root=None, weights_root=None, threads: int = 1) -> pd.DataFrame:
    """Table VI: published checkpoints evaluated here + our trained networks.

    ``profile`` ``shipped`` (default): our rows are the package's shipped checkpoints (:func:`shipped_rows`);
    otherwise the paper's four networks trained under the profile. The literature rows the paper only quotes
    are added by :func:`compare` (they are not measurements).
    """
    with torch_threads(threads):
        if profile == SHIPPED:
            trained, ours = shipped_rows(shipped_csv, datasets, runs_dir, device, data_root, weights_root)
            prov = provenance(command="ibmdn.experiments.tables.table6", table="table6", profile=profile,
                              shipped=ours, parameters={"profile": profile, "datasets": datasets,
                                                        "device": str(device), "threads": threads})
        else:
            trained = trained_table("table6", profile, datasets, runs_dir, device, data_root, weights_root, threads)
            prov = trained.attrs["provenance"]
        ck, origin = checkpoint_rows(checkpoint_csv, "short" if profile == SHIPPED else profile, datasets, runs_dir,
                                     device, data_root, weights_root)
    df = _frame(pd.concat([ck, trained], ignore_index=True).to_dict("records"))
    df.attrs["provenance"] = {**prov, "checkpoints": origin, "command": "ibmdn.experiments.tables.table6"}
    return df


# -------------------------------------------------------------------------------------------- comparison


def _kind(weights: str) -> str:
    return {"official": "checkpoint", "none": "reference"}.get(weights, "trained")


def compare(measured: pd.DataFrame, table: str | None = None, part: str = "all", wide: bool = True) -> pd.DataFrame:
    """Every measured number beside the paper's number and the difference (ours - paper).

    Args:
        measured: a table of :func:`table1` ... :func:`table6` (or its CSV read back).
        table: the paper's table (default: the ``table`` column of ``measured``).
        part: ``all``; ``exact``: the numbers that must not change between machines (parameter counts,
            checkpoint metrics, quoted rows); ``trained``: the metrics of the networks trained here (their
            last digits depend on the machine's floating-point arithmetic).
        wide: one row per (kind, model, weights, scale, dataset) with ``ours / paper / diff`` per metric
            (what the notebooks show); else one row per number (kind, model, ..., metric, ours, paper,
            diff, n_images, note).

    Rows: ``kind`` is ``reference`` (bicubic upscaling of the same images, the floor), ``checkpoint`` (a
    published checkpoint evaluated here), ``trained`` (trained here; the ``weights`` column names the
    profile) or ``quoted`` (Table VI's literature rows, the paper's numbers only). The note carries the paper's flag (a typo or an inconsistency, ``reported/paper.csv``) or why
    a checkpoint row has no paper counterpart.
    """
    if part not in ("all", "exact", "trained"):
        raise ValueError(f"part must be 'all', 'exact' or 'trained', got {part!r}")
    table = table or str(measured["table"].iloc[0])
    paper = reported(table)
    keys = ["model", "scale", "dataset", "metric"]
    m = measured[["model", "weights", "scale", "dataset", "metric", "value", "n_images"]].rename(
        columns={"value": "ours"})
    p = paper[keys + ["value", "flag"]].rename(columns={"value": "paper", "flag": "note"})
    m = m.assign(scale=m["scale"].astype(int))
    p = p.assign(scale=p["scale"].astype(int))
    out = m.merge(p, on=keys, how="left")
    out["kind"] = out["weights"].map(_kind)
    notes = out["model"].map(CHECKPOINT_NOTES).where(out["kind"] == "checkpoint")
    notes = notes.where(out["kind"] != "reference", REFERENCE_NOTE)
    out["note"] = out["note"].fillna("").where(notes.isna(), notes.fillna(""))
    if table == "table6":
        quoted = p[~p["model"].isin(set(m["model"]))].assign(
            weights="paper", ours=math.nan, n_images=pd.NA, kind="quoted")
        quoted["note"] = quoted["note"].where(quoted["note"] != "", QUOTED_NOTE)
        out = pd.concat([out, quoted[out.columns]], ignore_index=True)
    out["diff"] = out["ours"] - out["paper"]
    exact = (out["kind"] != "trained") | (out["metric"] == "params")
    out = out[exact] if part == "exact" else out[~exact] if part == "trained" else out
    order = {"reference": 0, "checkpoint": 1, "trained": 2, "quoted": 3}
    out = out.assign(_k=out["kind"].map(order), _m=out["metric"].map(
        {"params": 0, "psnr": 1, "ssim": 2, "lpips": 3}).fillna(9))
    out = out.sort_values(["_k", "model", "scale", "dataset", "_m"], kind="mergesort").drop(columns=["_k", "_m"])
    for metric, dec in METRIC_DECIMALS.items():
        sel = out["metric"] == metric
        for c in ("ours", "paper", "diff"):
            out.loc[sel, c] = out.loc[sel, c].round(dec)
    cols = ["kind", "model", "weights", "scale", "dataset", "metric", "ours", "paper", "diff", "n_images", "note"]
    out = out[cols].reset_index(drop=True)
    return _wide(out) if wide else out


def _wide(long: pd.DataFrame) -> pd.DataFrame:
    """``ours / paper / diff`` per metric side by side; parameter counts repeated on every dataset row."""
    idx = ["kind", "model", "weights", "scale", "dataset"]
    if long.empty:
        return pd.DataFrame(columns=idx)
    params = long[long["metric"] == "params"]
    quality = long[long["metric"] != "params"]
    metrics = [m for m in ("psnr", "ssim", "lpips") if m in set(quality["metric"])]
    frames = []
    if len(quality):
        w = quality.set_index(idx + ["metric"])[["ours", "paper", "diff"]].unstack("metric")
        w = w.reindex(pd.MultiIndex.from_frame(quality[idx].drop_duplicates()))
        w.columns = [f"{metric} {what}" for what, metric in w.columns]
        w = w[[f"{m} {what}" for m in metrics for what in ("ours", "paper", "diff") if f"{m} {what}" in w.columns]]
        n = quality.groupby(idx, sort=False)["n_images"].max().astype("Int64").rename("n_images")
        notes = quality.groupby(idx, sort=False)["note"].agg(lambda s: "; ".join(dict.fromkeys(x for x in s if x)))
        frames = [w, n, notes]
    base = pd.concat(frames, axis=1).reset_index() if frames else pd.DataFrame(columns=idx)
    pr = params[["kind", "model", "weights", "scale", "ours", "paper", "diff", "note"]].rename(
        columns={"ours": "params ours", "paper": "params paper", "diff": "params diff", "note": "params note"})
    key = ["kind", "model", "weights", "scale"]
    if base.empty:
        out = pr.assign(dataset="")
    elif pr.empty:
        out = base
    else:
        out = base.merge(pr, on=key, how="left")
        alone = pr.merge(base[key].drop_duplicates(), on=key, how="left", indicator=True)
        alone = alone[alone["_merge"] == "left_only"].drop(columns="_merge")
        if len(alone):  # counts without a quality row (Table V's discriminators and G + D totals)
            out = pd.concat([out, alone.assign(dataset="")], ignore_index=True)
            order = {"reference": 0, "checkpoint": 1, "trained": 2, "quoted": 3}
            out = out.assign(_k=out["kind"].map(order)).sort_values(["_k", "model", "scale", "dataset"],
                                                                   kind="mergesort").drop(columns="_k")
    for c in ("params ours", "params paper", "params diff"):
        if c in out:
            out[c] = out[c].astype("Float64").round().astype("Int64")
    if "note" in out and "params note" in out:
        out["note"] = ["; ".join(dict.fromkeys(x for x in (a, b) if isinstance(x, str) and x)) for a, b in
                       zip(out["note"], out["params note"])]
        out = out.drop(columns=["params note"])
    elif "params note" in out:
        out = out.rename(columns={"params note": "note"})
    front = idx + [c for c in out.columns if c.startswith("params ")]
    return out[front + [c for c in out.columns if c not in front]].reset_index(drop=True)
