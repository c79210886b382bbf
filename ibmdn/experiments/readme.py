"""Render the README's and docs/RESULTS.md's tables from ``results/*.csv``; no number in them is typed by hand.

Each section of the README between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` is replaced by the
markdown rendering of one validated result table. A table that has not been generated yet renders as a
one-line placeholder saying which command makes it. Commit and date come from the tables' ``.meta.json``
sidecars, so re-rendering unchanged results leaves the README unchanged.

Usage::

    python -m ibmdn.experiments.readme [--readme README.md docs/RESULTS.md] [--results results] [--check]

``--check`` writes nothing and exits with status 1 when a file is out of date. The README is the front
page (the claims, the checkpoint and audit summaries); ``docs/RESULTS.md`` holds every rendered table.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ibmdn.results import atomic_write_bytes, read_meta, read_table
from ibmdn.schemas import TOLERANCES

__all__ = ["SECTIONS", "main", "render_claims", "render_paper_table", "render_param_audit", "render_section",
           "render_study_table", "update_readme"]


@dataclass(frozen=True)
class Section:
    """A README section: the CSV under the results folder, its renderer, and the command that makes it."""

    csv: str
    render: Callable[[pd.DataFrame], str]
    command: str


def _cell(v: object) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _int(v: object) -> str:
    return "" if v is None or pd.isna(v) else f"{int(v):,}"


def markdown_table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    """A GitHub markdown table; ``align`` holds one of ``l``/``r``/``c`` per column (default left)."""
    sep = {"l": ":--", "r": "--:", "c": ":-:"}
    marks = [sep[a] for a in (align or "l" * len(header))]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_param_audit(df: pd.DataFrame) -> str:
    """The parameter audit: one line per (model, scale), notes de-duplicated into a numbered list."""
    order = {t: i for i, t in enumerate(TOLERANCES)}
    df = df.assign(_o=df["tolerance"].map(order)).sort_values(["_o", "model", "scale"], kind="mergesort")
    notes: dict[str, int] = {}
    rows = []
    for r in df.itertuples(index=False):
        ref = ""
        if r.note:
            ref = f"[{notes.setdefault(r.note, len(notes) + 1)}]"
        if pd.isna(r.diff):
            diff = ""
        else:
            diff = f"{int(r.diff):+,} ({r.diff_pct:+.2f} %)"
        rows.append(
            [
                f"`{r.model}`",
                f"x{r.scale}",
                r.paper_label,
                _int(r.params),
                _int(r.paper_params),
                _int(r.reference) + (f" ({r.reference_source})" if r.reference_source else ""),
                diff,
                r.tolerance,
                f"**{r.status}**" if r.status in ("fail", "error") else r.status,
                ref,
            ]
        )
    counts = df["status"].value_counts()
    summary = ", ".join(
        f"{s}: {int(counts[s])}" for s in ("pass", "fail", "error", "missing", "documented") if s in counts
    )
    out = [
        (
            f"{len(df)} (model, scale) rows; {summary}. `exact`: equal to the upstream definition's count; "
            "`1%` / `3%`: within that fraction of the paper's count; `contradiction`: the paper contradicts "
            "itself, the note says what was chosen (not asserted)."
        ),
        "",
        markdown_table(
            [
                "model",
                "scale",
                "paper's row",
                "ours",
                "paper",
                "reference",
                "diff",
                "tolerance",
                "status",
                "note",
            ],
            rows,
            "lllrrrrlll",
        ),
    ]
    if notes:
        out += ["", "Notes:", ""]
        out += [f"{i}. {_cell(text)}" for text, i in notes.items()]
    return "\n".join(out)


def _num(v: object, decimals: int) -> str:
    if v is None or pd.isna(v):
        return ""
    return f"{int(v):,}" if decimals == 0 else f"{float(v):.{decimals}f}"


def _diff(v: object, decimals: int) -> str:
    if v is None or pd.isna(v):
        return ""
    if round(float(v), decimals) == 0:
        return "0"
    return f"{int(v):+,}" if decimals == 0 else f"{float(v):+.{decimals}f}"


def render_paper_table(df: pd.DataFrame) -> str:
    """A trained table (``results/table<N>.csv``) beside the paper: Set5 rows and parameter counts.

    Every measured Set5 number with the paper's and the difference; Table VI's quoted literature rows too.
    The other benchmarks are in the CSV. The profile and budget come from the sidecar when present.
    """
    from ibmdn.experiments.tables import METRIC_DECIMALS, TABLES, compare

    table = str(df["table"].iloc[0])
    spec = TABLES[table]
    wide = compare(df, table)
    wide = wide[wide["dataset"].isin(["set5", ""])]
    metrics = [m for m in spec.metrics if f"{m} ours" in wide.columns]
    header = ["kind", "model", "weights", "scale", "params (ours / paper)"]
    for m in metrics:
        header += [f"{m.upper()} ours", "paper", "diff"]
    header += ["n", "note"]
    align = "llllr" + "rrr" * len(metrics) + "rl"
    rows = []
    for r in wide.to_dict("records"):
        params = " / ".join(x for x in (_num(r.get("params ours"), 0), _num(r.get("params paper"), 0)) if x)
        row = [r["kind"], f"`{r['model']}`", r["weights"], f"x{r['scale']}", params]
        for m in metrics:
            dec = METRIC_DECIMALS[m]
            row += [_num(r.get(f"{m} ours"), dec), _num(r.get(f"{m} paper"), dec), _diff(r.get(f"{m} diff"), dec)]
        row += ["" if pd.isna(r.get("n_images")) else str(int(r["n_images"])), str(r.get("note") or "")]
        rows.append(row)
    profiles = sorted({w for w in df["weights"] if w not in ("official", "none")})
    if profiles and all(p.startswith("shipped") for p in profiles):
        return (f"{spec.title}. Our rows: the package's shipped IBMDN checkpoints (`ibmdn upscale`'s defaults; "
                f"recipe and budget in `ibmdn/weights/*.json`), far below the paper's training budget. Set5 only "
                f"(all benchmarks: `results/{table}.csv`); `n` = images scored.\n\n" + markdown_table(header, rows, align))
    prov = ((df.attrs.get("meta") or {}).get("provenance") or {})
    budget = prov.get("budget") or {}
    spent = (f" ({budget['iterations']:,} iterations of batch {budget['batch_size']}, HR patch "
             f"{budget['patch_size']})") if budget else ""
    lines = [(f"{spec.title}. Networks trained here under profile `{', '.join(profiles) or '-'}`{spent}; the "
              f"paper: {spec.epochs}. Set5 only (all benchmarks: `results/{table}.csv`); `n` = images scored.")]
    if "smoke" in profiles:
        lines.append("The `smoke` profile checks that every network trains, evaluates and reaches this table: its "
                     "numbers are not comparable with the paper's (run `make paper PROFILE=short` or `paper`).")
    return "\n".join(lines) + "\n\n" + markdown_table(header, rows, align)


def _pm(value: object, std: object, decimals: int) -> str:
    if value is None or pd.isna(value):
        return "not trained"
    return _num(value, decimals) + ("" if std is None or pd.isna(std) else f" ± {float(std):.{decimals}f}")


def render_study_table(df: pd.DataFrame) -> str:
    """A study table (``results/table<N>.csv``, schema ``study``): per network the mean ± standard deviation
    over seeds beside the paper's value; Table I's PSNR on its four benchmarks, the others' Set5 metrics."""
    from ibmdn.experiments.tables import DATASET_NAMES, METRIC_DECIMALS, TABLES

    table = str(df["table"].iloc[0])
    spec = TABLES[table]
    q = df[df["metric"] != "params"]
    params = df[df["metric"] == "params"].set_index("model")[["value", "paper"]]
    cols = ([(d, "psnr") for d in spec.datasets] if len(spec.datasets) > 1 else [("set5", m) for m in spec.metrics])
    header = ["model", "params (ours / paper)"]
    for d, m in cols:
        header += [f"{DATASET_NAMES[d]} {m.upper()} ours", "paper"]
    header.append("seeds")
    rows = []
    for (kind, model), g in q.groupby(["kind", "model"], sort=False):
        key = g.set_index(["dataset", "metric"])
        pr = params.loc[model] if model in params.index else None
        row = [f"`{model}`" + (" (reference)" if kind == "reference" else ""),
               "" if pr is None else " / ".join(x for x in (_num(pr["value"], 0), _num(pr["paper"], 0)) if x)]
        for d, m in cols:
            r = key.loc[(d, m)] if (d, m) in key.index else None
            dec = METRIC_DECIMALS[m]
            row += ["" if r is None else _pm(r["value"], r["std"], dec) if kind == "trained" else _num(r["value"], dec),
                    "" if r is None else _num(r["paper"], dec)]
        row.append(str(int(g["n_seeds"].max())) if kind == "trained" else "")
        rows.append(row)
    budget = next((b for b in df["budget"] if b), "")
    lines = [(f"{spec.title}. Mean ± standard deviation over seeds, every network trained here at one budget "
              f"({budget or 'no run recorded yet'}); the paper: {spec.epochs}. Per-run records: `results/study/`; "
              f"all metrics and benchmarks: `results/{table}.csv`; figure: `figures/{table}.png`.")]
    if not budget:
        lines.append("No run of this table is recorded yet (see `docs/results-and-provenance.md` for its cost): "
                     "the rows give the parameter counts and the paper's values only.")
    return "\n".join(lines) + "\n\n" + markdown_table(header, rows, "ll" + "rr" * len(cols) + "r")


def render_claims(df: pd.DataFrame) -> str:
    """The verdict on each claim of the paper (``results/claims.csv``), with the range of the measured advantages."""
    from ibmdn.experiments.claims import RULE, summary

    s = summary(df)
    rows = [[str(r["claim"]), r["statement"], f"**{r['verdict']}**", f"{r['tested']} / {r['comparisons']}",
             r["advantage (ours)"], r["advantage (paper)"], r["not resolvable: seeds per side to resolve"]]
            for r in s.to_dict("records")]
    head = ("Each claim is a set of comparisons (network A beats B on a metric and benchmark; the advantage is A - B, "
            f"B - A for LPIPS). Rule: {RULE}. The last column counts the not-resolvable comparisons by the seeds per "
            "side their interval would need to exclude the margin if the means and spreads stayed as observed (a "
            "planning figure, not a test). Every comparison: `results/claims.csv`.")
    return head + "\n\n" + markdown_table(["#", "claim", "verdict", "tested", "advantage, ours", "advantage, paper",
                                           "not resolvable: seeds per side to resolve"], rows, "lllrrrl")


def _commit(git: dict | None) -> str:
    git = git or {}
    return f"commit `{str(git.get('sha'))[:10]}`" + (" (dirty tree)" if git.get("dirty") else "")


def _device_words(prov: dict) -> str:
    dev = prov.get("device") or {}
    if dev.get("cuda"):
        return dev["cuda"]
    isa = [dev["cpu_isa"]] if dev.get("cpu_isa") else []
    isa += [] if dev.get("cpu_bf16") is None else ["native bf16" if dev["cpu_bf16"] else "no native bf16"]
    return f"{dev.get('cpu', 'CPU')}" + (f" ({', '.join(isa)})" if isa else "")


def _rounds(par: dict) -> str:
    return f", interleaved in {par['rounds']} rounds" if par.get("rounds") else ""


def latency_metric(df: pd.DataFrame) -> str:
    """The latency an ``ibmdn bench`` table ranks paths by: ``latency_best`` (the least-disturbed round) where
    it was measured in rounds, else ``latency`` (the median of all calls)."""
    return "latency_best" if (df["metric"] == "latency_best").any() else "latency"


def ratio_text(a: dict, key: str) -> str:
    """``0.86x (median of rounds 0.90x, rounds 0.84-1.10)``: an acceptance ratio of ``ibmdn bench`` with its
    spread over the rounds (``_median``, ``_min``, ``_max``, where the dict has them)."""
    text = f"{a.get(key, float('nan')):.2f}x"
    spread = [f"median of rounds {a[key + '_median']:.2f}x"] if a.get(key + "_median") is not None else []
    if a.get(key + "_min") is not None and a.get(key + "_max") is not None:
        spread.append(f"rounds {a[key + '_min']:.2f}-{a[key + '_max']:.2f}")
    return text + (f" ({', '.join(spread)})" if spread else "")


def render_bench(df: pd.DataFrame) -> str:
    """Per input size: each model's fastest inference path (latency, peak memory), its cost and train step."""
    prov = ((df.attrs.get("meta") or {}).get("provenance") or {})
    par = prov.get("parameters") or {}
    out = [f"`ibmdn bench` on {_device_words(prov)} ({prov.get('threads')} threads), x{par.get('scale')}, batch 1, "
           f"fp32 unless a path says bf16, median of {par.get('repeats')} calls after {par.get('warmup')} warm-up"
           f"{_rounds(par)}; paths measured: "
           f"{', '.join(par.get('paths', []))}; involution: {', '.join(par.get('impls', []))}; "
           f"{_commit(prov.get('git'))}, {str(prov.get('date_utc', ''))[:10]}."]
    val = {(r.model, r.weights, r.dataset, r.metric): r.value for r in df.itertuples(index=False)}
    params = {m: v for (m, w, d, k), v in val.items() if k == "params"}
    train = df[df["metric"] == "train_step"]
    for ds in sorted(d for d in df["dataset"].dropna().unique() if str(d).startswith("lr")):
        sub = df[df["dataset"] == ds]
        lat = sub[sub["metric"] == latency_metric(sub)]
        rows = []
        for model, g in lat.groupby("model", sort=False):
            best = g.loc[g["value"].idxmin()]
            t = train[train["model"] == model]
            tbest = t.loc[t["value"].idxmin()] if len(t) else None
            rows.append([f"`{model}`", _int(params.get(model)), _num(val.get((model, "reference", ds, "macs"), 0) / 1e9, 2),
                         f"`{best['weights']}`", _num(best["value"], 2),
                         _num(val.get((model, best["weights"], ds, "latency")), 2),
                         _num(val.get((model, best["weights"], ds, "peak_mem")), 1),
                         _num(val.get((model, "eager-unfold" if (model, "eager-unfold", ds, "latency") in val
                                       else "eager", ds, "latency")), 2),
                         "" if tbest is None else f"{_num(tbest['value'], 1)} (`{tbest['weights']}`)",
                         "" if tbest is None else _num(val.get((model, tbest["weights"], tbest["dataset"],
                                                                "train_peak_mem")), 0)])
        out.append(f"\nLR input {ds[2:]}:\n")
        out.append(markdown_table(["model", "params", "GMACs", "fastest path", "ms (best round)", "ms (median)", "peak MiB", "eager ms (reference)",
                                   "train step ms, batch 16 HR 192", "train peak MiB"], rows, "lrrlrrrrrr"))
    for a in prov.get("acceptance", []):
        out.append(f"\nibmdn against {a['peer']} (fastest paths, {a['dataset'][2:]}): latency "
                   f"{ratio_text(a, 'latency_vs_peer')}; against its own unfold reference: latency "
                   f"{ratio_text(a, 'latency_vs_reference')} (vs `{a.get('reference_path')}`, the unfold "
                   f"form's fastest unfused path), peak memory {a.get('memory_vs_reference', float('nan')):.2f}x "
                   f"(`{a.get('memory_path', a.get('model_path'))}` vs `eager-unfold`) (targets: at most 0.5x each).")
    return "\n".join(out)


def render_short_sweep(df: pd.DataFrame) -> str:
    """The `short` profile at x2, several networks and recipe variants: final and best Set5 PSNR-Y."""
    meta = (df.attrs.get("meta") or {}).get("provenance") or {}
    runs = meta.get("runs") or {}
    any_run = next(iter(runs.values()), {})
    b = any_run.get("budget") or {}
    val = {(r.model, r.weights, r.metric): r.value for r in df.itertuples(index=False)}
    rows = []
    for (model, weights) in sorted({(m, w) for m, w, _ in val}, key=lambda k: -val.get((k[0], k[1], "psnr"), 0)):
        hist = " ".join(f"{h['psnr']:.2f}" for h in (runs.get(f"{model}-{weights}") or {}).get("val_history", []))
        rows.append([f"`{model}`", f"`{weights}`", _num(val.get((model, weights, "psnr")), 3),
                     _num(val.get((model, weights, "best_psnr")), 3), hist,
                     _num(val.get((model, weights, "train_time")), 0)])
    gits = {(r["git"].get("sha"), r["git"].get("dirty")) for r in runs.values() if r.get("git")}
    dirty = any(d for _, d in gits)
    commit = (_commit(meta.get("git")) if len(gits) <= 1 and not dirty
              else "commits per run in the sidecar" + (", some from a dirty tree" if dirty else ""))
    head = (f"`ibmdn train --profile short --scale 2` ({b.get('iterations')} iterations of batch {b.get('batch_size')}, "
            f"HR patch {b.get('patch_size')}) on {_device_words(meta)}: {meta.get('command')}; {commit}; variants: "
            f"`configs/short_sweep/*.toml`. Set5 PSNR-Y (bicubic 33.66 dB).")
    return head + "\n\n" + markdown_table(["model", "recipe", "final dB", "best dB", "validation every 250 steps",
                                            "seconds"], rows, "llrrlr")


def render_stability(df: pd.DataFrame) -> str:
    """Involution stability: eval-mode growth, blow-ups, train/eval agreement, worst case against bicubic."""
    meta = (df.attrs.get("meta") or {}).get("provenance") or {}
    val = {(r.model, r.weights, r.metric): r.value for r in df.itertuples(index=False)}
    cols = [("growth_train", "growth, train mode", 2), ("growth_eval", "growth, eval mode", 2),
            ("patches_out_of_range", "patches out of [-0.5, 1.5]", 0), ("max_abs_output", "max abs output", 3),
            ("train_eval_psnr", "train vs eval dB", 1), ("worst_gain_vs_bicubic", "worst dB vs bicubic", 2),
            ("images_much_worse_than_bicubic", "images > 1 dB below bicubic", 0)]
    rows = []
    for model, weights in sorted({(m, w) for m, w, _ in val}, key=lambda k: ("superseded" in k[1], k)):
        rows.append([f"`{model}`", f"`{weights}`"] + [
            _int(val.get((model, weights, k))) if d == 0 else (f"{val.get((model, weights, k)):.3g}"
                                                              if k == "max_abs_output" else _num(val.get((model, weights, k)), d))
            for k, _, d in cols])
    patches = meta.get("patches") or {}
    head = (f"`python -m ibmdn.experiments.stability` on {_device_words(meta)}, x2, {_commit(meta.get('git'))}: the "
            f"{patches.get('n')} most contrasted {patches.get('size')}x{patches.get('size')} LR patches of T91 (growth = "
            f"exponent p of |net(a x)| ~ a^p between a = 1 and 2, median over patches; 1 = linear), and "
            f"{len(meta.get('contrast_suite') or [])} full-contrast patterns and Urban100 tiles against bicubic "
            f"interpolation. `*-superseded`: weights of the earlier BSConv-S IBMDN, no longer shipped.")
    return head + "\n\n" + markdown_table(["model", "weights"] + [c[1] for c in cols], rows, "ll" + "r" * len(cols))


def render_bench_bf16(df: pd.DataFrame) -> str:
    """Each fp32 path of ``ibmdn bench`` beside the same path in bf16 (latency of the best round, the median
    of rounds, peak memory) and the speed-up, from one interleaved run."""
    prov = ((df.attrs.get("meta") or {}).get("provenance") or {})
    par = prov.get("parameters") or {}
    val = {(r.model, r.weights, r.dataset, r.metric): r.value for r in df.itertuples(index=False)}
    rows = []
    for model, weights, ds, metric in sorted(val):
        parts = weights.split("-")
        if metric != "latency_best" or "bf16" not in parts:
            continue
        base = "-".join(t for t in parts if t != "bf16")
        fp32, bf16 = val.get((model, base, ds, "latency_best")), val[(model, weights, ds, metric)]
        if fp32 is None:
            continue
        g = lambda w, k, d: _num(val.get((model, w, ds, k)), d)
        rows.append([f"`{model}`", ds[2:], f"`{base}`", _num(fp32, 1), g(base, "latency", 1), g(base, "peak_mem", 1),
                     _num(bf16, 1), g(weights, "latency", 1), g(weights, "peak_mem", 1), f"{fp32 / bf16:.2f}x"])
    head = (f"`ibmdn bench` on {_device_words(prov)} ({prov.get('threads')} threads), x{par.get('scale')}, batch 1, "
            f"median of {par.get('repeats')} calls after {par.get('warmup')} warm-up{_rounds(par)}; "
            f"{_commit(prov.get('git'))}, {str(prov.get('date_utc', ''))[:10]}. Each path in fp32 and with the model "
            f"and input cast to bfloat16; speed-up = fp32 / bf16, best rounds.")
    return head + "\n\n" + markdown_table(
        ["model", "LR", "path", "fp32 ms (best round)", "fp32 ms (median)", "fp32 peak MiB", "bf16 ms (best round)",
         "bf16 ms (median)", "bf16 peak MiB", "speed-up"], rows, "lllrrrrrrr")


def render_bench_train(df: pd.DataFrame) -> str:
    """The trainer's step per network and speed option, interleaved in rounds, with its ratio to the reference."""
    meta = (df.attrs.get("meta") or {}).get("provenance") or {}
    par = meta.get("parameters") or {}
    val = {(r.model, r.weights, r.metric): r.value for r in df.itertuples(index=False)}
    rows = []
    for model, weights in sorted({(m, w) for m, w, _ in val}, key=lambda k: val.get((k[0], k[1], "train_step"), 0)):
        g = lambda k, d: _num(val.get((model, weights, k)), d)
        rows.append([f"`{model}`", f"`{weights}`", g("train_step", 1), f"{g('train_step_min', 1)}-{g('train_step_max', 1)}",
                     g("train_step_ratio", 2), f"{g('train_step_ratio_min', 2)}-{g('train_step_ratio_max', 2)}"])
    head = (f"`{meta.get('command')}` on {_device_words(meta)} ({meta.get('threads')} threads), x{par.get('scale')}, "
            f"batch {par.get('batch')}, HR {par.get('hr')}; {par.get('rounds')} interleaved rounds of "
            f"{par.get('steps')} steps; {_commit(meta.get('git'))}, {str(meta.get('date_utc', ''))[:10]}. Ratio: "
            f"against `{par.get('reference')}` in the same round.")
    return head + "\n\n" + markdown_table(["model", "variant", "ms/step", "rounds", "ratio", "ratio over rounds"],
                                           rows, "llrrrr")


def render_checkpoint_eval(df: pd.DataFrame) -> str:
    """Published checkpoints on the four benchmarks, beside their published values."""
    from ibmdn.results import reported

    pub = reported("published", source="published")
    pv = {(r.model, int(r.scale), r.dataset, r.metric): r.value for r in pub.itertuples(index=False)}
    me = df[df["weights"] == "official"]
    val = {(r.model, int(r.scale), r.dataset, r.metric): (r.value, r.n_images) for r in me.itertuples(index=False)}
    order = ["set5", "set14", "bsd100", "urban100"]
    rows = []
    for model, scale in sorted({(m, s) for m, s, _, _ in val}):
        for ds in sorted({d for m, s, d, _ in val if (m, s) == (model, scale)}, key=lambda d: order.index(d)
                         if d in order else 99):
            p, n = val.get((model, scale, ds, "psnr"), (None, None))
            q, _ = val.get((model, scale, ds, "ssim"), (None, None))
            pp, pq = pv.get((model, scale, ds, "psnr")), pv.get((model, scale, ds, "ssim"))
            rows.append([f"`{model}`", f"x{scale}", ds, _num(p, 3), _num(pp, 2), _diff(None if pp is None else p - pp, 3),
                         _num(q, 4), _num(pq, 4), _diff(None if pq is None else q - pq, 4), _int(n)])
    return ("Official checkpoints evaluated here (`ibmdn eval-checkpoints`: Y channel, `scale` pixels shaved, "
            "MATLAB bicubic LR), beside the values their authors published (`ibmdn/reported/published.csv`).\n\n"
            + markdown_table(["model", "scale", "set", "PSNR", "published", "diff", "SSIM", "published", "diff", "n"],
                             rows, "lllrrrrrrr"))


_ORDER = ("set5", "set14", "bsd100", "urban100")


def render_checkpoint_summary(df: pd.DataFrame) -> str:
    """One line per published checkpoint: PSNR-Y on the four benchmarks, ours (published)."""
    from ibmdn.results import reported

    pub = reported("published", source="published")
    pv = {(r.model, int(r.scale), r.dataset): r.value for r in pub[pub["metric"] == "psnr"].itertuples(index=False)}
    me = df[(df["weights"] == "official") & (df["metric"] == "psnr")]
    val = {(r.model, int(r.scale), r.dataset): r.value for r in me.itertuples(index=False)}
    rows = []
    for model, scale in sorted({(m, s) for m, s, _ in val}):
        cells = []
        for ds in _ORDER:
            v, p = val.get((model, scale, ds)), pv.get((model, scale, ds))
            cells.append("" if v is None else _num(v, 3) + ("" if p is None else f" ({_num(p, 2)})"))
        rows.append([f"`{model}`", f"x{scale}", *cells])
    diffs = [abs(v - pv[k]) for k, v in val.items() if k in pv]
    return (f"PSNR-Y measured here (published in brackets); the largest difference is {max(diffs):.3f} dB "
            f"over {len(diffs)} published numbers. SSIM and the per-set details: [docs/RESULTS.md](docs/RESULTS.md)."
            "\n\n" + markdown_table(["checkpoint", "scale", "Set5", "Set14", "BSD100", "Urban100"], rows, "llrrrr"))


def render_shipped(df: pd.DataFrame) -> str:
    """The package's shipped checkpoints on the four benchmarks, beside bicubic on the same images."""
    from ibmdn.experiments.tables import DATASETS

    val = {(r.model, r.weights, int(r.scale), r.dataset): r.value for r in df[df["metric"] == "psnr"].itertuples()}
    bic = {}
    bic_path = Path(df.attrs.get("results", "results")) / "bicubic_eval.csv"
    if bic_path.is_file():
        b = read_table(bic_path)
        b = b[(b["weights"] == "none") & (b["metric"] == "psnr")]
        bic = {(int(r.scale), r.dataset): r.value for r in b.itertuples()}
    rows = []
    for model, weights, scale in sorted({k[:3] for k in val}, key=lambda k: (k[2], k[0], k[1])):
        cells = [_num(val.get((model, weights, scale, d)), 3) + (f" ({_num(bic[(scale, d)], 2)})" if (scale, d) in bic
                                                                  else "") for d in DATASETS]
        rows.append([f"`{model}`", weights, f"x{scale}", *cells])
    return ("PSNR-Y of the checkpoints `ibmdn upscale` ships (bicubic on the same images in brackets; "
            "`ibmdn eval-checkpoints`). Recipe, budget and training log of each: `ibmdn/weights/<name>.json`."
            "\n\n" + markdown_table(["model", "weights", "scale", "Set5", "Set14", "BSD100", "Urban100"], rows,
                                    "lllrrrr"))


def render_precision(df: pd.DataFrame) -> str:
    """Set5 PSNR-Y / SSIM-Y of checkpoints in float32 and bfloat16 (``precision_eval``), with the change."""
    prov = ((df.attrs.get("meta") or {}).get("provenance") or {})
    val = {(r.model, r.weights, int(r.scale), r.metric): r.value for r in df.itertuples()}
    rows = []
    for model, weights, scale in sorted({(m, w, s) for m, w, s, _ in val if not w.endswith("+bf16")},
                                        key=lambda k: (k[2], k[0], k[1])):
        def get(metric, low=False):
            return val.get((model, weights + ("+bf16" if low else ""), scale, metric))

        cells = []
        for metric, dec in (("psnr", 4), ("ssim", 5)):
            a, b = get(metric), get(metric, True)
            cells += [_num(a, dec), _num(b, dec), "" if a is None or b is None else f"{b - a:+.{dec}f}"]
        rows.append([f"`{model}`", weights, f"x{scale}", *cells])
    return (f"`ibmdn eval-checkpoints --tables precision_eval` on {_device_words(prov)}, "
            f"{_commit(prov.get('git'))}, {str(prov.get('date_utc', ''))[:10]}: Set5, the network in float32 and "
            "in bfloat16 (weights and activations; output scored in float32)."
            "\n\n" + markdown_table(["model", "weights", "scale", "PSNR fp32", "PSNR bf16", "change (dB)",
                                      "SSIM fp32", "SSIM bf16", "change"], rows, "lllrrrrrr"))


def render_audit_summary(df: pd.DataFrame) -> str:
    """The parameter audit in one table: rows per tolerance and status, and the networks it documents."""
    rows = []
    for (tol, status), g in df.groupby(["tolerance", "status"], sort=False):
        models = sorted({f"`{m}`" for m in g["model"]}) if status != "pass" else []
        rows.append([tol, status, str(len(g)), ", ".join(models)])
    return (f"{len(df)} (model, scale) rows of the paper's tables, our count against the upstream code (`exact`) or the "
            "paper's printed count (`1%`, `3%`); `documented`: the paper contradicts itself and the note says what was "
            "chosen. Every row and note: [docs/RESULTS.md](docs/RESULTS.md#parameter-audit)."
            "\n\n" + markdown_table(["tolerance", "status", "rows", "networks (documented rows only)"], rows, "llrl"))


SECTIONS: dict[str, Section] = {
    "param_audit": Section("param_audit.csv", render_param_audit, "ibmdn audit"),
    "checkpoint_eval": Section("checkpoint_eval.csv", render_checkpoint_eval, "ibmdn eval-checkpoints"),
    "bench_cpu": Section("bench-cpu.csv", render_bench, "ibmdn bench --device cpu"),
    "bench_cpu_bf16": Section("bench-cpu-bf16.csv", render_bench_bf16,
                              "ibmdn bench --device cpu with bf16 paths (written as bench-cpu.csv, kept under this name)"),
    "bench_cuda": Section("bench-cuda.csv", render_bench, "bash scripts/gpu_session.sh on a GPU"),
    "short_cpu": Section("short_cpu.csv", render_short_sweep, "python -m ibmdn.experiments.sweep --table short_cpu"),
    "train_paths_cpu": Section("train_paths_cpu.csv", render_short_sweep,
                               "python -m ibmdn.experiments.sweep --table train_paths_cpu"),
    "stability": Section("involution_stability.csv", render_stability, "python -m ibmdn.experiments.stability"),
    "bench_train_cpu": Section("bench-train-cpu.csv", render_bench_train, "ibmdn bench-train"),
    "bench_train_cpu_xeon": Section("bench-train-cpu-xeon.csv", render_bench_train,
                                    "ibmdn bench-train (the same command on an Intel Xeon host, kept under this name)"),
    "bench_train_cpu_bf16": Section("bench-train-cpu-bf16.csv", render_bench_train,
                                    "ibmdn bench-train with bf16 variants on a CPU with native bf16 (kept under this name)"),
    "bench_train_cpu_default": Section("bench-train-cpu-default.csv", render_bench_train,
                                       "ibmdn bench-train of every trainable network, the CPU default (channels-last) "
                                       "against NCHW (kept under this name)"),
    **{f"table{i}": Section(f"table{i}.csv", render_study_table, f"papermill notebooks/table{i}.ipynb")
       for i in range(1, 6)},
    "table6": Section("table6.csv", render_paper_table, "papermill notebooks/table6.ipynb"),
    "claims": Section("claims.csv", render_claims, "papermill notebooks/claims.ipynb"),
    "checkpoint_summary": Section("checkpoint_eval.csv", render_checkpoint_summary, "ibmdn eval-checkpoints"),
    "shipped_eval": Section("shipped_eval.csv", render_shipped, "ibmdn eval-checkpoints"),
    "precision_eval": Section("precision_eval.csv", render_precision,
                              "ibmdn eval-checkpoints --tables precision_eval"),
    "audit_summary": Section("param_audit.csv", render_audit_summary, "ibmdn audit"),
}


def render_section(name: str, results: str | Path = "results") -> str:
    """Markdown for section ``name`` from ``results/<csv>`` (a placeholder when the CSV is absent)."""

    sec = SECTIONS[name]
    path = Path(results) / sec.csv
    if not path.exists():
        return f"_Not generated yet: run `make paper` (or `{sec.command}`)._"
    df = read_table(path)
    df.attrs["meta"] = read_meta(path)
    df.attrs["results"] = str(results)
    return sec.render(df)


_MARK = re.compile(r"(<!-- BEGIN (?P<name>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- END (?P=name) -->)", re.DOTALL)


def update_text(text: str, results: str | Path = "results") -> str:
    """``text`` with every known marked section re-rendered (unknown section names raise KeyError)."""

    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in SECTIONS:
            raise KeyError(f"README section {name!r} has no renderer; known: {sorted(SECTIONS)}")
        return m.group(1) + render_section(name, results) + "\n" + m.group(4)

    return _MARK.sub(sub, text)


def update_readme(
    readme: str | Path = "README.md", results: str | Path = "results", check: bool = False
) -> bool:
    """Re-render the marked sections of ``readme``; return whether it changed (``check``: do not write)."""
    p = Path(readme)
    old = p.read_text(encoding="utf-8")
    new = update_text(old, results)
    if new != old and not check:
        atomic_write_bytes(p, new.encode("utf-8"))
    return new != old


READMES = ("README.md", "docs/RESULTS.md")
"""The files whose marked sections are rendered: the front page and the full results page."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ibmdn.experiments.readme", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--readme", nargs="+", default=list(READMES), help="markdown files to render (default: %(default)s)")
    ap.add_argument("--results", default="results")
    ap.add_argument("--check", action="store_true", help="exit 1 if a file is out of date; write nothing")
    args = ap.parse_args(argv)
    stale = []
    for readme in args.readme:
        changed = update_readme(readme, args.results, check=args.check)
        if args.check and changed:
            stale.append(readme)
            print(f"{readme} is out of date: run `python -m ibmdn.experiments.readme`", file=sys.stderr)
        elif not args.check:
            print(f"{readme}: {'updated' if changed else 'up to date'}")
    return int(bool(stale))


if __name__ == "__main__":
    sys.exit(main())
