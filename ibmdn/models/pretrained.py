"""Known checkpoints: where they live under the weights root, their sha256, and key converters.

Loading is always strict. A converter maps the official state-dict key names onto ours; it receives the
raw object returned by ``torch.load`` (already unwrapped from ``{"params": ...}`` and stripped of a
``module.`` prefix) and returns a state dict for our module. Checkpoints trained on 0-255 inputs are
wrapped in :class:`ValueRange` so that every model in this package takes and returns [0, 1] tensors.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ibmdn.errors import ChecksumError, IbmdnError
from ibmdn.fileio import sha256_file
from ibmdn.paths import require_weights

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Checkpoint:
    """One published checkpoint.

    Attributes:
        model: registered model name.
        scale: upscaling factor it was trained for.
        path: path relative to the weights root.
        sha256: expected digest of the file.
        convert: official state dict -> our state dict.
        value_range: the pixel range the network was trained on (1 or 255).
        source: where the file comes from (for provenance and the user).
        url: public download address, when one exists.
    """

    model: str
    scale: int
    path: str
    sha256: str
    convert: Callable[[StateDict], StateDict]
    value_range: float = 1.0
    source: str = ""
    url: str | None = None


_CHECKPOINTS: dict[tuple[str, int, str], Checkpoint] = {}


def register_checkpoint(ck: Checkpoint, tag: str = "official") -> None:
    key = (ck.model, ck.scale, tag)
    if key in _CHECKPOINTS:
        raise ValueError(f"checkpoint {key} registered twice")
    _CHECKPOINTS[key] = ck


def list_checkpoints(tag: str | None = None) -> list[tuple[str, int, str]]:
    return sorted(k for k in _CHECKPOINTS if tag is None or k[2] == tag)


def get_checkpoint(model: str, scale: int, tag: str = "official") -> Checkpoint:
    try:
        return _CHECKPOINTS[(model, scale, tag)]
    except KeyError:
        have = [f"{m} x{s}" for m, s, t in _CHECKPOINTS if t == tag]
        raise IbmdnError(f"no {tag} checkpoint for {model} x{scale}; known: {', '.join(sorted(have))}") from None


def unwrap_state_dict(obj) -> StateDict:
    """Unwrap BasicSR's ``{"params": ...}`` / ``{"state_dict": ...}`` and strip a ``module.`` prefix."""
    if isinstance(obj, dict):
        for key in ("params_ema", "params", "state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    return {re.sub(r"^module\.", "", k): v for k, v in obj.items()}


def rename_keys(sd: StateDict, rules: list[tuple[str, str]]) -> StateDict:
    """Apply regex substitutions ``(pattern, replacement)`` in order to every key."""
    out = {}
    for k, v in sd.items():
        for pat, rep in rules:
            k = re.sub(pat, rep, k)
        out[k] = v
    return out


class ValueRange(nn.Module):
    """Adapts a network trained on 0-``value_range`` pixels to the package's [0, 1] interface."""

    def __init__(self, net: nn.Module, value_range: float):
        super().__init__()
        self.net = net
        self.value_range = float(value_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * self.value_range) / self.value_range


def load_state(path: str | os.PathLike) -> StateDict:
    return unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def load_weights(model: nn.Module, name: str, scale: int, weights: str, weights_root=None) -> nn.Module:
    """Load ``weights`` ("official", or a checkpoint path) into ``model`` strictly and return it.

    A path may hold our own format (a state dict, or a trainer checkpoint with a ``"model"`` entry).
    """
    if weights == "official":
        ck = get_checkpoint(name, scale)
        path = require_weights(ck.path, root=weights_root)
        digest = sha256_file(path)
        if digest != ck.sha256:
            raise ChecksumError(f"{path}: sha256 {digest} differs from the expected {ck.sha256}")
        sd = ck.convert(load_state(path))
        model.load_state_dict(sd, strict=True)
        model.checkpoint = f"official:{ck.path}"  # type: ignore[attr-defined]
        return ValueRange(model, ck.value_range) if ck.value_range != 1 else model
    path = Path(weights)
    if not path.is_file():
        raise IbmdnError(f"weights file not found: {path} (use 'official' or a checkpoint path)")
    try:
        sd = load_state(path)
        model.load_state_dict(sd, strict=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise IbmdnError(f"{path} does not load into {name} x{scale}: {first}") from e
    model.checkpoint = str(path)  # type: ignore[attr-defined]
    return model
