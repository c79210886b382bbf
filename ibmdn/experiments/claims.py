"""The study's tables and its verdict on each claim of the paper, computed from the committed run records alone.

    python -m ibmdn.experiments.claims      # results/study_runs.csv, table1-5.csv, claims.csv, figures

Nothing here trains or evaluates a network: the numbers come from the records of
:mod:`ibmdn.experiments.study` (``results/study/*.json``, per-image metrics of each run) and the paper's
values from ``reported/paper.csv``.

``study_runs.csv`` (schema ``study_runs``)
    One row per (run, benchmark, metric): the run's mean over the benchmark's images (the protocol's
    number for one trained network).
``table<N>.csv`` (schema ``study``)
    One row per (network, benchmark, metric) of the paper's table: the mean over seeds of those run means,
    their sample standard deviation (``std``, ddof 1; empty with one seed), the number of seeds and which,
    the images scored, the paper's value and ours minus the paper's, and the budget. Networks without a
    record keep their row, without a value, with ``n_seeds`` 0 and a note: a table never hides a row.
    Bicubic upscaling of the same images is the ``reference`` row; parameter counts come from the models.
``claims.csv`` (schema ``claims``)
    One row per comparison a claim makes (:data:`CLAIMS`): network A is claimed better than network B on a
    metric and benchmark. ``advantage`` is A's mean minus B's (B's minus A's for LPIPS, lower is better),
    with a 95 % Welch confidence interval over the seeds. The rule (:data:`RULE`): *reproduced* when the
    interval lies above ``-margin``, *contradicted* when it lies below, otherwise *not resolvable at this
    budget*; *not tested* without two seeds on each side. Tables IV and V are trained with one seed
    (``study.ONE_SEED``): their intervals use the seed variance pooled over every multi-seed network of the
    same benchmark, metric and scale (:func:`seed_variance`): Table IV's those of Tables I-III at x2 (it
    assumes an ESRT run scatters over seeds as much as the study's other networks do on average), Table V's
    the seeds of its one multi-seed GAN pair (``study.SPREAD_SEEDS``), since GAN training at x4 need not
    scatter like L1 training at x2. ``interval`` says
    which was used. ``seeds_to_resolve`` (not-resolvable comparisons only): the seeds per side at which the
    interval would exclude the margin if the means and spreads stayed as observed (:func:`seeds_to_resolve`;
    a planning figure for where more seeds could settle a claim at this budget, not a test). The margin is
    0 for "beats", and the
    ``NON_INFERIORITY_DB`` of a "keeps" or "competitive" claim. A claim's verdict sums its comparisons.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ibmdn.experiments.study import RECORDS, load_records
from ibmdn.metrics.registry import METRICS
from ibmdn.results import provenance, reported, write_table
from ibmdn.schemas import CLAIMS as CLAIMS_SCHEMA
from ibmdn.schemas import STUDY, STUDY_RUNS, VERDICTS

NON_INFERIORITY_DB = 0.05
"""How far below a baseline (PSNR, dB) a network may stay and still "keep" its quality or be "competitive"."""

RULE = ("95 % Welch interval of the advantage (A - B; B - A for LPIPS) over seeds: reproduced if it lies above "
        "-margin, contradicted if below, else not resolvable; in the one-seed Tables IV-V a t interval with the "
        "seed variance pooled over the multi-seed runs of the same benchmark, metric and scale; not tested "
        "without a run on each side")
NOT_TRAINED = "no record at the study budget (not trained: see docs/results-and-provenance.md)"


@dataclass(frozen=True)
class Claim:
    """A claim of the paper, as comparisons "``better`` beats ``worse``" on ``datasets`` x ``metrics``."""

    number: int
    statement: str
    table: str
    pairs: tuple[tuple[str, str], ...]
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    margin: float = 0.0


_FOUR = ("set5", "set14", "bsd100", "urban100")
_ALL = ("psnr", "ssim", "lpips")
_ATT = ("cca", "esa", "hfab")
CLAIMS: tuple[Claim, ...] = (
    Claim(1, "Table I: ICMD keeps or improves IMDN (margin), RFDN_ICMD with 4 blocks is worse than RFDN and "
             "with 6 blocks better, BSRN_ICMD is better than BSRN", "table1",
          (("imdn_icmd", "imdn"), ("rfdn", "rfdn_icmd_4b"), ("rfdn_icmd_6b", "rfdn"), ("bsrn_icmd", "bsrn")),
          _FOUR, ("psnr",)),
    Claim(2, "Table II: BSConv + involution (IBMD) beats ICMD, in IMDN and in RFDN", "table2",
          (("imdn_ibmd_cca", "imdn_icmd"), ("rfdn_ibmd_cca", "rfdn_icmd_6b")), ("set5",), _ALL),
    Claim(3, "Table III: CHFAB beats CCA, ESA and HFAB, in IMDN_IBMD and in RFDN_IBMD", "table3",
          tuple((f"{b}_ibmd_chfab", f"{b}_ibmd_{a}") for b in ("imdn", "rfdn") for a in _ATT), ("set5",), _ALL),
    Claim(4, "Table III: RFDN_IBMD beats IMDN_IBMD (with each attention block)", "table3",
          tuple((f"rfdn_ibmd_{a}", f"imdn_ibmd_{a}") for a in _ATT + ("chfab",)), ("set5",), ("psnr",)),
    Claim(5, "Table IV: ESRT with IBMD blocks beats ESRT; ESRT_RFDN_IBMD beats ESRT_IMDN_IBMD", "table4",
          (("esrt_imdn_ibmd", "esrt_64"), ("esrt_rfdn_ibmd", "esrt_64"), ("esrt_rfdn_ibmd", "esrt_imdn_ibmd")),
          ("set5",), _ALL),
    Claim(6, "Table V: the four IBMD GANs beat ESRGAN at x4", "table5",
          tuple((g, "esrgan_g") for g in ("gan_imdn_ibmd_g", "gan_rfdn_ibmd_g", "gan_esrt_imdn_ibmd_g",
                                          "gan_esrt_rfdn_ibmd_g")), ("set5",), _ALL),
    Claim(7, "IBMDN (RFDN_IBMD + CHFAB; faithful and stable forms) is competitive (margin) with IMDN, RFDN and "
             "BSRN at a fraction of their parameters", "table1",
          tuple((a, b) for a in ("rfdn_ibmd_chfab", "ibmdn_stable") for b in ("imdn", "rfdn", "bsrn")),
          ("set5",), ("psnr",), NON_INFERIORITY_DB),
)
KEEPS = {("imdn_icmd", "imdn")}
"""Comparisons whose claim is "keeps or improves" (non-inferiority with :data:`NON_INFERIORITY_DB`)."""


def claim_list() -> pd.DataFrame:
    """The claims as tested: statement, table, comparisons (A beats B), benchmarks, metrics, margin, and the rule."""
    return pd.DataFrame([{"claim": c.number, "statement": c.statement, "table": c.table,
                          "comparisons": "; ".join(f"{a} > {b}" for a, b in c.pairs), "datasets": ", ".join(c.datasets),
                          "metrics": ", ".join(c.metrics),
                          "margin (dB)": NON_INFERIORITY_DB if c.margin or set(c.pairs) & KEEPS else 0.0}
                         for c in CLAIMS]).assign(rule=RULE)


# ---------------------------------------------------------------------------------------------- per run


def run_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, benchmark, metric): the mean over the benchmark's images (schema ``study_runs``)."""
    rows = []
    for rec in records:
        images = pd.DataFrame(rec["per_image"])
        for dataset, g in images.groupby("dataset", sort=True):
            for metric in ("psnr", "ssim", "lpips"):
                if metric in g and g[metric].notna().any():
                    vals = g[metric].dropna()
                    rows.append({"run": rec["run"], "model": rec["model"], "seed": rec["seed"], "scale": rec["scale"],
                                 "dataset": dataset, "metric": metric, "value": float(vals.mean()),
                                 "n_images": len(vals), "steps": rec["steps"], "train_s": rec["wall_s"],
                                 "commit": ((rec.get("git") or {}).get("sha") or "")[:12]})
    return pd.DataFrame(rows, columns=list(STUDY_RUNS.columns))


def budget_text(cfg) -> str:
    return (f"{cfg.profile}: {cfg.iterations} iterations x batch {cfg.batch_size} x HR {cfg.patch_size}px, "
            f"lr {cfg.lr:g} {cfg.schedule}, L1")


# ------------------------------------------------------------------------------------------------ tables


def _row_models(name: str) -> list[tuple[str, str, str | None]]:
    """(row model, run model, discriminator) per row of table ``name`` (a GAN run is recorded under its
    generator's name)."""
    from ibmdn.experiments.tables import RUN_ALIASES, TABLES
    from ibmdn.models.gan import GAN_PAIRS

    spec = TABLES[name]
    if spec.gan:
        return [(GAN_PAIRS[m][0], GAN_PAIRS[m][0], GAN_PAIRS[m][1]) for m in spec.models]
    return [(m, RUN_ALIASES.get(m, m), None) for m in spec.models]


def study_table(name: str, runs: pd.DataFrame, bicubic: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table ``name`` from the per-run frame (schema ``study``; see the module docstring)."""
    from ibmdn.experiments.study import study_recipe
    from ibmdn.experiments.tables import TABLES
    from ibmdn.models import build_model, count_params

    spec = TABLES[name]
    paper = reported(name).set_index(["model", "scale", "dataset", "metric"])["value"]
    rows: list[dict[str, Any]] = []

    def add(kind, model, scale, dataset, metric, vals=None, seeds=(), n_images=None, note="", budget="", value=None):
        vals = [] if vals is None else [float(v) for v in vals]
        mean = value if value is not None else (sum(vals) / len(vals) if vals else math.nan)
        std = pd.Series(vals).std(ddof=1) if len(vals) > 1 else math.nan
        ref = paper.get((model, scale, dataset, metric), math.nan)
        rows.append({"table": name, "kind": kind, "model": model, "scale": scale, "dataset": dataset,
                     "metric": metric, "value": mean, "std": std, "n_seeds": len(vals), "seeds": ",".join(str(int(x)) for x in seeds),
                     "n_images": n_images, "paper": ref, "diff": mean - ref, "budget": budget, "note": note})

    for scale in spec.scales:
        budget = budget_text(study_recipe(0, scale))
        for row_model, run_model, disc in _row_models(name):
            sel = runs[(runs["model"] == run_model) & (runs["scale"] == scale)]
            for dataset in spec.datasets:
                for metric in spec.metrics:
                    r = sel[(sel["dataset"] == dataset) & (sel["metric"] == metric)].sort_values("seed")
                    add("trained", row_model, scale, dataset, metric, r["value"], r["seed"],
                        int(r["n_images"].max()) if len(r) else None, "" if len(r) else NOT_TRAINED,
                        budget if len(r) else "")
            g = count_params(build_model(row_model, scale))
            add("trained", row_model, scale, "", "params", value=float(g))
            if disc:
                d = count_params(build_model(disc, scale))
                add("trained", disc, scale, "", "params", value=float(d))
                add("trained", row_model.removesuffix("_g"), scale, "", "params", value=float(g + d))
        if bicubic is not None:
            ref = bicubic[bicubic["scale"] == scale]
            for dataset in spec.datasets:
                for metric in spec.metrics:
                    r = ref[(ref["dataset"] == dataset) & (ref["metric"] == metric)]
                    if len(r):
                        add("reference", "bicubic", scale, dataset, metric, value=float(r["value"].iloc[0]),
                            n_images=int(r["n_images"].iloc[0]), note="bicubic upscaling of the same LR images")
    df = pd.DataFrame(rows, columns=list(STUDY.columns))
    return df.sort_values(["kind", "model", "dataset", "metric"], kind="mergesort").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ claims


def _welch(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    """95 % Welch interval of mean(a) - mean(b) (NaN with fewer than two values on a side)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    d = a.mean() - b.mean()
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    h = float(stats.t.ppf(0.975, df)) * se
    return d - h, d + h


def seed_variance(runs: pd.DataFrame) -> dict[tuple[int, str, str], tuple[float, int]]:
    """Per (scale, dataset, metric): the seed variance pooled over every network with two or more seeds
    (sum of (n_i - 1) s_i^2 over sum of (n_i - 1)) and its degrees of freedom."""
    out = {}
    for (scale, dataset, metric), g in runs.groupby(["scale", "dataset", "metric"], sort=True):
        per = g.groupby("model")["value"].agg(["var", "count"])
        per = per[per["count"] >= 2]
        df = int((per["count"] - 1).sum())
        if df:
            out[(int(scale), dataset, metric)] = (float(((per["count"] - 1) * per["var"]).sum() / df), df)
    return out


def _pooled(a: pd.Series, b: pd.Series, variance: tuple[float, int] | None) -> tuple[float, float]:
    """95 % t interval of mean(a) - mean(b) with a seed variance estimated elsewhere (``(s^2, df)``; NaN
    without one or without a value on a side)."""
    from scipy import stats

    if variance is None or not len(a) or not len(b):
        return math.nan, math.nan
    d = a.mean() - b.mean()
    h = float(stats.t.ppf(0.975, variance[1])) * math.sqrt(variance[0] * (1 / len(a) + 1 / len(b)))
    return d - h, d + h


def _interval(a: pd.Series, b: pd.Series, variance: tuple[float, int] | None) -> tuple[float, float, str]:
    """Welch over the seeds when both sides have two, else the pooled interval when ``variance`` is given:
    ``(low, high, "welch" | "pooled" | "")``."""
    lo, hi = _welch(a, b)
    if not math.isnan(lo):
        return lo, hi, "welch"
    lo, hi = _pooled(a, b, variance)
    return lo, hi, "" if math.isnan(lo) else "pooled"


RESOLVE_MAX_SEEDS = 100
"""The largest number of seeds per side :func:`seeds_to_resolve` looks at."""


def seeds_to_resolve(a: pd.Series, b: pd.Series, margin: float, variance: tuple[float, int] | None = None) -> float:
    """Seeds per side at which the 95 % interval of mean(a) - mean(b) would exclude ``-margin``, if the means
    and the seed spread stayed as observed: a planning figure for a comparison that is not resolvable, not
    a test (the means will move). Welch's interval from each side's sample variance; with fewer than two
    seeds on a side the pooled ``variance`` ``(s^2, df)`` and its fixed degrees of freedom. NaN when more
    than :data:`RESOLVE_MAX_SEEDS` would be needed or nothing can be said."""
    from scipy import stats

    dist = abs(a.mean() - b.mean() + margin) if len(a) and len(b) else math.nan
    if len(a) >= 2 and len(b) >= 2:
        va, vb = a.var(ddof=1), b.var(ddof=1)
        df = lambda n: (va + vb) ** 2 * (n - 1) / (va**2 + vb**2) if va + vb > 0 else math.inf
        half = lambda n: float(stats.t.ppf(0.975, df(n))) * math.sqrt((va + vb) / n)
    elif variance is not None:
        half = lambda n: float(stats.t.ppf(0.975, variance[1])) * math.sqrt(2 * variance[0] / n)
    else:
        return math.nan
    if not dist > 0:
        return math.nan
    return next((float(n) for n in range(max(len(a), len(b), 2), RESOLVE_MAX_SEEDS + 1) if half(n) < dist), math.nan)


def verdict(ci_low: float, ci_high: float, margin: float) -> str:
    """The rule of :data:`RULE` for one comparison."""
    if math.isnan(ci_low):
        return "not tested"
    if ci_low > -margin:
        return "reproduced"
    if ci_high < -margin:
        return "contradicted"
    return "not resolvable"


def claim_verdict(verdicts: list[str]) -> str:
    """A claim's verdict from its comparisons' (counts of each kind when they disagree)."""
    n = {v: verdicts.count(v) for v in VERDICTS}
    if n["not tested"] == len(verdicts):
        return "not tested"
    if n["reproduced"] == len(verdicts):
        return "reproduced"
    if n["contradicted"] == len(verdicts):
        return "contradicted"
    parts = [f"{v} {n[v]}/{len(verdicts)}" for v in VERDICTS if n[v]]
    return "mixed: " + ", ".join(parts)


def claims_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every comparison of :data:`CLAIMS` with its advantage, interval and verdict (schema ``claims``)."""
    from ibmdn.experiments.study import ONE_SEED
    from ibmdn.experiments.tables import RUN_ALIASES

    pooled = seed_variance(runs)
    rows = []
    for c in CLAIMS:
        paper = reported(c.table).set_index(["model", "dataset", "metric"])["value"]
        scale = 4 if c.table == "table5" else 2
        sub = runs[runs["scale"] == scale]
        first = len(rows)
        for better, worse in c.pairs:
            margin = NON_INFERIORITY_DB if (better, worse) in KEEPS else c.margin
            for dataset in c.datasets:
                for metric in c.metrics:
                    sign = METRICS[metric].sign
                    vals = [sub[(sub["model"] == RUN_ALIASES.get(m, m)) & (sub["dataset"] == dataset)
                                & (sub["metric"] == metric)]["value"] for m in (better, worse)]
                    var = pooled.get((scale, dataset, metric)) if c.table in ONE_SEED else None
                    lo, hi, interval = _interval(vals[0], vals[1], var)
                    m = margin if metric == "psnr" else 0.0
                    needed = seeds_to_resolve(vals[0], vals[1], sign * m, var)
                    lo, hi = (lo, hi) if sign > 0 else (-hi, -lo)
                    mb, mw = (v.mean() if len(v) else math.nan for v in vals)
                    pa = sign * (paper.get((better, dataset, metric), math.nan) - paper.get((worse, dataset, metric),
                                                                                              math.nan))
                    rows.append({"claim": c.number, "statement": c.statement, "table": c.table, "better": better,
                                 "worse": worse, "dataset": dataset, "metric": metric,
                                 "margin": margin if metric == "psnr" else 0.0, "mean_better": mb, "mean_worse": mw,
                                 "advantage": sign * (mb - mw), "ci_low": lo, "ci_high": hi, "n_better": len(vals[0]),
                                 "n_worse": len(vals[1]), "interval": interval, "paper_advantage": pa,
                                 "seeds_to_resolve": needed})
        for r in rows[first:]:
            r["verdict"] = verdict(r["ci_low"], r["ci_high"], r["margin"])
            if r["verdict"] != "not resolvable":
                r["seeds_to_resolve"] = math.nan
        cv = claim_verdict([r["verdict"] for r in rows[first:]])
        for r in rows[first:]:
            r["claim_verdict"] = cv
    return pd.DataFrame(rows, columns=list(CLAIMS_SCHEMA.columns))


# ------------------------------------------------------------------------------------------------ writing


def bicubic_frame(path: str | Path = "results/study/bicubic.csv") -> pd.DataFrame | None:
    """The bicubic reference rows (``dataset, scale, metric, value, n_images``), when recorded."""
    from ibmdn.results import read_table

    p = Path(path)
    return read_table(p) if p.is_file() else None


def _meta(records: Path, recs: list[dict[str, Any]], results: Path) -> dict[str, Any]:
    """Provenance of the rendered files: the records they come from (relative to the results folder; no date
    or commit of the rendering, so that re-rendering unchanged records from anywhere changes no file)."""
    meta = provenance(command="python -m ibmdn.experiments.claims", records=os.path.relpath(records, results),
                      n_runs=len(recs),
                      runs={r["run"]: {"commit": (r.get("git") or {}).get("sha"), "date_utc": r.get("date_utc"),
                                       "train_s": r.get("wall_s"), "eval_s": r.get("eval_s")} for r in recs},
                      rule=RULE, non_inferiority_db=NON_INFERIORITY_DB)
    for k in ("git", "date_utc", "argv", "device", "platform"):  # of the rendering machine: irrelevant here
        meta.pop(k, None)
    return meta


def render_table(name: str, records: Path = RECORDS, results: Path = Path("results"),
                 figures: Path = Path("figures")) -> tuple[pd.DataFrame, Path, Path]:
    """Write ``study_runs.csv``, ``<name>.csv`` and ``<figures>/<name>.png`` from the records; return the
    table and the two paths."""
    from ibmdn.experiments import plots

    recs = load_records(records)
    runs = run_frame(recs)
    meta = _meta(records, recs, results)
    runs_csv = write_table(runs, Path(results) / "study_runs.csv", meta, schema="study_runs")
    table = study_table(name, runs, bicubic_frame(Path(records) / "bicubic.csv"))
    csv = write_table(table, Path(results) / f"{name}.csv", meta, schema="study")
    return table, csv, plots.study_figure(csv, runs_csv, Path(figures) / f"{name}.png")


def render_claims(records: Path = RECORDS, results: Path = Path("results"),
                  figures: Path = Path("figures")) -> tuple[pd.DataFrame, Path, Path]:
    """Write ``claims.csv`` and ``<figures>/claims.png`` from the records; return the claims and the paths."""
    from ibmdn.experiments import plots

    recs = load_records(records)
    claims = claims_table(run_frame(recs))
    csv = write_table(claims, Path(results) / "claims.csv", _meta(records, recs, results), schema="claims")
    return claims, csv, plots.claims_figure(csv, Path(figures) / "claims.png")


def _resolve_text(g: pd.DataFrame) -> str:
    """``3 with <= 10, 4 with 11-100, 2 more`` for a claim's not-resolvable comparisons (empty without one)."""
    open_ = g[g["verdict"] == "not resolvable"]
    if not len(open_):
        return ""
    n = pd.to_numeric(open_["seeds_to_resolve"], errors="coerce")
    parts = [(int((n <= 10).sum()), "with <= 10"), (int(((n > 10) & (n <= RESOLVE_MAX_SEEDS)).sum()),
             f"with 11-{RESOLVE_MAX_SEEDS}"), (int(n.isna().sum()), f"more than {RESOLVE_MAX_SEEDS}")]
    return ", ".join(f"{k} {what}" for k, what in parts if k)


def summary(claims: pd.DataFrame) -> pd.DataFrame:
    """One line per claim: its verdict and the range of the measured advantages beside the paper's."""
    rows = []
    for number, g in claims.groupby("claim", sort=True):
        tested = g[g["verdict"] != "not tested"]
        rng = (f"{tested['advantage'].min():+.3f} to {tested['advantage'].max():+.3f}" if len(tested) else "")
        pap = g["paper_advantage"].dropna()
        rows.append({"claim": number, "statement": g["statement"].iloc[0], "verdict": g["claim_verdict"].iloc[0],
                     "comparisons": len(g), "tested": len(tested), "advantage (ours)": rng,
                     "advantage (paper)": f"{pap.min():+.3f} to {pap.max():+.3f}" if len(pap) else "",
                     "not resolvable: seeds per side to resolve": _resolve_text(g)})
    return pd.DataFrame(rows)


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """A study table as the notebooks show it: one line per (network, benchmark), per metric the mean, the
    standard deviation over seeds and the paper's value; seeds and parameter count beside."""
    q = table[table["metric"] != "params"]
    params = table[table["metric"] == "params"].set_index("model")["value"]
    metrics = [m for m in ("psnr", "ssim", "lpips") if m in set(q["metric"])]
    rows = []
    for (kind, model, dataset), g in q.groupby(["kind", "model", "dataset"], sort=False):
        row = {"kind": kind, "model": model, "dataset": dataset, "params": params.get(model)}
        for m in metrics:
            r = g[g["metric"] == m]
            for col, what in (("value", "ours"), ("std", "std"), ("paper", "paper")):
                row[f"{m} {what}"] = r[col].iloc[0] if len(r) else math.nan
        row["seeds"] = int(g["n_seeds"].max())
        rows.append(row)
    out = pd.DataFrame(rows)
    out["params"] = out["params"].astype("Float64").round().astype("Int64")
    return out


def write_all(records: Path = RECORDS, results: Path = Path("results"), figures: Path = Path("figures"),
              tables: tuple[str, ...] = ("table1", "table2", "table3", "table4", "table5")) -> dict[str, Path]:
    """Every study table with its figure, and ``claims.csv``; return the paths."""
    out = {}
    for name in tables:
        _, out[name], out[f"{name}.png"] = render_table(name, records, results, figures)
    _, out["claims"], out["claims.png"] = render_claims(records, results, figures)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", default=RECORDS, type=Path)
    ap.add_argument("--results", default=Path("results"), type=Path)
    ap.add_argument("--figures", default=Path("figures"), type=Path)
    args = ap.parse_args(argv)
    for name, path in write_all(args.records, args.results, args.figures).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
