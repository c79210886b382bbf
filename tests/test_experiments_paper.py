"""The package side of the paper notebooks (tables, figures, walkthroughs): the cheap, exact parts.

The notebooks themselves are executed and compared by nbval (``make test``); these tests pin the logic
they call: the comparison with the paper, the recipes, the image subset, the operator pattern.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ibmdn.experiments import figures, tables
from ibmdn.results import LONG_COLUMNS, validate


def _measured(rows):
    df = pd.DataFrame([dict(zip(LONG_COLUMNS, r)) for r in rows], columns=list(LONG_COLUMNS))
    return validate(df)


def test_compare_joins_the_paper_and_labels_kinds():
    m = _measured([
        ("table6", "imdn", "official", 4, "set5", "psnr", 32.2100, "dB", 5, "measured"),
        ("table6", "imdn", "official", 4, "", "params", 715176, "count", None, "measured"),
        ("table6", "rfdn_ibmd_chfab", "smoke", 4, "set5", "psnr", 12.5, "dB", 2, "measured"),
        ("table6", "bicubic", "none", 4, "set5", "psnr", 28.0, "dB", 2, "measured"),
    ])
    long = tables.compare(m, wide=False)
    imdn = long[(long.model == "imdn") & (long.metric == "psnr")].iloc[0]
    assert imdn.kind == "checkpoint" and imdn.paper == pytest.approx(32.21) and imdn["diff"] == pytest.approx(0.0)
    params = long[(long.model == "imdn") & (long.metric == "params")].iloc[0]
    assert params.paper == 715000 and params["diff"] == 176
    ours = long[(long.model == "rfdn_ibmd_chfab") & (long.metric == "psnr")].iloc[0]
    assert ours.kind == "trained" and ours.paper == pytest.approx(32.26) and ours["diff"] == pytest.approx(-19.76)
    assert long[long.model == "bicubic"].kind.eq("reference").all()
    quoted = long[long.kind == "quoted"]
    assert {"srcnn", "edsr", "rfdn", "fmen"} <= set(quoted.model) and quoted.ours.isna().all()
    assert "imdn" not in set(quoted.model)  # measured here, so not quoted
    exact = tables.compare(m, part="exact", wide=False)
    assert not ((exact.kind == "trained") & (exact.metric != "params")).any()
    trained = tables.compare(m, part="trained", wide=False)
    assert set(trained.kind) == {"trained"} and "params" not in set(trained.metric)
    wide = tables.compare(m)
    row = wide[(wide.model == "imdn") & (wide.dataset == "set5")].iloc[0]
    assert row["params ours"] == 715176 and row["psnr paper"] == pytest.approx(32.21)


def test_compare_carries_the_paper_flags():
    m = _measured([("table2", "imdn_icmd", "smoke", 2, "set5", "ssim", 0.5, "1", 2, "measured")])
    note = tables.compare(m, wide=False).iloc[0].note
    assert "0.9575" in note  # Table I gives another SSIM for the same model (reported/paper.csv flag)


@pytest.mark.parametrize("profile", ["smoke", "short", "paper"])
def test_recipe_fits_every_scale(profile):
    for scale in (2, 3, 4):
        cfg = tables.recipe(profile, scale, threads=1)
        assert cfg.patch_size % scale == 0 and cfg.profile == profile and cfg.threads == 1
    assert tables.recipe(profile, 4, gan=True).gan


def test_run_dirs_share_the_ibmdn_runs():
    assert tables.run_dir("rfdn_ibmd_chfab", 4, "smoke", "runs") == tables.run_dir("ibmdn", 4, "smoke", "runs")
    assert tables.run_dir("imdn_ibmd", 4, "smoke", "runs", gan=True).name == "imdn_ibmd_x4_smoke_gan"


def test_tables_name_registered_models():
    from ibmdn.models import list_models
    from ibmdn.models.gan import GAN_PAIRS

    known = set(list_models())
    for spec in tables.TABLES.values():
        for m in spec.models:
            assert (m in GAN_PAIRS) if spec.gan else (m in known), (spec.name, m)


def test_subset_is_the_smallest_images(data_root, tmp_path):
    root, names = tables._subset_root("set5", 2, data_root, tmp_path)
    assert names == ["butterfly", "head"]
    from ibmdn.data.datasets import resolve_set

    assert sorted(p.stem for p in resolve_set("set5", "benchmark", root).iterdir()) == names
    _, every = tables._subset_root("set5", None, data_root, tmp_path)
    assert len(every) == 5


def test_operator_pattern_is_read_from_the_model():
    ops = figures.operator_pattern("ibmdn", 4)
    assert figures.pattern_string(ops) == "BsBsBs-BsBsBs-BsIBs-BsIBs-IBsI-III"
    from ibmdn.models import build_model, count_params

    assert int(ops["params"].sum()) == count_params(build_model("ibmdn", 4))
    assert set(ops.loc[ops.position == "attention", "op"]) == {"CHFAB"}


def test_worst_crop_finds_the_error():
    import numpy as np

    hr = np.zeros((64, 64, 3), np.uint8)
    sr = hr.copy()
    sr[40:48, 12:20] = 255
    y, x = figures.worst_crop(hr, sr, 16, 4, stride=4)
    assert y <= 40 and y + 16 >= 48 and x <= 12 and x + 16 >= 20
    assert not math.isnan(y)


def test_trained_checkpoint_shipped_or_profile_run(tmp_path):
    from ibmdn.shipped import DEFAULT_MODEL, shipped_weights

    model, path, label, note = tables.trained_checkpoint("ibmdn", 4, tables.SHIPPED)
    best = shipped_weights(DEFAULT_MODEL, 4)[0]
    assert (model, path, label) == (DEFAULT_MODEL, best.path, f"shipped-{best.tag}") and best.path.name in note
    model, path, label, note = tables.trained_checkpoint("ibmdn", 4, "smoke", tmp_path)
    assert (model, path, label) == ("ibmdn", None, "none") and "ibmdn_x4_smoke" in note
