"""Official checkpoints: strict load through our converters and Set5 PSNR-Y of docs/protocol.md (within 0.01 dB)."""

import pytest
import torch

from ibmdn.errors import ChecksumError, IbmdnError
from ibmdn.evaluate import evaluate
from ibmdn.models import build_model
from ibmdn.models.pretrained import get_checkpoint, list_checkpoints

# Set5 PSNR-Y (dB) measured on the official code with these files (docs/protocol.md)
EXPECTED_SET5 = {
    ("imdn", 2): 37.996, ("imdn", 3): 34.360, ("imdn", 4): 32.210,
    ("bsrn", 2): 38.083, ("bsrn", 3): 34.450, ("bsrn", 4): 32.349,
    ("rfdn_aim", 4): 32.159, ("fmen_s", 4): 32.115, ("depthibn", 4): 31.764,
}


def test_every_official_checkpoint_is_checked():
    assert {(m, s) for m, s, _ in list_checkpoints("official")} == set(EXPECTED_SET5)


@pytest.mark.parametrize("name,scale", sorted(EXPECTED_SET5))
def test_official_checkpoint_set5_psnr(name, scale, data_root, weights_root):
    torch.set_num_threads(2)
    model = build_model(name, scale, weights="official", weights_root=weights_root)
    df = evaluate(model, "set5", scale, data_root=data_root)
    assert len(df) == 5 and (df["error"] == "").all()
    assert df["psnr"].mean() == pytest.approx(EXPECTED_SET5[(name, scale)], abs=0.01)


def test_checksum_and_missing_file_errors(tmp_path, weights_root):
    ck = get_checkpoint("imdn", 2)
    bad_root = tmp_path / "w"
    (bad_root / ck.path).parent.mkdir(parents=True)
    (bad_root / ck.path).write_bytes(b"not a checkpoint")
    with pytest.raises(ChecksumError, match="sha256"):
        build_model("imdn", 2, weights="official", weights_root=bad_root)
    with pytest.raises(IbmdnError, match="not found"):
        build_model("imdn", 2, weights="official", weights_root=tmp_path / "nowhere")
    with pytest.raises(IbmdnError, match="no official checkpoint"):
        build_model("ibmdn", 2, weights="official", weights_root=weights_root)


def test_strict_load_rejects_a_foreign_state_dict(tmp_path):
    path = tmp_path / "rfdn.pth"
    torch.save(build_model("rfdn", 2).state_dict(), path)
    with pytest.raises(IbmdnError, match="does not load into imdn"):
        build_model("imdn", 2, weights=str(path))
    assert build_model("rfdn", 2, weights=str(path)) is not None
