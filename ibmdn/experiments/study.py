"""The study: the trained tables of the paper at one CPU budget, with seeds, one committed record per run.

    python -m ibmdn.experiments.study run --hours 2.5      # train / resume / evaluate what is missing
    python -m ibmdn.experiments.study status               # what is recorded, running, left
    python -m ibmdn.experiments.study keep-weights         # copy the small networks' seed-0 weights
    python -m ibmdn.experiments.study run --seeds 0,1,2,3,4 --resolvable 5   # more seeds where they settle a claim

Plan (:func:`study_plan`)
    Every network of Tables I-III (``rfdn_ibmd_chfab`` is ``ibmdn``) and the stable IBMDN
    (``ibmdn_stable``), three seeds each, trained under the ``study`` profile at x2. Runs are ordered
    seed-major (every network's seed 0, then seed 1, ...) so that an interrupted study has one seed of
    every row before it has three of any.

Runs and records
    A run trains in ``<runs>/<model>_x<scale>_study_s<seed>`` (git-ignored; resumed bitwise exactly when
    interrupted), then is evaluated on the benchmarks of every table it appears in (Table I: the four sets,
    PSNR / SSIM; Tables II-III: Set5 with LPIPS) and leaves its record, ``<records>/<run>.json``: the
    recipe, budget, seed, commit, wall times, validation curve, training-loss curve and per-image
    metrics. The records are what is committed (``results/study/``); the tables, the claims and the
    figures are computed from them alone (:mod:`ibmdn.experiments.claims`).

Workers
    Several workers may share one runs folder (two on a 2-core machine, one thread each): a worker claims a
    run with a lock file holding its process id (a lock whose process is gone is taken over) and skips
    runs that are recorded or claimed. ``--hours`` bounds a worker's session: no run starts after the
    deadline, nor one that the same network's earlier seeds say cannot finish (train and evaluate) before
    it, and the running one stops at it with its checkpoint written (the next session resumes it).

More seeds
    ``--models`` keeps the plan's runs of the named networks; ``--resolvable N`` keeps those of the networks on
    either side of a comparison that ``results/claims.csv`` calls not resolvable and that N seeds per side
    would resolve if the means and spreads stayed as observed (``seeds_to_resolve``, multi-seed tables only).
    With ``--seeds`` up to N, the study then trains exactly the seeds that may settle an open comparison, and
    each new record updates the tables and verdicts like any other.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

RECORDS = Path("results/study")
SEEDS = (0, 1, 2)
STUDY_TABLES = ("table1", "table2", "table3")
EXTRA_MODELS = ("ibmdn_stable",)
"""Studied with Table III: IBMDN with the stable involution (the faithful one is Table III's CHFAB row)."""


BUDGET_FACTOR = {"table4": 1, "table5": 1}
"""Iterations of a table's runs, as a multiple of the ``study`` profile's. The paper trains Tables I-III /
IV / V for 100 / 300 / 700 epochs (3x and 7x); both are cut to 1x here, because ESRT and GAN steps cost
several times an IMDN step on a CPU (docs/results-and-provenance.md). Within a table every row still has
one budget, which is what its claims compare."""
ONE_SEED = ("table4", "table5")
"""Tables trained with the first seed only (their runs cost several times a Table I-III run), except for
:data:`SPREAD_SEEDS`."""
SPREAD_SEEDS = {"table5": ("imdn_ibmd",)}
"""Rows of a one-seed table trained with every seed all the same, after the table's first seeds: their spread
is the seed variance that the table's one-seed comparisons are judged with (:mod:`ibmdn.experiments.claims`
pools it per scale, benchmark and metric). Table IV (x2, L1) borrows the spread of Tables I-III; Table V
(x4, under ESRGAN's loss) has no other multi-seed runs at its scale and recipe, and GAN training need not
scatter like L1 training, so its cheapest pair (the IMDN_IBMD GAN) gets seeds 1 and 2 too."""


@dataclass(frozen=True)
class StudyRun:
    """One training run of the study and what it is evaluated on (``model``: a Table V row when ``gan``)."""

    model: str
    scale: int
    seed: int
    datasets: tuple[str, ...]
    lpips_sets: tuple[str, ...]
    factor: int = 1
    gan: bool = False
    profile: str = "study"

    @property
    def name(self) -> str:
        return f"{self.model}_x{self.scale}_{self.profile}{'_gan' if self.gan else ''}_s{self.seed}"

    @property
    def generator(self) -> str:
        """The network that is scored (a GAN's generator)."""
        from ibmdn.models.gan import GAN_PAIRS

        return GAN_PAIRS[self.model][0] if self.gan else self.model


def study_plan(tables: tuple[str, ...] = STUDY_TABLES, seeds: tuple[int, ...] = SEEDS,
               profile: str = "study", models: tuple[str, ...] | None = None) -> list[StudyRun]:
    """The study's runs, seed-major (Tables II-III and IBMDN before Table I's other rows), then Tables IV-V with
    the first seed only, then the other seeds of :data:`SPREAD_SEEDS`; each run is evaluated on the union of
    its tables' benchmarks. ``models``: only the runs of these networks (registered names; a Table V row by
    its GAN name)."""
    from ibmdn.experiments.tables import DATASETS, RUN_ALIASES, TABLES

    needs: dict[tuple[str, int, int, bool], tuple[set[str], set[str]]] = {}
    once: set[tuple[str, int, int, bool]] = set()
    for name in sorted(tables, key=lambda t: t == "table1"):
        spec = TABLES[name]
        for model in spec.models:
            for scale in spec.scales:
                key = (model if spec.gan else RUN_ALIASES.get(model, model), scale, BUDGET_FACTOR.get(name, 1), spec.gan)
                if name in ONE_SEED:
                    once.add(key)
                sets, lp = needs.setdefault(key, (set(), set()))
                sets.update(spec.datasets)
                if "lpips" in spec.metrics:
                    lp.update(spec.datasets)
        if name == "table3":
            for model in EXTRA_MODELS:
                sets, lp = needs.setdefault((model, 2, 1, False), (set(), set()))
                sets.add("set5")
                lp.add("set5")
    spread = {(m, s, BUDGET_FACTOR.get(name, 1), TABLES[name].gan) for name in tables
              for m in SPREAD_SEEDS.get(name, ()) for s in TABLES[name].scales}

    def run(key, seed):
        (m, s, f, g), (sets, lp) = key, needs[key]
        return StudyRun(m, s, seed, tuple(d for d in DATASETS if d in sets), tuple(d for d in DATASETS if d in lp), f, g,
                        profile)

    if models is not None:
        unknown = sorted(set(models) - {k[0] for k in needs} - set(RUN_ALIASES))
        if unknown:
            raise ValueError(f"not in the plan of {', '.join(tables)}: {', '.join(unknown)}")
        keep = {RUN_ALIASES.get(m, m) for m in models}
        needs = {k: v for k, v in needs.items() if k[0] in keep}
        once &= set(needs)
    many = [k for k in needs if k not in once]
    return ([run(k, seed) for seed in seeds for k in many] + [run(k, seeds[0]) for k in needs if k not in many]
            + [run(k, seed) for seed in seeds[1:] for k in needs if k in spread])  # spread rows are one-seed rows


def resolvable_models(claims: pd.DataFrame, max_seeds: int) -> tuple[str, ...]:
    """The networks on either side of the not-resolvable comparisons of the multi-seed tables that at most
    ``max_seeds`` seeds per side would resolve (``claims``: ``results/claims.csv``), sorted."""
    import pandas as pd  # noqa: F811 (at run time; the module-level import is for type checking only)

    n = pd.to_numeric(claims["seeds_to_resolve"], errors="coerce")
    open_ = claims[claims["verdict"].str.startswith("not resolvable") & (n <= max_seeds)
                   & ~claims["table"].isin(ONE_SEED)]
    return tuple(sorted(set(open_["better"]) | set(open_["worse"])))


GAN_WARMUP_FRACTION = 0.5
"""Share of a Table V run trained on L1 alone before ESRGAN's loss starts (``gan_warmup``). ESRGAN trains its
generator in two stages: a PSNR-oriented pre-training on L1, then the adversarial stage from that network.
One run of the study's budget does both, half each. Without it (the first Table V attempt, 2026-12-07) the
generator started under ESRGAN's loss, whose pixel term weighs 1e-2, and after 500 of 1,500 steps ESRGAN's
output was still 0.38 away from the target per pixel on average (Set5 8.7 dB): PSNR and SSIM comparisons
of such networks say nothing. The second attempt (same day) carried the warm-up's Adam and learning rate into
the adversarial stage and fell from 29.05 dB at the switch to 9.2 dB 250 steps later; it was stopped and is
not recorded either. Since then the adversarial stage starts a new Adam at ESRGAN's 1e-4 (``gan_lr``,
:mod:`ibmdn.train.gan`)."""


def study_recipe(seed: int, scale: int = 2, factor: int = 1, gan: bool = False, profile: str = "study"):
    """The ``study`` (or ``study_gpu``) profile with ``seed`` and ``factor`` x its iterations (the HR patch
    rounded up to a multiple of ``scale``; ``gan``: the Table V loss after :data:`GAN_WARMUP_FRACTION` of the
    iterations on L1 alone)."""
    from ibmdn.train import PROFILES, resolve_config

    base = PROFILES[profile]
    iterations = base.iterations * factor
    return resolve_config(profile, overrides={"seed": seed, "patch_size": scale * math.ceil(base.patch_size / scale),
                                              "iterations": iterations, "gan": gan,
                                              "gan_warmup": int(iterations * GAN_WARMUP_FRACTION) if gan else 0})


# ------------------------------------------------------------------------------------------------ records


def record_path(run: StudyRun, records: Path = RECORDS) -> Path:
    return Path(records) / f"{run.name}.json"


def load_records(records: Path = RECORDS) -> list[dict[str, Any]]:
    """Every committed run record (sorted by run name)."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(records).glob("*_x[234]_study*_s*.json"))]


def _finished(folder: Path, iterations: int) -> dict[str, Any] | None:
    fj = folder / "final.json"
    if not fj.is_file():
        return None
    info = json.loads(fj.read_text(encoding="utf-8"))
    return info if info.get("steps") == iterations and not info.get("stopped_early") else None


def evaluate_run(run: StudyRun, weights: Path, data_root=None, weights_root=None) -> list[dict[str, Any]]:
    """Per-image PSNR / SSIM (and LPIPS on ``run.lpips_sets``) of the run's weights, MATLAB-exact protocol."""
    from ibmdn.evaluate import evaluate
    from ibmdn.models import build_model
    from ibmdn.ops.involution import set_involution_impl

    net = set_involution_impl(build_model(run.generator, run.scale, weights=str(weights)), "shift")  # same function
    rows = []
    for dataset in run.datasets:
        df = evaluate(net, dataset, run.scale, lpips=dataset in run.lpips_sets, data_root=data_root,
                      weights_root=weights_root)
        keep = [c for c in ("dataset", "image", "psnr", "ssim", "lpips") if c in df.columns]
        rows += df[keep].to_dict("records")
    return rows


def make_record(run: StudyRun, info: dict[str, Any], per_image: list[dict[str, Any]], eval_s: float) -> dict:
    """The committed record of a finished run (its ``final.json`` without the bulky fields, + metrics)."""
    keep = ("model", "scale", "profile", "budget", "config", "params", "steps", "wall_s", "val_set", "val_psnr",
            "val_history", "weights_sha256", "git", "versions", "device", "platform", "date_utc", "torch_threads",
            "train_images", "train_sets")
    curve = [{"step": int(r["step"]), "lr": float(r["lr"]), "loss": float(r["loss"])} for r in info.get("log", [])]
    return {"run": run.name, "seed": run.seed, **{k: info.get(k) for k in keep}, "model": run.generator,
            "gan": run.gan, "train_curve": curve,
            "eval_s": round(eval_s, 1), "per_image": per_image}


# ------------------------------------------------------------------------------------------------ workers


def expected_s(run: StudyRun, records: Path = RECORDS) -> float:
    """Seconds the run should take (training + evaluation), the longest of its other seeds' records; 0 if none."""
    stem = run.name.rsplit("_s", 1)[0]
    spent = [r.get("wall_s", 0.0) + r.get("eval_s", 0.0)
             for r in (json.loads(p.read_text(encoding="utf-8")) for p in Path(records).glob(f"{stem}_s*.json"))]
    return max(spent, default=0.0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(lock: Path) -> bool:
    """Create ``lock`` holding this process id; take it over when its process is gone."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                return False
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def run_study(plan: list[StudyRun], runs: Path, records: Path = RECORDS, hours: float = 0.0, data_root=None,
              weights_root=None, device: str = "cpu") -> list[str]:
    """Train, evaluate and record the plan's missing runs (see the module docstring); the recorded names."""
    import torch

    from ibmdn.results import atomic_write_bytes, dumps_json
    from ibmdn.train import train

    deadline = time.time() + hours * 3600 if hours else math.inf
    done = []
    for run in plan:
        if record_path(run, records).is_file() or time.time() >= deadline:
            continue
        lock = Path(runs) / f"{run.name}.lock"
        if not claim(lock):
            continue
        try:
            cfg = study_recipe(run.seed, run.scale, run.factor, run.gan, run.profile)
            torch.set_num_threads(cfg.threads)
            folder = Path(runs) / run.name
            info = _finished(folder, cfg.iterations)
            fresh = info is None and not (folder / "last.pth").is_file()
            if fresh and time.time() + expected_s(run, records) > deadline:
                continue  # would not finish this session; a shorter run may
            if info is None:
                left = max((deadline - time.time()) / 60, 1e-3) if math.isfinite(deadline) else 0.0  # 0: no limit
                print(f"[study] training {run.name}", flush=True)
                train(run.model, run.scale, cfg, out=folder, resume=(folder / "last.pth").is_file(), device=device,
                      data_root=data_root, weights_root=weights_root, progress=False, time_limit=left)
                info = _finished(folder, cfg.iterations)
                if info is None:  # stopped at the deadline or by SIGTERM / Ctrl-C; resumed next session
                    print(f"[study] {run.name} paused (deadline or stop request)", flush=True)
                    break
            print(f"[study] evaluating {run.name}", flush=True)
            t0 = time.perf_counter()
            per_image = evaluate_run(run, folder / "final.pth", data_root, weights_root)
            rec = make_record(run, info, per_image, time.perf_counter() - t0)
            atomic_write_bytes(record_path(run, records), dumps_json(rec).encode("utf-8"))
            done.append(run.name)
            print(f"[study] recorded {run.name}: Set5 {_mean(per_image, 'set5', 'psnr'):.3f} dB", flush=True)
            keep_weights(runs, records)
        finally:
            lock.unlink(missing_ok=True)
    return done


def _mean(rows: list[dict[str, Any]], dataset: str, metric: str) -> float:
    vals = [r[metric] for r in rows if r["dataset"] == dataset and metric in r]
    return sum(vals) / len(vals) if vals else math.nan


KEPT_SEED = 0
KEPT_MAX_PARAMS = 400_000
"""The weights of seed :data:`KEPT_SEED` of every network under this many parameters are committed beside the
records (``<records>/weights/<run>.pth``, a few hundred KB to 1.6 MB each); the others are reproducible from
their record."""


def keep_weights(runs: Path, records: Path = RECORDS) -> list[Path]:
    """Copy the final weights of the recorded runs that :data:`KEPT_SEED` / :data:`KEPT_MAX_PARAMS` select into
    ``<records>/weights`` (checked against the record's sha256); return the files written."""
    import shutil

    from ibmdn.fileio import sha256_file

    out = []
    for rec in load_records(records):
        if rec["seed"] != KEPT_SEED or rec["params"] > KEPT_MAX_PARAMS:
            continue
        src, dst = Path(runs) / rec["run"] / "final.pth", Path(records) / "weights" / f"{rec['run']}.pth"
        if dst.is_file() or not src.is_file() or sha256_file(src) != rec["weights_sha256"]:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


BICUBIC_SETS = {2: (("set5", "set14", "bsd100", "urban100"), ("set5",)), 4: (("set5",), ("set5",))}
"""The bicubic reference of the study's tables: (benchmarks, those with LPIPS) per scale."""


def record_bicubic(records: Path = RECORDS, data_root=None, weights_root=None) -> Path:
    """``<records>/bicubic.csv`` (LONG schema, with its provenance sidecar): bicubic upscaling's mean PSNR /
    SSIM (/ LPIPS) on the tables' benchmarks."""
    import pandas as pd

    from ibmdn.evaluate import evaluate, summarize
    from ibmdn.models import build_model
    from ibmdn.results import provenance, write_table

    parts = []
    for scale, (sets, lp) in BICUBIC_SETS.items():
        for dataset in sets:
            per_image = evaluate(build_model("bicubic", scale), dataset, scale, lpips=dataset in lp,
                                 data_root=data_root, weights_root=weights_root)
            parts.append(summarize(per_image))
    df = pd.concat(parts, ignore_index=True).assign(table="study_bicubic", model="bicubic", weights="none",
                                                    source="measured")
    meta = provenance(command="python -m ibmdn.experiments.study bicubic", parameters={"sets": BICUBIC_SETS})
    return write_table(df[["table", "model", "weights", "scale", "dataset", "metric", "value", "unit", "n_images",
                           "source"]], Path(records) / "bicubic.csv", meta)


def status(plan: list[StudyRun], runs: Path, records: Path = RECORDS) -> dict[str, list[str]]:
    """``recorded``, ``running`` (a live lock), ``started`` (a checkpoint, no record) and ``left`` runs."""
    out: dict[str, list[str]] = {"recorded": [], "running": [], "started": [], "left": []}
    for run in plan:
        lock = Path(runs) / f"{run.name}.lock"
        if record_path(run, records).is_file():
            key = "recorded"
        elif lock.is_file() and _alive(int(lock.read_text().strip() or 0)):
            key = "running"
        elif (Path(runs) / run.name / "last.pth").is_file():
            key = "started"
        else:
            key = "left"
        out[key].append(run.name)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("action", choices=("run", "status", "bicubic", "keep-weights"))
    ap.add_argument("--tables", default=",".join(STUDY_TABLES), help="comma-separated trained tables")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma-separated seeds")
    ap.add_argument("--models", default="", help="comma-separated networks: only their runs")
    ap.add_argument("--resolvable", type=int, default=0, metavar="N",
                    help="only the networks of the open comparisons that N seeds per side would resolve "
                         "(results/claims.csv; give --seeds up to N)")
    ap.add_argument("--runs", default="runs/study", type=Path, help="run folders (git-ignored)")
    ap.add_argument("--records", default=RECORDS, type=Path, help="where the run records go (committed)")
    ap.add_argument("--hours", default=0.0, type=float, help="stop starting / training runs after this (0: none)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--profile", default="study", choices=("study", "study_gpu"),
                    help="budget: study (the CPU study) or study_gpu (a lent GPU; use another --records)")
    args = ap.parse_args(argv)
    tables = tuple(t.strip() for t in args.tables.split(",") if t.strip())
    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) or None
    if args.resolvable:
        import pandas as pd

        found = resolvable_models(pd.read_csv("results/claims.csv"), args.resolvable)
        print(f"networks whose open comparisons {args.resolvable} seeds per side would resolve: "
              f"{' '.join(found) or 'none'}")
        from ibmdn.experiments.tables import RUN_ALIASES

        planned = {r.model for r in study_plan(tables, SEEDS[:1], args.profile)}
        models = (models or ()) + tuple(m for m in found if RUN_ALIASES.get(m, m) in planned)
    plan = study_plan(tables, tuple(int(s) for s in args.seeds.split(",") if s.strip()), args.profile, models)
    if args.action == "keep-weights":
        for path in keep_weights(args.runs, args.records):
            print(path)
        return 0
    if args.action == "status":
        from ibmdn.train import run_progress

        for key, names in status(plan, args.runs, args.records).items():
            print(f"{key} ({len(names)}): {' '.join(names)}")
            for name in names if key in ("running", "started") else ():
                p = run_progress(args.runs / name)
                if p:
                    print(f"  {name}: step {p['step']:,} of {p['iterations']:,}, {p['elapsed_s'] / 3600:.1f} h trained, "
                          f"about {p['left_s'] / 3600:.1f} h left at this pace"
                          + ("" if math.isnan(p["val_psnr"]) else f", last validation {p['val_psnr']:.2f} dB"))
        return 0
    if args.action == "bicubic" or not (args.records / "bicubic.csv").is_file():
        print(f"bicubic reference: {record_bicubic(args.records)}")
    if args.action == "bicubic":
        return 0
    run_study(plan, args.runs, args.records, args.hours, device=args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
