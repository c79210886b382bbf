"""Published checkpoints reproduce their published benchmark cells (docs/protocol.md) within 0.05 dB / 0.002 SSIM.

The full four-benchmark run is ``ibmdn eval-checkpoints`` (results/checkpoint_eval.csv, ~1 h on 2 CPU
cores); CI re-measures Set14 at x4 for IMDN and BSRN and checks the committed table against the
published values, so a stale or hand-edited table fails too.
"""

from pathlib import Path

import pytest

from ibmdn.experiments.checkpoints import CHECKPOINTS, DATASETS, compare_published, run_rows
from ibmdn.metrics.quality import Protocol
from ibmdn.results import read_table

RESULTS = Path(__file__).resolve().parent.parent / "results"


def _check(cmp):
    cmp = cmp.dropna(subset=["published"])
    assert len(cmp) > 0
    psnr, ssim = cmp[cmp.metric == "psnr"], cmp[cmp.metric == "ssim"]
    assert psnr["diff"].abs().max() <= 0.05, psnr.loc[psnr["diff"].abs() > 0.05]
    assert ssim["diff"].abs().max() <= 0.002, ssim.loc[ssim["diff"].abs() > 0.002]


@pytest.mark.parametrize("model", ["imdn", "bsrn"])
def test_set14_x4_matches_published(model, data_root, weights_root, tmp_path):
    df = run_rows("checkpoint_eval", [(model, 4, "official", Protocol())], datasets=("set14",),
                  data_root=data_root, weights_root=weights_root, parts_dir=tmp_path)
    assert set(df["metric"]) == {"psnr", "ssim"} and (df["n_images"] == 14).all()
    _check(compare_published(df))


def test_committed_checkpoint_table_is_complete_and_matches_published():
    path = RESULTS / "checkpoint_eval.csv"
    if not path.exists():
        pytest.skip("results/checkpoint_eval.csv not generated yet (ibmdn eval-checkpoints)")
    df = read_table(path)
    have = set(zip(df.model, df.scale, df.dataset))
    assert have == {(m, s, d) for m, s in CHECKPOINTS for d in DATASETS}
    assert (df["source"] == "measured").all() and (df["weights"] == "official").all()
    _check(compare_published(df))


def test_committed_bicubic_table_matches_the_standard_table():
    path = RESULTS / "bicubic_eval.csv"
    if not path.exists():
        pytest.skip("results/bicubic_eval.csv not generated yet (ibmdn eval-checkpoints)")
    cmp = compare_published(read_table(path))
    classic = cmp[cmp.weights == "none+gray_as_y"]  # the classic MATLAB table scores gray images on gray
    assert len(classic.dropna(subset=["published"])) == 24
    cmp_psnr = classic[classic.metric == "psnr"]
    assert cmp_psnr["diff"].abs().max() <= 0.03
    assert classic[classic.metric == "ssim"]["diff"].abs().max() <= 0.002


def test_bf16_rows_are_tagged_and_cached_apart(data_root, tmp_path):
    """``run_rows(..., precision="bf16")`` keeps its parts beside the fp32 ones and tags its rows ``+bf16``."""
    rows = [("bicubic", 2, None, Protocol())]
    fp32 = run_rows("precision_eval", rows, datasets=("set5",), data_root=data_root, parts_dir=tmp_path)
    bf16 = run_rows("precision_eval", rows, datasets=("set5",), data_root=data_root, parts_dir=tmp_path,
                    precision="bf16")
    assert set(fp32["weights"]) == {"none"} and set(bf16["weights"]) == {"none+bf16"}
    assert sorted(p.name.endswith("_bf16.csv") for p in (tmp_path / "precision_eval").iterdir()) == [False, True]


def test_two_checkpoints_of_one_network_are_cached_apart(data_root, tmp_path):
    """Two weight files of the same network and scale (e.g. two shipped x2 checkpoints) get their own parts
    and their own numbers; a file changed under the same name is evaluated again."""
    import torch

    from ibmdn.models import build_model

    paths = []
    for seed, name in ((0, "imdn_x2_a.pth"), (1, "imdn_x2_b.pth")):
        torch.manual_seed(seed)
        torch.save(build_model("imdn", 2).state_dict(), tmp_path / name)
        paths.append(tmp_path / name)
    rows = [("imdn", 2, str(p), Protocol()) for p in paths]
    df = run_rows("shipped_eval", rows, datasets=("set5",), data_root=data_root, parts_dir=tmp_path / "parts")
    psnr = df[df.metric == "psnr"].set_index("weights")["value"]
    assert len(list((tmp_path / "parts" / "shipped_eval").iterdir())) == 2 and psnr["imdn_x2_a"] != psnr["imdn_x2_b"]
    paths[1].write_bytes(paths[0].read_bytes())  # retrained under the same name: not the cached number
    again = run_rows("shipped_eval", rows[1:], datasets=("set5",), data_root=data_root, parts_dir=tmp_path / "parts")
    assert again[again.metric == "psnr"]["value"].iloc[0] == psnr["imdn_x2_a"]


def test_committed_precision_table_keeps_each_checkpoints_score():
    """results/precision_eval.csv: each checkpoint's fp32 Set5 row equals its row in the four-benchmark
    tables (the same protocol, measured twice), and every bf16 row has its fp32 partner."""
    path = RESULTS / "precision_eval.csv"
    if not path.exists():
        pytest.skip("results/precision_eval.csv not generated yet (ibmdn eval-checkpoints --tables precision_eval)")
    df = read_table(path)
    low = df[df["weights"].str.endswith("+bf16")]
    ref = df[~df["weights"].str.endswith("+bf16")]
    assert len(low) == len(ref) > 0 and set(df["dataset"]) == {"set5"}
    key = ["model", "scale", "dataset", "metric"]
    both = ref.merge(low.assign(weights=low["weights"].str.removesuffix("+bf16")), on=key + ["weights"])
    assert len(both) == len(ref)
    full = read_table(RESULTS / "checkpoint_eval.csv")
    same = ref[ref["weights"] == "official"].merge(full, on=key, suffixes=("", "_full"))
    assert len(same) == len(ref[ref["weights"] == "official"]) and (same["value"] - same["value_full"]).abs().max() < 1e-4
