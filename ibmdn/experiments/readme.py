"""Render the README's headline tables from ``results/*.csv``; no number in the README is typed by hand.

Each section of the README between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` is replaced by the
markdown rendering of one validated result table. A table that has not been generated yet renders as a
one-line placeholder saying which command makes it. The rendering holds no date or git sha (those are
in the tables' ``.meta.json`` sidecars), so re-rendering unchanged results leaves the README unchanged.

Usage::

    python -m ibmdn.experiments.readme [--readme README.md] [--results results] [--check]

``--check`` writes nothing and exits with status 1 when the README is out of date.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ibmdn.results import TOLERANCES, atomic_write_bytes, read_meta, read_table

__all__ = ["SECTIONS", "main", "render_paper_table", "render_param_audit", "render_section", "update_readme"]


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
    prov = ((df.attrs.get("meta") or {}).get("provenance") or {})
    budget = prov.get("budget") or {}
    spent = (f" ({budget['iterations']:,} iterations of batch {budget['batch_size']}, HR patch "
             f"{budget['patch_size']})") if budget else ""
    lines = [(f"{spec.title}. Networks trained here under profile `{', '.join(profiles) or '-'}`{spent}; the "
              f"paper: {spec.epochs}. Set5 only (all benchmarks: `results/{table}.csv`); `n` = images scored.")]
    if "smoke" in profiles:
        lines.append("The `smoke` profile checks that every network trains, evaluates and reaches this table: its "
                     "numbers are not comparable with the paper's (run `make paper PROFILE=short` or `paper`).")
    align = "llllr" + "rrr" * len(metrics) + "rl"
    return "\n".join(lines) + "\n\n" + markdown_table(header, rows, align)


SECTIONS: dict[str, Section] = {
    "param_audit": Section("param_audit.csv", render_param_audit, "ibmdn audit"),
    **{f"table{i}": Section(f"table{i}.csv", render_paper_table, f"papermill notebooks/table{i}.ipynb")
       for i in range(1, 7)},
}


def render_section(name: str, results: str | Path = "results") -> str:
    """Markdown for section ``name`` from ``results/<csv>`` (a placeholder when the CSV is absent)."""
    sec = SECTIONS[name]
    path = Path(results) / sec.csv
    if not path.exists():
        return f"_Not generated yet: run `make paper` (or `{sec.command}`)._"
    df = read_table(path)
    df.attrs["meta"] = read_meta(path)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ibmdn.experiments.readme", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--results", default="results")
    ap.add_argument("--check", action="store_true", help="exit 1 if the README is out of date; write nothing")
    args = ap.parse_args(argv)
    changed = update_readme(args.readme, args.results, check=args.check)
    if args.check:
        if changed:
            print(f"{args.readme} is out of date: run `python -m ibmdn.experiments.readme`", file=sys.stderr)
        return int(changed)
    print(f"{args.readme}: {'updated' if changed else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
