"""Acceptance 2: two DDP processes on CPU (gloo, 127.0.0.1), same global batch, follow one process's loss."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent

# a BatchNorm-free tiny IMDN: PyTorch's SyncBatchNorm does not run on CPU (see ibmdn.train.distributed)
TINY_BN_FREE = """
train_sets = "T91"
threads = 1
patch_size = 32
batch_size = 4
log_every = 1
ckpt_every = 100
val_every = 0
iterations = 5

[model_kwargs]
channels = 16
pattern = "CCC-CCC"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(run: Path) -> list[float]:
    with open(run / "log.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_two_process_ddp_matches_one_process(tmp_path, data_root):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_BN_FREE)
    env = {**os.environ, "IBMDN_DATA": str(data_root), "OMP_NUM_THREADS": "1"}
    args = [
        "-m",
        "ibmdn.cli",
        "train",
        "--model",
        "imdn",
        "--scale",
        "2",
        "--profile",
        "smoke",
        "--config",
        str(config),
        "--no-progress",
        "--device",
        "cpu",
    ]

    def run(cmd: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            cmd, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=120
        )

    one = run([sys.executable, *args, "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-2000:]
    two = run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "1",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            *args,
            "--out",
            str(tmp_path / "two"),
        ]
    )
    assert two.returncode == 0, two.stderr[-3000:]

    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(a) == len(b) == 5
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-5, (a, b)
    wa = torch.load(tmp_path / "one" / "final.pth", weights_only=True)
    wb = torch.load(tmp_path / "two" / "final.pth", weights_only=True)
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-5
    meta = (tmp_path / "two" / "config.json").read_text()
    assert '"world_size": 2' in meta
