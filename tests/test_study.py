"""The study (:mod:`ibmdn.experiments.study`) and its verdicts (:mod:`ibmdn.experiments.claims`).

The committed tables and claims are recomputed from the committed run records (the records are the only
source of the trained numbers); the plan, the recipe, the locks, the rule and one tiny end-to-end run are
checked on their own.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from ibmdn.experiments import claims, study
from ibmdn.results import read_table

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "results" / "study"


# ------------------------------------------------------------------------------------------------ plan


def test_plan_covers_tables_one_to_three_with_three_seeds():
    plan = study.study_plan()
    names = [r.name for r in plan]
    assert len(names) == len(set(names)) == 16 * 3
    models = {r.model for r in plan}
    assert "ibmdn" in models and "rfdn_ibmd_chfab" not in models  # the same network, one set of runs
    assert {"ibmdn_stable", "imdn", "rfdn", "bsrn", "imdn_icmd", "rfdn_icmd_4b", "bsrn_icmd"} <= models
    assert [r.seed for r in plan] == sorted(r.seed for r in plan), "seed-major: one seed of every row first"
    by = {r.model: r for r in plan if r.seed == 0}
    assert by["imdn"].datasets == ("set5", "set14", "bsd100", "urban100") and by["imdn"].lpips_sets == ()
    assert by["imdn_icmd"].lpips_sets == ("set5",)  # Table I and Table II
    assert by["rfdn_ibmd_hfab"].datasets == ("set5",) == by["ibmdn_stable"].lpips_sets


def test_plan_gives_tables_four_and_five_one_seed_and_their_budget():
    plan = study.study_plan(("table3", "table4", "table5"))
    late = [r for r in plan if r.model.startswith("esrt") or r.gan]
    assert len(late) == 10 and plan[-len(late):] == late
    assert [r.seed for r in late] == [0] * 8 + [1, 2]  # one seed each, then the Table V seed spread
    assert {(r.model, r.gan) for r in late[-2:]} == {("imdn_ibmd", True)}
    assert {(r.factor, r.gan, r.scale) for r in late} == {(study.BUDGET_FACTOR["table4"], False, 2),
                                                              (study.BUDGET_FACTOR["table5"], True, 4)}
    gan = next(r for r in late if r.model == "esrgan")
    assert gan.generator == "esrgan_g" and gan.name == "esrgan_x4_study_gan_s0"


def test_study_recipe_is_short_on_the_fast_path_with_a_seed():
    from ibmdn.train import PROFILES

    cfg = study.study_recipe(2)
    short = PROFILES["short"]
    same = {"patch_size", "batch_size", "iterations", "lr", "schedule", "warmup", "min_lr_ratio", "perceptual_weight",
            "l1_weight", "val_every", "bn_recalibrate"}
    assert all(getattr(cfg, f) == getattr(short, f) for f in same)
    assert (cfg.seed, cfg.channels_last, cfg.threads, cfg.profile) == (2, True, 1, "study")
    assert study.study_recipe(0, 3).patch_size % 3 == 0
    assert study.study_recipe(0, 4, 7, True).iterations == 7 * cfg.iterations  # the paper's 700 epochs
    gan = study.study_recipe(0, 4, 1, True)  # Table V: ESRGAN's L1 pre-training stage, then its loss
    assert gan.gan and gan.gan_warmup == cfg.iterations // 2 and study.study_recipe(0).gan_warmup == 0


def test_gpu_budget_is_a_separate_profile():
    gpu = study.study_plan(seeds=(0,), profile="study_gpu")
    assert len(gpu) == 16 and all(r.name.endswith("_x2_study_gpu_s0") for r in gpu)
    cfg = study.study_recipe(0, 2, profile="study_gpu")
    assert (cfg.profile, cfg.batch_size, cfg.patch_size) == ("study_gpu", 16, 128)
    assert cfg.iterations * cfg.batch_size * cfg.patch_size**2 > 10 * study.study_recipe(0).budget["hr_pixels_seen"]


def test_claim_takes_over_a_dead_lock_only(tmp_path):
    lock = tmp_path / "run.lock"
    assert study.claim(lock) and lock.read_text() == str(os.getpid())
    assert not study.claim(lock), "a live process holds it"
    lock.write_text("999999999")  # no such process
    assert study.claim(lock)


# ------------------------------------------------------------------------------------------------ rule


def test_verdict_rule():
    assert claims.verdict(0.01, 0.2, 0.0) == "reproduced"
    assert claims.verdict(-0.3, -0.01, 0.0) == "contradicted"
    assert claims.verdict(-0.1, 0.2, 0.0) == "not resolvable"
    assert claims.verdict(-0.04, 0.1, 0.05) == "reproduced"  # non-inferiority: above -margin
    assert claims.verdict(-0.2, -0.06, 0.05) == "contradicted"
    assert claims.verdict(math.nan, math.nan, 0.0) == "not tested"
    assert claims.claim_verdict(["reproduced"] * 3) == "reproduced"
    assert claims.claim_verdict(["not tested"] * 2) == "not tested"
    assert claims.claim_verdict(["reproduced", "contradicted"]) == "mixed: reproduced 1/2, contradicted 1/2"


def test_welch_interval_matches_scipy():
    from scipy import stats

    a, b = pd.Series([35.2, 35.3, 35.25]), pd.Series([35.0, 35.1, 34.98, 35.05])
    lo, hi = claims._welch(a, b)
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert lo == pytest.approx(ci.low) and hi == pytest.approx(ci.high)
    assert math.isnan(claims._welch(a[:1], b)[0])


def _record(model, seed, psnrs, lpips=None, dataset="set5"):
    rows = [{"dataset": dataset, "image": f"im{i}", "psnr": p, "ssim": 0.9} for i, p in enumerate(psnrs)]
    if lpips is not None:
        for r in rows:
            r["lpips"] = lpips
    return {"run": f"{model}_x2_study_s{seed}", "model": model, "seed": seed, "scale": 2, "steps": 10, "wall_s": 1.0,
            "git": {"sha": "0" * 40}, "per_image": rows}


def test_claims_from_records_signs_and_lpips():
    recs = [_record("rfdn_ibmd_cca", s, [35.0 + 0.01 * s, 35.1], lpips=0.05) for s in range(3)]
    recs += [_record("ibmdn", s, [35.3 + 0.01 * s, 35.4], lpips=0.04) for s in range(3)]
    found = claims.claims_table(claims.run_frame(recs))
    row = found[(found.better == "rfdn_ibmd_chfab") & (found.worse == "rfdn_ibmd_cca")].set_index("metric")
    assert row.loc["psnr", "advantage"] == pytest.approx(0.3) and row.loc["psnr", "verdict"] == "reproduced"
    assert row.loc["lpips", "advantage"] == pytest.approx(0.01)  # lower LPIPS is the better
    assert row.loc["ssim", "verdict"] == "not resolvable"  # equal
    assert set(found.loc[found.claim == 6, "verdict"]) == {"not tested"}
    assert len(set(found["claim"])) == len(claims.CLAIMS) == 7


def test_seeds_to_resolve_is_the_first_seed_count_whose_interval_excludes_the_margin():
    """With the observed means and spreads held, the Welch interval at the returned number of seeds per side
    excludes -margin and at one fewer it does not; the pooled form uses its fixed degrees of freedom."""
    from scipy import stats

    a, b = pd.Series([35.30, 35.10, 35.50]), pd.Series([35.20, 35.00, 35.25])  # advantage 0.15, not resolvable
    lo, hi = claims._welch(a, b)
    assert lo < 0 < hi
    n = claims.seeds_to_resolve(a, b, 0.0)
    va, vb = a.var(ddof=1), b.var(ddof=1)

    def half(k):
        df = (va + vb) ** 2 * (k - 1) / (va**2 + vb**2)
        return stats.t.ppf(0.975, df) * ((va + vb) / k) ** 0.5

    assert n == int(n) and half(n) < 0.15 <= half(n - 1)
    assert claims.seeds_to_resolve(a, b, 0.05) < n  # a margin of 0.05: the interval must clear -0.05, 0.20 away
    assert math.isnan(claims.seeds_to_resolve(a, a, 0.0))  # no difference: never
    one, var = pd.Series([35.2]), (0.04, 29)
    k = claims.seeds_to_resolve(one, pd.Series([35.0]), 0.0, var)
    assert stats.t.ppf(0.975, 29) * (2 * 0.04 / k) ** 0.5 < 0.2 <= stats.t.ppf(0.975, 29) * (2 * 0.04 / (k - 1)) ** 0.5
    assert math.isnan(claims.seeds_to_resolve(one, pd.Series([35.0]), 0.0))  # one seed and no pooled variance


def test_one_seed_tables_use_the_pooled_seed_variance():
    """Table IV's one-seed comparisons get a t interval from the seed variance pooled over the multi-seed
    networks of the same benchmark and metric; Table I-III comparisons never do."""
    from scipy import stats

    recs = [_record("imdn", s, [35.0 + 0.1 * s, 35.0 + 0.1 * s]) for s in range(3)]  # var 0.01, 2 df
    recs += [_record("rfdn", s, [34.0 + 0.2 * s, 34.0 + 0.2 * s]) for s in range(2)]  # var 0.02, 1 df
    recs += [_record("esrt_64", 0, [33.0, 33.0]), _record("esrt_rfdn_ibmd", 0, [34.0, 34.0])]
    runs = claims.run_frame(recs)
    var, df = claims.seed_variance(runs)[(2, "set5", "psnr")]
    assert df == 3 and var == pytest.approx((2 * 0.01 + 1 * 0.02) / 3)
    found = claims.claims_table(runs)
    row = found[(found.better == "esrt_rfdn_ibmd") & (found.worse == "esrt_64") & (found.metric == "psnr")].iloc[0]
    h = stats.t.ppf(0.975, 3) * math.sqrt(2 * var)
    assert row.interval == "pooled" and row.ci_low == pytest.approx(1.0 - h) and row.ci_high == pytest.approx(1.0 + h)
    assert row.verdict == ("reproduced" if 1.0 - h > 0 else "not resolvable")
    one = found[(found.claim == 1) & (found.worse == "rfdn")]  # rfdn_icmd_6b has no run: Table I stays untested
    assert set(one.verdict) == {"not tested"} and set(one.interval.fillna("")) == {""}
    assert set(found.loc[(found.claim == 7) & (found.worse == "imdn"), "interval"].fillna("")) == {""}


def test_table_five_is_judged_with_the_seed_spread_of_its_own_scale_and_recipe():
    """Table V (x4, GAN) pools the spread of its multi-seed GAN pair, never the x2 spread of Tables I-III."""
    from scipy import stats

    x4 = lambda rec: {**rec, "scale": 4, "run": rec["run"].replace("_x2_", "_x4_")}
    recs = [_record("imdn", s, [35.0 + 0.1 * s] * 2) for s in range(3)]  # an x2 spread (var 0.01) to ignore
    recs += [x4(_record("gan_imdn_ibmd_g", s, [28.0 + 0.5 * s] * 2, lpips=0.2 - 0.01 * s)) for s in range(3)]
    recs += [x4(_record("esrgan_g", 0, [29.0] * 2, lpips=0.15)), x4(_record("gan_rfdn_ibmd_g", 0, [28.0] * 2))]
    runs = claims.run_frame(recs)
    var, df = claims.seed_variance(runs)[(4, "set5", "psnr")]
    assert (var, df) == (pytest.approx(0.25), 2)
    found = claims.claims_table(runs).set_index(["better", "metric"])
    h = stats.t.ppf(0.975, 2) * math.sqrt(0.25 * (1 / 3 + 1))
    row = found.loc[("gan_imdn_ibmd_g", "psnr")]  # three seeds against ESRGAN's one
    assert row.interval == "pooled" and (row.ci_low, row.ci_high) == (pytest.approx(-0.5 - h), pytest.approx(-0.5 + h))
    assert found.loc[("gan_rfdn_ibmd_g", "psnr"), "interval"] == "pooled"
    assert found.loc[("gan_rfdn_ibmd_g", "lpips"), "verdict"] == "not tested"  # no LPIPS on one side
    assert found.loc[("gan_esrt_imdn_ibmd_g", "psnr"), "verdict"] == "not tested"  # no run


def test_table_from_records_keeps_untrained_rows():
    recs = [_record("imdn", s, [30.0 + s, 32.0 + s]) for s in range(3)]
    t = claims.study_table("table1", claims.run_frame(recs))
    imdn = t[(t.model == "imdn") & (t.dataset == "set5") & (t.metric == "psnr")].iloc[0]
    assert imdn.value == pytest.approx(32.0) and imdn["std"] == pytest.approx(1.0) and imdn.n_seeds == 3
    assert imdn.seeds == "0,1,2" and imdn.n_images == 2 and imdn.paper == pytest.approx(37.52)  # the paper retrains IMDN for Table I
    bsrn = t[(t.model == "bsrn") & (t.dataset == "set5") & (t.metric == "psnr")].iloc[0]
    assert bsrn.n_seeds == 0 and math.isnan(bsrn.value) and "no record" in bsrn.note
    assert (t.loc[t.metric == "params", "value"] > 0).all()


# ------------------------------------------------------------------------------------ committed results


def _committed():
    recs = study.load_records(RECORDS)
    if not recs:
        pytest.fail("no committed study record under results/study (the trained tables have no source)")
    return recs


@pytest.mark.parametrize("name", ["table1", "table2", "table3", "table4", "table5"])
def test_committed_tables_are_the_records_means(name):
    """Acceptance: the tables' means and standard deviations recomputed from the per-image records."""
    recs = _committed()
    table = read_table(ROOT / "results" / f"{name}.csv")
    assert set(table["budget"]) - {""} <= {claims.budget_text(study.study_recipe(0, s, f))
                                            for s in (2, 4) for f in (1, 3, 7)}
    per_run: dict[tuple, list[float]] = {}
    for rec in recs:
        img = pd.DataFrame(rec["per_image"])
        for (dataset, metric), vals in img.melt(id_vars=["dataset", "image"], value_vars=[
                c for c in ("psnr", "ssim", "lpips") if c in img]).dropna().groupby(["dataset", "variable"])["value"]:
            per_run.setdefault((rec["model"], rec["scale"], dataset, metric), []).append(float(vals.mean()))
    from ibmdn.experiments.tables import RUN_ALIASES

    checked = 0
    for r in table[(table["kind"] == "trained") & (table["metric"] != "params")].itertuples(index=False):
        vals = per_run.get((RUN_ALIASES.get(r.model, r.model), r.scale, r.dataset, r.metric), [])
        assert r.n_seeds == len(vals), r
        if vals:
            s = pd.Series(vals)
            assert r.value == pytest.approx(s.mean(), abs=1e-6)
            assert (math.isnan(r.std) and len(vals) == 1) or r.std == pytest.approx(s.std(ddof=1), abs=1e-6)
            checked += 1
    if name in ("table1", "table2", "table3"):
        assert checked, f"{name}: no trained row has a record"


def test_committed_claims_follow_from_the_records():
    recs = _committed()
    committed = read_table(ROOT / "results" / "claims.csv")
    again = claims.claims_table(claims.run_frame(recs))
    assert list(committed["verdict"]) == list(again.sort_values(["claim", "better", "worse", "dataset", "metric"])[
        "verdict"])
    assert len(set(committed["claim"])) == 7


def test_records_hold_what_the_issue_asks():
    for rec in _committed():
        assert rec["steps"] == rec["config"]["iterations"] and rec["profile"] == "study"
        assert rec["git"]["sha"] and rec["val_history"] and rec["train_curve"]
        sets = {r["dataset"] for r in rec["per_image"]}
        assert "set5" in sets and sum(r["dataset"] == "set5" for r in rec["per_image"]) == 5
        seeds = tuple(sorted({*study.SEEDS, rec["seed"]}))  # the extra-seed runs follow the same plan
        expected = next(r for r in study.study_plan(study.STUDY_TABLES + study.ONE_SEED, seeds)
                        if r.name == rec["run"])
        assert sets == set(expected.datasets)


def test_worker_starts_no_run_its_earlier_seeds_say_cannot_finish(tmp_path):
    """A fresh run whose other seeds took longer than the time left is skipped (not claimed, not trained)."""
    run = study.StudyRun("imdn", 2, 1, ("set5",), ())
    records = tmp_path / "records"
    records.mkdir()
    (records / "imdn_x2_study_s0.json").write_text(json.dumps({"wall_s": 7000.0, "eval_s": 300.0}))
    assert study.expected_s(run, records) == 7300.0
    assert study.expected_s(study.StudyRun("rfdn", 2, 1, ("set5",), ()), records) == 0.0
    assert study.run_study([run], tmp_path / "runs", records, hours=2.0) == []
    assert not (tmp_path / "runs" / run.name).exists() and not (tmp_path / "runs" / f"{run.name}.lock").exists()


# ------------------------------------------------------------------------------------------- end to end


def test_tiny_study_run_records_and_renders(tmp_path, monkeypatch, data_root):
    """One 2-iteration run through the worker: trained, evaluated on Set5, recorded, rendered."""
    from ibmdn.train import PROFILES

    tiny = dataclasses.replace(PROFILES["smoke"], profile="study", iterations=2, val_every=0, channels_last=True,
                               threads=1)
    monkeypatch.setitem(PROFILES, "study", tiny)
    run = study.StudyRun("imdn_ibmd_cca", 2, 0, ("set5",), ("set5",))
    records = tmp_path / "records"
    done = study.run_study([run], tmp_path / "runs", records, data_root=data_root)
    assert done == [run.name] and not (tmp_path / "runs" / f"{run.name}.lock").exists()
    rec = json.loads((records / f"{run.name}.json").read_text())
    assert rec["seed"] == 0 and rec["steps"] == 2 and len(rec["per_image"]) == 5
    assert all(r["lpips"] > 0 for r in rec["per_image"])
    assert study.run_study([run], tmp_path / "runs", records, data_root=data_root) == []  # recorded: skipped
    assert study.status([run], tmp_path / "runs", records)["recorded"] == [run.name]
    table = claims.study_table("table2", claims.run_frame(study.load_records(records)))
    row = table[(table.model == "imdn_ibmd_cca") & (table.metric == "psnr")].iloc[0]
    assert row.n_seeds == 1 and math.isnan(row["std"])


def test_kept_weights_are_the_recorded_ones_and_re_measure(data_root):
    """The committed seed-0 weights hash to their record and give its Set5 PSNR again (one network re-measured)."""
    from ibmdn.fileio import sha256_file
    from ibmdn.models import build_model

    recs = {r["run"]: r for r in _committed()}
    kept = sorted((RECORDS / "weights").glob("*.pth"))
    assert kept, "no committed weights (study.keep_weights)"
    for path in kept:
        rec = recs[path.stem]
        assert rec["seed"] == study.KEPT_SEED and rec["params"] <= study.KEPT_MAX_PARAMS
        assert sha256_file(path) == rec["weights_sha256"]
    rec = recs[kept[0].stem]
    run = study.StudyRun(rec["model"], rec["scale"], rec["seed"], ("set5",), ())
    got = {r["image"]: r["psnr"] for r in study.evaluate_run(run, kept[0], data_root)}
    want = {r["image"]: r["psnr"] for r in rec["per_image"] if r["dataset"] == "set5"}
    # Not bitwise: the record was scored with one thread, and the order of a convolution's float reductions
    # depends on the thread count and the CPU's vector width (1.7e-5 dB seen between two machines). Tables
    # print two decimals; 1e-3 dB is far below that and far above any float-order effect.
    assert got == pytest.approx(want, abs=1e-3)
    build_model(rec["model"], rec["scale"], weights=str(kept[0]))  # loads strictly into the registered network


def test_background_script_runs_the_study_and_the_weights_chain(tmp_path):
    """scripts/cpu_long_runs.sh (dry): one study worker on Tables I-V, then on the seeds that may settle an open
    comparison, and the weights chain, x3/x4 from x2's final network, in the run folders it is given; a finished
    x2 run is not trained again; nothing starts once the deadline has passed."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {"PATH": "/usr/bin:/bin", "DRY": "1", "PY": sys.executable, "RUNS": str(tmp_path / "r"),
           "RECORDS": str(tmp_path / "rec")}
    out = subprocess.run(["bash", str(root / "scripts" / "cpu_long_runs.sh"), "0.5"], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    study_then_seeds = (rf"study run --runs {tmp_path}/r/study --records {tmp_path}/rec "
                        r"--tables table1,table2,table3,table4,table5 --hours 0\.(4[89]\d|500)\n.*"
                        r"--tables table1,table2,table3 --seeds 0,1,2,3,4 --models bsrn,\S+,rfdn_icmd_6b --hours 0\.(4[89]\d|500)\n")
    assert re.search(study_then_seeds, out), out
    assert "--scale 2 --config configs/weights/ibmdn_stable_x2_long.toml" in out
    x4 = (rf"--scale 4 --config configs/weights/ibmdn_stable_x4_long.toml --out {tmp_path}/r/weights/"
          rf"ibmdn_stable_x4_long --time-limit (29|30) --init {tmp_path}/r/weights/ibmdn_stable_x2_long/final.pth")
    assert re.search(x4, out), out  # minutes left of the 30: 29 once the calls before it took a second
    x2 = tmp_path / "r" / "weights" / "ibmdn_stable_x2_long"
    x2.mkdir(parents=True)
    (x2 / "final.json").write_text(json.dumps({"stopped_early": False}))
    out = subprocess.run(["bash", str(root / "scripts" / "cpu_long_runs.sh"), "0.5"], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "--scale 2 " not in out and "--scale 3 " in out
    out = subprocess.run(["bash", str(root / "scripts" / "cpu_long_runs.sh"), "0.01"], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "study run" not in out and "--scale" not in out  # 36 s left: no run, and never --hours 0 (no deadline)


def test_status_shows_how_far_each_started_run_is(tmp_path, capsys):
    """``study status`` prints, under each started run, its step, training time, time left at that pace and
    last validation, read from the run folder (``ibmdn.train.run_progress``)."""
    from ibmdn.train import run_progress

    run = study.study_plan(("table5",))[0]
    folder = tmp_path / "runs" / run.name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"config": {"iterations": 1500}}))
    (folder / "log.csv").write_text("step,loss,val_psnr,elapsed_s\n250,0.1,27.5,1000.0\n500,0.09,,2000.0\n")
    (folder / "last.pth").write_bytes(b"")
    p = run_progress(folder)
    assert p["step"] == 500 and p["iterations"] == 1500 and p["left_s"] == pytest.approx(4000.0)
    assert p["val_psnr"] == 27.5 and run_progress(tmp_path) is None
    assert study.main(["status", "--tables", "table5", "--runs", str(tmp_path / "runs"),
                       "--records", str(tmp_path / "rec")]) == 0
    out = capsys.readouterr().out
    assert f"started (1): {run.name}" in out
    assert f"  {run.name}: step 500 of 1,500, 0.6 h trained, about 1.1 h left at this pace, last validation 27.50 dB" in out


def test_more_seeds_go_to_the_networks_whose_open_comparisons_they_would_resolve():
    table = pd.DataFrame({
        "table": ["table1", "table2", "table3", "table4", "table1"],
        "better": ["imdn_icmd", "rfdn_ibmd_cca", "rfdn_ibmd_chfab", "esrt_rfdn_ibmd", "bsrn_icmd"],
        "worse": ["imdn", "rfdn_icmd_6b", "rfdn_ibmd_hfab", "esrt_imdn_ibmd", "bsrn"],
        "verdict": ["not resolvable", "reproduced", "not resolvable", "not resolvable", "not resolvable"],
        "seeds_to_resolve": [4, 3, 5, 2, float("nan")],
    })
    # resolved comparisons, one-seed tables and comparisons no seed count resolves are left alone
    assert study.resolvable_models(table, 5) == ("imdn", "imdn_icmd", "rfdn_ibmd_chfab", "rfdn_ibmd_hfab")
    assert study.resolvable_models(table, 4) == ("imdn", "imdn_icmd")
    plan = study.study_plan(seeds=(3, 4), models=("imdn", "rfdn_ibmd_chfab"))
    assert [r.name for r in plan] == ["ibmdn_x2_study_s3", "imdn_x2_study_s3", "ibmdn_x2_study_s4", "imdn_x2_study_s4"]
    assert {r.datasets for r in plan if r.model == "imdn"} == {("set5", "set14", "bsd100", "urban100")}  # as before
    with pytest.raises(ValueError, match="esrgan"):
        study.study_plan(models=("esrgan",))  # a Table V row is not in Tables I-III's plan
