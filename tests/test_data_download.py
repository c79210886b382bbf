"""``ibmdn data fetch``: download from a local HTTP server (Range/resume), sha256, safe extraction."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import stat
import tarfile
import threading
import zipfile

import pytest

from ibmdn.cli import main
from ibmdn.data.download import ARCHIVES, UnsafeArchiveError, download, safe_extract
from ibmdn.errors import ChecksumError, IbmdnError


class _State:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ignore_range = False
        self.cut_after: int | None = None  # send only this many bytes, then drop the connection


class _Handler(http.server.BaseHTTPRequestHandler):
    state: _State

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        st = self.state
        rng = self.headers.get("Range")
        st.requests.append((self.path, rng))
        data = st.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and not st.ignore_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if st.cut_after is not None:
            self.wfile.write(body[: st.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state = _State()
    handler = type("H", (_Handler,), {"state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    httpd.shutdown()
    httpd.server_close()


def _tar(members: dict[str, bytes], links: dict[str, tuple[str, bytes]] | None = None, gz=True) -> bytes:
    """A tar archive of files (name -> data) and links (name -> (kind SYMTYPE/LNKTYPE, target))."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def _zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


BIG = os.urandom(300_000)  # incompressible, so that a partial download is really partial
TOY = _tar({"toy/HR/a.png": b"png-a", "toy/HR/b.png": b"png-b", "toy/blob.bin": BIG})


def _fetch(url, root, *extra):
    return main(["data", "fetch", "toy", "--root", str(root), "--url", url, *extra])


def test_fetch_custom_archive_with_sha(server, tmp_path, capsys):
    base, st = server
    st.files["/toy.tar.gz"] = TOY
    assert _fetch(base + "/toy.tar.gz", tmp_path, "--sha256", _sha(TOY)) == 0
    assert (tmp_path / "toy" / "toy" / "HR" / "a.png").read_bytes() == b"png-a"
    assert (tmp_path / "downloads" / "toy.tar.gz").read_bytes() == TOY
    assert not list(tmp_path.glob(".fetch-*"))
    # a re-run does not download again
    n = len(st.requests)
    assert _fetch(base + "/toy.tar.gz", tmp_path, "--sha256", _sha(TOY)) == 0
    assert len(st.requests) == n and "already downloaded" in capsys.readouterr().err


def test_unknown_sha_is_printed(server, tmp_path, capsys):
    base, st = server
    st.files["/toy.tar.gz"] = TOY
    assert _fetch(base + "/toy.tar.gz", tmp_path) == 0
    assert _sha(TOY) in capsys.readouterr().err


def test_resume_from_part_file(server, tmp_path):
    base, st = server
    st.files["/toy.tar.gz"] = TOY
    (tmp_path / "downloads").mkdir()
    half = len(TOY) // 2
    (tmp_path / "downloads" / "toy.tar.gz.part").write_bytes(TOY[:half])
    assert _fetch(base + "/toy.tar.gz", tmp_path, "--sha256", _sha(TOY)) == 0
    assert st.requests[-1] == ("/toy.tar.gz", f"bytes={half}-")
    assert (tmp_path / "downloads" / "toy.tar.gz").read_bytes() == TOY


def test_interrupted_download_resumes_on_rerun(server, tmp_path, capsys):
    base, st = server
    st.files["/toy.tar.gz"] = TOY
    st.cut_after = 100_000
    rc = _fetch(base + "/toy.tar.gz", tmp_path, "--sha256", _sha(TOY))
    err = capsys.readouterr().err
    assert rc == 2 and "run the same command again to resume" in err and "Traceback" not in err
    part = tmp_path / "downloads" / "toy.tar.gz.part"
    assert part.stat().st_size == 100_000
    st.cut_after = None
    assert _fetch(base + "/toy.tar.gz", tmp_path, "--sha256", _sha(TOY)) == 0
    assert st.requests[-1][1] == "bytes=100000-"
    assert not part.exists() and (tmp_path / "toy" / "toy" / "blob.bin").read_bytes() == BIG


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    base, st = server
    st.files["/toy.tar.gz"] = TOY
    st.ignore_range = True
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "toy.tar.gz.part").write_bytes(b"junk that must not be kept")
    assert _fetch(base + "/toy.tar.gz", tmp_path, "--sha256", _sha(TOY)) == 0
    assert (tmp_path / "downloads" / "toy.tar.gz").read_bytes() == TOY


def test_complete_part_file_and_416(server, tmp_path):
    base, st = server
    st.files["/toy.tar.gz"] = TOY
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "toy.tar.gz.part").write_bytes(TOY)
    path = download(base + "/toy.tar.gz", tmp_path / "downloads" / "toy.tar.gz", _sha(TOY), progress=False)
    assert path.read_bytes() == TOY


def test_checksum_mismatch(server, tmp_path, capsys):
    base, st = server
    st.files["/toy.tar.gz"] = TOY
    rc = _fetch(base + "/toy.tar.gz", tmp_path, "--sha256", "0" * 64)
    err = capsys.readouterr().err
    assert rc == 2 and "sha256" in err and "Traceback" not in err
    assert not list((tmp_path / "downloads").iterdir())
    with pytest.raises(ChecksumError):
        download(base + "/toy.tar.gz", tmp_path / "x.tar.gz", "f" * 64, progress=False)


def test_http_errors_are_user_errors(server, tmp_path, capsys):
    base, _ = server
    assert _fetch(base + "/missing.tar.gz", tmp_path) == 2
    assert "HTTP 404" in capsys.readouterr().err
    assert main(["data", "fetch", "nonsense", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset" in err and "div2k-train-hr" in err


def test_table_layout_moves_benchmark(server, tmp_path):
    base, st = server
    files = {f"benchmark/{s}/HR/{s.lower()}.png": s.encode() for s in ("Set5", "Set14", "B100", "Urban100")}
    files["benchmark/Set5/LR_bicubic/X2/set5x2.png"] = b"lr"
    st.files["/benchmark.tar"] = _tar(files, gz=False)
    rc = main(["data", "fetch", "benchmark", "--root", str(tmp_path), "--url", base + "/benchmark.tar"])
    assert rc == 0
    assert (tmp_path / "benchmark" / "BSD100" / "HR" / "b100.png").read_bytes() == b"B100"
    assert (tmp_path / "benchmark" / "Set5" / "LR_bicubic" / "X2" / "set5x2.png").is_file()
    from ibmdn.data.datasets import resolve_set

    assert resolve_set("bsd100", root=tmp_path).parent.name == "BSD100"


def test_zip_layout_merges_into_existing_folders(server, tmp_path):
    base, st = server
    for s in (2, 3):
        st.files[f"/x{s}.zip"] = _zip({f"DIV2K_valid_LR_bicubic/X{s}/0801x{s}.png": b"lr"})
        rc = main(["data", "fetch", f"div2k-valid-lr-x{s}", "--root", str(tmp_path),
                   "--url", base + f"/x{s}.zip"])
        assert rc == 0
    lr = tmp_path / "benchmark" / "DIV2K_valid" / "LR_bicubic"
    assert sorted(p.name for p in lr.iterdir()) == ["X2", "X3"]


def test_table_entries_are_complete():
    assert {"div2k-train-hr", "div2k-valid-hr", "div2k-train-lr-x4", "flickr2k", "benchmark"} <= set(ARCHIVES)
    for a in ARCHIVES.values():
        assert a.url.startswith(("http://", "https://")) and a.moves and a.filename
        assert a.sha256 is None or len(a.sha256) == 64


MALICIOUS_TARS = {
    "dotdot": _tar({"ok.txt": b"x", "../evil.txt": b"evil"}),
    "absolute": _tar({"/tmp/ibmdn-evil-abs.txt": b"evil"}),
    "symlink_out": _tar({}, {"link": (tarfile.SYMTYPE, "../../")}),
    "symlink_abs": _tar({}, {"etc": (tarfile.SYMTYPE, "/etc")}),
    "symlink_then_write": _tar({}, {"d": (tarfile.SYMTYPE, "..")}),
    "hardlink_out": _tar({}, {"h": (tarfile.LNKTYPE, "../outside.txt")}),
    "device": None,
}


def _device_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("dev")
        info.type = tarfile.CHRTYPE
        tar.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize("kind", list(MALICIOUS_TARS))
def test_malicious_tar_rejected(tmp_path, kind):
    data = MALICIOUS_TARS[kind] or _device_tar()
    arc = tmp_path / "bad.tar.gz"
    arc.write_bytes(data)
    (tmp_path / "outside.txt").write_text("secret")
    target = tmp_path / "root" / "sub"
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UnsafeArchiveError):
        safe_extract(arc, target)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "root") == before
    assert (tmp_path / "outside.txt").read_text() == "secret"
    assert not os.path.exists("/tmp/ibmdn-evil-abs.txt")
    assert list(target.iterdir()) == []  # everything is checked before anything is written


def test_malicious_zip_rejected(tmp_path):
    for i, data in enumerate((_zip({"../evil.txt": b"evil"}), _zip({"/abs.txt": b"x"}),
                              _zip({"C:/win.txt": b"x"}), _zip({}, {"link": "../../etc"}))):
        arc = tmp_path / f"bad{i}.zip"
        arc.write_bytes(data)
        with pytest.raises(UnsafeArchiveError):
            safe_extract(arc, tmp_path / f"root{i}")
    assert not (tmp_path / "evil.txt").exists()


def test_malicious_archive_via_cli_leaves_nothing(server, tmp_path, capsys):
    base, st = server
    st.files["/evil.tar.gz"] = MALICIOUS_TARS["dotdot"]
    root = tmp_path / "root"
    rc = main(["data", "fetch", "toy", "--root", str(root), "--url", base + "/evil.tar.gz"])
    err = capsys.readouterr().err
    assert rc == 2 and "'..'" in err and "Traceback" not in err
    assert not (tmp_path / "evil.txt").exists() and not (root / "toy").exists()
    assert not list(root.glob(".fetch-*"))


def test_internal_links_allowed(tmp_path):
    data = _tar({"d/file.txt": b"hello"}, {"d/link.txt": (tarfile.SYMTYPE, "file.txt"),
                                           "d/hard.txt": (tarfile.LNKTYPE, "d/file.txt")})
    arc = tmp_path / "ok.tar.gz"
    arc.write_bytes(data)
    safe_extract(arc, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "link.txt").read_bytes() == b"hello"
    assert (tmp_path / "out" / "d" / "hard.txt").read_bytes() == b"hello"
    assert not (tmp_path / "out" / "d" / "hard.txt").is_symlink()


def test_not_an_archive(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"plain text")
    with pytest.raises(IbmdnError, match="not a zip or tar"):
        safe_extract(tmp_path / "x.zip", tmp_path / "out")
