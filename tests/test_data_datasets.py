"""Benchmark sets: name lookup, streaming, the LR cache (keys, atomic writes, corrupt entries)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from ibmdn.data import datasets as ds_mod
from ibmdn.data.datasets import BenchmarkSet, ImageFolderSet, LRCache, available, lr_cache_key, resolve_set
from ibmdn.data.imresize import downscale
from ibmdn.data.io import read_image
from ibmdn.errors import BadImageError, MissingRootError


def _make_root(tmp_path, names=("Toy",), kind="benchmark", n=3, size=(40, 50)):
    rng = np.random.default_rng(0)
    for name in names:
        hr = tmp_path / "data" / kind / name / "HR"
        hr.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(hr / f"img{i}.png")
    return tmp_path / "data"


def test_case_insensitive_lookup_and_aliases(tmp_path):
    root = _make_root(tmp_path, names=("Set5", "B100"))
    assert resolve_set("set5", root=root).parent.name == "Set5"
    assert resolve_set("SET5", root=root).parent.name == "Set5"
    assert resolve_set("bsd100", root=root).parent.name == "B100"
    with pytest.raises(MissingRootError, match="Urban100.*have: B100, Set5"):
        resolve_set("Urban100", root=root)
    with pytest.raises(MissingRootError, match="no benchmark folder"):
        resolve_set("set5", root=tmp_path / "nowhere")
    assert available(root=root) == ["B100", "Set5"]


def test_shared_benchmarks_present(data_root):
    for name in ("set5", "set14", "bsd100", "urban100"):
        assert resolve_set(name, root=data_root).is_dir()
    s = BenchmarkSet("set5", 4, root=data_root, cache=False)
    assert len(s) == 5 and s.name == "Set5"


def test_items_stream_and_lr_is_cached(tmp_path):
    root = _make_root(tmp_path, size=(41, 50))
    cache = tmp_path / "cache"
    s = BenchmarkSet("toy", 3, root=root, cache_dir=cache)
    items = list(s)
    assert [i.name for i in items] == ["img0", "img1", "img2"]
    name, hr, lr = items[0]
    assert hr.shape == (39, 48, 3) and lr.shape == (13, 16, 3)
    np.testing.assert_array_equal(lr, downscale(hr, 3))
    entries = sorted((cache / "lr" / "x3").iterdir())
    assert len(entries) == 3 and all(e.suffix == ".png" for e in entries)
    assert (cache / "lr" / "x3" / f"{lr_cache_key(hr, 3)}.png").is_file()
    # second pass reads the cache (a changed file content would change the key)
    np.testing.assert_array_equal(BenchmarkSet("toy", 3, root=root, cache_dir=cache)[0].lr, lr)


def test_cache_key_covers_content_scale_and_version(monkeypatch):
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    k = lr_cache_key(a, 2)
    assert k != lr_cache_key(b, 2) and k != lr_cache_key(a, 4)
    monkeypatch.setattr(ds_mod, "IMRESIZE_VERSION", "other")
    assert lr_cache_key(a, 2) != k


def test_corrupt_cache_entry_is_regenerated(tmp_path):
    root = _make_root(tmp_path, n=1)
    cache = LRCache(tmp_path / "cache")
    hr = read_image(root / "benchmark" / "Toy" / "HR" / "img0.png")
    path = cache.path(lr_cache_key(hr, 2), 2)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x89PNG garbage")
    np.testing.assert_array_equal(cache.get_or_make(hr, 2), downscale(hr, 2))
    np.testing.assert_array_equal(read_image(path), downscale(hr, 2))
    # a readable entry of the wrong shape is not trusted either
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(path)
    np.testing.assert_array_equal(cache.get_or_make(hr, 2), downscale(hr, 2))


def test_killed_cache_write_leaves_no_entry(tmp_path, monkeypatch):
    root = _make_root(tmp_path, n=1)
    cache_dir = tmp_path / "cache"
    s = BenchmarkSet("toy", 2, root=root, cache_dir=cache_dir)

    def dying_save(self, fp, format=None, **kw):
        fp.write(b"\x89PNG\r\n\x1a\n half an image")
        raise KeyboardInterrupt  # the process is killed mid-write

    monkeypatch.setattr(Image.Image, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        s[0]
    monkeypatch.undo()
    folder = cache_dir / "lr" / "x2"
    assert not folder.exists() or os.listdir(folder) == []
    item = s[0]  # the next run computes and stores a good entry
    assert len(os.listdir(folder)) == 1
    np.testing.assert_array_equal(read_image(next(folder.iterdir())), item.lr)


def test_unwritable_cache_only_warns(tmp_path):
    root = _make_root(tmp_path, n=1)
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    s = BenchmarkSet("toy", 2, root=root, cache_dir=blocker)
    with pytest.warns(UserWarning, match="not writable"):
        item = s[0]
    assert item.lr.shape == (20, 25, 3)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("IBMDN_CACHE", str(tmp_path / "c"))
    assert LRCache().root == tmp_path / "c" / "lr"
    monkeypatch.delenv("IBMDN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert LRCache().root == tmp_path / "x" / "ibmdn" / "lr"


def test_bad_file_in_set_names_it(tmp_path):
    root = _make_root(tmp_path, n=1)
    (root / "benchmark" / "Toy" / "HR" / "zz.png").write_text("not an image")
    (root / "benchmark" / "Toy" / "HR" / "readme.txt").write_text("ignored: not an image extension")
    s = BenchmarkSet("toy", 2, root=root, cache_dir=tmp_path / "c")
    assert [p.name for p in s.files] == ["img0.png", "zz.png"]
    with pytest.raises(BadImageError, match=r"zz\.png"):
        list(s)


def test_too_small_for_scale_rejected(tmp_path):
    root = _make_root(tmp_path, n=1, size=(3, 40))
    with pytest.raises(BadImageError, match="too small"):
        BenchmarkSet("toy", 4, root=root, cache_dir=tmp_path / "c")[0]


def test_training_set(tmp_path):
    root = _make_root(tmp_path, names=("T91",), kind="train", n=2)
    t = ImageFolderSet("t91", root=root)
    assert len(t) == 2 and [n for n, _ in t] == ["img0", "img1"]
