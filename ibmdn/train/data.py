"""Training patches: aligned HR / MATLAB-bicubic LR crops, a data order that is a pure function of the step.

* **Images.** Each training image is read once (:func:`ibmdn.data.io.read_image`), modcropped to the
  scale, and downscaled ONCE as a whole with the MATLAB-exact ``imresize`` through the LR cache
  (:class:`ibmdn.data.datasets.LRCache`: the first run computes, later runs read PNGs). Both are kept in
  memory as ``uint8`` (T91 + BSD200: ~0.1 GB; DIV2K x2: ~8.6 GB per process, shared copy-on-write by
  fork-started loader workers). Patches are then cut from the pair: LR ``p/s`` at ``(y, x)`` and HR ``p`` at
  ``(y*s, x*s)``; because MATLAB's kernel is centred on each ``s x s`` block, these are exactly aligned and
  equal to what downscaling each HR patch would give away from the patch border (better: no patch-border
  artefacts).
* **Images smaller than the patch** (e.g. 51 of T91's 91 images at the paper's 192 px patch) are used,
  not dropped: a side shorter than the patch is padded by reflection (``numpy.pad`` mode ``reflect``:
  mirrored about the border pixel, which is not repeated, so no flat doubled row) up to the patch size,
  split evenly between the two ends, BEFORE downscaling; the LR is the MATLAB downscaling of the padded
  HR, so LR and HR patches stay exactly aligned. Such an image has one crop position along that side
  (the patch always holds all of it). Reflection keeps local image statistics (no constant or black
  border for the network to learn); zero or edge padding would add flat regions that never occur at
  test time. The padding is limited to one mirror copy per end (at most ``side - 1`` pixels, i.e. a
  patch up to about three times the side; :func:`min_side_for`, 65 px for a 192 px patch): an image that
  would need more is left out (reported once, listed as skipped), and if none is left,
  :class:`TrainDataError`. The names of padded images are kept in
  :attr:`TrainImages.padded`.
* **Order.** Global sample ``i`` (``i = step * batch + k``) is a pure function of ``(seed, i)``: a
  generator seeded with ``(seed, i)`` draws one crop position uniformly among ALL valid crop positions of
  all images (image and position together), then the symmetry (one of the 8 flips/rotations of the
  square). An image is therefore drawn with probability proportional to its number of valid crop
  positions ``(H_lr - p/s + 1) (W_lr - p/s + 1)`` (its usable area), not uniformly: a uniform image
  choice would show each pixel of a small image far more often than one of a large image. Resuming at
  step ``t`` therefore continues exactly where the run stopped without saving any loader state, and
  ``N`` DDP processes that take the ``N`` consecutive slices of each global batch see the same samples
  as one process (the world size never changes the data).
* **Loader.** :func:`make_loader` wraps this in a ``DataLoader`` whose batch sampler yields this rank's
  slice of every global batch from the start step on; batches stay ``uint8`` until they reach the device
  (4x less to copy; pinned memory on CUDA). ``workers`` processes build whole batches in parallel.
  :func:`loader_throughput` measures batches/s of the loader alone (``ibmdn train --bench-loader N``).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

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
    """HR (modcropped, padded to the patch where smaller) and LR ``uint8`` RGB arrays of the training
    images, what was left out (``skipped``) and which images were padded (``padded``)."""

    hr: list[np.ndarray]
    lr: list[np.ndarray]
    names: list[str]
    sets: list[str]
    skipped: list[str]
    scale: int
    padded: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.hr)


def min_side_for(patch_size: int) -> int:
    """Smallest image side that reflection padding brings to ``patch_size`` with one mirror copy per end
    (the larger end's padding, ``ceil((patch - side) / 2)``, at most ``side - 1``)."""
    return next(s for s in range(1, patch_size + 1) if (patch_size - s + 1) // 2 <= s - 1)


def pad_to_patch(hr: np.ndarray, patch_size: int) -> np.ndarray:
    """Reflection-pad (``numpy`` ``reflect``) each side of ``hr`` shorter than ``patch_size`` up to it,
    evenly split between both ends (module docstring); larger sides are left as they are."""
    pads = [(0, 0), (0, 0), (0, 0)]
    for axis in (0, 1):
        short = max(0, patch_size - hr.shape[axis])
        pads[axis] = (short // 2, short - short // 2)
    if not any(a or b for a, b in pads):
        return hr
    return np.pad(hr, pads, mode="reflect")


def load_images(
    sets: list[str], scale: int, patch_size: int, root=None, cache_dir=None, verbose: bool = True
) -> TrainImages:
    """Read, modcrop, pad where smaller than the patch, and downscale (cached) every image of ``sets``.

    An image needing more than one mirror copy per end to reach the patch (a side under
    :func:`min_side_for`) is left out; see the module docstring.
    """
    if patch_size % scale:
        raise TrainDataError(f"patch_size {patch_size} is not a multiple of the scale {scale}")
    cache = LRCache(cache_dir)
    hr_list, lr_list, names, skipped, padded = [], [], [], [], []
    resolved = []
    min_side = min_side_for(patch_size)
    for name in sets:
        ds = training_set(name, root=root)
        resolved.append(ds.name)
        for path in ds.files:
            hr = modcrop(read_image(path), scale)
            if min(hr.shape[:2]) < min_side:
                skipped.append(f"{ds.name}/{path.name}")
                continue
            if min(hr.shape[:2]) < patch_size:
                hr = pad_to_patch(hr, patch_size)  # a multiple of the scale: patch_size is one
                padded.append(f"{ds.name}/{path.stem}")
            hr_list.append(hr)
            lr_list.append(cache.get_or_make(hr, scale))
            names.append(f"{ds.name}/{path.stem}")
    if not hr_list:
        raise TrainDataError(
            f"no training image of {', '.join(resolved)} is at least {min_side} px per side after "
            f"modcrop (reflection padding reaches the {patch_size} px patch from there); use a smaller "
            f"--patch-size"
        )
    if skipped and verbose:
        print(
            f"ibmdn: {len(skipped)} training image(s) under {min_side} px (too small to pad to the "
            f"{patch_size} px patch) left out (e.g. {skipped[0]})",
            file=sys.stderr,
        )
    return TrainImages(hr_list, lr_list, names, resolved, skipped, scale, padded)


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
    """Global sample index -> ``(lr, hr)`` ``uint8`` ``CHW`` tensors, a pure function of ``(seed, index)``.

    Each sample is one of all valid crop positions of all images, drawn uniformly (module docstring).
    """

    def __init__(self, images: TrainImages, patch_size: int, seed: int, augment: bool = True):
        self.images = images
        self.patch = patch_size
        self.scale = images.scale
        self.seed = int(seed)
        self.augment = augment
        lp = patch_size // images.scale
        # valid LR crop positions per image (rows, columns) and their running total
        self._cols = np.array([lr.shape[1] - lp + 1 for lr in images.lr], dtype=np.int64)
        rows = np.array([lr.shape[0] - lp + 1 for lr in images.lr], dtype=np.int64)
        if len(images) == 0:
            raise TrainDataError("no training images")
        if (rows < 1).any() or (self._cols < 1).any():
            raise TrainDataError(f"a training image is smaller than the {patch_size} px patch (pad it first)")
        self._ends = np.cumsum(rows * self._cols)  # image j owns positions [ends[j-1], ends[j])

    def __len__(self) -> int:  # an unbounded stream; the sampler decides what is drawn
        return 2**62

    def positions(self) -> np.ndarray:
        """Valid crop positions per image: the relative frequency with which each image is drawn."""
        return np.diff(self._ends, prepend=0)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, 1, index])
        u = int(rng.integers(0, int(self._ends[-1])))
        j = int(np.searchsorted(self._ends, u, side="right"))
        y, x = divmod(u - (int(self._ends[j - 1]) if j else 0), int(self._cols[j]))
        hr, lr = self.images.hr[j], self.images.lr[j]
        lp, s = self.patch // self.scale, self.scale
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
