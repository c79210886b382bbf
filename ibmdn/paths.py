"""Data and weights roots.

Third-party images and checkpoints are never part of the project; they are read from two roots:

* data root: ``--data-root`` flag, else ``$IBMDN_DATA``, else ``./data``.
  Layout: ``<root>/benchmark/<Set>/HR``, ``<root>/train/<Set>/HR``, ``<root>/fixtures/...``.
* weights root: ``--weights-root`` flag, else ``$IBMDN_WEIGHTS``, else ``./weights``.
  Layout: ``<root>/official/<Model>/<file>`` and ``<root>/backbones/<file>`` (LPIPS / VGG backbones).
"""

from __future__ import annotations

import os
from pathlib import Path

from ibmdn.errors import MissingRootError

DATA_ENV = "IBMDN_DATA"
WEIGHTS_ENV = "IBMDN_WEIGHTS"


def data_root(override: str | os.PathLike | None = None) -> Path:
    """The data root (not checked for existence; see :func:`require`)."""
    return Path(override or os.environ.get(DATA_ENV) or "data").expanduser()


def weights_root(override: str | os.PathLike | None = None) -> Path:
    """The weights root (not checked for existence; see :func:`require`)."""
    return Path(override or os.environ.get(WEIGHTS_ENV) or "weights").expanduser()


def require(path: Path, what: str, hint: str = "") -> Path:
    """Return ``path`` if it exists, else raise :class:`MissingRootError` saying what to set or fetch."""
    if not path.exists():
        msg = f"{what} not found: {path}"
        if hint:
            msg += f". {hint}"
        raise MissingRootError(msg)
    return path


def require_data(*parts: str, root: str | os.PathLike | None = None) -> Path:
    """A path under the data root that must exist."""
    return require(
        data_root(root).joinpath(*parts),
        "data",
        f"Set ${DATA_ENV} or pass --data-root (e.g. ../shared/data), or fetch it with `ibmdn data fetch NAME`",
    )


def require_weights(*parts: str, root: str | os.PathLike | None = None) -> Path:
    """A path under the weights root that must exist."""
    return require(
        weights_root(root).joinpath(*parts),
        "weights",
        f"Set ${WEIGHTS_ENV} or pass --weights-root (e.g. ../shared/weights)",
    )
