"""Teaching walkthroughs: the paper's building blocks opened up on a real image (Set5) with real weights.

Each function returns a tidy table (schema ``walkthrough``: ``section, name, metric, value, unit, note``)
and writes the arrays its figure shows to an ``.npz`` (feature maps, kernels: derived from a benchmark
image, kept out of the repository). Nothing here trains; weights are the published checkpoints, or
IBMDN's trained run of the profile when it exists.

* :func:`involution`: the per-pixel kernels an involution generates (``Involution2d.kernel``) inside the
  authors' DepthIBN with its published weights, at three probe pixels chosen by the image's own gradient
  (strongest edge, flattest area, median texture); how much they vary over the image (a convolution's
  kernel does not vary at all); and the cost of involution against a 3x3 convolution and BSConv.
* :func:`bsconv`: parameters and multiply-adds of a 3x3 convolution, a depthwise-separable one, BSConv-U
  and BSConv-S at the same width; the depthwise (blueprint) filters BSRN learned; and the premise of
  BSConv measured on IMDN's learned 3x3 convolutions: how much of each filter's energy one blueprint
  (its rank-1 approximation over depth x space) holds.
* :func:`distillation`: the feature maps of one RFDB of the published RFDN (AIM 2020) weights, stage by
  stage: the three 1x1 distillations that keep half the channels each, the refinements, the last 3x3,
  the fusion of the four distilled parts and the attention (ESA).
* :func:`chfab`: what CHFAB attends to: its attention map (``CHFAB.attention_map``) in each of IBMDN's six
  blocks on a real image, and how it correlates with the image's gradient magnitude. CHFAB is this
  project's reconstruction (no code exists); untrained weights unless the profile's run exists, and
  the table says which.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ibmdn import schemas
from ibmdn.experiments.figures import _find_image, _save_npz
from ibmdn.experiments.tables import SHIPPED, torch_threads, trained_checkpoint
from ibmdn.results import provenance

__all__ = ["bsconv", "chfab", "distillation", "involution"]


DIGITS = 4
"""Non-integer values keep this many significant digits: the last digits of float sums differ between CPUs."""


def _row(section: str, name: str, metric: str, value: float, unit: str = "", note: str = "") -> dict[str, Any]:
    v = float(value)
    v = v if v.is_integer() else float(f"{v:.{DIGITS}g}")
    return {"section": section, "name": name, "metric": metric, "value": v, "unit": unit, "note": note}


def _frame(rows: list[dict[str, Any]], **prov: Any) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(schemas.WALKTHROUGH.columns))
    df.attrs["provenance"] = provenance(**prov)
    return df


def _lr_tensor(item):
    from ibmdn.metrics.quality import uint8_to_tensor

    return uint8_to_tensor(item.lr)


def _capture_input(net, module, x):
    """Run ``net(x)`` and return the first input ``module`` received."""
    import torch

    seen: list[torch.Tensor] = []
    handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()) if not seen else None)
    try:
        with torch.inference_mode():
            net(x)
    finally:
        handle.remove()
    return seen[0]


def _cost_rows(section: str, modules: dict[str, Any], channels: int, size: int = 64) -> list[dict[str, Any]]:
    """Parameters and multiply-adds per pixel of each operator at ``channels`` (on a size x size map)."""
    from ibmdn.metrics.complexity import count_macs, count_params

    rows = []
    for name, mod in modules.items():
        rows.append(_row(section, name, "params", count_params(mod), "count", f"{channels} -> {channels} channels"))
        macs = count_macs(mod, (1, channels, size, size), meta=False)
        rows.append(_row(section, name, "macs_per_pixel", macs / (size * size), "MAC",
                         "multiply-adds per output pixel, all channels (involution: generation + application)"))
    return rows


def _gradient(y: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(y)
    return np.hypot(gx, gy)


def _probes(y: np.ndarray, margin: int = 4) -> dict[str, tuple[int, int]]:
    """Strongest-edge, flattest and median-gradient pixels of a luma image (away from the border)."""
    g = _gradient(y)[margin:-margin, margin:-margin]
    flat = np.argsort(g, axis=None, kind="stable")
    picks = {"edge": flat[-1], "flat": flat[0], "texture": flat[len(flat) // 2]}
    w = g.shape[1]
    return {k: (int(v // w) + margin, int(v % w) + margin) for k, v in picks.items()}


# --------------------------------------------------------------------------------------------- involution


def involution(image: str = "butterfly", dataset: str = "set5", model: str = "depthibn", scale: int = 4,
               module: str = "blocks.2.refine.1", arrays_path: str | os.PathLike = "runs/walkthrough_involution.npz",
               data_root=None, weights_root=None, threads: int = 1) -> pd.DataFrame:
    """Involution on a real image: generated kernels, their spatial variation, their cost.

    Args:
        model / scale / module: a network with published weights and the dotted name of one of its
            :class:`~ibmdn.ops.Involution2d` (DepthIBN's block 3, refinement 2: pattern ``BsIBs``).
    """
    import torch
    from torch import nn

    from ibmdn.metrics.quality import rgb_to_y
    from ibmdn.models import build_model
    from ibmdn.ops import BSConvS, BSConvU, Involution2d

    item = _find_image(dataset, image, scale, data_root)
    net = build_model(model, scale, weights="official", weights_root=weights_root).eval()
    inv = net.get_submodule(module)
    if not isinstance(inv, Involution2d):
        raise TypeError(f"{model}.{module} is a {type(inv).__name__}, not an Involution2d")
    with torch_threads(threads), torch.inference_mode():
        x = _capture_input(net, inv, _lr_tensor(item))
        kernels = inv.kernel(x)[0].numpy()  # (G, K*K, H, W)
    g, kk, h, w = kernels.shape
    k = inv.kernel_size
    y = rgb_to_y(item.lr)
    probes = _probes(y)
    rows: list[dict[str, Any]] = []
    sec = "kernels"
    rows.append(_row(sec, module, "groups", g, "count", f"one kernel per pixel per group of {inv.group_channels} "
                                                            "channels"))
    rows.append(_row(sec, module, "kernel_size", k, "px"))
    rows.append(_row(sec, module, "kernels_generated", g * h * w, "count", f"on the {w}x{h} LR image"))
    flat = kernels.reshape(g, kk, h * w)
    spatial_std = flat.std(axis=2).mean()
    mean_abs = np.abs(flat.mean(axis=2)).mean()
    rows.append(_row(sec, module, "tap_std_over_pixels", spatial_std, "1",
                     "mean over groups and taps of the std of a tap's weight across pixels (a convolution: 0)"))
    rows.append(_row(sec, module, "tap_abs_mean_over_pixels", mean_abs, "1",
                     "mean over groups and taps of |mean weight of a tap across pixels|"))
    vecs = {}
    for name, (py, px) in probes.items():
        v = kernels[:, :, py, px]
        vecs[name] = v
        rows.append(_row("probes", name, "y", py, "px", "LR row"))
        rows.append(_row("probes", name, "x", px, "px", "LR column"))
        rows.append(_row("probes", name, "gradient", _gradient(y)[py, px], "1", "luma gradient magnitude"))
        rows.append(_row("probes", name, "kernel_sum_group1", v[0].sum(), "1", "sum of the 3x3 taps, group 1"))
    names = list(vecs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            va, vb = vecs[a].ravel(), vecs[b].ravel()
            cos = float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))
            rows.append(_row("probes", f"{a}-{b}", "cosine", cos, "1", "similarity of the kernels (all groups)"))
    c = inv.channels
    rows += _cost_rows("cost", {
        "conv3x3": nn.Conv2d(c, c, 3, padding=1),
        "bsconv_u": BSConvU(c, c, 3),
        "bsconv_s": BSConvS(c, c, 3),
        "involution": Involution2d(c, c, 3, group_channels=inv.group_channels),
    }, c)
    _save_npz(arrays_path, {"lr": item.lr, "kernels": kernels.astype(np.float32),
                            "probes": np.array([probes[n] for n in names], dtype=np.int64),
                            "probe_names": np.array(names)})
    return _frame(rows, command="ibmdn.experiments.walkthrough.involution", arrays=str(arrays_path),
                  parameters={"image": image, "dataset": dataset, "model": model, "scale": scale, "module": module,
                              "threads": threads}, weights="official")


# ----------------------------------------------------------------------------------------------- BSConv


def bsconv(channels: int = 64, bsrn_module: str = "blocks.0.refine.0", imdn_module: str = "blocks.0.convs.0",
           scale: int = 4, arrays_path: str | os.PathLike = "runs/walkthrough_bsconv.npz",
           weights_root=None) -> pd.DataFrame:
    """BSConv against convolution: cost at ``channels``, BSRN's learned blueprints, IMDN's filters' rank-1 energy."""
    import torch
    from torch import nn

    from ibmdn.models import build_model
    from ibmdn.ops import BSConvS, BSConvU

    c = channels
    dsc = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, c, 1))
    rows = _cost_rows("cost", {"conv3x3": nn.Conv2d(c, c, 3, padding=1), "depthwise_separable": dsc,
                               "bsconv_u": BSConvU(c, c, 3), "bsconv_s": BSConvS(c, c, 3)}, c)
    bsrn = build_model("bsrn", scale, weights="official", weights_root=weights_root)
    op = bsrn.get_submodule(bsrn_module)
    blueprints = op.dw.weight.detach()[:, 0].numpy()  # (C, 3, 3)
    mixing = op.pw.weight.detach()[:, :, 0, 0].numpy()  # (C_out, C_in)
    centre = np.abs(blueprints[:, 1, 1]) / np.abs(blueprints).sum(axis=(1, 2))
    rows.append(_row("bsrn", bsrn_module, "blueprints", blueprints.shape[0], "count", "depthwise 3x3 filters"))
    rows.append(_row("bsrn", bsrn_module, "centre_share_median", np.median(centre), "1",
                     "|centre tap| / sum |taps|, median over the blueprints (0.11 for a flat filter)"))
    imdn = build_model("imdn", scale, weights="official", weights_root=weights_root)
    w = imdn.get_submodule(imdn_module).weight.detach().double()  # (C_out, C_in, 3, 3)
    s = torch.linalg.svdvals(w.flatten(2))  # per output filter: (C_in x 9) matrix
    energy = (s[:, 0] ** 2 / (s ** 2).sum(dim=1)).numpy()
    rows.append(_row("imdn", imdn_module, "rank1_energy_median", np.median(energy), "1",
                     "share of a filter's energy in its best (depth weights x one 3x3 blueprint) approximation"))
    rows.append(_row("imdn", imdn_module, "rank1_energy_min", energy.min(), "1"))
    rows.append(_row("imdn", imdn_module, "rank1_energy_max", energy.max(), "1"))
    noise = torch.randn(w.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s0 = torch.linalg.svdvals(noise.flatten(2))
    rows.append(_row("imdn", imdn_module, "rank1_energy_random_median",
                     np.median((s0[:, 0] ** 2 / (s0 ** 2).sum(dim=1)).numpy()), "1",
                     "the same for Gaussian random filters of the same shape (seed 0): no structure"))
    _save_npz(arrays_path, {"blueprints": blueprints.astype(np.float32), "mixing": mixing.astype(np.float32),
                            "rank1_energy": energy.astype(np.float64)})
    return _frame(rows, command="ibmdn.experiments.walkthrough.bsconv", arrays=str(arrays_path),
                  parameters={"channels": channels, "bsrn_module": bsrn_module, "imdn_module": imdn_module,
                              "scale": scale}, weights="official")


# ------------------------------------------------------------------------------------------ distillation


def distillation(image: str = "butterfly", dataset: str = "set5", model: str = "rfdn_aim", scale: int = 4,
                 block: int = 0, arrays_path: str | os.PathLike = "runs/walkthrough_distillation.npz",
                 data_root=None, weights_root=None, threads: int = 1) -> pd.DataFrame:
    """The feature maps of one RFDB-style block, stage by stage (published weights)."""
    import torch

    from ibmdn.models import build_model

    item = _find_image(dataset, image, scale, data_root)
    net = build_model(model, scale, weights="official", weights_root=weights_root).eval()
    body = getattr(net, "net", net)  # checkpoints trained on 0-255 are wrapped (ValueRange)
    blk = body.blocks[block]
    stages: list[tuple[str, Any]] = []
    for j in range(len(blk.distill)):
        stages += [(f"distill{j + 1}", blk.distill[j]), (f"refine{j + 1}", blk.refine[j])]
    stages += [("last", blk.last), ("fuse", blk.fuse), ("attention", blk.attention)]
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, a, out, n=n: seen.setdefault(n, out.detach())) for n, m in stages]
    hooks.append(blk.register_forward_pre_hook(lambda mod, a: seen.setdefault("input", a[0].detach())))
    try:
        with torch_threads(threads), torch.inference_mode():
            net(_lr_tensor(item))
    finally:
        for h in hooks:
            h.remove()
    order = ["input"] + [n for n, _ in stages]
    rows, maps = [], {}
    for i, name in enumerate(order):
        t = seen[name][0]
        rows.append(_row("stages", name, "order", i))
        rows.append(_row("stages", name, "channels", t.shape[0], "count"))
        rows.append(_row("stages", name, "mean_abs", t.abs().mean().item(), "1",
                         "mean |activation|" + (" (this checkpoint works on 0-255 pixels)" if body is not net else "")))
        maps[name] = t.abs().mean(dim=0).numpy().astype(np.float32)
    rows.append(_row("block", f"blocks.{block}", "distilled_per_step", blk.distill[0].out_channels, "count",
                     f"of {blk.distill[0].in_channels} channels"))
    _save_npz(arrays_path, {"lr": item.lr, "order": np.array(order), **{f"map_{k}": v for k, v in maps.items()}})
    return _frame(rows, command="ibmdn.experiments.walkthrough.distillation", arrays=str(arrays_path),
                  parameters={"image": image, "dataset": dataset, "model": model, "scale": scale, "block": block,
                              "threads": threads}, weights="official")


# ------------------------------------------------------------------------------------------------ CHFAB


def chfab(image: str = "butterfly", dataset: str = "set5", model: str = "ibmdn", scale: int = 4,
          profile: str = SHIPPED, runs_dir: str | os.PathLike = "runs",
          arrays_path: str | os.PathLike = "runs/walkthrough_chfab.npz", data_root=None,
          threads: int = 1) -> pd.DataFrame:
    """CHFAB's attention map in every block of IBMDN on a real image, and its correlation with edges."""
    import torch

    from ibmdn.attention.chfab import CHFAB
    from ibmdn.metrics.quality import rgb_to_y
    from ibmdn.models import build_model

    item = _find_image(dataset, image, scale, data_root)
    model, final, _, note = trained_checkpoint(model, scale, profile, runs_dir)
    if final is not None:
        net, status = build_model(model, scale, weights=str(final)), f"trained: {note}"
    else:
        torch.manual_seed(0)
        net, status = build_model(model, scale), f"untrained (random weights, seed 0): {note}"
    net.eval()
    attn = [(i, b.attention) for i, b in enumerate(net.blocks) if isinstance(b.attention, CHFAB)]
    inputs: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, a, i=i: inputs.setdefault(i, a[0].detach())) for i, m in attn]
    try:
        with torch_threads(threads), torch.inference_mode():
            net(_lr_tensor(item))
            maps = {i: m.attention_map(inputs[i])[0].mean(dim=0).numpy() for i, m in attn}
    finally:
        for h in hooks:
            h.remove()
    grad = _gradient(rgb_to_y(item.lr))
    rows = [_row("weights", model, "trained", float(final.is_file()), "1", status)]
    for i, a in maps.items():
        name = f"block{i + 1}"
        rows += [_row("blocks", name, "mean", a.mean(), "1", "channel-mean attention, averaged over pixels"),
                 _row("blocks", name, "std", a.std(), "1", "its spread over pixels"),
                 _row("blocks", name, "min", a.min(), "1"), _row("blocks", name, "max", a.max(), "1"),
                 _row("blocks", name, "corr_gradient", np.corrcoef(a.ravel(), grad.ravel())[0, 1], "1",
                      "Pearson correlation with the LR luma gradient magnitude")]
    _save_npz(arrays_path, {"lr": item.lr, "gradient": grad.astype(np.float32),
                            **{f"block{i + 1}": a.astype(np.float32) for i, a in maps.items()}})
    return _frame(rows, command="ibmdn.experiments.walkthrough.chfab", arrays=str(arrays_path), weights=status,
                  parameters={"image": image, "dataset": dataset, "model": model, "scale": scale,
                              "profile": profile, "threads": threads})
