"""Parameter audit (issue 2, acceptance 1): our counts against the upstream code and the paper."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from ibmdn.experiments import readme
from ibmdn.experiments.audit import AUDIT, UPSTREAM, audit_command, param_audit
from ibmdn.results import read_meta, read_table, validate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def audit() -> pd.DataFrame:
    return param_audit()


def _row(audit: pd.DataFrame, model: str, scale: int) -> pd.Series:
    sel = audit[(audit.model == model) & (audit.scale == scale)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_audit_table_is_valid(audit):
    validate(audit, "param_audit")
    assert len(audit) == len(AUDIT)
    assert set(audit.tolerance) == {"exact", "1%", "3%", "contradiction"}


def test_audit_covers_the_papers_tables(audit):
    rows = set(zip(audit.model, audit.scale))
    for model in (
        "imdn",
        "rfdn",
        "bsrn",
        "imdn_icmd",
        "rfdn_icmd_4b",
        "rfdn_icmd_6b",
        "bsrn_icmd",
        "imdn_ibmd_cca",
        "imdn_ibmd_esa",
        "imdn_ibmd_hfab",
        "imdn_ibmd_chfab",
        "rfdn_ibmd_cca",
        "rfdn_ibmd_esa",
        "rfdn_ibmd_hfab",
        "rfdn_ibmd_chfab",
        "esrt_64",
        "esrt_imdn_ibmd",
        "esrt_rfdn_ibmd",
        "ibmdn",
    ):
        assert (model, 2) in rows, model
    for model in (
        "esrgan_g",
        "esrgan_d",
        *(
            f"gan_{g}_{p}"
            for g in ("imdn_ibmd", "rfdn_ibmd", "esrt_imdn_ibmd", "esrt_rfdn_ibmd")
            for p in "gd"
        ),
    ):
        assert (model, 4) in rows, model
    for model in (
        "imdn",
        "rfdn",
        "bsrn",
        "imdn_ibmd_chfab",
        "rfdn_ibmd_chfab",
        "esrt_imdn_ibmd",
        "esrt_rfdn_ibmd",
        "ibmdn",
        "esrt",
        "esrt_64",
        "rfdn_aim",
        "depthibn",
    ):
        assert {(model, s) for s in (2, 3, 4)} <= rows, model


def test_exact_references_are_the_upstream_counts(audit):
    for model, counts in UPSTREAM.items():
        for scale, n in counts.items():
            row = _row(audit, model, scale)
            assert row.tolerance == "exact" and row.reference == n and row.reference_source == "upstream"


def test_paper_counts_are_shown(audit):
    assert _row(audit, "imdn", 2).paper_params == 694_000
    assert _row(audit, "esrgan_g", 4).paper_params == 38_500_000
    assert _row(audit, "esrt_64", 2).paper_params == 2_697_000  # Table VI's, the more precise of 2M / 2697K
    assert "2,000,000 (table4)" in _row(audit, "esrt_64", 2).note
    assert _row(audit, "ibmdn", 4).paper_params == 187_000  # Table VI's RFDN_IBMD row
    assert _row(audit, "imdn_ibmd_chfab", 3).paper_params == 194_000
    assert pd.isna(_row(audit, "rfdn_aim", 4).paper_params)


@pytest.mark.parametrize(
    "spec",
    [s for s in AUDIT if s.tolerance != "contradiction"],
    ids=lambda s: f"{s.model}-x{s.scale}-{s.tolerance}",
)
def test_count_within_tolerance(audit, spec):
    row = _row(audit, spec.model, spec.scale)
    assert row.status == "pass", (
        f"{spec.model} x{spec.scale}: ours {row.params}, reference {row.reference} ({row.reference_source}), "
        f"tolerance {spec.tolerance}, status {row.status}: {row.note}"
    )


@pytest.mark.parametrize(
    "spec", [s for s in AUDIT if s.tolerance == "contradiction"], ids=lambda s: f"{s.model}-x{s.scale}"
)
def test_contradictions_are_built_and_documented(audit, spec):
    row = _row(audit, spec.model, spec.scale)
    assert row.status == "documented", f"{spec.model} x{spec.scale}: status {row.status}: {row.note}"
    assert row.params > 0 and row.paper_params > 0
    assert "Ours:" in row.note, "the note states the chosen configuration (the model's docstring summary)"
    assert len(row.note) > 80


def test_audit_command_writes_deterministic_table(tmp_path, audit):
    args = argparse.Namespace(out=str(tmp_path))
    assert audit_command(args) == 0
    path = tmp_path / "param_audit.csv"
    first = path.read_bytes()
    meta = read_meta(path)
    assert meta["schema"] == "param_audit" and meta["provenance"]["command"] == "audit"
    back = read_table(path)
    assert len(back) == len(AUDIT)
    assert audit_command(args) == 0
    assert path.read_bytes() == first


def test_readme_rendering(tmp_path, audit):
    text = "# x\n\n<!-- BEGIN param_audit -->\nstale\n<!-- END param_audit -->\n\ntail\n"
    md = tmp_path / "README.md"
    md.write_text(text)
    assert "Not generated yet" in readme.update_text(text, tmp_path / "none")
    audit_command(argparse.Namespace(out=str(tmp_path / "results")))
    assert readme.main(["--readme", str(md), "--results", str(tmp_path / "results"), "--check"]) == 1
    assert readme.main(["--readme", str(md), "--results", str(tmp_path / "results")]) == 0
    out = md.read_text()
    assert "stale" not in out and out.endswith("<!-- END param_audit -->\n\ntail\n")
    assert "| `imdn` | x2 | IMDN | 694,404 | 694,000 | 694,404 (upstream) |" in out
    assert readme.main(["--readme", str(md), "--results", str(tmp_path / "results"), "--check"]) == 0
    with pytest.raises(KeyError):
        readme.update_text("<!-- BEGIN nope -->\n<!-- END nope -->", tmp_path)


def test_project_readme_has_every_section():
    text = "".join((ROOT / f).read_text(encoding="utf-8") for f in readme.READMES)
    for name in readme.SECTIONS:
        assert f"<!-- BEGIN {name} -->" in text and f"<!-- END {name} -->" in text
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200, "the README is a front page"
