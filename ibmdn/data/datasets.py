"""Benchmark and training image sets, streamed one image at a time, with an on-disk LR cache.

Layout under the data root (:mod:`ibmdn.paths`): ``benchmark/<Set>/HR`` for Set5, Set14, BSD100,
Urban100 (and Manga109, DIV2K_valid, ... whatever folder is there) and ``train/<Set>/HR`` for T91,
BSD200, DIV2K, Flickr2K. Names are matched case-insensitively (``set5`` -> ``Set5``) and ``B100`` /
``BSDS100`` are aliases of ``BSD100`` (EDSR's archive spells it ``B100``).

A benchmark item is ``(name, hr, lr)``: ``hr`` is the modcropped ``uint8`` RGB image and ``lr`` its MATLAB
bicubic downscaling (docs/protocol.md); the official LR files are not used (they are byte-identical,
tested on Set5), so every set follows one code path. LR images are generated on first use and cached as
PNG in ``$IBMDN_CACHE`` (else ``$XDG_CACHE_HOME/ibmdn``, else ``~/.cache/ibmdn``): the shared data root is
read-only in CI. The cache key is the sha256 of :data:`~ibmdn.data.imresize.IMRESIZE_VERSION`, the
scale, the shape and the decoded modcropped HR pixels, so it covers the content, the decoding rules and
the resize algorithm; entries are written atomically (temporary name + ``os.replace``), a cached file
that fails to read or has the wrong shape is regenerated, and an unwritable cache only costs time.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ibmdn.data.imresize import IMRESIZE_VERSION, downscale, modcrop
from ibmdn.data.io import IMAGE_EXTENSIONS, read_image, read_image_info, write_image
from ibmdn.errors import BadImageError, MissingRootError
from ibmdn.paths import data_root

BENCHMARKS = ("Set5", "Set14", "BSD100", "Urban100", "Manga109")
TRAINING_SETS = ("T91", "BSD200", "DIV2K", "Flickr2K")
ALIASES = {"b100": "BSD100", "bsds100": "BSD100", "bsd100": "BSD100"}

CACHE_ENV = "IBMDN_CACHE"
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """Cache folder: ``override``, ``$IBMDN_CACHE``, ``$XDG_CACHE_HOME/ibmdn`` or ``~/.cache/ibmdn``."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ibmdn"


def resolve_set(name: str, kind: str = "benchmark", root: str | os.PathLike | None = None) -> Path:
    """The ``HR`` folder of set ``name`` under ``<root>/<kind>/``, matched case-insensitively."""
    base = data_root(root) / kind
    if not base.is_dir():
        raise MissingRootError(
            f"no {kind} folder at {base}. Set $IBMDN_DATA or pass --data-root (e.g. ../shared/data), "
            f"or fetch data with `ibmdn data fetch NAME`"
        )
    wanted = {name.lower(), ALIASES.get(name.lower(), name).lower()}
    for alias, canonical in ALIASES.items():
        if canonical.lower() in wanted:
            wanted.add(alias)
    found = sorted(
        (d for d in base.iterdir() if d.is_dir() and d.name.lower() in wanted),
        key=lambda d: (d.name.lower() != name.lower(), d.name),  # an exact (case-insensitive) match first
    )
    if not found:
        have = sorted(d.name for d in base.iterdir() if d.is_dir())
        raise MissingRootError(
            f"{kind} set {name!r} not found under {base} (have: {', '.join(have) or 'none'})")
    hr = found[0] / "HR"
    if not hr.is_dir():
        raise MissingRootError(f"{found[0]} has no HR folder")
    return hr


def image_files(folder: Path) -> list[Path]:
    """Image files of a folder (by extension, hidden files skipped), sorted by name."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


@dataclass
class BenchmarkItem:
    """One test image: ``name`` (file stem), ``hr`` (modcropped uint8 RGB), ``lr`` (uint8 RGB).

    ``gray`` tells that the file was stored with one channel (see ``Protocol.gray_as_y``).
    """

    name: str
    hr: np.ndarray
    lr: np.ndarray
    gray: bool = False

    def __iter__(self):  # allows ``name, hr, lr = item``
        return iter((self.name, self.hr, self.lr))


def lr_cache_key(hr: np.ndarray, scale: int) -> str:
    """sha256 over the resize version, the scale, the shape and the HR pixels."""
    h = hashlib.sha256(f"{IMRESIZE_VERSION}|x{scale}|{hr.shape}|{hr.dtype}|".encode())
    h.update(np.ascontiguousarray(hr).tobytes())
    return h.hexdigest()


class LRCache:
    """LR images keyed by :func:`lr_cache_key`, stored as ``<root>/lr/x<scale>/<key>.png``."""

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True):
        self.root = cache_root(root) / "lr"
        self.enabled = enabled
        self._warned = False

    def path(self, key: str, scale: int) -> Path:
        return self.root / f"x{scale}" / f"{key}.png"

    def get_or_make(self, hr: np.ndarray, scale: int) -> np.ndarray:
        """The cached LR of ``hr`` (modcropped) at ``scale``, computing and storing it if needed."""
        expected = (hr.shape[0] // scale, hr.shape[1] // scale, 3)
        if not self.enabled:
            return downscale(hr, scale)
        path = self.path(lr_cache_key(hr, scale), scale)
        if path.is_file():
            try:
                lr = read_image(path)
                if lr.shape == expected:
                    return lr
            except BadImageError:
                pass  # corrupt entry (not written by us: our writes are atomic): regenerate it
        lr = downscale(hr, scale)
        try:
            write_image(path, lr)
        except OSError as e:
            if not self._warned:
                warnings.warn(f"LR cache {self.root} not writable ({e}); set $IBMDN_CACHE", stacklevel=2)
                self._warned = True
        return lr


class BenchmarkSet:
    """A benchmark set at one scale: ``len()``, ``files``, ``load(path)``, iteration over items.

    Images are read lazily, one at a time. ``load`` raises :class:`BadImageError` for a file that cannot
    be used; iterating stops at the first bad file (use ``files`` + ``load`` to skip bad files).

    Args:
        name: set name (case-insensitive).
        scale: 2, 3, 4, ...
        root: data root (default: :func:`ibmdn.paths.data_root`).
        cache_dir: LR cache folder (default: :func:`cache_root`); ``cache=False`` disables caching.
        min_size: smallest accepted HR side (default: the scale, so that the LR has at least 1 pixel).
    """

    def __init__(self, name: str, scale: int, root=None, cache_dir=None, cache: bool = True,
                 min_size: int | None = None):
        self.hr_dir = resolve_set(name, "benchmark", root)
        self.name = self.hr_dir.parent.name
        self.scale = int(scale)
        self.files = image_files(self.hr_dir)
        self.min_size = max(self.scale, int(min_size or 0))
        self.cache = LRCache(cache_dir, enabled=cache)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, path: str | os.PathLike) -> BenchmarkItem:
        hr = modcrop(read_image(path, min_size=self.min_size), self.scale)
        gray = read_image_info(path).mode in GRAY_MODES
        return BenchmarkItem(Path(path).stem, hr, self.cache.get_or_make(hr, self.scale), gray)

    def __getitem__(self, i: int) -> BenchmarkItem:
        return self.load(self.files[i])

    def __iter__(self) -> Iterator[BenchmarkItem]:
        for path in self.files:
            yield self.load(path)


class ImageFolderSet:
    """A training set's HR images (``train/<name>/HR``), streamed as ``(name, uint8 RGB)`` pairs."""

    def __init__(self, name: str, root=None, min_size: int = 1):
        self.hr_dir = resolve_set(name, "train", root)
        self.name = self.hr_dir.parent.name
        self.files = image_files(self.hr_dir)
        self.min_size = min_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[str, np.ndarray]:
        return self.files[i].stem, read_image(self.files[i], min_size=self.min_size)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for i in range(len(self.files)):
            yield self[i]


def benchmark(name: str, scale: int, **kwargs) -> BenchmarkSet:
    """Shorthand for :class:`BenchmarkSet`."""
    return BenchmarkSet(name, scale, **kwargs)


def training_set(name: str, **kwargs) -> ImageFolderSet:
    """Shorthand for :class:`ImageFolderSet`."""
    return ImageFolderSet(name, **kwargs)


def available(kind: str = "benchmark", root=None) -> list[str]:
    """Set folders present under ``<root>/<kind>`` that have an ``HR`` folder."""
    base = data_root(root) / kind
    if not base.is_dir():
        return []
    return sorted(d.name for d in base.iterdir() if (d / "HR").is_dir())
