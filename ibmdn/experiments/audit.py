"""Parameter audit: every network of the paper's tables, our parameter count against the reference.

One row per (model, scale) that the paper's Tables I-VI give (x2 for Tables I-IV, x4 for the GAN pairs
of Table V, x2/x3/x4 for Table VI), plus the baselines whose upstream code or checkpoints this project
reproduces (``rfdn_aim``, ``depthibn``, ``esrt``/``esrt_64`` at every scale). Columns:

* ``params``: learnable parameters of ``build_model(model, scale)`` (:func:`ibmdn.count_params`; empty
  when the model is not registered, status ``missing``).
* ``reference`` / ``reference_source``: the count the tolerance is checked against: the exact count of
  the upstream definition (``upstream``, measured on the official code, ``docs/networks.md``) for the
  baselines, else the paper's rounded count (``paper``).
* ``diff`` = ``params - reference``, ``diff_pct`` = 100 * diff / reference.
* ``paper_params`` / ``paper_tables``: the paper's printed count and the tables that print it (from
  :func:`ibmdn.results.reported`); where tables disagree the note says so.
* ``tolerance``: ``exact`` (baselines: must equal the upstream count), ``1%`` / ``3%`` (the paper's
  variants whose counts the text determines: within that fraction of the paper's count), or
  ``contradiction`` (the paper's counts contradict each other or its own description: no tolerance is
  asserted; the note says which configuration this project chose and what the paper's number would
  require).
* ``status``: ``pass`` / ``fail`` for the first three classes, ``documented`` for contradictions,
  ``missing`` (not registered yet) or ``error`` (building failed; the message is in the note).

The notes on contradictions carry the reconstruction facts (``docs/networks.md``) and end with
the registered model's own one-line summary, so the chosen configuration is stated by the code itself.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ibmdn.results import provenance, reported, write_table
from ibmdn.schemas import PARAM_AUDIT

__all__ = ["AUDIT", "AuditSpec", "audit_command", "param_audit"]


@dataclass(frozen=True)
class AuditSpec:
    """One audited (model, scale).

    Attributes:
        model: registered model name.
        scale: upscaling factor.
        tolerance: ``exact``, ``1%``, ``3%`` or ``contradiction``.
        label: the paper's name for the row (empty when the paper has no such row).
        upstream: exact parameter count of the upstream definition (``exact`` rows).
        paper_as: read the paper's counts of this model name instead (``ibmdn`` is Table VI's
            ``RFDN_IBMD`` row, typed as ``rfdn_ibmd_chfab``).
        note: facts about the row.
    """

    model: str
    scale: int
    tolerance: str
    label: str = ""
    upstream: int | None = None
    paper_as: str | None = None
    note: str = ""


# Exact counts of the upstream definitions, measured on the official code (docs/networks.md).
UPSTREAM: dict[str, dict[int, int]] = {
    "imdn": {2: 694_404, 3: 703_059, 4: 715_176},
    "rfdn": {2: 534_036, 3: 540_531, 4: 549_624},
    "rfdn_aim": {2: 417_212, 3: 423_977, 4: 433_448},
    "bsrn": {2: 331_628, 3: 340_283, 4: 352_400},
    "esrt": {2: 677_783, 3: 770_263, 4: 751_767},
    "esrt_64": {2: 2_697_149, 3: 3_066_429, 4: 2_992_573},
    "esrgan_g": {4: 38_549_123},
    "esrgan_d": {4: 4_693_697},
    "depthibn": {2: 105_528, 3: 112_023, 4: 121_116},
}

_EXACT_LABEL = {
    "imdn": "IMDN",
    "rfdn": "RFDN",
    "rfdn_aim": "",
    "bsrn": "BSRN",
    "esrt": "ESRT",
    "esrt_64": "ESRT",
    "esrgan_g": "ESRGAN (G)",
    "esrgan_d": "ESRGAN (D)",
    "depthibn": "",
}
_EXACT_NOTE = {
    "rfdn": "the paper's RFDN form (48 channels, 6 blocks, CCA r=4), not the AIM 2020 code (rfdn_aim)",
    "rfdn_aim": "not in the paper's tables: the AIM 2020 code and checkpoint (50 channels, 4 blocks, ESA)",
    "esrt": (
        "the official 32-channel ESRT; Table VI prints its count only at x3 (770K), its x2/x4 rows are "
        "the 64-channel ESRT's"
    ),
    "esrt_64": "ESRT at 64 channels, as Tables IV and VI count it at x2/x4 (Table IV prints '2M')",
    "esrgan_g": "ESRGAN generator as the paper counts it (PyTorch-GAN RRDB, 23 blocks)",
    "esrgan_d": "ESRGAN discriminator as the paper counts it; the paper prints 4.6M for 4,693,697 (4.7M)",
    "depthibn": "not in the paper's tables: the authors' NTIRE 2025 network (class IBMDN in their code)",
}

_RFDN_IBMD = (
    "RFDN-50 skeleton (6 blocks, LReLU fusion), every Bs = BSConv-U (the one operator the paper's Bs "
    "symbol names in every IBMD network), I = involution(50, K3, r4; group width 10, the largest divisor of "
    "50 not above the official 16)."
)
_X3_GAP = (
    "At x3 the paper's count (178K) is 8K above its x2 count (170K), but the only scale-dependent layer, "
    "the last 3x3 conv (50 -> 3 s^2), grows by 6,765 parameters from x2 to x3, so no network of this "
    "skeleton meets both rounded counts: x3 is checked at 3 % (ours is 1.04 % below 178K)."
)
_RFDN_IBMD_HFAB = (
    _RFDN_IBMD + " With HFAB (training form, mid 16) the count is 360,153 against the paper's 399K (-10 %): "
    "no reading of HFAB's width or of the skeleton found here reaches it while keeping the CCA, ESA and "
    "CHFAB rows within 1 %, so the paper's HFAB row is taken as inconsistent with its other rows."
)
_ESRT_IBMD = (
    "The x3-x2 and x4-x2 differences of the paper's counts ({d3}K, {d4}K) equal ESRT-64's two 64-channel "
    "upsampling paths (369,280 and 295,424), so the ESRT-64 tail is kept; the x2 total ({x2}K) cannot be "
    "derived from the text (its transformer and IBMD backbone widths are not stated exactly)."
)
_GAN = (
    "Table V prints G={g}K, D={d}K, total {t}K{total_remark}; the paper does not describe how a generator "
    "or a discriminator is built from {gen}. {extra}"
)
_GAN_FACTS = {
    "imdn_ibmd": {
        "g": 209,
        "d": 580,
        "t": 787,
        "label": "IMDN_IBMD",
        "total_remark": " (G+D = 789K)",
        "extra": "Table VI's IMDN_IBMD x4 has 206K.",
    },
    "rfdn_ibmd": {
        "g": 657,
        "d": 287,
        "t": 844,
        "label": "RFDN_IBMD",
        "total_remark": " (G+D = 944K)",
        "extra": "Table VI's RFDN_IBMD x4 has 187K, not 657K.",
    },
    "esrt_imdn_ibmd": {
        "g": 620,
        "d": 247,
        "t": 867,
        "label": "ESRT_IMDN_IBMD",
        "total_remark": "",
        "extra": "Table VI's ESRT_IMDN_IBMD x4 has 841K, more than this generator.",
    },
    "esrt_rfdn_ibmd": {
        "g": 690,
        "d": 323,
        "t": 1000,
        "label": "ESRT_RFDN_IBMD",
        "total_remark": " (printed '1M'; G+D = 1013K)",
        "extra": "Table VI's ESRT_RFDN_IBMD x4 has 917K, more than this generator.",
    },
}


def _build_audit() -> tuple[AuditSpec, ...]:
    rows: list[AuditSpec] = []
    for model, counts in UPSTREAM.items():
        for scale, n in counts.items():
            rows.append(
                AuditSpec(
                    model, scale, "exact", _EXACT_LABEL[model], upstream=n, note=_EXACT_NOTE.get(model, "")
                )
            )
    one_pct = {
        "imdn_icmd": (
            "IMDN_ICMD",
            (
                "IMDN-64 with involution(64) at the 7 I positions of CCC-CCC-CIC-CIC-ICI-III "
                "(upstream-code reconstruction: 493,664)"
            ),
        ),
        "rfdn_icmd_4b": (
            "RFDN_ICMD 4B",
            "RFDN-50, CCC-CIC-ICI-III, CCA r=16 in place of ESA (upstream-code reconstruction: 262,574)",
        ),
        "rfdn_icmd_6b": (
            "RFDN_ICMD 6B",
            (
                "RFDN-50, CCC-CCC-CIC-CIC-ICI-III, CCA r=16 (upstream-code reconstruction: 422,305); "
                "Table II's RFDN_ICMD"
            ),
        ),
        "imdn_ibmd_cca": (
            "IMDN_IBMD (CCA)",
            ("IMDN-64, block 3x3s -> BSConv-U, I -> involution(64) (upstream-code reconstruction: 160,896)"),
        ),
        "imdn_ibmd_esa": (
            "IMDN_IBMD (ESA)",
            "as imdn_ibmd_cca with ESA (RFDN form) in place of CCA (~227.5K)",
        ),
        "imdn_ibmd_hfab": (
            "IMDN_IBMD (HFAB)",
            "as imdn_ibmd_cca with HFAB (training form, mid 16) (~394.1K)",
        ),
    }
    for model, (label, note) in one_pct.items():
        rows.append(AuditSpec(model, 2, "1%", label, note=note))
    chfab_note = ("CHFAB is this project's reconstruction (no code exists); '{att}' is its {reading} reading "
                  "(ibmdn/attention/chfab.py, docs/networks.md)")
    readings = {"chfab": "main (contrast gates the HFAB path)", "chfab_out": "alternative (CCA r=8 on the output)"}
    for att, reading in readings.items():
        for scale in (2, 3, 4):
            rows.append(AuditSpec(f"imdn_ibmd_{att}", scale, "1%", "IMDN_IBMD (CHFAB)", paper_as="imdn_ibmd_chfab",
                                  note=chfab_note.format(att=att, reading=reading)))
    for att in ("cca", "esa"):
        rows.append(AuditSpec(f"rfdn_ibmd_{att}", 2, "1%", f"RFDN_IBMD ({att.upper()})", note=_RFDN_IBMD))
    rows.append(AuditSpec("rfdn_ibmd_hfab", 2, "contradiction", "RFDN_IBMD (HFAB)", note=_RFDN_IBMD_HFAB))
    for scale in (2, 3, 4):
        # x3: the paper's 178K is 8K above its 170K at x2, but only the last 3x3 conv (50 -> 3 s^2) depends on
        # the scale and it grows by 6,765 from x2 to x3: no network of this skeleton meets both rounded counts
        tol, extra = ("3%", " " + _X3_GAP) if scale == 3 else ("1%", "")
        for att, reading in readings.items():
            rows.append(AuditSpec(f"rfdn_ibmd_{att}", scale, tol if att == "chfab" else "3%", "RFDN_IBMD (CHFAB)",
                                  paper_as="rfdn_ibmd_chfab",
                                  note=_RFDN_IBMD + " " + chfab_note.format(att=att, reading=reading) + extra))
        rows.append(AuditSpec("ibmdn", scale, tol, "RFDN_IBMD (CHFAB), the proposed IBMDN", paper_as="rfdn_ibmd_chfab",
                              note="The proposed network is RFDN_IBMD with CHFAB (section III.C); its counts are "
                              "Table VI's RFDN_IBMD row. " + _RFDN_IBMD + extra))
        rows.append(AuditSpec("ibmdn_stable", scale, "3%", "", paper_as="rfdn_ibmd_chfab",
                              note="not in the paper: IBMDN with stable involutions (per-pixel LayerNorm kernel "
                              "generator, a residual scale per channel of every involution), against the "
                              "paper's IBMDN counts"))
    rows.append(
        AuditSpec(
            "bsrn_icmd",
            2,
            "contradiction",
            "BSRN_ICMD",
            note="Table I's 340K (x2) equals BSRN's own x3 count (340,283; BSRN x2 is 331,628); "
            "the text does not determine a BSRN with ICMD depth that has this count.",
        )
    )
    for model, label, (x2, x3, x4) in (
        ("esrt_imdn_ibmd", "ESRT_IMDN_IBMD", (545, 915, 841)),
        ("esrt_rfdn_ibmd", "ESRT_RFDN_IBMD", (622, 991, 917)),
    ):
        for scale in (2, 3, 4):
            rows.append(
                AuditSpec(
                    model,
                    scale,
                    "contradiction",
                    label,
                    note=_ESRT_IBMD.format(d3=x3 - x2, d4=x4 - x2, x2=x2),
                )
            )
    for gen, facts in _GAN_FACTS.items():
        note = _GAN.format(gen=facts["label"], **{k: v for k, v in facts.items() if k != "label"})
        rows.append(AuditSpec(f"gan_{gen}_g", 4, "contradiction", f"{facts['label']} GAN (G)", note=note))
        rows.append(AuditSpec(f"gan_{gen}_d", 4, "contradiction", f"{facts['label']} GAN (D)", note=note))
    keys = [(r.model, r.scale) for r in rows]
    assert len(set(keys)) == len(keys), "duplicate audit rows"
    return tuple(rows)


AUDIT: tuple[AuditSpec, ...] = _build_audit()
"""Every audited (model, scale), in table order."""

TOLERANCE_FRACTION = {"exact": 0.0, "1%": 0.01, "3%": 0.03}


def _paper_counts() -> dict[tuple[str, int], dict[str, int]]:
    """``{(model, scale): {table: count}}`` from the paper's reported parameter counts."""
    rep = reported()
    rep = rep[rep["metric"] == "params"]
    out: dict[tuple[str, int], dict[str, int]] = {}
    for r in rep.itertuples(index=False):
        out.setdefault((r.model, int(r.scale)), {})[r.table] = round(r.value)
    return out


def _count(model: str, scale: int) -> tuple[int | None, str]:
    """Our count (None when missing or failing) and the status/error text."""
    from ibmdn.models import build_model, count_params, list_models

    if model not in list_models():
        return None, "missing"
    try:
        return count_params(build_model(model, scale)), ""
    except Exception as e:  # noqa: BLE001 - an audit row reports the error instead of aborting the audit
        return None, f"error: {type(e).__name__}: {e}"


def _summary(model: str) -> str:
    from ibmdn.models import model_spec

    try:
        return model_spec(model).summary
    except KeyError:
        return ""


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def audit_row(spec: AuditSpec, paper: dict[tuple[str, int], dict[str, int]] | None = None) -> dict:
    """The audit row of one :class:`AuditSpec` (see the module docstring for the columns)."""
    paper = _paper_counts() if paper is None else paper
    by_table = paper.get((spec.paper_as or spec.model, spec.scale), {})
    distinct = sorted(set(by_table.values()))
    # when tables print different counts, the most precise one (most significant digits) is shown
    paper_params = max(distinct, key=lambda v: (len(str(v).rstrip("0")), v)) if distinct else None
    notes = [spec.note] if spec.note else []
    if len(distinct) > 1:
        notes.append("the paper prints " + ", ".join(f"{v:,} ({t})" for t, v in sorted(by_table.items())))

    if spec.tolerance == "exact":
        reference, ref_source = spec.upstream, "upstream"
    else:
        reference, ref_source = paper_params, ("paper" if paper_params is not None else "")
    params, problem = _count(spec.model, spec.scale)
    if problem.startswith("error"):
        status = "error"
        notes.append(problem)
    elif problem == "missing":
        status = "missing"
    elif spec.tolerance == "contradiction":
        status = "documented"
    elif reference is None:
        status = "error"
        notes.append("no reference count")
    else:
        tol = TOLERANCE_FRACTION[spec.tolerance]
        status = "pass" if abs(params - reference) <= tol * reference else "fail"
    if spec.tolerance == "contradiction" and params is not None:
        summary = _summary(spec.model)
        if summary:
            notes.append(f"Ours: {summary}")
    diff = params - reference if params is not None and reference is not None else None
    return {
        "model": spec.model,
        "scale": spec.scale,
        "paper_label": spec.label,
        "tolerance": spec.tolerance,
        "status": status,
        "params": params,
        "reference": reference,
        "reference_source": ref_source,
        "diff": diff,
        "diff_pct": None if diff is None else round(100.0 * diff / reference, 3),
        "paper_params": paper_params,
        "paper_tables": " ".join(sorted(by_table)),
        "note": " ".join(_sentence(n) for n in notes if n.strip()),
    }


def param_audit(specs: tuple[AuditSpec, ...] = AUDIT) -> pd.DataFrame:
    """The parameter audit table (schema ``param_audit``), one row per spec, in table order."""
    paper = _paper_counts()
    df = pd.DataFrame([audit_row(s, paper) for s in specs], columns=list(PARAM_AUDIT.columns))
    for c in PARAM_AUDIT.integer:
        df[c] = df[c].astype("Int64")
    return df


def audit_command(args: argparse.Namespace) -> int:
    """``ibmdn audit --out DIR``: write ``DIR/param_audit.csv`` (+ ``.meta.json``) and print a summary."""
    out = Path(getattr(args, "out", "results") or "results")
    df = param_audit()
    path = write_table(
        df,
        out / "param_audit.csv",
        provenance(
            command="audit",
            parameters={"out": str(out)},
            tolerances={
                "exact": "upstream count",
                "1%": "paper count",
                "3%": "paper count",
                "contradiction": "documented, not asserted",
            },
        ),
        schema=PARAM_AUDIT,
    )
    counts = df["status"].value_counts().to_dict()
    print(f"wrote {path} ({len(df)} rows): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    bad = df[df["status"].isin(["fail", "error"])]
    for r in bad.itertuples(index=False):
        ours = "-" if pd.isna(r.params) else f"{int(r.params):,}"
        ref = "-" if pd.isna(r.reference) else f"{int(r.reference):,}"
        head = f"  {r.status.upper():5s} {r.model} x{r.scale}: ours {ours}, reference {ref} ({r.tolerance})"
        print(f"{head} {r.note}")
    return 0
