"""Reduced-precision inference keeps the benchmark score (acceptance 4 of issue 5)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ibmdn.evaluate import evaluate
from ibmdn.models import build_model


@pytest.mark.slow
def test_bf16_changes_set5_psnr_by_at_most_0_01_db(weights_root, data_root):
    """IMDN x4 (official weights), Set5, PSNR-Y: ``evaluate(..., precision="bf16")`` within 0.01 dB of fp32
    (every checkpoint's change: ``results/precision_eval.csv``). Slow: without native bf16 instructions the
    bf16 pass takes minutes on a CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_model("imdn", scale=4, weights="official", weights_root=weights_root).eval()
        ref = evaluate(model, "set5", 4, data_root=data_root)["psnr"].mean()
        low = evaluate(model, "set5", 4, data_root=data_root, precision="bf16")["psnr"].mean()
    finally:
        torch.set_num_threads(n)
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is left as it was
    assert abs(ref - 32.21) < 0.01  # the protocol reproduces the published figure
    assert 0 < abs(low - ref) <= 0.01, (ref, low)  # bf16 did run (a different number), and costs little


def test_bf16_evaluation_runs_the_network_in_bf16_and_scores_in_float(data_root, tmp_path, capsys):
    """The network sees bf16 input, the score is taken on the float32 output; ``ibmdn eval --precision bf16``
    tags its files and records the precision."""
    from ibmdn.cli import main
    from ibmdn.results import read_meta

    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = build_model("bicubic", 2)
            self.w = nn.Parameter(torch.tensor(1.003))  # bf16 has no number between 1 and 1.0078

        def forward(self, x):
            seen.append(x.dtype)
            return self.net(x.float()).to(x.dtype) * self.w

    ref = evaluate(Probe(), "set5", 2, data_root=data_root)["psnr"]
    low = evaluate(Probe(), "set5", 2, data_root=data_root, precision="bf16")["psnr"]
    assert set(seen) == {torch.float32, torch.bfloat16} and (low != ref).any()
    assert ((low - ref).abs() < 1.0).all()  # a 0.3 % gain lost to bf16 rounding: small but real
    with pytest.raises(Exception, match="unknown precision"):
        evaluate(Probe(), "set5", 2, data_root=data_root, precision="fp8")
    assert main(["eval", "--model", "bicubic", "--scale", "2", "--datasets", "set5", "--precision", "bf16",
                 "--data-root", str(data_root), "--out", str(tmp_path)]) == 0
    assert "none-bf16" in capsys.readouterr().out
    assert read_meta(tmp_path / "bicubic_x2_none-bf16.csv")["provenance"]["parameters"]["precision"] == "bf16"
