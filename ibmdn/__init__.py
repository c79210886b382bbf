"""ibmdn: IBMDN (Khatami-Rizi & Mahmoudi-Aznaveh, arXiv 2503.14779) and its baselines, with the study that checks it."""

from ibmdn.models import build_model, count_params, list_models, register_model

__all__ = ["build_model", "count_params", "list_models", "register_model"]
__version__ = "0.1.0"
