"""Acceptance 1: a run killed with SIGKILL and resumed ends bitwise equal to an uninterrupted run (CPU)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
ITERATIONS = 40

TINY = """
train_sets = "T91"
threads = 1
patch_size = 32
batch_size = 4
log_every = 1
ckpt_every = 2
val_every = 20
iterations = {iterations}

[model_kwargs]
channels = 16
pattern = "BsBsBs-IBsI"
"""


def _cmd(config: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ibmdn.cli",
        "train",
        "--model",
        "ibmdn",
        "--scale",
        "2",
        "--profile",
        "smoke",
        "--config",
        str(config),
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def _env(data_root: Path) -> dict[str, str]:
    return {**os.environ, "IBMDN_DATA": str(data_root), "OMP_NUM_THREADS": "1"}


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)


def _log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_root) -> Path:
    """An uninterrupted run of the tiny recipe (how often it checkpoints changes nothing it trains)."""
    out = tmp_path_factory.mktemp("reference")
    config = out / "tiny.toml"
    config.write_text(TINY.format(iterations=ITERATIONS))
    ref = _run(_cmd(config, out / "ref"), _env(data_root))
    assert ref.returncode == 0, ref.stderr[-2000:]
    return out / "ref"


def test_kill9_then_resume_is_bitwise_identical(tmp_path, data_root, reference):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(iterations=ITERATIONS))
    env = _env(data_root)

    run = tmp_path / "run"
    proc = subprocess.Popen(
        _cmd(config, run), env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not (run / "last.pth").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = torch.load(run / "last.pth", weights_only=True)["step"]
    assert 0 < killed_at < ITERATIONS and not (run / "final.pth").exists()

    res = _run(_cmd(config, run, "--resume"), env)
    assert res.returncode == 0, res.stderr[-2000:]

    a = torch.load(reference / "final.pth", weights_only=True)
    b = torch.load(run / "final.pth", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    ca = torch.load(reference / "last.pth", weights_only=True)
    cb = torch.load(run / "last.pth", weights_only=True)
    for sa, sb in zip(ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert ca["best_psnr"] == cb["best_psnr"] and ca["step"] == cb["step"] == ITERATIONS

    # the log was cut back to the checkpoint and continued: same steps, same losses, same validations
    la, lb = _log(reference / "log.csv"), _log(run / "log.csv")
    assert [r["step"] for r in la] == [r["step"] for r in lb] == [str(i) for i in range(1, ITERATIONS + 1)]
    assert [(r["loss"], r["val_psnr"]) for r in la] == [(r["loss"], r["val_psnr"]) for r in lb]
    assert la[-1]["val_psnr"] != ""


def test_resume_refuses_a_different_recipe_and_missing_runs(tmp_path, data_root, monkeypatch, capsys):
    from ibmdn.cli import main

    monkeypatch.setenv("IBMDN_DATA", str(data_root))
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(iterations=2).replace("val_every = 20", "val_every = 0"))
    threads = torch.get_num_threads()
    try:

        def cli(out, *extra):
            return main(_cmd(config, tmp_path / out, *extra)[3:])

        assert cli("none", "--resume") == 2
        assert "no checkpoint" in capsys.readouterr().err
        assert cli("r") == 0
        assert cli("r") == 2
        assert "--resume" in capsys.readouterr().err
        assert cli("r", "--resume", "--lr", "0.1") == 2
        err = capsys.readouterr().err
        assert "lr: 0.0005 -> 0.1" in err and err.count("\n") == 1
    finally:
        torch.set_num_threads(threads)


def test_sigterm_stops_after_the_step_and_resume_is_bitwise_identical(tmp_path, data_root, reference):
    """SIGTERM (kill, a scheduler's preemption) ends the run like --time-limit: the step finishes, the run
    validates, checkpoints and exits 0 with ``stopped_early``; --resume then ends where an uninterrupted run
    ends, bit for bit."""
    import json

    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(iterations=ITERATIONS).replace("ckpt_every = 2", "ckpt_every = 1000"))
    env = _env(data_root)
    run = tmp_path / "run"
    proc = subprocess.Popen(_cmd(config, run), env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and (
            not (run / "log.csv").exists() or len(_log(run / "log.csv")) < 3):
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "SIGTERM: stopping after this step" in err
    meta = json.loads((run / "final.json").read_text())
    stopped_at = torch.load(run / "last.pth", weights_only=True)["step"]
    # no periodic checkpoint in this recipe: the one there is the stop's own
    assert meta["stopped_early"] is True and 3 <= stopped_at == meta["steps"] < ITERATIONS

    res = _run(_cmd(config, run, "--resume"), env)
    assert res.returncode == 0, res.stderr[-2000:]
    a = torch.load(reference / "final.pth", weights_only=True)
    b = torch.load(run / "final.pth", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    assert json.loads((run / "final.json").read_text())["steps"] == ITERATIONS
