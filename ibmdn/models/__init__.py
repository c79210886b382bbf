"""Networks. Each family module registers its variants; adding a family is one import line here."""

# families (explicit imports register their models and checkpoints)
from ibmdn.models import bicubic, bsrn, depthibn, esrgan, esrt, fmen, gan, ibmdn, imdn, rfdn  # noqa: F401
from ibmdn.models.registry import build_model, count_params, list_models, model_spec, register_model

__all__ = ["build_model", "count_params", "list_models", "model_spec", "register_model"]
