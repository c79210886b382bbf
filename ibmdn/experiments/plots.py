"""Figures, each drawn from a validated result CSV (:func:`ibmdn.results.read_table`); plots never compute.

* :func:`bench_figure`: ``results/bench-<device>.csv`` (``ibmdn bench``) -> latency and peak memory per
  model and execution path, one panel each, for one input size.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["bench_figure"]


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def bench_figure(csv_path: str | os.PathLike, out_path: str | os.PathLike, dataset: str | None = None) -> Path:
    """Grouped bars of latency (median, with the minimum as a tick) and peak memory per model and path.

    Args:
        csv_path: a table written by ``ibmdn bench`` (LONG schema, ``table=bench``).
        out_path: the PNG to write (atomically).
        dataset: the input size to show (``lr128x128``); default: the first one in the table.

    Returns:
        ``out_path``.
    """
    from ibmdn.fileio import atomic_write_bytes
    from ibmdn.results import read_meta, read_table

    df = read_table(csv_path)
    df = df[df["table"] == "bench"]
    sizes = sorted(d for d in set(df["dataset"]) if d.startswith("lr"))
    if not sizes:
        raise ValueError(f"{csv_path}: no inference rows (dataset lr<H>x<W>)")
    dataset = dataset or sizes[0]
    sub = df[(df["dataset"] == dataset) & (df["weights"] != "reference")]
    models = sorted(set(sub["model"]), key=lambda m: (m != "ibmdn", m))
    meta = read_meta(csv_path) or {}
    prov = meta.get("provenance", {})
    dev = prov.get("device", {})
    threads = prov.get("threads")
    load = prov.get("load_average_before")

    def value(model: str, weights: str, metric: str) -> float:
        s = sub[(sub["model"] == model) & (sub["weights"] == weights) & (sub["metric"] == metric)]
        return float(s["value"].iloc[0]) if len(s) else float("nan")

    # one bar per (model, path), grouped by model; colour = path without the involution implementation,
    # hatched = the unfold reference
    bars = [(m, w) for m in models for w in sorted(set(sub.loc[sub["model"] == m, "weights"]),
                                                   key=lambda w: (w.count("-"), w))]
    families = sorted({w.removesuffix("-unfold").removesuffix("-shift") for _, w in bars},
                      key=lambda w: (w.count("-"), w))
    plt = _matplotlib()
    cmap = plt.get_cmap("tab10")
    xs, x, prev = [], 0.0, None
    for m, _ in bars:
        x += 1.6 if prev is not None and m != prev else 1.0
        xs.append(x)
        prev = m
    fig, axes = plt.subplots(2, 1, figsize=(max(7.0, 0.42 * len(bars) + 2), 7.5), constrained_layout=True,
                             sharex=True)
    for ax, metric, label in ((axes[0], "latency", "median latency (ms)"), (axes[1], "peak_mem", "peak memory (MiB)")):
        for xi, (m, w) in zip(xs, bars):
            fam = w.removesuffix("-unfold").removesuffix("-shift")
            ax.bar(xi, value(m, w, metric), 0.8, color=cmap(families.index(fam) % 10),
                   hatch="//" if w.endswith("-unfold") else None, edgecolor="black", linewidth=0.4)
            if metric == "latency":
                ax.plot([xi - 0.4, xi + 0.4], [value(m, w, "latency_min")] * 2, "k-", linewidth=0.8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(xs)
    axes[1].set_xticklabels([w for _, w in bars], rotation=90, fontsize=7)
    for m in models:
        mx = [xi for xi, (mm, _) in zip(xs, bars) if mm == m]
        axes[0].text(sum(mx) / len(mx), 1.01, m, transform=axes[0].get_xaxis_transform(), ha="center",
                     fontsize=9, fontweight="bold")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i % 10)) for i in range(len(families))]
    handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//"))
    axes[1].legend(handles, families + ["unfold involution"], fontsize=7, ncol=3)
    where = dev.get("cuda") or dev.get("cpu") or "?"
    extra = f", {threads} threads" if threads else ""
    extra += f", load avg {load[0]}" if load else ""
    fig.suptitle(f"ibmdn bench: {dataset}, x{int(sub['scale'].iloc[0])}, batch 1 ({where}{extra}); "
                 "bar = median, line = min", fontsize=9)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(out_path, buf.getvalue())


# ====================================================================================================
# The paper's tables and figures, and the teaching walkthroughs (notebooks/*.ipynb).
#
# Each function reads a validated CSV (``ibmdn.results.read_table``; schemas in
# ``ibmdn.schemas``) and, for image figures, the ``.npz`` its experiment wrote beside it,
# draws with matplotlib's object API (no pyplot state, nothing shown), writes the PNG atomically and
# returns its path. Nothing is computed here beyond arranging what the files hold.


def _paper_figure(figsize: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=150, layout="constrained")


def _paper_save(fig, png_path) -> Path:
    import io
    from pathlib import Path

    from ibmdn.results import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return atomic_write_bytes(Path(png_path), buf.getvalue())


def _paper_npz(path) -> dict:
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


_KIND_STYLE = {
    "reference": {"color": "0.45", "marker": "s", "label": "bicubic, same images (measured)"},
    "checkpoint": {"color": "tab:green", "marker": "o", "label": "published checkpoint (measured here)"},
    "trained": {"color": "tab:blue", "marker": "o", "label": "trained here"},
    "paper": {"color": "black", "marker": "D", "label": "paper (as printed)"},
}


def table_figure(csv_path, png_path, dataset: str = "set5", metric: str = "psnr") -> Path:
    """A paper table: our ``metric`` on ``dataset`` beside the paper's, one row per network, one panel per scale.

    Reads the measured table (LONG schema) and the paper's values (``reported/paper.csv``); rows the
    paper prints without our measurement (Table VI's literature rows) are drawn from the paper alone.
    """
    from ibmdn.results import read_table, reported

    m = read_table(csv_path)
    table = str(m["table"].iloc[0])
    p = reported(table)
    from ibmdn.metrics.registry import METRICS

    scales = sorted(set(m["scale"]) | set(p.loc[p["metric"] == metric, "scale"]))
    mq = m[(m["metric"] == metric) & (m["dataset"] == dataset)]
    pq = p[(p["metric"] == metric) & (p["dataset"] == dataset)]
    profiles = sorted({w for w in mq["weights"] if w not in ("official", "none")})
    models = list(dict.fromkeys(list(mq.sort_values("model")["model"]) + list(pq.sort_values("model")["model"])))
    fig = _paper_figure((4.2 * len(scales) + 1.5, 0.32 * len(models) + 1.9))
    axes = fig.subplots(1, len(scales), sharey=True, squeeze=False)[0]
    ypos = {name: i for i, name in enumerate(reversed(models))}
    seen = set()
    for ax, scale in zip(axes, scales):
        for r in pq[pq["scale"] == scale].itertuples(index=False):
            st = _KIND_STYLE["paper"]
            ax.plot(r.value, ypos[r.model], st["marker"], mfc="none", mec=st["color"], ms=6,
                    label=None if "paper" in seen else st["label"])
            seen.add("paper")
        for r in mq[mq["scale"] == scale].itertuples(index=False):
            kind = {"official": "checkpoint", "none": "reference"}.get(r.weights, "trained")
            st = _KIND_STYLE[kind]
            label = st["label"] + (f" ({', '.join(profiles)})" if kind == "trained" else "")
            ax.plot(r.value, ypos[r.model], st["marker"], color=st["color"], ms=5,
                    label=None if kind in seen else label)
            seen.add(kind)
        ax.set_title(f"x{scale}")
        ax.set_xlabel(f"{METRICS[metric].axis} on {dataset.capitalize()}")
        ax.grid(axis="x", alpha=0.3)
        ax.set_yticks(range(len(models)), list(reversed(models)))
        ax.tick_params(axis="y", labelsize=8)
    kinds = mq.assign(kind=mq["weights"].map({"official": "checkpoints", "none": "bicubic"}).fillna("trained"))
    counts = kinds.groupby("kind")["n_images"].max().dropna()
    imgs = ("; images scored per set: " + ", ".join(f"{k} {int(v)}" for k, v in counts.items())) if len(counts) else ""
    prof = f", profile {', '.join(profiles)}" if profiles else ""
    roman = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI"}.get(table[5:], table[5:])
    fig.suptitle(f"Table {roman}: ours{prof} vs the paper\n{imgs.lstrip('; ')}", fontsize=10)
    _shared_legend(fig, axes, 4)
    return _paper_save(fig, png_path)


def study_figure(table_csv, runs_csv, png_path, metric: str = "psnr") -> Path:
    """A study table: every seed's ``metric`` (dots), their mean (bar), bicubic (dashed) and the paper's value
    (open diamond) per network, on one axis per benchmark; rows without a record say so."""
    from ibmdn.metrics.registry import METRICS
    from ibmdn.results import read_table

    t = read_table(table_csv)
    runs = read_table(runs_csv)
    table = str(t["table"].iloc[0])
    q = t[t["metric"] == metric]
    datasets = list(dict.fromkeys(q["dataset"]))
    models = list(dict.fromkeys(q.loc[q["kind"] == "trained", "model"]))
    fig = _paper_figure((3.6 * len(datasets) + 1.8, 0.34 * len(models) + 2.0))
    axes = fig.subplots(1, len(datasets), sharey=True, squeeze=False)[0]
    ypos = {name: i for i, name in enumerate(reversed(models))}
    from ibmdn.experiments.tables import DATASET_NAMES, RUN_ALIASES

    for ax, dataset in zip(axes, datasets):
        qd = q[q["dataset"] == dataset]
        for r in qd[qd["kind"] == "trained"].itertuples(index=False):
            y = ypos[r.model]
            seeds = runs[(runs["model"] == RUN_ALIASES.get(r.model, r.model)) & (runs["scale"] == r.scale)
                         & (runs["dataset"] == dataset) & (runs["metric"] == metric)]
            if len(seeds):
                ax.plot(seeds["value"], [y] * len(seeds), "o", color="tab:blue", ms=3.5, alpha=0.7,
                        label="one seed (trained here)")
                ax.plot([r.value] * 2, [y - 0.32, y + 0.32], "-", color="tab:blue", lw=2.2, label="mean over seeds")
            else:
                ax.text(0.02, y, "not trained", transform=ax.get_yaxis_transform(), fontsize=7, va="center",
                        color="0.4")
            if not _missing(r.paper):
                ax.plot(r.paper, y, "D", mfc="none", mec="black", ms=5, label="paper (as printed)")
        bic = qd[qd["kind"] == "reference"]
        if len(bic):
            ax.axvline(float(bic["value"].iloc[0]), color="0.45", ls="--", lw=1, label="bicubic, same images")
        ax.set_title(DATASET_NAMES.get(dataset, dataset), fontsize=9)
        ax.set_xlabel(METRICS[metric].axis)
        ax.grid(axis="x", alpha=0.3)
        ax.set_yticks(range(len(models)), list(reversed(models)))
        ax.tick_params(axis="y", labelsize=8)
    budget = next((b for b in t["budget"] if b), "no trained run recorded")
    roman = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V"}.get(table[5:], table[5:])
    fig.suptitle(f"Table {roman}, x{int(q['scale'].iloc[0])}: {budget}", fontsize=9)
    _shared_legend(fig, axes, 2 if len(datasets) < 2 else 4)
    return _paper_save(fig, png_path)


_VERDICT_COLOR = {"reproduced": "tab:green", "contradicted": "tab:red", "not resolvable": "tab:gray",
                  "not tested": "0.8"}


def claims_figure(csv_path, png_path) -> Path:
    """Every tested comparison of the claims, one panel per metric: A's advantage over B with its 95 % interval
    over seeds (coloured by verdict), the margin, and the paper's own advantage (open diamond)."""
    from ibmdn.metrics.registry import METRICS
    from ibmdn.results import read_table

    df = read_table(csv_path)
    t = df[df["verdict"] != "not tested"]
    metrics = [m for m in ("psnr", "ssim", "lpips") if m in set(t["metric"])]
    counts = [int((t["metric"] == m).sum()) for m in metrics]
    fig = _paper_figure((7.5, 0.22 * sum(counts) + 0.9 * len(metrics) + 1.0))
    if not metrics:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no comparison has two seeds on each side yet", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return _paper_save(fig, png_path)
    axes = fig.subplots(len(metrics), 1, squeeze=False, height_ratios=counts)[:, 0]
    for ax, metric in zip(axes, metrics):
        rows = t[t["metric"] == metric].reset_index(drop=True)
        y = list(range(len(rows)))[::-1]
        for yi, r in zip(y, rows.itertuples(index=False)):
            c = _VERDICT_COLOR[r.verdict]
            ax.plot([r.ci_low, r.ci_high], [yi, yi], "-", color=c, lw=2, label=r.verdict)
            ax.plot(r.advantage, yi, "o", color=c, ms=4)
            if not _missing(r.paper_advantage):
                ax.plot(r.paper_advantage, yi, "D", mfc="none", mec="black", ms=4, label="the paper's advantage")
            if r.margin:
                ax.plot([-r.margin] * 2, [yi - 0.4, yi + 0.4], "-", color="tab:orange", lw=1, label="-margin")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [f"{r.claim}: {r.better} > {r.worse}, {r.dataset}" for r in rows.itertuples(index=False)])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.tick_params(axis="y", labelsize=6)
        ax.set_xlabel(f"{METRICS[metric].axis} advantage"
                      + (" (B - A: lower is better)" if METRICS[metric].sign < 0 else " (A - B)"), fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("The paper's claims at the study budget: advantage with its 95 % interval over seeds", fontsize=9)
    _shared_legend(fig, axes, 5)
    return _paper_save(fig, png_path)


def _shared_legend(fig, axes, ncols: int) -> None:
    """One legend under the panels, each label once."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if labels:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, len(labels)), fontsize=8,
                   frameon=False)


def _missing(v) -> bool:
    import math

    return v is None or (isinstance(v, float) and math.isnan(v))


def visual_comparison_figure(csv_path, npz_path, png_path) -> Path:
    """Fig. 4: the whole HR image with the crop marked, then the crop of every panel with its PSNRs."""
    import math

    from matplotlib.patches import Rectangle

    from ibmdn.results import read_table

    df = read_table(csv_path).sort_values("order")
    arrays = _paper_npz(npz_path)
    n = len(df)
    cols = math.ceil(n / 2)
    fig = _paper_figure((2.1 * cols + 3.6, 4.9))
    grid = fig.add_gridspec(2, cols + 2)
    big = fig.add_subplot(grid[:, :2])
    first = df.iloc[0]
    y0, x0, s = int(first["crop_y"]), int(first["crop_x"]), int(first["crop_size"])
    big.imshow(arrays[first["array"]])
    big.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), s, s, fill=False, ec="red", lw=1.5))
    big.set_title(f"{first['image']} (x{int(first['scale'])}), HR; red: zoomed region", fontsize=9)
    big.axis("off")
    for i, r in enumerate(df.itertuples(index=False)):
        ax = fig.add_subplot(grid[i // cols, 2 + i % cols])
        ax.imshow(arrays[r.array][y0:y0 + s, x0:x0 + s], interpolation="nearest")
        if math.isnan(r.psnr):
            title = f"{r.label}\n(reference)"
        else:
            title = f"{r.label}\n{r.crop_psnr:.2f} dB crop\n{r.psnr:.2f} dB / {r.ssim:.4f} image"
        ax.set_title(title, fontsize=8, color="firebrick" if r.kind == "untrained" else "black")
        if r.kind in ("untrained", "trained"):
            badge = "UNTRAINED (random weights)" if r.kind == "untrained" else "trained here: " + r.note.split(" (")[0]
            ax.text(0.5, 0.03, badge,
                    transform=ax.transAxes, ha="center", va="bottom", fontsize=6.5, color="white",
                    bbox={"facecolor": "firebrick" if r.kind == "untrained" else "tab:blue", "alpha": 0.8, "lw": 0})
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Fig. 4 rebuilt: visual comparison at x4 (PSNR-Y of the crop; PSNR-Y / SSIM of the whole "
                 "image, border = scale)", fontsize=10)
    return _paper_save(fig, png_path)


def _place_labels(ax, points: list[tuple[float, float, str, str]], fontsize: float = 7) -> None:
    """Annotate ``(x, y, text, color)`` points with labels that do not overlap each other or the markers.

    Greedy: candidate offsets around each point, tried in order, in display coordinates; the first box
    that hits no placed box is taken (else the least overlapping one), with a thin leader line when far.
    """
    fig = ax.figure
    fig.canvas.draw()
    to_px = ax.transData.transform
    char_w, line_h = 0.6 * fontsize * fig.dpi / 72, 1.25 * fontsize * fig.dpi / 72
    placed: list[tuple[float, float, float, float]] = []
    for x, y, _, _ in points:
        px, py = to_px((x, y))
        placed.append((px - 4, py - 4, px + 4, py + 4))
    steps = [(6, 4), (6, -4 - line_h), (-6, 4), (-6, -4 - line_h)]
    steps += [(dx, dy) for k in range(1, 6) for dx in (8, -8) for dy in (k * line_h, -k * line_h - line_h)]

    def overlap(a, b):
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))

    for x, y, text, color in sorted(points, key=lambda p: -p[1]):
        px, py = to_px((x, y))
        w = char_w * len(text)
        best, best_cost = None, None
        for dx, dy in steps:
            x0 = px + dx if dx > 0 else px + dx - w
            box = (x0, py + dy, x0 + w, py + dy + line_h)
            cost = sum(overlap(box, b) for b in placed)
            if best_cost is None or cost < best_cost:
                best, best_cost = (dx, dy, box), cost
            if cost == 0:
                break
        dx, dy, box = best
        placed.append(box)
        far = abs(dy) > 1.5 * line_h
        ax.annotate(text, (x, y), xytext=(box[0] - px, box[1] - py), textcoords="offset pixels", fontsize=fontsize,
                    color=color, ha="left", va="bottom",
                    arrowprops={"arrowstyle": "-", "color": color, "lw": 0.5, "alpha": 0.6} if far else None)


_TRADE_STYLE = {
    "paper": {"color": "0.25", "marker": "D", "filled": False, "label": "literature, as the paper prints it"},
    "paper_own": {"color": "tab:red", "marker": "D", "filled": False, "label": "the paper's own networks (claimed)"},
    "checkpoint": {"color": "tab:green", "marker": "o", "filled": True,
                   "label": "published checkpoint, measured here"},
    "trained": {"color": "tab:blue", "marker": "o", "filled": True, "label": "trained here"},
}


def tradeoff_figure(csv_path, png_path) -> Path:
    """PSNR against parameters (log scale); a second panel against latency when one was measured."""
    from ibmdn.results import read_table

    df = read_table(csv_path)
    has_latency = df["latency_ms"].notna().any()
    fig = _paper_figure((13.5 if has_latency else 8.5, 5.8))
    axes = fig.subplots(1, 2 if has_latency else 1, squeeze=False)[0]
    scale, dataset = int(df["scale"].iloc[0]), str(df["dataset"].iloc[0])
    ax = axes[0]
    labels = []
    for kind, st in _TRADE_STYLE.items():
        g = df[df["kind"] == kind]
        if g.empty:
            continue
        ax.scatter(g["params"] / 1e3, g["psnr"], marker=st["marker"], s=40, zorder=3,
                   facecolors=st["color"] if st["filled"] else "none", edgecolors=st["color"], label=st["label"])
        labels += [(r.params / 1e3, r.psnr, r.label, st["color"]) for r in g.itertuples(index=False)]
    ax.set_xscale("log")
    ax.set_xlabel("parameters (thousands, log scale)")
    ax.set_ylabel(f"PSNR-Y on {dataset.capitalize()} x{scale} (dB)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("quality vs size", fontsize=10)
    ax.margins(x=0.08, y=0.06)
    _place_labels(ax, labels)
    if has_latency:
        ax2 = axes[1]
        g = df[df["latency_ms"].notna()]
        labels2 = []
        for kind, st in _TRADE_STYLE.items():
            k = g[g["kind"] == kind]
            if k.empty:
                continue
            ax2.scatter(k["latency_ms"], k["psnr"], marker=st["marker"], s=40, zorder=3,
                        facecolors=st["color"] if st["filled"] else "none", edgecolors=st["color"])
            note = " (claimed PSNR)" if kind.startswith("paper") else ""
            labels2 += [(r.latency_ms, r.psnr, f"{r.label} ({r.params / 1e3:.0f}K){note}", st["color"])
                        for r in k.itertuples(index=False)]
        _place_labels(ax2, labels2)
        src = sorted({str(v).split(":")[0] for v in g["latency_source"]})
        inputs = sorted({str(v).rsplit(", ", 1)[-1] for v in g["latency_source"]})
        ax2.set_xlabel(f"CPU latency per image (ms), input {', '.join(inputs)}, batch 1\n"
                       f"({', '.join(src)}: the fastest execution path of each model)")
        ax2.set_ylabel(f"PSNR-Y on {dataset.capitalize()} x{scale} (dB)")
        ax2.grid(alpha=0.3)
        ax2.margins(x=0.3, y=0.12)
        ax2.set_title("quality vs speed (CPU latency measured here)", fontsize=10)
    else:
        ax.text(0.01, 0.01, "latency: not measured yet (no ibmdn bench CSV)", transform=ax.transAxes, fontsize=7,
                color="0.4")
    fig.suptitle(f"Trade-off at x{scale} on {dataset.capitalize()}: checkpoints measured here (filled) and the "
                 "paper's Table VI (hollow)", fontsize=10)
    return _paper_save(fig, png_path)


_OP_COLORS = {"Bs": "#4c78a8", "I": "#f58518", "CHFAB": "#54a24b", "C": "#bab0ac"}


def operators_figure(csv_path, png_path) -> Path:
    """IBMDN's operators per block, as the model definition builds them (one row per block)."""
    from matplotlib.patches import FancyBboxPatch

    from ibmdn.results import read_table

    df = read_table(csv_path)
    blocks = df[df["stage"] == "block"]
    positions = ["refine1", "refine2", "refine3", "last", "attention"]
    titles = ["refine 1", "refine 2", "refine 3", "last 3x3", "attention"]
    nb = int(blocks["block"].max())
    fig = _paper_figure((8.6, 0.62 * nb + 2.4))
    ax = fig.add_subplot()
    for b in range(1, nb + 1):
        y = nb - b
        for j, pos in enumerate(positions):
            r = blocks[(blocks["block"] == b) & (blocks["position"] == pos)].iloc[0]
            code = r["code"]
            color = _OP_COLORS.get(code, _OP_COLORS["C"] if str(code).startswith("C") else "0.8")
            ax.add_patch(FancyBboxPatch((j + 0.06, y + 0.1), 0.88, 0.8, boxstyle="round,pad=0.0,rounding_size=0.08",
                                        fc=color, ec="white"))
            ax.text(j + 0.5, y + 0.58, f"{code}", ha="center", va="center", fontsize=10, color="white",
                    weight="bold")
            ax.text(j + 0.5, y + 0.28, f"{r['op']}, {int(r['params']):,} p", ha="center", va="center", fontsize=6.5,
                    color="white")
        ax.text(-0.1, y + 0.5, f"block {b}", ha="right", va="center", fontsize=9)
    for j, t in enumerate(titles):
        ax.text(j + 0.5, nb + 0.15, t, ha="center", va="bottom", fontsize=9)
    ax.set_xlim(-1.0, len(positions))
    ax.set_ylim(-0.8, nb + 0.6)
    ax.axis("off")
    model, scale = df["model"].iloc[0], int(df["scale"].iloc[0])
    ref = blocks[blocks["position"].str.startswith("refine")].sort_values(["block", "position"])
    pattern = "-".join("".join(g["code"]) for _, g in ref.groupby("block", sort=True))
    per_block = int(blocks.groupby("block")["params"].sum().iloc[0])
    other = df[df["stage"] != "block"]
    tail = ", ".join(f"{r.position} {r.code} {int(r.params):,}" for r in other.itertuples(index=False))
    fig.suptitle(f"{model} x{scale}, read from build_model(): depth pattern {pattern}", fontsize=10)
    fig.text(0.01, 0.01, f"Bs = BSConv-S, I = involution, CHFAB = attention. Each block also has three 1x1 "
                         f"distillations and a 1x1 fusion (block 1: {per_block:,} parameters in all).\n"
                         f"Outside the blocks: {tail}. Total: {int(df['params'].sum()):,} parameters.",
             fontsize=7, color="0.3")
    return _paper_save(fig, png_path)


def _walk_values(df, section: str, metric: str) -> dict:
    g = df[(df["section"] == section) & (df["metric"] == metric)]
    return dict(zip(g["name"], g["value"]))


_COST_ORDER = ("conv3x3", "depthwise_separable", "bsconv_u", "bsconv_s", "involution")


def _cost_panel(ax, df) -> None:
    import numpy as np

    params = _walk_values(df, "cost", "params")
    macs = _walk_values(df, "cost", "macs_per_pixel")
    names = [n for n in _COST_ORDER if n in params] + [n for n in params if n not in _COST_ORDER]
    x = np.arange(len(names))
    ax.bar(x - 0.2, [params[n] for n in names], 0.4, label="parameters", color="tab:blue")
    ax.bar(x + 0.2, [macs[n] for n in names], 0.4, label="multiply-adds per output pixel", color="tab:orange")
    for i, n in enumerate(names):
        ax.text(i - 0.2, params[n], f"{params[n]:,.0f}", ha="center", va="bottom", fontsize=6.5)
        ax.text(i + 0.2, macs[n], f"{macs[n]:,.0f}", ha="center", va="bottom", fontsize=6.5)
    ax.set_ylim(0, 1.25 * max(max(params.values()), max(macs.values())))
    ax.set_xticks(x, [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylabel("count")
    ax.legend(fontsize=7, loc="upper right")
    note = df[(df["section"] == "cost") & (df["metric"] == "params")]["note"].iloc[0]
    extra = "\n(involution: kernel generation + application)" if "involution" in names else ""
    ax.set_title(f"cost of one 3x3 operator, {note}{extra}", fontsize=8)


def involution_figure(csv_path, npz_path, png_path) -> Path:
    """Involution walkthrough: the image and probes, the kernels generated there, a tap over the image, cost."""
    import numpy as np

    from ibmdn.results import read_table

    df = read_table(csv_path)
    a = _paper_npz(npz_path)
    kernels, probes, names = a["kernels"], a["probes"], [str(n) for n in a["probe_names"]]
    g, kk = kernels.shape[:2]
    k = round(kk ** 0.5)
    fig = _paper_figure((12.5, 6.4))
    grid = fig.add_gridspec(2, 2 + len(names))
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(a["lr"])
    colors = ["red", "cyan", "yellow"]
    for (py, px), n, c in zip(probes, names, colors):
        ax.plot(px, py, "o", mfc="none", mec=c, ms=8, mew=1.5)
        ax.annotate(n, (px, py), xytext=(5, -7), textcoords="offset points", color=c, fontsize=8, weight="bold",
                    bbox={"facecolor": "black", "alpha": 0.6, "lw": 0, "pad": 1})
    ax.set_title("LR input (the module's input is its\nfeature map at this position)", fontsize=8)
    ax.axis("off")
    vmax = float(np.abs(kernels[:, :, probes[:, 0], probes[:, 1]]).max())
    im = None
    for j, ((py, px), n, c) in enumerate(zip(probes, names, colors)):
        sub = grid[0, 1 + j].subgridspec(g, 1)
        for gi in range(g):
            axk = fig.add_subplot(sub[gi])
            im = axk.imshow(kernels[gi, :, py, px].reshape(k, k), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            axk.set_xticks([])
            axk.set_yticks([])
            axk.set_ylabel(f"group {gi + 1}", fontsize=7)
            if gi == 0:
                axk.set_title(f"kernels at '{n}' ({px}, {py})", fontsize=8, color="black")
    cax = fig.add_subplot(grid[0, 1 + len(names)])
    cax.set_axis_off()
    fig.colorbar(im, ax=cax, fraction=0.5, label="kernel weight")
    centre = (k * k) // 2
    axm = fig.add_subplot(grid[1, 0])
    lim = float(np.abs(kernels[0, centre]).max())
    m = axm.imshow(kernels[0, centre], cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(m, ax=axm, fraction=0.046, label="weight")
    axm.set_title("centre tap of group 1 at every pixel\n(a convolution: one value everywhere)", fontsize=8)
    axm.axis("off")
    axc = fig.add_subplot(grid[1, 1:])
    _cost_panel(axc, df)
    std = _walk_values(df, "kernels", "tap_std_over_pixels")
    module = next(iter(std))
    fig.suptitle(f"Involution in DepthIBN (published weights), {module}: {g} groups, one {k}x{k} kernel per pixel "
                 f"and group; a tap's weight varies over the image with std {std[module]:.2f}", fontsize=10)
    return _paper_save(fig, png_path)


def bsconv_figure(csv_path, npz_path, png_path) -> Path:
    """BSConv walkthrough: cost against a convolution, BSRN's learned blueprints, IMDN filters' rank-1 share."""
    import numpy as np

    from ibmdn.results import read_table

    df = read_table(csv_path)
    a = _paper_npz(npz_path)
    bp = a["blueprints"]
    fig = _paper_figure((13.0, 4.6))
    grid = fig.add_gridspec(1, 3, width_ratios=[1.25, 1.0, 1.0])
    _cost_panel(fig.add_subplot(grid[0]), df)
    n = bp.shape[0]
    side = int(np.ceil(np.sqrt(n)))
    tiles = np.full((side * 4 - 1, side * 4 - 1), np.nan)
    for i in range(n):
        r, c = divmod(i, side)
        t = bp[i] / (np.abs(bp[i]).max() or 1.0)
        tiles[r * 4:r * 4 + 3, c * 4:c * 4 + 3] = t
    ax = fig.add_subplot(grid[1])
    im = ax.imshow(tiles, cmap="RdBu_r", vmin=-1, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="weight / max |weight| of its filter")
    name = next(iter(_walk_values(df, "bsrn", "blueprints")))
    ax.set_title(f"BSRN's {n} learned depthwise 3x3 blueprints\n({name}.dw, published x4 weights)", fontsize=9)
    ax.axis("off")
    ax3 = fig.add_subplot(grid[2])
    e = a["rank1_energy"]
    ax3.hist(e, bins=20, color="tab:blue", alpha=0.8, label="IMDN's learned filters")
    rnd = _walk_values(df, "imdn", "rank1_energy_random_median")
    iname = next(iter(rnd))
    ax3.axvline(rnd[iname], color="black", ls="--", label="random filters (median)")
    ax3.set_xlabel("energy share held by one blueprint")
    ax3.set_ylabel("filters")
    ax3.set_title(f"BSConv's premise, on IMDN's {iname}:\nbest rank-1 fit (3x3 blueprint x weights over depth)\n"
                  "of each filter, share of its energy", fontsize=8)
    ax3.set_ylim(0, ax3.get_ylim()[1] * 1.3)
    ax3.legend(fontsize=7, loc="upper right")
    fig.suptitle("BSConv vs convolution: cost at the same width, the blueprints BSRN learned, and how close "
                 "convolution filters learned by IMDN are to one blueprint each", fontsize=10)
    return _paper_save(fig, png_path)


def _panel_size(n: int, cols: int, w: float, h: float, title_h: float) -> tuple[float, float]:
    """Figure size of ``n`` panels of ``w x h`` inches in rows of ``cols``, plus ``title_h`` for the title."""
    return (w * cols, h * -(-n // cols) + title_h)


def _panels(fig, names: list[str], cols: int, lr):
    """``(index, name, axes)`` of a grid of image panels, row-major, for the caller to draw; the panel named
    ``lr`` is drawn here (the LR input) and not yielded. Every axes frame is switched off."""
    grid = fig.add_gridspec(-(-len(names) // cols), cols)
    for i, name in enumerate(names):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        if name == "lr":
            ax.imshow(lr)
            ax.set_title("LR input", fontsize=8)
        else:
            yield i, name, ax
        ax.axis("off")


def distillation_figure(csv_path, npz_path, png_path) -> Path:
    """Distillation walkthrough: the mean |activation| map after every stage of one block."""
    from ibmdn.results import read_table

    df = read_table(csv_path)
    a = _paper_npz(npz_path)
    order = [str(o) for o in a["order"]]
    channels = _walk_values(df, "stages", "channels")
    panels = ["lr"] + order
    fig = _paper_figure(_panel_size(len(panels), 6, 2.3, 2.0, 0.9))
    for i, name, ax in _panels(fig, panels, 6, a["lr"]):
        m = ax.imshow(a[f"map_{name}"], cmap="magma")
        fig.colorbar(m, ax=ax, fraction=0.046)
        kept = " (kept)" if name.startswith("distill") or name == "last" else ""
        ax.set_title(f"{i}. {name}: {int(channels[name])} ch{kept}", fontsize=8)
    block = next(iter(_walk_values(df, "block", "distilled_per_step")))
    d = _walk_values(df, "block", "distilled_per_step")[block]
    fig.suptitle(f"Distillation in one RFDB (RFDN AIM 2020, published weights, {block}): each step keeps "
                 f"{int(d)} channels (1x1 'distill')\nand refines all of them; the four kept parts are fused (1x1) "
                 "and attended (ESA). Maps: mean |activation| over channels, each on its own scale", fontsize=9)
    return _paper_save(fig, png_path)


def chfab_figure(csv_path, npz_path, png_path) -> Path:
    """CHFAB walkthrough: the channel-mean attention map of each block beside the image and its gradient."""
    from ibmdn.results import read_table

    df = read_table(csv_path)
    a = _paper_npz(npz_path)
    blocks = sorted((k for k in a if k.startswith("block")), key=lambda k: int(k[5:]))
    corr = _walk_values(df, "blocks", "corr_gradient")
    mean, std = _walk_values(df, "blocks", "mean"), _walk_values(df, "blocks", "std")
    status = df[(df["section"] == "weights")]["note"].iloc[0]
    trained = bool(df[(df["section"] == "weights")]["value"].iloc[0])
    panels = ["lr", "gradient"] + blocks
    fig = _paper_figure(_panel_size(len(panels), 4, 3.3, 2.7, 0.8))
    for _, name, ax in _panels(fig, panels, 4, a["lr"]):
        if name == "gradient":
            m = ax.imshow(a["gradient"], cmap="gray")
            fig.colorbar(m, ax=ax, fraction=0.046)
            ax.set_title("luma gradient magnitude", fontsize=8)
        else:
            inner = a[name][2:-2, 2:-2]  # the zero-padded border row / column stands out: scale on the inside
            m = ax.imshow(a[name], cmap="viridis", vmin=float(inner.min()), vmax=float(inner.max()))
            cb = fig.colorbar(m, ax=ax, fraction=0.046)
            cb.formatter.set_useOffset(False)
            cb.update_ticks()
            cb.ax.tick_params(labelsize=7)
            ax.set_title(f"{name}: mean {mean[name]:.4f}, std {std[name]:.1e}\n"
                         f"corr. with gradient {corr[name]:+.2f}", fontsize=8)
    fig.suptitle(f"What CHFAB attends to: sigmoid attention, mean over channels, per block (IBMDN x4, our "
                 f"reconstruction of CHFAB)\nweights: {status}; colour scale: each map's interior range",
                 fontsize=9.5, color="black" if trained else "firebrick")
    return _paper_save(fig, png_path)


_STATUS_COLORS = {"pass": "tab:green", "documented": "tab:orange", "fail": "tab:red", "error": "tab:red",
                  "missing": "0.6"}


def audit_figure(csv_path, png_path) -> Path:
    """The parameter audit: ours minus the reference count, in % of it, one bar per (model, scale)."""
    from ibmdn.results import read_table

    df = read_table(csv_path)
    order = {"exact": 0, "1%": 1, "3%": 2, "contradiction": 3}
    df = df.assign(_o=df["tolerance"].map(order)).sort_values(["_o", "model", "scale"], kind="mergesort")
    labels = [f"{r.model} x{r.scale}" + (f"  ({r.paper_label})" if r.paper_label else "")
              for r in df.itertuples(index=False)]
    fig = _paper_figure((9.0, 0.19 * len(df) + 1.6))
    ax = fig.add_subplot()
    y = list(range(len(df)))[::-1]
    vals = df["diff_pct"].fillna(0.0).tolist()
    ax.barh(y, vals, color=[_STATUS_COLORS.get(s, "0.6") for s in df["status"]], height=0.7)
    for yi, v, r in zip(y, vals, df.itertuples(index=False)):
        ax.text(v, yi, f" {v:+.1f}% " if abs(v) >= 0.05 else " 0 ", va="center",
                ha="left" if v >= 0 else "right", fontsize=6)
    ax.set_yticks(y, labels, fontsize=6.5)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("our count - reference count (% of the reference)\nreference: the upstream code's exact count "
                  "for baselines, the paper's printed count for its own variants", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.12, y=0.01)
    from matplotlib.patches import Patch

    present = [s for s in _STATUS_COLORS if s in set(df["status"])]
    ax.legend([Patch(color=_STATUS_COLORS[s]) for s in present],
              [{"pass": "pass (within tolerance)", "documented": "contradiction in the paper (documented)"}.get(s, s)
               for s in present], fontsize=7, loc="lower right")
    counts = df["status"].value_counts()
    fig.suptitle("Parameter audit: " + ", ".join(f"{int(counts[s])} {s}" for s in present)
                 + " (exact / 1% / 3% tolerances, then the paper's contradictions)", fontsize=9)
    return _paper_save(fig, png_path)


__all__ += ["audit_figure", "bsconv_figure", "chfab_figure", "distillation_figure", "involution_figure",
            "operators_figure", "sweep_figure", "table_figure", "tradeoff_figure", "visual_comparison_figure"]


def sweep_figure(csv_path, png_path, target: float = 35.5, bicubic: float = 33.66) -> Path:
    """Set5 PSNR-Y against training step for every run of a sweep table (``short_sweep``, ``short_cpu``),
    from the validation histories in its sidecar, with bicubic and the issue's target as dashed lines."""
    from ibmdn.results import read_meta

    runs = (read_meta(csv_path).get("provenance") or {}).get("runs") or {}
    fig = _paper_figure((8.5, 4.2))
    ax = fig.add_subplot()
    order = sorted(runs.items(), key=lambda kv: -(kv[1]["val_history"][-1]["psnr"] if kv[1]["val_history"] else 0))
    for name, run in order:
        hist = run["val_history"]
        ax.plot([h["step"] for h in hist], [h["psnr"] for h in hist], marker="o", ms=3,
                lw=2.0 if run["model"] == "ibmdn" else 1.2, ls="-" if run["model"] == "ibmdn" else "--",
                label=f"{name} ({hist[-1]['psnr']:.2f})" if hist else name)
    ax.axhline(target, color="k", lw=0.8, ls=":", label=f"target {target} dB")
    ax.axhline(bicubic, color="0.5", lw=0.8, ls=":", label=f"bicubic {bicubic} dB")
    ax.set_ylim(bottom=max(ax.get_ylim()[0], bicubic - 3))
    ax.set_xlabel("training step")
    ax.set_ylabel("Set5 PSNR-Y (dB)")
    ax.set_title(Path(csv_path).stem)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    return _paper_save(fig, png_path)


def shipped_curves_figure(png_path, bicubic_csv, root=None) -> Path:
    """Set5 PSNR-Y against training step of every checkpoint shipped in the package, one panel per scale,
    from the validation history in each checkpoint's provenance, with bicubic interpolation (measured,
    ``bicubic_csv``) and IMDN's published value as dashed lines. A fine-tune's steps are its own (it starts
    from the x2 network, whose run is in the x2 panel)."""
    from ibmdn.results import read_table, reported
    from ibmdn.shipped import shipped_weights

    ships = shipped_weights(root=root)
    scales = sorted({s.scale for s in ships}) or [2, 3, 4]
    bic = read_table(bicubic_csv)
    bic = {int(r.scale): r.value for r in bic.itertuples(index=False) if r.dataset == "set5" and r.metric == "psnr"}
    pub = reported("published", source="published")
    imdn = {int(r.scale): r.value for r in pub.itertuples(index=False)
            if r.model == "imdn" and r.dataset == "set5" and r.metric == "psnr"}
    fig = _paper_figure((3.4 * len(scales), 3.4))
    axes = fig.subplots(1, len(scales), squeeze=False)[0]
    for ax, scale in zip(axes, scales):
        for s in (s for s in ships if s.scale == scale):
            hist = (s.meta or {}).get("val_history") or []
            budget = (s.meta or {}).get("budget") or {}
            wall = (s.meta or {}).get("wall_s")
            label = (f"{s.model} {s.tag}: {hist[-1]['psnr']:.2f} dB" if hist else f"{s.model} {s.tag}") + (
                f"\n{budget.get('iterations')} steps, batch {budget.get('batch_size')}, HR {budget.get('patch_size')}"
                if budget else "") + (f", {wall / 3600:.1f} h" if wall else "")
            ax.plot([h["step"] for h in hist], [h["psnr"] for h in hist], marker="o", ms=2.5, lw=1.3, label=label)
        if scale in imdn:
            ax.axhline(imdn[scale], color="k", lw=0.8, ls=":", label=f"IMDN published {imdn[scale]:.2f}")
        if scale in bic:
            ax.axhline(bic[scale], color="0.5", lw=0.8, ls="--", label=f"bicubic {bic[scale]:.2f}")
        ax.set_title(f"x{scale}", fontsize=9)
        ax.set_xlabel("training step")
        ax.set_ylabel("Set5 PSNR-Y (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5.5, loc="lower right")
    fig.suptitle("Shipped weights (ibmdn/weights): validation during training", fontsize=9)
    return _paper_save(fig, png_path)


__all__ += ["shipped_curves_figure"]
