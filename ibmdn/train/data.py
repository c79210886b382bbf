"""Training patches: aligned HR / MATLAB-bicubic LR crops, a data order that is a pure function of the step.

* **Images.** Each training image is read once (:func:`ibmdn.data.io.read_image`), modcropped to the
  scale, and downscaled ONCE as a whole with the MATLAB-exact ``imresize`` through the LR cache
  (:class:`ibmdn.data.datasets.LRCache`: the first run computes, later runs read PNGs). Both are kept in
  memory as ``uint8`` (T91 + BSD200: ~0.1 GB; DIV2K x2: ~8.6 GB per process, shared copy-on-write by
  fork-started loader workers). Patches are then cut from the pair: LR ``p/s`` at ``(y, x)`` and HR ``p`` at
  ``(y*s, x*s)``; because MATLAB's kernel is centred on each ``s x s`` block, these are exactly aligned and
  equal to what downscaling each HR patch would give away from the patch border (better: no patch-border
  artefacts). Images whose modcropped side is smaller than the patch are left out (reported once);
  if none is left, :class:`TrainDataError`.
* **Order.** Global sample ``i`` (``i = step * batch + k``) is a pure function of ``(seed, i)``: the image is
  entry ``i mod n`` of a permutation drawn per pass over the images (``seed, pass``), the crop position and
  the symmetry (one of the 8 flips/rotations of the square) come from a generator seeded with
  ``(seed, i)``. Resuming at step ``t`` therefore continues exactly where the run stopped without saving
  any loader state, and ``N`` DDP processes that take the ``N`` consecutive slices of each global batch see
  the same samples as one process (the world size never changes the data).
* **Loader.** :func:`make_loader` wraps this in a ``DataLoader`` whose batch sampler yields this rank's
  slice of every global batch from the start step on; batches stay ``uint8`` until they reach the device
  (4x less to copy; pinned memory on CUDA). ``workers`` processes build whole batches in parallel.
  :func:`loader_throughput` measures batches/s of the loader alone (``ibmdn train --bench-loader N``).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from ibmdn.data.datasets import LRCache, available, training_set
from ibmdn.data.imresize import modcrop
from ibmdn.data.io import read_image
from ibmdn.errors import IbmdnError


class TrainDataError(IbmdnError):
    """Training data that cannot be used (missing sets, every image smaller than the patch, ...)."""


def resolve_train_sets(spec: str, root=None) -> list[str]:
    """``auto`` -> DIV2K when present, else T91 + BSD200 (whichever exist); else the listed names."""
    have = available("train", root)
    lower = {h.lower(): h for h in have}
    if spec.strip().lower() == "auto":
        if "div2k" in lower:
            return [lower["div2k"]]
        names = [lower[n] for n in ("t91", "bsd200") if n in lower]
        if not names:
            raise TrainDataError(
                f"no training set found (have: {', '.join(have) or 'none'}); fetch DIV2K with "
                f"`ibmdn data fetch DIV2K` or set $IBMDN_DATA / --data-root"
            )
        return names
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise TrainDataError("train_sets is empty")
    return names


@dataclass
class TrainImages:
    """HR (modcropped) and LR ``uint8`` RGB arrays of the training images, plus what was left out."""

    hr: list[np.ndarray]
    lr: list[np.ndarray]
    names: list[str]
    sets: list[str]
    skipped: list[str]
    scale: int

    def __len__(self) -> int:
        return len(self.hr)


def load_images(
    sets: list[str], scale: int, patch_size: int, root=None, cache_dir=None, verbose: bool = True
) -> TrainImages:
    """Read, modcrop and downscale (cached) every image of ``sets`` that fits a ``patch_size`` patch."""
    if patch_size % scale:
        raise TrainDataError(f"patch_size {patch_size} is not a multiple of the scale {scale}")
    cache = LRCache(cache_dir)
    hr_list, lr_list, names, skipped = [], [], [], []
    resolved = []
    for name in sets:
        ds = training_set(name, root=root)
        resolved.append(ds.name)
        for path in ds.files:
            hr = modcrop(read_image(path), scale)
            if min(hr.shape[:2]) < patch_size:
                skipped.append(f"{ds.name}/{path.name}")
                continue
            hr_list.append(hr)
            lr_list.append(cache.get_or_make(hr, scale))
            names.append(f"{ds.name}/{path.stem}")
    if not hr_list:
        raise TrainDataError(
            f"no training image of {', '.join(resolved)} is at least {patch_size} px per side "
            f"after modcrop; use a smaller --patch-size"
        )
    if skipped and verbose:
        print(
            f"ibmdn: {len(skipped)} training image(s) smaller than the {patch_size} px patch left out "
            f"(e.g. {skipped[0]})",
            file=sys.stderr,
        )
    return TrainImages(hr_list, lr_list, names, resolved, skipped, scale)


def _dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 symmetries of the square on an ``H x W x C`` array (k in 0..7)."""
    if k & 1:
        a = a[:, ::-1]
    if k & 2:
        a = a[::-1]
    if k & 4:
        a = a.transpose(1, 0, 2)
    return a


class PatchDataset(torch.utils.data.Dataset):
    """Global sample index -> ``(lr, hr)`` ``uint8`` ``CHW`` tensors, a pure function of ``(seed, index)``."""

    def __init__(self, images: TrainImages, patch_size: int, seed: int, augment: bool = True):
        self.images = images
        self.patch = patch_size
        self.scale = images.scale
        self.seed = int(seed)
        self.augment = augment
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self) -> int:  # an unbounded stream; the sampler decides what is drawn
        return 2**62

    def _order(self, epoch: int) -> np.ndarray:
        """The image order of pass ``epoch`` (the last few are kept)."""
        if epoch not in self._orders:
            if len(self._orders) > 4:
                self._orders.clear()
            self._orders[epoch] = np.random.default_rng([self.seed, 0, epoch]).permutation(len(self.images))
        return self._orders[epoch]

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.images)
        j = int(self._order(index // n)[index % n])
        rng = np.random.default_rng([self.seed, 1, index])
        hr, lr = self.images.hr[j], self.images.lr[j]
        lp, s = self.patch // self.scale, self.scale
        y = int(rng.integers(0, lr.shape[0] - lp + 1))
        x = int(rng.integers(0, lr.shape[1] - lp + 1))
        lr_p = lr[y : y + lp, x : x + lp]
        hr_p = hr[y * s : (y + lp) * s, x * s : (x + lp) * s]
        if self.augment:
            k = int(rng.integers(0, 8))
            lr_p, hr_p = _dihedral(lr_p, k), _dihedral(hr_p, k)
        return lr_p, hr_p

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr_p, hr_p = self.sample(index)
        return (
            torch.from_numpy(np.ascontiguousarray(lr_p.transpose(2, 0, 1))),
            torch.from_numpy(np.ascontiguousarray(hr_p.transpose(2, 0, 1))),
        )


class StepBatches(torch.utils.data.Sampler):
    """Indices of this rank's slice of each global batch, from ``start_step`` to ``end_step``."""

    def __init__(self, start_step: int, end_step: int, global_batch: int, rank: int = 0, world_size: int = 1):
        if global_batch % world_size:
            raise TrainDataError(f"batch_size {global_batch} is not divisible by the {world_size} processes")
        self.start, self.end = int(start_step), int(end_step)
        self.global_batch, self.local = global_batch, global_batch // world_size
        self.offset = rank * self.local

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def __iter__(self):
        for step in range(self.start, self.end):
            first = step * self.global_batch + self.offset
            yield list(range(first, first + self.local))


def resolve_workers(workers: int, device: torch.device) -> int:
    if workers >= 0:
        return workers
    return min(8, os.cpu_count() or 1) if device.type == "cuda" else 0


def make_loader(
    dataset: PatchDataset,
    start_step: int,
    end_step: int,
    global_batch: int,
    rank: int = 0,
    world_size: int = 1,
    workers: int = 0,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A loader yielding ``(lr, hr)`` ``uint8`` batches for steps ``start_step .. end_step - 1``."""
    kw: dict = {"num_workers": workers, "pin_memory": pin_memory}
    if workers > 0:
        kw.update(prefetch_factor=4, persistent_workers=False)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=StepBatches(start_step, end_step, global_batch, rank, world_size), **kw
    )


def to_device(batch: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """``uint8`` NCHW -> float [0, 1] on ``device``."""
    x = batch.to(device, non_blocking=True).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def loader_throughput(
    loader, batches: int, device: torch.device, channels_last: bool = False
) -> dict[str, float]:
    """Batches/s and samples/s of the loader alone (with the copy to ``device``), after a warm-up batch."""
    it = iter(loader)
    lr, hr = next(it)
    n, samples = 0, 0
    t0 = time.perf_counter()
    for lr, hr in it:
        to_device(lr, device, channels_last), to_device(hr, device, channels_last)
        n += 1
        samples += lr.shape[0]
        if n >= batches:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt = max(time.perf_counter() - t0, 1e-9)
    return {"batches": n, "seconds": dt, "batches_per_s": n / dt, "samples_per_s": samples / dt}
