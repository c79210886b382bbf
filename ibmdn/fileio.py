"""File helpers shared by every writer: atomic writes (temporary file + rename) and sha256 digests.

A killed process never leaves a truncated result, cache entry, checkpoint or image: data go to a
temporary file beside the target, are flushed and fsync'ed, get the permission bits a plain ``open()``
would give, and are renamed over the target with :func:`os.replace` (atomic on POSIX and Windows).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def file_mode() -> int:
    """Permission bits a plain ``open()`` would give a new file (0o666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _write_tmp(path: Path, data: bytes) -> Path:
    """Write ``data`` to a fresh temporary file beside ``path`` (flushed, fsynced, usual mode); return it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename (never a truncated file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_tmp(p, data)
    try:
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` through :func:`atomic_write_bytes`."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
