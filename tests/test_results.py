"""Result tables: round trip, atomic and deterministic writing, schema validation, the paper's values."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from pathlib import Path

import pandas as pd
import pytest

from ibmdn import results
from ibmdn.results import (
    LONG_COLUMNS,
    SchemaError,
    format_csv,
    meta_path,
    provenance,
    read_meta,
    read_table,
    reported,
    validate,
    write_table,
)

PAPER = Path(os.environ.get("IBMDN_PAPER", Path(__file__).resolve().parents[2] / "shared" / "paper"
                           / "000_8a5563141e5c7484.txt"))  # the paper's text: a data file, like IBMDN_DATA


def long_df(**override) -> pd.DataFrame:
    rows = [
        {
            "table": "table6",
            "model": "imdn",
            "weights": "official",
            "scale": 2,
            "dataset": "set5",
            "metric": "psnr",
            "value": 37.996123456,
            "unit": "dB",
            "n_images": 5,
            "source": "measured",
        },
        {
            "table": "table6",
            "model": "imdn",
            "weights": "official",
            "scale": 2,
            "dataset": "set5",
            "metric": "ssim",
            "value": 0.96051,
            "unit": "1",
            "n_images": 5,
            "source": "measured",
        },
        {
            "table": "table6",
            "model": "imdn",
            "weights": "official",
            "scale": 2,
            "dataset": "",
            "metric": "params",
            "value": 694404,
            "unit": "count",
            "n_images": None,
            "source": "measured",
        },
        {
            "table": "table6",
            "model": "bsrn",
            "weights": "official",
            "scale": 4,
            "dataset": "urban100",
            "metric": "psnr",
            "value": 26.27,
            "unit": "dB",
            "n_images": 100,
            "source": "measured",
        },
    ]
    df = pd.DataFrame(rows, columns=list(LONG_COLUMNS))
    for k, v in override.items():
        df[k] = v
    return df


# ---------------------------------------------------------------------------------------------- writing


def test_round_trip(tmp_path):
    df = long_df()
    path = write_table(df, tmp_path / "sub" / "t.csv", {"profile": "smoke"})
    back = read_table(path)
    assert list(back.columns) == list(LONG_COLUMNS)
    assert len(back) == len(df)
    row = back[(back.model == "imdn") & (back.metric == "psnr")].iloc[0]
    assert row.value == pytest.approx(37.996123, abs=1e-9)  # fixed rounding: 6 decimals
    assert row.scale == 2 and row.n_images == 5 and row.dataset == "set5"
    params = back[back.metric == "params"].iloc[0]
    assert params.value == 694404 and pd.isna(params.n_images) and params.dataset == ""
    assert str(back["scale"].dtype) == "Int64" and back["value"].dtype == "float64"
    meta = read_meta(path)
    assert meta["schema"] == "long" and meta["rows"] == 4 and meta["provenance"] == {"profile": "smoke"}
    assert meta_path(path) == tmp_path / "sub" / "t.meta.json"


def test_integers_and_floats_formatting(tmp_path):
    text = write_table(long_df(), tmp_path / "t.csv", {}).read_text()
    assert "\r" not in text and text.endswith("\n")
    assert ",694404,count,," in text  # no '694404.0', empty n_images
    assert ",0.96051,1,5," in text and ",37.996123,dB,5," in text


def test_sorted_and_deterministic(tmp_path):
    df = long_df()
    a = write_table(df, tmp_path / "a.csv", {})
    shuffled = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    shuffled["value"] = shuffled["value"] + 1e-9  # below the rounding: same file
    b = write_table(shuffled[list(reversed(shuffled.columns))], tmp_path / "b.csv", {})
    assert a.read_bytes() == b.read_bytes()
    back = read_table(a)
    keys = ["table", "model", "weights", "scale", "dataset", "metric", "source"]
    assert back[keys].equals(back.sort_values(keys, kind="mergesort")[keys].reset_index(drop=True))
    # re-writing the same numbers leaves the CSV byte-identical even though the sidecar's date moves
    before = a.read_bytes()
    write_table(df, a)
    assert a.read_bytes() == before
    assert "date_utc" in read_meta(a)["provenance"]


def test_atomic_failure_mid_write_keeps_old_files(tmp_path, monkeypatch):
    path = write_table(long_df(), tmp_path / "t.csv", {"run": 1})
    old_csv, old_meta = path.read_bytes(), meta_path(path).read_bytes()

    def boom(fd):  # data has been written to the temporary file, the rename has not happened
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    changed = long_df()
    changed["value"] = changed["value"] * 2
    with pytest.raises(OSError, match="disk full"):
        write_table(changed, path, {"run": 2})
    assert path.read_bytes() == old_csv
    assert meta_path(path).read_bytes() == old_meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.meta.json"]  # no temporary left


def test_atomic_failure_on_second_file_keeps_pair(tmp_path, monkeypatch):
    path = write_table(long_df(), tmp_path / "t.csv", {"run": 1})
    old_csv, old_meta = path.read_bytes(), meta_path(path).read_bytes()
    real = results._write_tmp
    calls = []

    def second_fails(p, data):
        calls.append(p)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed between the two temporary files
        return real(p, data)

    monkeypatch.setattr(results, "_write_tmp", second_fails)
    with pytest.raises(KeyboardInterrupt):
        write_table(long_df(value=1.0), path, {"run": 2})
    assert path.read_bytes() == old_csv and meta_path(path).read_bytes() == old_meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.meta.json"]


def test_invalid_table_never_touches_file(tmp_path):
    path = write_table(long_df(), tmp_path / "t.csv", {})
    old = path.read_bytes()
    with pytest.raises(SchemaError):
        write_table(long_df(unit="dB"), path, {})
    assert path.read_bytes() == old


# -------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.drop(columns="unit"), "missing columns"),
        (lambda d: d.assign(note="x"), "unexpected columns"),
        (lambda d: pd.concat([d, d.iloc[:1]]), "duplicate keys"),
        (lambda d: d.assign(value="high"), "not a number"),
        (lambda d: d.assign(value=float("inf")), "not finite"),
        (lambda d: d.assign(value=None), "'value' is empty"),
        (lambda d: d.assign(scale=2.5), "not an integer"),
        (lambda d: d.assign(scale=0), "scale"),
        (lambda d: d.assign(n_images=-1), "n_images"),
        (lambda d: d.assign(model=""), "'model' is empty"),
        (lambda d: d.assign(model="IMDN"), "lowercase"),
        (lambda d: d.assign(dataset="Set 5"), "lowercase"),
        (lambda d: d.assign(source="guess"), "not in"),
        (lambda d: d.assign(unit="count"), "must have unit"),
    ],
)
def test_schema_errors(mutate, match):
    with pytest.raises(SchemaError, match=match):
        validate(mutate(long_df()))


def test_flag_is_the_only_optional_column(tmp_path):
    df = long_df(flag=["", "typo?", "", ""])
    path = write_table(df, tmp_path / "t.csv", {})
    assert path.read_text().splitlines()[0].endswith(",source,flag")
    assert set(read_table(path)["flag"]) == {"", "typo?"}


def test_text_with_commas_and_quotes_round_trips(tmp_path):
    df = long_df(flag=['a, "quoted" remark', "", "", ""])
    back = read_table(write_table(df, tmp_path / "t.csv", {}))
    assert 'a, "quoted" remark' in set(back["flag"])


def test_read_rejects_hand_broken_csv(tmp_path):
    path = write_table(long_df(), tmp_path / "t.csv", {})
    path.write_text(path.read_text().replace(",dB,", ",decibel,", 1))
    with pytest.raises(SchemaError, match="must have unit"):
        read_table(path)


def test_read_uses_sidecar_schema(tmp_path):
    from ibmdn.schemas import PARAM_AUDIT

    row = {c: "" for c in PARAM_AUDIT.columns} | {
        "model": "imdn",
        "scale": 2,
        "tolerance": "exact",
        "status": "pass",
        "params": 694404,
        "reference": 694404,
        "diff": 0,
        "diff_pct": 0.0,
    }
    path = write_table(pd.DataFrame([row]), tmp_path / "a.csv", {}, schema="param_audit")
    assert read_table(path)["params"].iloc[0] == 694404
    with pytest.raises(SchemaError):
        read_table(path, "long")


# -------------------------------------------------------------------------------------------- provenance


@dataclasses.dataclass(frozen=True)
class _Protocol:
    crop: int = 2
    y_only: bool = True


def test_provenance():
    p = provenance(profile="smoke", protocol=_Protocol(), parameters={"epochs": 1})
    for key in ("git", "versions", "device", "date_utc", "argv", "platform"):
        assert key in p
    assert set(p["git"]) == {"sha", "dirty"}
    assert {"python", "torch", "numpy", "pandas", "ibmdn"} <= set(p["versions"])
    assert p["protocol"] == {"crop": 2, "y_only": True} and p["profile"] == "smoke"
    assert p["date_utc"].endswith("+00:00")
    text = json.dumps(p)
    host = socket.gethostname()
    if len(host) >= 6:
        assert host not in text


def test_provenance_names_the_cpu_features_that_timings_follow(monkeypatch):
    """Two hosts both called "AMD EPYC" (one AVX2, one AVX-512 with native bf16) timed the same bench 1.5x
    apart; the device words say which one measured."""
    import torch

    from ibmdn.experiments.readme import _device_words

    dev = results.device_info()
    assert dev["cpu_isa"] == torch.backends.cpu.get_cpu_capability() and dev["cpu_bf16"] in (True, False, None)
    flags = "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"
    monkeypatch.setattr(results.Path, "read_text", lambda self, *a, **k: flags)
    assert results._cpu_bf16() is True
    assert _device_words({"device": {"cpu": "AMD EPYC", "cpu_isa": "AVX512", "cpu_bf16": True}}) == \
        "AMD EPYC (AVX512, native bf16)"
    assert _device_words({"device": {"cpu": "AMD EPYC", "cpu_isa": "AVX2", "cpu_bf16": False}}) == \
        "AMD EPYC (AVX2, no native bf16)"
    assert _device_words({"device": {"cpu": "AMD EPYC"}}) == "AMD EPYC"  # records made before these fields


# ------------------------------------------------------------------------------------ the paper's values


def test_reported_schema_and_tables():
    rep = reported()
    assert set(rep["source"]) == {"paper"} and set(rep["weights"]) == {"paper"}
    assert rep.groupby("table").size().to_dict() == {
        "table1": 7 * 9,
        "table2": 4 * 4,
        "table3": 8 * 4,
        "table4": 3 * 4,
        "table5": 5 * 6,
        "table6": 45 * 9,
    }
    assert len(reported("table3")) == 32 and len(reported(["table2", "table4"])) == 28
    with pytest.raises(KeyError):
        reported("table9")


def test_reported_file_is_canonical():
    path = Path(results.__file__).parent / "reported" / "paper.csv"
    assert format_csv(read_table(path, "long")) == path.read_text(encoding="utf-8")


def _value(rep, table, model, scale, dataset, metric):
    sel = rep[
        (rep.table == table)
        & (rep.model == model)
        & (rep.scale == scale)
        & (rep.dataset == dataset)
        & (rep.metric == metric)
    ]
    assert len(sel) == 1, (table, model, scale, dataset, metric)
    return sel.iloc[0]


@pytest.mark.parametrize(
    "table, model, scale, count",
    [
        ("table1", "imdn", 2, 694_000),
        ("table1", "rfdn", 2, 534_000),
        ("table1", "bsrn", 2, 332_000),
        ("table1", "imdn_icmd", 2, 494_000),
        ("table1", "rfdn_icmd_4b", 2, 262_000),
        ("table1", "rfdn_icmd_6b", 2, 424_000),
        ("table1", "bsrn_icmd", 2, 340_000),
        ("table2", "imdn_ibmd_cca", 2, 161_000),
        ("table2", "rfdn_ibmd_cca", 2, 150_000),
        ("table3", "imdn_ibmd_esa", 2, 227_000),
        ("table3", "imdn_ibmd_hfab", 2, 394_000),
        ("table3", "imdn_ibmd_chfab", 2, 185_000),
        ("table3", "rfdn_ibmd_esa", 2, 187_000),
        ("table3", "rfdn_ibmd_hfab", 2, 399_000),
        ("table3", "rfdn_ibmd_chfab", 2, 170_000),
        ("table4", "esrt_64", 2, 2_000_000),
        ("table4", "esrt_imdn_ibmd", 2, 545_000),
        ("table4", "esrt_rfdn_ibmd", 2, 622_000),
        ("table5", "esrgan_g", 4, 38_500_000),
        ("table5", "esrgan_d", 4, 4_600_000),
        ("table5", "esrgan", 4, 43_200_000),
        ("table5", "gan_imdn_ibmd_g", 4, 209_000),
        ("table5", "gan_imdn_ibmd_d", 4, 580_000),
        ("table5", "gan_rfdn_ibmd", 4, 844_000),
        ("table5", "gan_esrt_rfdn_ibmd", 4, 1_000_000),
        ("table6", "srcnn", 3, 8_000),
        ("table6", "drcn", 4, 1_774_000),
        ("table6", "esrt_64", 2, 2_697_000),
        ("table6", "esrt", 3, 770_000),
        ("table6", "esrt_64", 4, 2_992_000),
        ("table6", "rfdn", 4, 550_000),
        ("table6", "imdn_ibmd_chfab", 4, 206_000),
        ("table6", "rfdn_ibmd_chfab", 3, 178_000),
        ("table6", "esrt_imdn_ibmd", 3, 915_000),
        ("table6", "esrt_rfdn_ibmd", 4, 917_000),
    ],
)
def test_reported_param_counts(table, model, scale, count):
    row = _value(reported(), table, model, scale, "", "params")
    assert row.value == count and row.unit == "count"


def test_reported_typos_are_kept_and_flagged():
    rep = reported()
    for key, value in [
        (("table6", "srcnn", 2, "set5", "ssim"), 0.5942),
        (("table6", "imdn_ibmd_chfab", 2, "set14", "psnr"), 33.651),
        (("table6", "rfdn_ibmd_chfab", 3, "set14", "ssim"), 0.819),
        (("table6", "esrt_rfdn_ibmd", 3, "set5", "psnr"), 34.456),
        (("table1", "imdn", 2, "bsd100", "ssim"), 0.8637),
        (("table2", "imdn_icmd", 2, "set5", "ssim"), 0.9675),
        (("table1", "imdn_icmd", 2, "set5", "ssim"), 0.9575),
        (("table5", "gan_rfdn_ibmd", 4, "", "params"), 844_000),
    ]:
        row = _value(rep, *key)
        assert row.value == value and row.flag, key
    assert _value(rep, "table6", "imdn", 2, "set5", "psnr").flag == ""
    assert _value(rep, "table2", "rfdn_ibmd_cca", 2, "set5", "lpips").value == 0.0142
    assert _value(rep, "table5", "gan_esrt_imdn_ibmd_g", 4, "set5", "lpips").value == 0.1234


_T6_LABELS = {
    "SRCNN": "srcnn",
    "VDSR": "vdsr",
    "DRCN": "drcn",
    "EDSR": "edsr",
    "FMEN": "fmen",
    "IDN": "idn",
    "IMDN": "imdn",
    "RFDN": "rfdn",
    "BSRN": "bsrn",
    "RMFDN": "rmfdn",
    "IMDN_IBMD": "imdn_ibmd_chfab",
    "RFDN_IBMD": "rfdn_ibmd_chfab",
    "ESRT_IMDN_IBMD": "esrt_imdn_ibmd",
    "ESRT_RFDN_IBMD": "esrt_rfdn_ibmd",
}
_T1_LABELS = {
    "IMDN": "imdn",
    "RFDN": "rfdn",
    "BSRN": "bsrn",
    "IMDN_ICMD": "imdn_icmd",
    "RFDN_ICMD 4B": "rfdn_icmd_4b",
    "RFDN_ICMD 6B": "rfdn_icmd_6b",
    "BSRN_ICMD": "bsrn_icmd",
}
_DATASETS = ("set5", "set14", "bsd100", "urban100")


@pytest.mark.skipif(not PAPER.exists(), reason=f"paper text not found at {PAPER}: set IBMDN_PAPER")
def test_reported_tables_1_and_6_match_the_paper_text():
    """Independent re-read of the two big tables from the paper's text, cell by cell."""
    rep = reported()
    seen = 0
    for line in PAPER.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) == 7 and re.fullmatch(r"×[234]", cells[1]):  # Table VI
            table, scale, label, cells = "table6", int(cells[1][1:]), cells[0], cells[2:]
            model = _T6_LABELS.get(label) or {2: "esrt_64", 3: "esrt", 4: "esrt_64"}[scale]
        elif len(cells) >= 7 and cells[0].isdigit() and cells[1] in _T1_LABELS:  # Table I
            table, scale, model, cells = "table1", 2, _T1_LABELS[cells[1]], cells[2:7]
        else:
            continue
        count = float(cells[0][:-1]) * 1000
        assert _value(rep, table, model, scale, "", "params").value == count
        for dataset, cell in zip(_DATASETS, cells[1:]):
            psnr, ssim = (float(x) for x in cell.split("/"))
            assert _value(rep, table, model, scale, dataset, "psnr").value == psnr
            assert _value(rep, table, model, scale, dataset, "ssim").value == ssim
        seen += 1
    assert seen == 45 + 7
