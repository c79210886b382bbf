"""Collect finished training runs into one results table (final and best Set5 PSNR-Y, wall time).

    python -m ibmdn.experiments.sweep --table short_cpu --runs runs/short_cpu/* \
        --command "ibmdn train --profile short --scale 2 --threads 1, two runs at a time on the 2-core CPU"

Each run folder's ``final.json`` (written by :mod:`ibmdn.train.trainer`) gives the numbers and their
provenance; nothing is re-measured. A run's recipe name is its folder name without the model's name
(``ibmdn_lr2e-3_clip1`` -> ``short-lr2e-3_clip1``; just the model name -> ``short-default``). The sidecar
keeps, per run, the resolved recipe, the budget, the validation history, the weights' sha256 and the
commit the run started from (``git``: a run started from a dirty tree says so). The validation curves
are drawn to ``figures/<table>.png`` (:func:`ibmdn.experiments.plots.sweep_figure`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ibmdn.results import write_table

PROVENANCE_KEYS = ("date_utc", "device", "versions", "platform", "git")


def collect_runs(run_dirs: list[Path], table: str) -> tuple[pd.DataFrame, dict]:
    """(long table, provenance) of the runs in ``run_dirs`` (each holding a ``final.json``)."""
    rows, runs, last = [], {}, {}
    for folder in sorted(Path(d) for d in run_dirs):
        fj = folder / "final.json"
        if not fj.is_file():
            raise SystemExit(f"{folder}: no final.json (an unfinished run?)")
        f = json.loads(fj.read_text())
        variant = folder.name.removeprefix(f["model"]).strip("_") or "default"
        weights = f"{f['budget']['profile']}-{variant}"
        for metric, value, unit in (("psnr", f["val_psnr"], "dB"), ("best_psnr", f["best_psnr"], "dB"),
                                    ("train_time", f["wall_s"], "s")):
            rows.append({"table": table, "model": f["model"], "weights": weights, "scale": f["scale"],
                         "dataset": f["val_set"].lower(), "metric": metric, "value": value, "unit": unit,
                         "n_images": 5 if unit == "dB" else None, "source": "measured"})
        runs[f"{f['model']}-{weights}"] = {
            "model": f["model"], "config": f["config"], "budget": f["budget"], "steps": f["steps"],
            "val_history": f["val_history"], "weights_sha256": f["weights_sha256"], "git": f.get("git"),
            "date_utc": f.get("date_utc")}
        last = f
    if not rows:
        raise SystemExit("no runs given")
    meta = {k: v for k, v in last.items() if k in PROVENANCE_KEYS}
    meta["runs"] = runs
    return pd.DataFrame(rows), meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", required=True, help="table name; writes <out>/<table>.csv (+ .meta.json)")
    ap.add_argument("--runs", nargs="+", required=True, type=Path, help="run folders (each with final.json)")
    ap.add_argument("--command", required=True, help="how the runs were made (recorded)")
    ap.add_argument("--note", default="", help="recorded beside the command")
    ap.add_argument("--out", default="results", type=Path)
    ap.add_argument("--figures", default="figures", type=Path, help="writes <figures>/<table>.png")
    args = ap.parse_args(argv)
    df, meta = collect_runs(args.runs, args.table)
    meta.update(command=args.command, note=args.note)
    write_table(df, args.out / f"{args.table}.csv", meta)
    from ibmdn.experiments.plots import sweep_figure

    sweep_figure(args.out / f"{args.table}.csv", args.figures / f"{args.table}.png")
    print(df.pivot_table(index=["model", "weights"], columns="metric", values="value"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
