"""``ibmdn data fetch NAME``: download public dataset archives with resume, sha256 check, safe extraction.

The table :data:`ARCHIVES` lists the public archives the paper's pipeline uses (DIV2K from its host at
ETH Zurich, Flickr2K and the four benchmarks from EDSR's public mirror at SNU). None of these hosts
publishes checksums, and this project could not download them to measure one (no internet where it was
written), so every ``sha256`` is ``None``: the first download prints its digest, which can then be
pinned with ``--sha256`` (or added to the table). Where a digest is known it is enforced.

Download (:func:`download`): into ``<root>/downloads/<file>.part`` with a tqdm progress bar; an
interrupted download is resumed from the ``.part`` file with an HTTP ``Range`` request (a server that
ignores it and answers 200 restarts the file); the complete file is checked against the sha256 (a
mismatch deletes it and raises :class:`~ibmdn.errors.ChecksumError`) and only then renamed to its final
name. Archives are kept in ``<root>/downloads`` so that a re-run does not download again.

Extraction (:func:`safe_extract`) of zip and tar (any compression) never writes outside the target:
every member is checked before anything is written, and again (with symlinks resolved) while
writing. Rejected: absolute names (``/x``, ``C:\\x``), names containing ``..``, symlinks or hard links
whose target resolves outside the target folder, device files and FIFOs. Hard links are extracted as
copies. Members go to a staging folder first, which is then moved into the data-root layout
(``benchmark/<Set>/HR``, ``train/<Set>/HR``, see :mod:`ibmdn.data.datasets`) and removed; a rejected
or broken archive leaves nothing behind but the staging folder's removal.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import stat
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ibmdn.errors import ChecksumError, IbmdnError
from ibmdn.fileio import sha256_file
from ibmdn.paths import data_root


class UnsafeArchiveError(IbmdnError):
    """An archive member would be written outside the extraction folder (or is a special file)."""


@dataclass(frozen=True)
class Archive:
    """One downloadable archive.

    Attributes:
        name: the name given to ``ibmdn data fetch``.
        url: public address.
        filename: file name under ``<root>/downloads``.
        sha256: expected digest, None where not known (printed after download).
        moves: ``(path inside the archive, path under the data root)`` pairs applied after extraction;
            ``""`` as source means the whole archive content.
        note: size and content, for the user.
    """

    name: str
    url: str
    filename: str
    sha256: str | None
    moves: tuple[tuple[str, str], ...]
    note: str = ""


_DIV2K = "http://data.vision.ee.ethz.ch/cvl/DIV2K"
_EDSR = "https://cv.snu.ac.kr/research/EDSR"


def _div2k(split: str, scale: int | None) -> Archive:
    if scale is None:
        return Archive(f"div2k-{split}-hr", f"{_DIV2K}/DIV2K_{split}_HR.zip", f"DIV2K_{split}_HR.zip", None,
                       ((f"DIV2K_{split}_HR", f"{'train' if split == 'train' else 'benchmark'}/"
                         f"{'DIV2K' if split == 'train' else 'DIV2K_valid'}/HR"),),
                       f"DIV2K {split} HR PNGs ({'800' if split == 'train' else '100'} images)")
    base = "train/DIV2K" if split == "train" else "benchmark/DIV2K_valid"
    return Archive(f"div2k-{split}-lr-x{scale}", f"{_DIV2K}/DIV2K_{split}_LR_bicubic_X{scale}.zip",
                   f"DIV2K_{split}_LR_bicubic_X{scale}.zip", None,
                   ((f"DIV2K_{split}_LR_bicubic/X{scale}", f"{base}/LR_bicubic/X{scale}"),),
                   f"DIV2K {split} MATLAB-bicubic LR x{scale}")


ARCHIVES: dict[str, Archive] = {
    a.name: a
    for a in (
        _div2k("train", None), _div2k("valid", None),
        *(_div2k(split, s) for split in ("train", "valid") for s in (2, 3, 4)),
        Archive("flickr2k", f"{_EDSR}/Flickr2K.tar", "Flickr2K.tar", None,
                (("Flickr2K/Flickr2K_HR", "train/Flickr2K/HR"),), "Flickr2K HR (2650 images, ~20 GB)"),
        Archive("benchmark", f"{_EDSR}/benchmark.tar", "benchmark.tar", None,
                (("benchmark/Set5", "benchmark/Set5"), ("benchmark/Set14", "benchmark/Set14"),
                 ("benchmark/B100", "benchmark/BSD100"), ("benchmark/Urban100", "benchmark/Urban100")),
                "Set5, Set14, B100 (-> BSD100), Urban100 with HR and LR_bicubic (EDSR's mirror)"),
    )
}
GROUPS = {"div2k": ("div2k-train-hr", "div2k-valid-hr")}


# ------------------------------------------------------------------------------------------- download


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, progress: bool = True,
             timeout: float = 60.0, chunk: int = 1 << 16) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify ``sha256``, return ``dest``."""
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        if sha256 is None or sha256_file(dest) == sha256:
            print(f"{dest} already downloaded", file=sys.stderr)
            return dest
        dest.unlink()  # a stale file from an older table entry: fetch again
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "ibmdn-fetch"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    complete = False
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing left to send: the part file is already whole
            complete = True
            resp = None
        else:
            raise IbmdnError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise IbmdnError(f"cannot reach {url}: {getattr(e, 'reason', e)}") from None
    if not complete:
        with resp:
            resumed = offset > 0 and resp.status == 206 and (
                resp.headers.get("Content-Range", "").startswith(f"bytes {offset}-"))
            if not resumed:
                offset = 0
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            if resumed:
                print(f"resuming {dest.name} at {offset} bytes", file=sys.stderr)
            written = offset
            try:
                with open(part, "ab" if resumed else "wb") as f, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=dest.name, disable=not progress, leave=False,
                ) as bar:
                    while block := resp.read(chunk):
                        f.write(block)
                        written += len(block)
                        bar.update(len(block))
            except (OSError, http.client.HTTPException) as e:
                raise IbmdnError(f"download of {url} interrupted after {written} bytes ({e}); "
                                 f"run the same command again to resume") from None
            if total is not None and written != total:
                raise IbmdnError(f"download of {url} incomplete ({written} of {total} bytes); "
                                 f"run the same command again to resume")
    digest = sha256_file(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise ChecksumError(f"{url}: sha256 {digest} differs from the expected {sha256}; the file was "
                            f"deleted, run again (or check the mirror)")
    os.replace(part, dest)
    if sha256 is None:
        print(f"sha256 of {dest.name} (not known in advance, pin it with --sha256): {digest}",
              file=sys.stderr)
    return dest


# ----------------------------------------------------------------------------------------- extraction


def _member_path(name: str) -> PurePosixPath:
    """A member name as a safe relative path, or :class:`UnsafeArchiveError`."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    parts = [p for p in PurePosixPath(norm).parts if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {name!r} contains '..'")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    p, r = os.path.realpath(path), os.path.realpath(root)
    return p == r or p.startswith(r + os.sep)


def _check_link(rel: PurePosixPath, linkname: str, root: Path, hard: bool) -> None:
    if hard:  # tar hard links name another member, relative to the archive root
        target = root / _member_path(linkname)
    elif linkname.startswith("/") or re.match(r"^[A-Za-z]:", linkname):
        target = Path(linkname)
    else:
        target = Path(os.path.normpath(root / rel.parent / linkname))
    if not _inside(target, root):
        kind = "hard link" if hard else "symlink"
        raise UnsafeArchiveError(
            f"archive member {str(rel)!r} is a {kind} pointing outside the target ({linkname})")


def _safe_target(root: Path, rel: PurePosixPath) -> Path:
    target = root / rel
    exists = target.is_symlink() or target.exists()
    if not _inside(target.parent, root) or (exists and not _inside(target, root)):
        raise UnsafeArchiveError(f"archive member {str(rel)!r} would be written outside the target")
    return target


def _extract_tar(path: Path, root: Path) -> int:
    with tarfile.open(path) as tar:
        members = tar.getmembers()
        for m in members:  # check everything before writing anything
            rel = _member_path(m.name)
            if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):  # devices, FIFOs, ...
                raise UnsafeArchiveError(f"archive member {m.name!r} is a special file")
            if m.issym() or m.islnk():
                _check_link(rel, m.linkname, root, hard=m.islnk())
        for m in members:
            rel = _member_path(m.name)
            if str(rel) == ".":
                continue
            target = _safe_target(root, rel)
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if m.issym():
                _check_link(rel, m.linkname, root, hard=False)  # again, with links written so far resolved
                os.symlink(m.linkname, target)
            elif m.islnk():
                src = root / _member_path(m.linkname)
                _check_link(rel, m.linkname, root, hard=True)
                shutil.copyfile(src, target)
            else:
                with tar.extractfile(m) as fsrc, open(target, "wb") as fdst:
                    shutil.copyfileobj(fsrc, fdst, 1 << 20)
    return len(members)


def _zip_is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _extract_zip(path: Path, root: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        links = {}
        for info in infos:
            rel = _member_path(info.filename)
            if _zip_is_symlink(info):
                links[info.filename] = zf.read(info).decode("utf-8", "replace")
                _check_link(rel, links[info.filename], root, hard=False)
        for info in infos:
            rel = _member_path(info.filename)
            if str(rel) == ".":
                continue
            target = _safe_target(root, rel)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if info.filename in links:
                _check_link(rel, links[info.filename], root, hard=False)
                os.symlink(links[info.filename], target)
            else:
                with zf.open(info) as fsrc, open(target, "wb") as fdst:
                    shutil.copyfileobj(fsrc, fdst, 1 << 20)
    return len(infos)


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> int:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into ``dest`` safely; returns the member count."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, dest)
        if tarfile.is_tarfile(archive):
            return _extract_tar(archive, dest)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise IbmdnError(f"{archive}: broken archive ({e})") from None
    raise IbmdnError(f"{archive}: not a zip or tar archive")


def _merge_move(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, merging into an existing folder (files are replaced)."""
    if src.is_dir() and not src.is_symlink() and dst.is_dir():
        for child in src.iterdir():
            _merge_move(child, dst / child.name)
        src.rmdir()
        return
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def install_archive(archive: Path, root: Path, entry: Archive) -> list[Path]:
    """Extract ``archive`` into a staging folder under ``root`` and move its parts into the data layout."""
    staging = root / f".fetch-{entry.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        safe_extract(archive, staging)
        placed = []
        for src, dst in entry.moves:
            s = staging / src if src else staging
            if not s.exists():
                raise IbmdnError(f"{archive}: expected {src!r} inside the archive (the layout changed?)")
            if not src:
                for child in list(s.iterdir()):
                    _merge_move(child, root / dst / child.name)
            else:
                _merge_move(s, root / dst)
            placed.append(root / dst)
        return placed
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(name: str, root=None, url: str | None = None, sha256: str | None = None, progress: bool = True):
    """Download and install archive ``name`` (or a group such as ``div2k``); returns the folders made."""
    root = Path(root) if root else data_root()
    key = name.lower()
    if key in GROUPS:
        if url:
            raise IbmdnError(f"--url cannot be used with the group {name!r}; fetch its parts one by one")
        return [p for part in GROUPS[key] for p in fetch(part, root, None, None, progress)]
    entry = ARCHIVES.get(key)
    if entry is None:
        if not url:
            known = ", ".join(sorted(ARCHIVES) + sorted(GROUPS))
            raise IbmdnError(f"unknown dataset {name!r}; known: {known} (or give --url for any archive)")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", name):
            raise IbmdnError(f"dataset name {name!r} must be a plain folder name")
        filename = Path(urllib.request.url2pathname(url.split("?")[0].rstrip("/").rsplit("/", 1)[-1])).name
        entry = Archive(name, url, filename or f"{name}.archive", None, (("", name),), "custom archive")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IbmdnError(f"cannot create the data root {root}: {e}") from None
    archive = download(url or entry.url, root / "downloads" / entry.filename, sha256 or entry.sha256,
                       progress)
    return install_archive(archive, root, entry)


def fetch_command(args) -> int:
    """``ibmdn data fetch NAME [--root DIR] [--url URL] [--sha256 HEX]``."""
    placed = fetch(args.name, args.root, args.url, getattr(args, "sha256", None), progress=True)
    for p in placed:
        print(p)
    return 0
