"""Unpack what the device calls of scripts/gpu_session.sh and scripts/gpu_sweep.sh brought back.

    python scripts/gpu_collect.py --session DIR1 --sweep DIR2

DIR1 (gpu_session.sh): train.tgz -> ibmdn/weights/ibmdn_x{2,4}_paper.pth + .json (the run's final.json:
provenance, recipe, budget, validation history and the whole training log), the default weights of
``ibmdn upscale``. DIR2 (gpu_sweep.sh): bench.tgz -> results/bench-cuda.csv (+ .meta.json),
figures/bench-cuda.png; sweep.tgz -> results/short_sweep.csv (+ .meta.json): final Set5 PSNR-Y and wall
time of every run, the validation histories in the sidecar.

Nothing is re-measured or edited here except one provenance field: the tree copied to the device held a
stale ``.git`` (HEAD of an older commit, dirty), so ``git`` is replaced by the commit the call ran
(``--sha-session`` / ``--sha-sweep``, the IBMDN_GIT_SHA printed on the first line of each log.txt); the
value recorded on the device is kept as ``git_recorded_on_device``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ibmdn.experiments.sweep import collect_runs
from ibmdn.results import dumps_json, read_table, write_table


def _sha_from_log(folder: Path) -> str:
    m = re.search(r"git sha ([0-9a-f]{40})", (folder / "log.txt").read_text())
    if not m:
        raise SystemExit(f"{folder}/log.txt names no IBMDN_GIT_SHA")
    return m.group(1)


def _fix_git(prov: dict, sha: str) -> dict:
    prov = dict(prov)
    prov["git_recorded_on_device"] = prov.get("git")
    prov["git"] = {"sha": sha, "dirty": False, "sha_from": "IBMDN_GIT_SHA of the device call (log.txt)"}
    return prov


def _untar(path: Path, work: Path) -> Path:
    out = work / path.parent.name / path.stem
    with tarfile.open(path) as t:
        t.extractall(out, filter="data")
    return out


def collect_session(folder: Path, work: Path) -> None:
    sha = _sha_from_log(folder)
    tree = _untar(folder / "train.tgz", work)
    wdir = ROOT / "ibmdn" / "weights"
    wdir.mkdir(exist_ok=True)
    for run in sorted((tree / "runs" / "gpu").glob("ibmdn_x*_paper")):
        final = json.loads((run / "final.json").read_text())
        final = _fix_git(final, sha)
        final["note"] = ("paper recipe (section IV.B) truncated by --time-limit: the first "
                         f"{final['steps']} of its {final['config']['iterations']} iterations, run on a lent "
                         "GPU beside the other scale, on T91 and the first 100 images of BSD200 (the subset the device "
                         "carried; images under 192 px left out); see scripts/gpu_session.sh")
        shutil.copyfile(run / "final.pth", wdir / f"{run.name}.pth")
        (wdir / f"{run.name}.json").write_text(dumps_json(final))
        print(f"{run.name}: {final['steps']} steps, {final['val_set']} PSNR-Y {final['val_psnr']:.3f} dB")


def collect_sweep(folder: Path, work: Path) -> None:
    sha = _sha_from_log(folder)
    tree = _untar(folder / "bench.tgz", work)
    df = read_table(tree / "results" / "bench-cuda.csv")
    meta = json.loads((tree / "results" / "bench-cuda.meta.json").read_text())
    write_table(df, ROOT / "results" / "bench-cuda.csv", _fix_git(meta["provenance"], sha))
    shutil.copyfile(tree / "figures" / "bench-cuda.png", ROOT / "figures" / "bench-cuda.png")

    tree = _untar(folder / "sweep.tgz", work)
    df, meta = collect_runs(sorted(p.parent for p in (tree / "runs" / "sweep").glob("*/final.json")), "short_sweep")
    meta = _fix_git(meta, sha)
    for run in meta["runs"].values():  # each run's own record holds the device's stale .git
        run.pop("git", None)
    meta.update(command="scripts/gpu_sweep.sh (8 runs side by side on one GPU, --workers 1 each)",
                note="short profile (ibmdn/train/config.py) at x2 with the variants of configs/short_sweep/*.toml")
    write_table(df, ROOT / "results" / "short_sweep.csv", meta)
    print(df.pivot_table(index=["model", "weights"], columns="metric", values="value"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--session", type=Path, help="files of the gpu_session.sh call")
    ap.add_argument("--sweep", type=Path, help="files of the gpu_sweep.sh call")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpu_collect_") as tmp:
        if a.session:
            collect_session(a.session, Path(tmp))
        if a.sweep:
            collect_sweep(a.sweep, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
