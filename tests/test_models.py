"""Every registered model: output shape at each scale, finite gradients, identical outputs for identical seeds."""

import pytest
import torch

from ibmdn.models import build_model, count_params, list_models, model_spec

LR = 16  # smallest LR side every model supports (ESA: strided 3x3 then a 7x7 max-pool)
SMALL_LR = {"esrgan_g": 8}  # 38.5M parameters: keep its CPU forward small
# discriminators map an HR image to a patch map; every other model is an SR network
DISCRIMINATORS = {n for n in list_models() if model_spec(n).summary.lower().startswith("discriminator")
                  or n.endswith("_d")}
CASES = [(n, s) for n in list_models() for s in model_spec(n).scales]


def _forward(name: str, scale: int, seed: int = 0, requires_grad: bool = False):
    torch.manual_seed(seed)
    model = build_model(name, scale)
    gen = torch.Generator().manual_seed(seed + 1)
    lr = SMALL_LR.get(name, LR)
    size = lr * scale if name in DISCRIMINATORS else lr
    x = torch.rand(1, 3, size, size, generator=gen, requires_grad=requires_grad)
    return model, x, model(x)


@pytest.mark.parametrize("name,scale", CASES)
def test_shape_and_gradients(name, scale):
    model, x, y = _forward(name, scale)
    if name in DISCRIMINATORS:
        assert y.ndim == 4 and y.shape[0] == 1
    else:
        lr = SMALL_LR.get(name, LR)
        assert y.shape == (1, 3, lr * scale, lr * scale)
    if count_params(model) == 0:  # bicubic
        return
    y.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "a parameter received no gradient"
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


@pytest.mark.parametrize("name", list_models())
def test_same_seed_same_output(name):
    scale = model_spec(name).scales[-1]
    with torch.no_grad():
        _, _, a = _forward(name, scale, seed=3)
        _, _, b = _forward(name, scale, seed=3)
    assert torch.equal(a, b)


def test_registry_errors():
    with pytest.raises(KeyError, match="unknown model"):
        build_model("not_a_model", 2)
    with pytest.raises(ValueError, match="supports scales"):
        build_model("rfdn_aim", 5)
    assert list_models("rfdn_ibmd_*") == ["rfdn_ibmd_cca", "rfdn_ibmd_chfab", "rfdn_ibmd_chfab_out", "rfdn_ibmd_esa",
                                          "rfdn_ibmd_hfab"]
