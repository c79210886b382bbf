"""The one model registry: ``register_model``, ``list_models``, ``build_model``.

A variant is a small registered function ``fn(scale: int, **kwargs) -> nn.Module`` whose arguments are
data; ``list_models("rfdn_ibmd*")`` is exactly the rows of a table. Registration happens at import time
of the family modules listed explicitly in :mod:`ibmdn.models`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ibmdn.metrics.complexity import count_params  # noqa: F401 - one counter, re-exported here


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Module]
    scales: tuple[int, ...]
    family: str
    summary: str


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str | None = None, *, scales: tuple[int, ...] = (2, 3, 4), family: str = ""):
    """Decorator registering ``fn(scale, **kwargs) -> nn.Module`` under ``name`` (default: fn.__name__)."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} registered twice")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[key] = ModelSpec(key, fn, tuple(scales), family or fn.__module__.rsplit(".", 1)[-1], summary)
        return fn

    return deco


def list_models(pattern: str = "*", scale: int | None = None) -> list[str]:
    """Sorted names matching a glob ``pattern`` (and supporting ``scale`` if given)."""
    return sorted(
        n for n, s in _REGISTRY.items() if fnmatch.fnmatchcase(n, pattern) and (scale is None or scale in s.scales)
    )


def model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = fnmatch.filter(_REGISTRY, f"*{name}*")[:8]
        raise KeyError(f"unknown model {name!r}; similar: {close or list_models()[:12]}") from None


def build_model(name: str, scale: int = 4, weights: str | None = None, weights_root=None, **kwargs) -> nn.Module:
    """Build a registered model for ``scale``; ``weights`` is None, ``"official"`` or a checkpoint path.

    Models take and return float tensors in [0, 1] (NCHW RGB). Official checkpoints trained on 0-255
    inputs are wrapped so that the interface stays [0, 1] (see :mod:`ibmdn.models.pretrained`).
    """
    spec = model_spec(name)
    if scale not in spec.scales:
        raise ValueError(f"model {name!r} supports scales {spec.scales}, not {scale}")
    model = spec.builder(scale=scale, **kwargs)
    model.model_name = name  # type: ignore[attr-defined]
    model.scale = scale  # type: ignore[attr-defined]
    if weights is not None:
        from ibmdn.models.pretrained import load_weights

        model = load_weights(model, name, scale, weights, weights_root=weights_root)
    return model
