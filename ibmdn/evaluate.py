"""Benchmark evaluation: ``evaluate`` (one set, per-image metrics), ``summarize`` and ``ibmdn eval``.

The protocol is docs/protocol.md (:mod:`ibmdn.metrics.quality`): HR modcropped, LR by MATLAB bicubic
(:mod:`ibmdn.data.imresize`, cached), model input float [0, 1] ``NCHW``, output clamped and rounded to
``uint8`` (:func:`~ibmdn.metrics.quality.tensor_to_uint8`) before any metric, PSNR/SSIM on float Y with
``scale`` pixels cropped from each border. LPIPS (optional) is computed on the whole RGB images.

Images are streamed one at a time. Options:

* ``tile > 0``: the LR image is cut into ``tile x tile`` cores; each is run with ``overlap`` LR pixels of
  real context on every side (clipped at the image border) and only its core is kept, so every output
  pixel comes from exactly one tile and, for networks whose receptive field fits in the overlap, equals
  the whole-image result. Layers with image-global statistics (IMDN/RFDN's contrast channel attention)
  see only their tile: tiled numbers then differ slightly; use tiling only when memory is short.
* ``self_ensemble``: the x8 geometric ensemble of EDSR (identity, flips, transposes), outputs mapped
  back and averaged in float before quantisation.
* ``precision="bf16"`` (``ibmdn eval --precision bf16``; also ``fp16``): weights and activations in that
  type, outputs cast back to float32 before quantisation (:func:`~ibmdn.inference.super_resolve`); the
  network's own precision is all that changes, so the PSNR difference to the float32 run is its cost.
* ``skip_bad``: an unusable image file (:class:`~ibmdn.errors.BadImageError`) is reported and skipped
  (a row with the reason in ``error`` and no metrics); without it the first one stops the run with an
  error naming the file.

``ibmdn eval`` writes, under ``--out``, ``<model>_x<scale>_<weights>.csv`` (the summary: one mean per
row in the project's LONG schema, ``table=eval``) and ``..._per_image.csv`` (the same plus an ``image``
column), both rounded to 4 decimals, each with a ``.meta.json`` provenance sidecar (git sha, versions,
device, argv, date, protocol, parameters) written by :func:`ibmdn.results.write_table`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ibmdn.data.datasets import BenchmarkSet, resolve_set
from ibmdn.data.imresize import IMRESIZE_VERSION
from ibmdn.errors import BadImageError, IbmdnError
from ibmdn.inference import (  # noqa: F401 - the inference path, re-exported for evaluate's callers
    DEFAULT_OVERLAP,
    PRECISIONS,
    forward_ensemble,
    forward_tiled,
    resolve_device,
    super_resolve,
)
from ibmdn.metrics.quality import DEFAULT_PROTOCOL, Protocol
from ibmdn.metrics.registry import IMAGE_METRICS, METRICS

METRIC_UNITS = {name: METRICS[name].unit for name in (*IMAGE_METRICS, "lpips")}


def evaluate(
    model: nn.Module,
    dataset_name: str,
    scale: int,
    protocol: Protocol = DEFAULT_PROTOCOL,
    device="cpu",
    tile: int = 0,
    self_ensemble: bool = False,
    lpips: bool = False,
    skip_bad: bool = False,
    data_root=None,
    cache_dir=None,
    progress: bool = False,
    overlap: int = DEFAULT_OVERLAP,
    weights_root=None,
    precision: str = "fp32",
) -> pd.DataFrame:
    """Per-image metrics of ``model`` on one benchmark set (``precision``: a key of
    :data:`~ibmdn.inference.PRECISIONS`, the network's; ``model`` itself is left in its dtype).

    Returns:
        one row per image file: ``dataset`` (lowercase), ``image``, ``scale``, ``height``, ``width`` (HR,
        after modcrop), ``psnr``, ``ssim``, [``lpips``], ``error`` (empty, or why the file was skipped).
        ``df.attrs`` holds the protocol (``asdict``) and the set's folder name.

    Raises:
        BadImageError: an unusable file, unless ``skip_bad``.
    """
    from tqdm.auto import tqdm

    device = resolve_device(device)
    border = protocol.border(scale)
    need = 2 * border + protocol.ssim_window  # smallest HR side that leaves one full SSIM window
    ds = BenchmarkSet(dataset_name, scale, root=data_root, cache_dir=cache_dir, min_size=need)
    if precision not in PRECISIONS:
        raise IbmdnError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    model = model.to(device).eval()
    if PRECISIONS[precision] != torch.float32:
        import copy

        model = copy.deepcopy(model).to(PRECISIONS[precision])
    if lpips:
        from ibmdn.metrics.lpips import lpips_distance

    rows = []
    for path in tqdm(ds.files, desc=f"{ds.name} x{scale}", unit="img", disable=not progress, leave=False):
        try:
            item = ds.load(path)
            if min(item.hr.shape[:2]) < need:
                raise BadImageError(f"{path}: image too small after modcrop ({item.hr.shape[1]}x"
                                    f"{item.hr.shape[0]}); scoring needs at least {need} px per side")
        except BadImageError as e:
            if not skip_bad:
                raise
            print(f"ibmdn: skipped {e}", file=sys.stderr)
            rows.append({"dataset": ds.name.lower(), "image": Path(path).stem, "scale": scale,
                         "height": 0, "width": 0, "psnr": np.nan, "ssim": np.nan, "error": str(e)})
            continue
        sr = super_resolve(model, item.lr, scale, device, tile, self_ensemble, overlap)
        if sr.shape != item.hr.shape:
            raise IbmdnError(f"{path}: model output {sr.shape} differs from the HR shape {item.hr.shape}")
        row = {"dataset": ds.name.lower(), "image": item.name, "scale": scale, "height": item.hr.shape[0],
               "width": item.hr.shape[1],
               **{m: METRICS[m].image(sr, item.hr, scale, protocol, item.gray) for m in IMAGE_METRICS}, "error": ""}
        if lpips:
            row["lpips"] = lpips_distance(sr, item.hr, device=str(device), weights_root_dir=weights_root)
        rows.append(row)
    cols = ["dataset", "image", "scale", "height", "width", "psnr", "ssim"]
    cols += (["lpips"] if lpips else []) + ["error"]
    df = pd.DataFrame(rows, columns=cols)
    df.attrs.update(protocol=asdict(protocol), dataset_folder=ds.name, lr_resize=IMRESIZE_VERSION)
    return df


def summarize(per_image: pd.DataFrame) -> pd.DataFrame:
    """Means per (dataset, scale, metric) over the images without ``error``.

    Returns:
        columns ``dataset, scale, metric, value, unit, n_images`` sorted by them.
    """
    ok = per_image[per_image["error"].fillna("") == ""] if "error" in per_image else per_image
    rows = []
    for (dataset, scale), g in ok.groupby(["dataset", "scale"], sort=True):
        for metric in METRIC_UNITS:
            if metric in g and g[metric].notna().any():
                vals = g[metric].dropna()
                rows.append({"dataset": dataset, "scale": int(scale), "metric": metric,
                             "value": float(vals.mean()), "unit": METRIC_UNITS[metric],
                             "n_images": len(vals)})
    return pd.DataFrame(rows, columns=["dataset", "scale", "metric", "value", "unit", "n_images"])


# -------------------------------------------------------------------------------------- command line


def weights_tag(weights: str | None) -> str:
    """The ``weights`` column of a result: ``none``, ``official``, or a checkpoint file's stem."""
    if not weights:
        return "none"
    if weights == "official":
        return "official"
    tag = re.sub(r"[^a-z0-9_.+-]+", "-", Path(weights).stem.lower()).strip("-.")
    return tag or "checkpoint"


def long_tables(per_image: pd.DataFrame, model: str, weights: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, per-image) in the LONG layout (``table=eval``, ``source=measured``)."""
    summary = summarize(per_image)
    summary.insert(0, "table", "eval")
    summary.insert(1, "model", model)
    summary.insert(2, "weights", weights)
    summary["source"] = "measured"
    summary = summary[["table", "model", "weights", "scale", "dataset", "metric", "value", "unit", "n_images",
                       "source"]]
    ok = per_image[per_image["error"] == ""]
    metrics = [m for m in METRIC_UNITS if m in ok]
    per = ok.melt(id_vars=["dataset", "image", "scale"], value_vars=metrics, var_name="metric",
                  value_name="value")
    per["unit"] = per["metric"].map(METRIC_UNITS)
    per.insert(0, "table", "eval")
    per.insert(1, "model", model)
    per.insert(2, "weights", weights)
    per["source"] = "measured"
    per = per[["table", "model", "weights", "scale", "dataset", "image", "metric", "value", "unit", "source"]]
    return summary.reset_index(drop=True), per.reset_index(drop=True)


def eval_command(args) -> int:
    """``ibmdn eval --model M --scale S [--weights W] [--datasets a,b] [--out DIR] ...``."""
    from ibmdn.models import build_model
    from ibmdn.results import provenance, write_table

    device = resolve_device(args.device)
    protocol = Protocol(round_y=bool(args.round_y), gray_as_y=bool(getattr(args, "gray_as_y", False)))
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    if not names:
        raise IbmdnError("--datasets is empty")
    for name in names:  # fail before any work if a set is missing
        resolve_set(name, "benchmark", args.data_root)
    try:
        model = build_model(args.model, scale=args.scale, weights=args.weights,
                            weights_root=args.weights_root)
    except (KeyError, ValueError) as e:
        raise IbmdnError(str(e).strip("'\"")) from None
    tag = weights_tag(args.weights) + ("" if args.precision == "fp32" else f"-{args.precision}")
    frames = []
    for name in names:
        df = evaluate(model, name, args.scale, protocol, device, tile=args.tile,
                      self_ensemble=args.self_ensemble, lpips=args.lpips, skip_bad=args.skip_bad,
                      data_root=args.data_root, weights_root=args.weights_root, progress=True,
                      precision=args.precision)
        if not (df["error"] == "").any():
            raise IbmdnError(f"no usable image in {df.attrs['dataset_folder']} "
                             f"({len(df)} file(s), all skipped)" if len(df) else
                             f"no image files in the {name} set")
        frames.append(df)
    per_image = pd.concat(frames, ignore_index=True)
    summary, per = long_tables(per_image, args.model, tag)
    skipped = per_image.loc[per_image["error"] != "", ["dataset", "image", "error"]].to_dict("records")
    meta = provenance(
        protocol=asdict(protocol),
        lr_resize=IMRESIZE_VERSION,
        parameters={"model": args.model, "scale": args.scale, "weights": args.weights, "datasets": names,
                    "tile": args.tile, "self_ensemble": args.self_ensemble, "lpips": args.lpips,
                    "device": str(device), "precision": args.precision},
        skipped=skipped,
    )
    out = Path(args.out)
    stem = f"{args.model}_x{args.scale}_{tag}"
    try:
        write_table(summary, out / f"{stem}.csv", meta, decimals=4)
        write_table(per, out / f"{stem}_per_image.csv", meta, schema="eval_per_image", decimals=4)
    except OSError as e:
        raise IbmdnError(f"cannot write results to {out}: {e}") from None
    table = summary.pivot_table(index="dataset", columns="metric", values="value", sort=False)
    table["n_images"] = summary.groupby("dataset", sort=False)["n_images"].max()
    print(f"{args.model} x{args.scale} (weights: {tag}, device: {device})")
    print(table.round(4).to_string())
    if skipped:
        print(f"skipped {len(skipped)} unusable image(s):", file=sys.stderr)
        for s in skipped:
            print(f"  {s['error']}", file=sys.stderr)
    print(f"wrote {out / (stem + '.csv')} and {out / (stem + '_per_image.csv')}")
    return 0
