"""Schemas of the figure and walkthrough tables (the paper's tables use the LONG schema of :mod:`ibmdn.results`).

Importing this module registers them, so :func:`ibmdn.results.read_table` validates these files by the schema
named in their sidecar. It imports nothing heavy: :mod:`ibmdn.plots` reads through it.

* ``visual`` (``fig4_visual.csv``): one panel of the Fig. 4 visual comparison per row, in panel order.
* ``tradeoff`` (``tradeoff.csv``): one (model, weights, scale, dataset) point of the PSNR / parameters /
  latency chart, with where each number comes from.
* ``operators`` (``ibmdn_operators.csv``): IBMDN's operators, read from the model definition.
* ``walkthrough`` (``walkthrough_*.csv``): the numbers a teaching walkthrough shows, one per row.
"""

from __future__ import annotations

from ibmdn.results import Schema, register_schema

VISUAL = register_schema(Schema(
    name="visual",
    columns=("order", "model", "label", "weights", "kind", "image", "scale", "psnr", "ssim", "crop_psnr",
             "crop_y", "crop_x", "crop_size", "array", "note"),
    keys=("order",),
    integer=("order", "scale", "crop_y", "crop_x", "crop_size"),
    floats=("psnr", "ssim", "crop_psnr"),
    required_values=("order", "model", "label", "kind", "image", "scale", "array"),
    choices={"kind": ("reference", "interpolation", "checkpoint", "trained", "untrained")},
))

TRADEOFF = register_schema(Schema(
    name="tradeoff",
    columns=("model", "label", "kind", "weights", "scale", "dataset", "params", "psnr", "latency_ms",
             "psnr_source", "latency_source"),
    keys=("kind", "model", "weights", "scale", "dataset"),
    integer=("scale", "params"),
    floats=("psnr", "latency_ms"),
    required_values=("model", "label", "kind", "scale", "dataset", "params", "psnr"),
    choices={"kind": ("checkpoint", "trained", "paper", "paper_own")},
))

OPERATORS = register_schema(Schema(
    name="operators",
    columns=("order", "model", "scale", "stage", "block", "position", "module", "op", "code", "in_channels",
             "out_channels", "params"),
    keys=("order",),
    integer=("order", "scale", "block", "in_channels", "out_channels", "params"),
    required_values=("order", "model", "scale", "stage", "module", "op", "code", "params"),
))

WALKTHROUGH = register_schema(Schema(
    name="walkthrough",
    columns=("section", "name", "metric", "value", "unit", "note"),
    keys=("section", "name", "metric"),
    floats=("value",),
    required_values=("section", "name", "metric", "value"),
))

__all__ = ["OPERATORS", "TRADEOFF", "VISUAL", "WALKTHROUGH"]
