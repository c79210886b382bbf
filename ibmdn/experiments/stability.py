"""Does a trained network stay, in inference, the function it was trained as? (involution stability)

The involution's kernel generator normalises its hidden features with BatchNorm in the original form
(:mod:`ibmdn.ops.involution`). In training mode the batch statistics make the generated kernel blind to
the input's scale, so the network grows about linearly with its input; in eval mode the running
statistics make each involution quadratic, and IBMDN's last block (three involutions with identity
residuals) a polynomial of high degree. This module measures that, on inputs a trained SR network
must handle: the most contrasted patches of the training images.

* :func:`high_contrast_patches`: the ``n`` LR patches of T91 with the largest standard deviation
  (non-overlapping tiles of every image, ranked; deterministic).
* :func:`stability_metrics`: for one network,

  - ``growth_eval`` / ``growth_train``: the exponent ``p`` of ``|net(a x)| ~ a^p`` between ``a = 1``
    and ``a = 2`` (``log2`` of the ratio of output RMS, median over the patches), in eval and in train
    mode (batch statistics of the scaled batch; the network's running statistics are left untouched).
    1 is the growth of a positively homogeneous network;
  - ``max_abs_output``: the largest ``|SR|`` in eval mode over the patches (inputs in [0, 1]);
  - ``patches_out_of_range``: how many patches get an eval-mode output outside
    ``[-OUT_OF_RANGE, 1 + OUT_OF_RANGE]`` somewhere (:data:`OUT_OF_RANGE`), non-finite outputs included
    (``patches_nonfinite`` counts those alone);
  - ``train_eval_psnr``: PSNR (dB, peak 1) between the train-mode and the eval-mode outputs of the
    same batch of patches: how far apart the two functions are on training data (999: identical).

* :func:`contrast_suite` and :func:`versus_bicubic`: full-contrast synthetic patterns and the most
  contrasted Urban100 tiles, super-resolved and compared with bicubic interpolation (PSNR-Y);
  ``worst_gain_vs_bicubic``, ``median_gain_vs_bicubic`` and ``images_much_worse_than_bicubic``
  (more than :data:`MUCH_WORSE_DB` below bicubic) are written with the dataset ``contrast-suite``.

``python -m ibmdn.experiments.stability --net NAME=MODEL:WEIGHTS[:KEY=VALUE] ... --out results`` writes
``results/involution_stability.csv`` (long schema) with the weights' sha256 in the sidecar.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

OUT_OF_RANGE = 0.5
"""Margin beyond [0, 1] that counts as out of range: an error of more than 127 grey levels before clamping,
which no network trained with a pixel loss on [0, 1] targets makes on its own training images."""

TABLE = "involution_stability"


def high_contrast_patches(scale: int, n: int = 200, size: int = 48, root=None) -> torch.Tensor:
    """``(n, 3, size, size)`` float LR patches in [0, 1]: the most contrasted tiles of T91 at ``scale``."""
    from ibmdn.data.datasets import training_set
    from ibmdn.data.imresize import downscale, modcrop

    lrs = ((name, downscale(modcrop(hr, scale), scale)) for name, hr in training_set("T91", root=root))
    tiles = most_contrasted_tiles(lrs, size, n)
    if not tiles:
        raise ValueError(f"no {size}x{size} LR tile in T91 at x{scale}")
    batch = np.stack([t for _, t in tiles]).astype(np.float32) / 255.0
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def most_contrasted_tiles(images, size: int, n: int) -> list[tuple[str, np.ndarray]]:
    """The ``n`` non-overlapping ``size`` x ``size`` tiles of ``(name, HxWx3 array)`` images with the largest
    standard deviation, most contrasted first (ties in reading order), named ``<image>@<y>,<x>``."""
    tiles = [(float(a[y:y + size, x:x + size].std()), f"{name}@{y},{x}", a[y:y + size, x:x + size])
             for name, a in images
             for y in range(0, a.shape[0] - size + 1, size) for x in range(0, a.shape[1] - size + 1, size)]
    order = np.argsort(-np.asarray([t[0] for t in tiles]), kind="stable")[:n]
    return [(tiles[i][1], tiles[i][2]) for i in order]


def _train_mode_copy(model: nn.Module) -> nn.Module:
    """A train-mode copy whose BatchNorms use batch statistics without touching the original's."""
    m = copy.deepcopy(model).train()
    for bn in m.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            bn.momentum = 0.0  # running statistics stay as they were (irrelevant: we only read outputs)
    return m


@torch.no_grad()
def stability_metrics(model: nn.Module, patches: torch.Tensor, batch: int = 50) -> dict[str, float]:
    """The metrics of the module docstring for ``model`` on ``patches`` (LR, [0, 1]).

    Patches whose output is not finite count as out of range (and in ``patches_nonfinite``); the other
    metrics are taken over the patches that stay finite (medians of per-patch growth exponents).
    """
    from ibmdn.ops.involution import set_involution_impl

    model = set_involution_impl(model.eval(), "shift")  # the same function as the reference, faster
    train = _train_mode_copy(model)

    def run(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(x[i:i + batch]) for i in range(0, len(x), batch)]).double().flatten(1)

    def growth(lo: torch.Tensor, hi: torch.Tensor) -> float:
        ok = torch.isfinite(lo).all(1) & torch.isfinite(hi).all(1)
        rlo, rhi = lo[ok].pow(2).mean(1).sqrt(), hi[ok].pow(2).mean(1).sqrt()
        keep = rlo > 0
        return float(torch.log2(rhi[keep] / rlo[keep]).median()) if bool(keep.any()) else float("nan")

    out, out_train = run(model, patches), run(train, patches)
    growth_eval, growth_train = growth(out, run(model, 2 * patches)), growth(out_train, run(train, 2 * patches))
    finite = torch.isfinite(out).all(1)
    beyond = ((out < -OUT_OF_RANGE) | (out > 1 + OUT_OF_RANGE)).any(1) | ~finite
    both = finite & torch.isfinite(out_train).all(1)
    mse = float((out_train[both] - out[both]).pow(2).mean())
    return {
        "growth_eval": growth_eval,
        "growth_train": growth_train,
        "max_abs_output": float(out[finite].abs().max()),
        "patches_out_of_range": int(beyond.sum()),
        "patches_nonfinite": int((~finite).sum()),
        "train_eval_psnr": 10 * math.log10(1.0 / mse) if mse > 0 else 999.0,
    }


def contrast_suite(scale: int, size: int = 96, crops: int = 8, root=None) -> list[tuple[str, np.ndarray]]:
    """Hard HR test images (``uint8`` RGB, ``size`` square, a multiple of ``scale`` after modcrop).

    Full-contrast synthetic patterns (checkerboards and stripes at several periods, a zone plate, binary
    noise, a black/white edge, coloured bars) and the ``crops`` most contrasted ``size`` x ``size`` tiles of
    the first 20 Urban100 images (real textures; none of them is a training image).
    """
    from ibmdn.data.datasets import image_files, resolve_set
    from ibmdn.data.io import read_image

    yy, xx = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(0)
    planes: dict[str, np.ndarray] = {}
    for period in (2, 4, 6, 8, 12, 16):
        planes[f"checker{period}"] = ((yy // (period // 2) + xx // (period // 2)) % 2).astype(float)
        planes[f"stripes{period}"] = ((xx // (period // 2)) % 2).astype(float)
    r2 = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / size
    planes["zoneplate"] = 0.5 + 0.5 * np.cos(np.pi * r2)
    planes["noise"] = rng.integers(0, 2, (size, size)).astype(float)
    planes["edge"] = (xx >= size // 2).astype(float)
    out = [(name, np.repeat((255 * p).round().astype(np.uint8)[..., None], 3, axis=2)) for name, p in planes.items()]
    bars = np.zeros((size, size, 3), np.uint8)
    for k in range(8):
        bars[:, k * size // 8:(k + 1) * size // 8] = [255 * ((k >> b) & 1) for b in range(3)]
    out.append(("colourbars", bars))
    urban = ((p.stem, read_image(p)) for p in image_files(resolve_set("Urban100", "benchmark", root))[:20])
    return out + most_contrasted_tiles(urban, size, crops)


def versus_bicubic(model: nn.Module, scale: int, images: list[tuple[str, np.ndarray]]) -> pd.DataFrame:
    """Per image: PSNR-Y of ``model``'s SR and of bicubic interpolation against the HR (the tables' protocol).

    LR = MATLAB-exact bicubic downscaling of the HR; the SR output is clamped and quantised to uint8.
    """
    from ibmdn.data.imresize import downscale, imresize, modcrop
    from ibmdn.metrics.quality import psnr, tensor_to_uint8, uint8_to_tensor

    rows = []
    with torch.no_grad():
        for name, hr in images:
            hr = modcrop(hr, scale)
            lr = downscale(hr, scale)
            sr = tensor_to_uint8(model(uint8_to_tensor(lr)).clamp(0, 1))
            rows.append({"image": name, "psnr_sr": psnr(sr, hr, scale), "psnr_bicubic": psnr(imresize(lr, scale), hr, scale)})
    df = pd.DataFrame(rows)
    df["gain"] = df["psnr_sr"] - df["psnr_bicubic"]
    return df


MUCH_WORSE_DB = 1.0
"""An SR image more than this below bicubic interpolation (PSNR-Y) counts as much worse than bicubic."""

_UNITS = {"growth_eval": "1", "growth_train": "1", "max_abs_output": "1", "patches_out_of_range": "count",
          "patches_nonfinite": "count", "train_eval_psnr": "dB", "worst_gain_vs_bicubic": "dB",
          "median_gain_vs_bicubic": "dB", "images_much_worse_than_bicubic": "count"}


def suite_metrics(df: pd.DataFrame) -> dict[str, float]:
    """Summary of :func:`versus_bicubic`: worst and median gain, images more than 1 dB below bicubic."""
    return {"worst_gain_vs_bicubic": float(df["gain"].min()), "median_gain_vs_bicubic": float(df["gain"].median()),
            "images_much_worse_than_bicubic": int((df["gain"] < -MUCH_WORSE_DB).sum())}


def stability_rows(name: str, model_name: str, scale: int, metrics: dict[str, float], n: int,
                   dataset: str = "t91-contrast") -> list[dict]:
    return [{"table": TABLE, "model": model_name, "weights": name, "scale": scale, "dataset": dataset,
             "metric": k, "value": v, "unit": _UNITS[k], "n_images": n, "source": "measured"}
            for k, v in metrics.items()]


def _parse_net(spec: str) -> tuple[str, str, str, dict]:
    """``NAME=MODEL:WEIGHTS[:KEY=VALUE,...]`` (values JSON, e.g. ``bsconv="s"``)."""
    name, rest = spec.split("=", 1)
    parts = rest.split(":", 2)
    kw = {}
    if len(parts) == 3:
        for item in parts[2].split(","):
            k, v = item.split("=", 1)
            kw[k] = json.loads(v)
    return name, parts[0], parts[1], kw


def main(argv: list[str] | None = None) -> int:
    from ibmdn.fileio import sha256_file
    from ibmdn.models import build_model
    from ibmdn.results import provenance, write_table

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", action="append", required=True,
                    help='NAME=MODEL:WEIGHTS[:KEY=JSON,...], e.g. old=ibmdn:w.pth:bsconv="s"')
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--patches", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("results"))
    args = ap.parse_args(argv)
    patches = high_contrast_patches(args.scale, args.patches)
    suite = contrast_suite(args.scale)
    rows, nets = [], {}
    for spec in args.net:
        name, model_name, weights, kw = _parse_net(spec)
        model = build_model(model_name, args.scale, weights=weights, **kw)
        m = stability_metrics(model, patches)
        print(name, {k: round(v, 4) for k, v in m.items()})
        rows += stability_rows(name, model_name, args.scale, m, len(patches))
        v = suite_metrics(versus_bicubic(model.eval(), args.scale, suite))
        print(name, {k: round(x, 3) for k, x in v.items()})
        rows += stability_rows(name, model_name, args.scale, v, len(suite), dataset="contrast-suite")
        nets[name] = {"model": model_name, "model_kwargs": kw, "weights": weights, "sha256": sha256_file(weights)}
    meta = provenance(nets=nets, patches={"set": "T91", "n": len(patches), "size": 48, "rule": "largest std"},
                      contrast_suite=[n for n, _ in suite], much_worse_db=MUCH_WORSE_DB,
                      out_of_range=OUT_OF_RANGE, command="python -m ibmdn.experiments.stability " + " ".join(
                          argv if argv is not None else __import__("sys").argv[1:]))
    write_table(pd.DataFrame(rows), args.out / f"{TABLE}.csv", meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
