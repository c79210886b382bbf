"""The paper's figures that carry data, rebuilt from the code: Fig. 4, the trade-off chart, IBMDN's operators.

* :func:`visual_comparison` (Fig. 4): one Set5 image at x4 through bicubic, the baselines with their
  published weights and IBMDN (the profile's trained x4 run when it exists, else untrained, and the
  figure says which), with the whole-image PSNR / SSIM (the protocol of the tables) and the PSNR of one
  zoomed crop. The crop is chosen, not hand-picked: the window where bicubic's Y error is largest, i.e.
  where the networks differ most. The SR images go to an ``.npz`` beside (never committed: derived
  from the benchmark image).
* :func:`tradeoff`: the PSNR-vs-parameters chart usual in lightweight SR, from CSVs only: the published
  checkpoints measured here (``checkpoint_eval.csv``, else Table VI's measured rows), their parameter
  counts (``param_audit.csv``, else counted), CPU latency when ``ibmdn bench`` has written one
  (``bench-cpu.csv``: the fastest execution path of each model at the chart's scale), and the paper's own
  claims (Table VI: its printed parameter counts and PSNRs, including its four networks; RFDN_IBMD, which
  is ``ibmdn``, gets our measured latency beside its claimed PSNR).
* :func:`operator_pattern`: every operator of ``build_model("ibmdn", scale)``, read from the module tree
  (``blocks[i].refine[j]``, ``blocks[i].last``, ``blocks[i].attention`` ...), so the diagram shows what
  the code builds, and the depth pattern string is derived from it, not typed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ibmdn import schemas
from ibmdn.experiments.tables import RUN_ALIASES, SHIPPED, torch_threads, trained_checkpoint
from ibmdn.results import atomic_write_bytes, provenance, read_table, reported

__all__ = ["FIG4_MODELS", "LABELS", "operator_pattern", "pattern_string", "tradeoff", "visual_comparison"]

PAPER_OWN = ("imdn_ibmd_chfab", "rfdn_ibmd_chfab", "esrt_imdn_ibmd", "esrt_rfdn_ibmd")
"""Table VI's rows for the paper's own networks (drawn apart from the literature it quotes)."""

FIG4_MODELS = ("imdn", "rfdn_aim", "bsrn", "fmen_s", "depthibn")
"""Baselines of Fig. 4 that have published x4 weights (the paper's figure shows IMDN, RFDN, BSRN, ...)."""

LABELS = {
    "hr": "HR", "bicubic": "Bicubic", "imdn": "IMDN", "rfdn": "RFDN", "rfdn_aim": "RFDN (AIM 2020)",
    "bsrn": "BSRN", "fmen": "FMEN", "fmen_s": "FMEN-S", "depthibn": "DepthIBN (authors)", "ibmdn": "IBMDN (ours)",
    "srcnn": "SRCNN", "vdsr": "VDSR", "drcn": "DRCN", "idn": "IDN", "edsr": "EDSR", "rmfdn": "RMFDN",
    "esrt": "ESRT", "esrt_64": "ESRT (64 ch)", "imdn_ibmd_chfab": "IMDN_IBMD", "rfdn_ibmd_chfab": "RFDN_IBMD (IBMDN)",
    "esrt_imdn_ibmd": "ESRT_IMDN_IBMD", "esrt_rfdn_ibmd": "ESRT_RFDN_IBMD",
}


def _save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def _find_image(dataset: str, image: str, scale: int, data_root=None):
    from ibmdn.data.datasets import BenchmarkSet

    ds = BenchmarkSet(dataset, scale, root=data_root)
    for p in ds.files:
        if p.stem.lower() == image.lower():
            return ds.load(p)
    raise KeyError(f"no image {image!r} in {ds.name} (have: {', '.join(p.stem for p in ds.files)})")


def worst_crop(hr: np.ndarray, sr: np.ndarray, size: int, border: int, stride: int = 4) -> tuple[int, int]:
    """Top-left corner of the ``size`` window (inside ``border``) with the largest squared Y error."""
    from ibmdn.metrics.quality import rgb_to_y

    err = (rgb_to_y(hr) - rgb_to_y(sr)) ** 2
    h, w = err.shape
    integral = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, corner = -1.0, (border, border)
    for y in range(border, h - border - size + 1, stride):
        for x in range(border, w - border - size + 1, stride):
            s = integral[y + size, x + size] - integral[y, x + size] - integral[y + size, x] + integral[y, x]
            if s > best:
                best, corner = s, (y, x)
    return corner


def visual_comparison(image: str = "butterfly", dataset: str = "set5", scale: int = 4,
                      models: tuple[str, ...] = FIG4_MODELS, ours: str = "ibmdn", profile: str = SHIPPED,
                      runs_dir: str | os.PathLike = "runs", arrays_path: str | os.PathLike = "runs/fig4_visual.npz",
                      crop_size: int = 0, device: str = "cpu", data_root=None, weights_root=None,
                      threads: int = 1) -> pd.DataFrame:
    """Fig. 4: panels HR, bicubic, ``models`` (official weights) and ``ours`` (schema ``visual``).

    Args:
        image / dataset / scale: the test image (file stem), its benchmark and the factor.
        models: baselines with published weights at ``scale``.
        ours / profile: our network and its weights (:func:`ibmdn.experiments.tables.trained_checkpoint`:
            ``shipped``, the package's checkpoint of ``ibmdn upscale``'s network, or the profile's run of ``ours``;
            kind ``trained``), else a seeded random initialisation (kind ``untrained``).
        arrays_path: where the panels' images (uint8 RGB) are written (``.npz``, key = ``array`` column).
        crop_size: side of the zoomed crop in HR pixels (0: a quarter of the shorter side, multiple of 4).
    """
    import torch

    from ibmdn.inference import super_resolve
    from ibmdn.metrics.quality import Protocol, psnr, ssim
    from ibmdn.models import build_model

    item = _find_image(dataset, image, scale, data_root)
    hr = item.hr
    panels: list[tuple[str, str, str, np.ndarray, str]] = [("hr", "reference", "", hr, "")]
    with torch_threads(threads):
        panels.append(("bicubic", "interpolation", "none",
                       super_resolve(build_model("bicubic", scale), item.lr, scale, device), ""))
        for name in models:
            net = build_model(name, scale, weights="official", weights_root=weights_root)
            panels.append((name, "checkpoint", "official", super_resolve(net, item.lr, scale, device), ""))
        ours, final, weights, note = trained_checkpoint(ours, scale, profile, runs_dir)
        if final is not None:
            net, kind = build_model(ours, scale, weights=str(final)), "trained"
        else:
            torch.manual_seed(0)
            net, kind, note = build_model(ours, scale), "untrained", f"{note}: random weights, seed 0"
        panels.append((ours, kind, weights, super_resolve(net, item.lr, scale, device), note))
    size = crop_size or max(16, (min(hr.shape[:2]) // 4) // 4 * 4)
    cy, cx = worst_crop(hr, panels[1][3], size, scale)
    whole = Protocol()
    crop_protocol = Protocol(crop_border=0)
    rows, arrays = [], {}
    for order, (name, kind, weights, img, note) in enumerate(panels):
        crop = (slice(cy, cy + size), slice(cx, cx + size))
        scored = name != "hr"
        rows.append({
            "order": order, "model": name, "label": LABELS.get(name, name), "weights": weights, "kind": kind,
            "image": item.name, "scale": scale,
            "psnr": round(psnr(img, hr, scale, whole, item.gray), 4) if scored else math.nan,
            "ssim": round(ssim(img, hr, scale, whole, item.gray), 4) if scored else math.nan,
            "crop_psnr": round(psnr(img[crop], hr[crop], scale, crop_protocol, item.gray), 4) if scored else math.nan,
            "crop_y": cy, "crop_x": cx, "crop_size": size, "array": name, "note": note,
        })
        arrays[name] = img
    _save_npz(arrays_path, arrays)
    df = pd.DataFrame(rows, columns=list(schemas.VISUAL.columns))
    df.attrs["provenance"] = provenance(
        command="ibmdn.experiments.figures.visual_comparison", arrays=str(arrays_path),
        parameters={"image": image, "dataset": dataset, "scale": scale, "models": list(models), "ours": ours,
                    "profile": profile, "crop_size": size, "device": str(device), "threads": threads},
        crop_rule="window of the largest squared Y error of bicubic (stride 4, inside the scoring border)")
    return df


# ------------------------------------------------------------------------------------------ trade-off


def _audit_params(audit_csv: str | os.PathLike | None) -> dict[tuple[str, int], int]:
    if not audit_csv or not Path(audit_csv).is_file():
        return {}
    a = read_table(audit_csv)
    return {(r.model, int(r.scale)): int(r.params) for r in a.itertuples(index=False) if not pd.isna(r.params)}


def _latencies(bench_csv: str | os.PathLike | None, scale: int) -> dict[str, tuple[float, str]]:
    """model -> (lowest median latency over execution paths at ``scale``, 'file: path, input')."""
    if not bench_csv or not Path(bench_csv).is_file():
        return {}
    b = read_table(bench_csv)
    b = b[(b["metric"] == "latency") & (b["scale"] == scale)]
    out: dict[str, tuple[float, str]] = {}
    for model, g in b.groupby("model", sort=True):
        best = g.sort_values(["value", "weights"], kind="mergesort").iloc[0]
        out[model] = (float(best["value"]), f"{Path(bench_csv).name}: {best['weights']}, {best['dataset']}")
    return out


def tradeoff(scale: int = 4, dataset: str = "set5", checkpoint_csv: str | os.PathLike | None = None,
             table6_csv: str | os.PathLike | None = None, audit_csv: str | os.PathLike | None = None,
             bench_csv: str | os.PathLike | None = None) -> pd.DataFrame:
    """Points of the PSNR / parameters / latency chart at ``scale`` on ``dataset`` (schema ``tradeoff``).

    Measured points: official checkpoints, from ``checkpoint_csv`` when it exists, else from the official
    rows of ``table6_csv``. Paper points: every Table VI row with a PSNR and a parameter count there.
    """
    from ibmdn.models import build_model, count_params

    params = _audit_params(audit_csv)
    lat = _latencies(bench_csv, scale)
    rows: list[dict[str, Any]] = []
    source = next((p for p in (checkpoint_csv, table6_csv) if p and Path(p).is_file()), None)
    if source is not None:
        m = read_table(source)
        m = m[(m["weights"] == "official") & (m["scale"] == scale) & (m["dataset"] == dataset) &
              (m["metric"] == "psnr")]
        for r in m.itertuples(index=False):
            n = params.get((r.model, scale)) or count_params(build_model(r.model, scale))
            latency, lsrc = lat.get(r.model, (math.nan, ""))
            rows.append({"model": r.model, "label": LABELS.get(r.model, r.model), "kind": "checkpoint",
                         "weights": "official", "scale": scale, "dataset": dataset, "params": n, "psnr": r.value,
                         "latency_ms": latency, "psnr_source": Path(source).name, "latency_source": lsrc})
    paper = reported("table6")
    paper = paper[paper["scale"] == scale]
    pp = {r.model: r.value for r in paper[paper["metric"] == "params"].itertuples(index=False)}
    for r in paper[(paper["metric"] == "psnr") & (paper["dataset"] == dataset)].itertuples(index=False):
        if r.model in pp:
            # the paper's own network that this project builds and benchmarks: its latency beside its claim
            latency, lsrc = lat.get(RUN_ALIASES.get(r.model, ""), (math.nan, ""))
            rows.append({"model": r.model, "label": LABELS.get(r.model, r.model),
                         "kind": "paper_own" if r.model in PAPER_OWN else "paper",
                         "weights": "paper", "scale": scale, "dataset": dataset, "params": int(pp[r.model]),
                         "psnr": r.value, "latency_ms": latency, "psnr_source": "paper Table VI",
                         "latency_source": lsrc})
    df = pd.DataFrame(rows, columns=list(schemas.TRADEOFF.columns))
    df.attrs["provenance"] = provenance(
        command="ibmdn.experiments.figures.tradeoff",
        parameters={"scale": scale, "dataset": dataset, "checkpoint_csv": str(checkpoint_csv),
                    "table6_csv": str(table6_csv), "audit_csv": str(audit_csv), "bench_csv": str(bench_csv)},
        psnr_source=None if source is None else str(source),
        latency="lowest median over the execution paths of ibmdn bench" if lat else "not measured (no bench CSV)")
    return df


# ------------------------------------------------------------------------------------ operator pattern


_CODES = {"BSConvS": "Bs", "BSConvU": "Bs", "Involution2d": "I", "Conv2d": "C"}


def _op_row(order: int, model: str, scale: int, stage: str, block: int | None, position: str, name: str,
            module) -> dict[str, Any]:
    from ibmdn.models import count_params

    cls = type(module).__name__
    cin = getattr(module, "in_channels", None) or getattr(module, "channels", None)
    cout = getattr(module, "out_channels", None) or getattr(module, "channels", None)
    for attr in ("pw", "pw1", "conv1"):  # composite operators: channels from their first / last conv
        if cin is None and hasattr(module, attr):
            cin = getattr(module, attr).in_channels
    if cout is None and hasattr(module, "dw"):
        cout = module.dw.out_channels
    code = _CODES.get(cls, cls)
    if cls == "Conv2d":
        code = f"C{module.kernel_size[0]}x{module.kernel_size[1]}"
    return {"order": order, "model": model, "scale": scale, "stage": stage, "block": block, "position": position,
            "module": name, "op": cls, "code": code, "in_channels": cin, "out_channels": cout,
            "params": count_params(module)}


def operator_pattern(model: str = "ibmdn", scale: int = 4) -> pd.DataFrame:
    """Every operator of ``build_model(model, scale)`` in forward order (schema ``operators``).

    Walks ``conv_first``, each block's ``distill[j]`` / ``refine[j]`` / ``last`` / ``fuse`` /
    ``attention`` (RFDB form), then ``fuse``, ``conv_after_body`` and ``upsample``.
    """
    from torch import nn

    from ibmdn.models import build_model

    net = build_model(model, scale)
    rows: list[dict[str, Any]] = []

    def add(stage, block, position, name, module):
        rows.append(_op_row(len(rows), model, scale, stage, block, position, name, module))

    add("head", None, "conv_first", "conv_first", net.conv_first)
    for i, blk in enumerate(net.blocks):
        for j, (d, r) in enumerate(zip(blk.distill, blk.refine)):
            add("block", i + 1, f"distill{j + 1}", f"blocks.{i}.distill.{j}", d)
            add("block", i + 1, f"refine{j + 1}", f"blocks.{i}.refine.{j}", r)
        add("block", i + 1, "last", f"blocks.{i}.last", blk.last)
        add("block", i + 1, "fuse", f"blocks.{i}.fuse", blk.fuse)
        add("block", i + 1, "attention", f"blocks.{i}.attention", blk.attention)
    add("tail", None, "fuse", "fuse.0", net.fuse[0])
    add("tail", None, "conv_after_body", "conv_after_body", net.conv_after_body)
    ups = [m for m in net.upsample if isinstance(m, nn.Conv2d)]
    add("tail", None, "upsample", "upsample.0", ups[0])
    df = pd.DataFrame(rows, columns=list(schemas.OPERATORS.columns))
    df["block"] = df["block"].astype("Int64")
    df.attrs["provenance"] = provenance(command="ibmdn.experiments.figures.operator_pattern",
                                        parameters={"model": model, "scale": scale},
                                        pattern=pattern_string(df))
    return df


def pattern_string(ops: pd.DataFrame) -> str:
    """The depth pattern of the refinement operators, e.g. ``BsBsBs-BsBsBs-BsIBs-BsIBs-IBsI-III``."""
    ref = ops[ops["position"].str.startswith("refine")]
    return "-".join("".join(g.sort_values("position")["code"]) for _, g in ref.groupby("block", sort=True))
