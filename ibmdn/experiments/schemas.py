"""Schemas of the study, figure and walkthrough tables (the other tables use the LONG schema of :mod:`ibmdn.results`).

Importing this module registers them, so :func:`ibmdn.results.read_table` validates these files by the schema
named in their sidecar. It imports nothing heavy: :mod:`ibmdn.plots` reads through it.

* ``visual`` (``fig4_visual.csv``): one panel of the Fig. 4 visual comparison per row, in panel order.
* ``tradeoff`` (``tradeoff.csv``): one (model, weights, scale, dataset) point of the PSNR / parameters /
  latency chart, with where each number comes from.
* ``operators`` (``ibmdn_operators.csv``): IBMDN's operators, read from the model definition.
* ``walkthrough`` (``walkthrough_*.csv``): the numbers a teaching walkthrough shows, one per row.
* ``study_runs``, ``study``, ``claims``: the study's per-run means, its tables (Tables I-V: mean, standard
  deviation and number of seeds per row) and its verdicts (:mod:`ibmdn.experiments.claims`).
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

STUDY_RUNS = register_schema(Schema(
    name="study_runs",
    columns=("run", "model", "seed", "scale", "dataset", "metric", "value", "n_images", "steps", "train_s",
             "commit"),
    keys=("model", "scale", "seed", "dataset", "metric"),
    integer=("seed", "scale", "n_images", "steps"),
    floats=("value", "train_s"),
    required_values=("run", "model", "seed", "scale", "dataset", "metric", "value"),
))

STUDY = register_schema(Schema(
    name="study",
    columns=("table", "kind", "model", "scale", "dataset", "metric", "value", "std", "n_seeds", "seeds",
             "n_images", "paper", "diff", "budget", "note"),
    keys=("table", "kind", "model", "scale", "dataset", "metric"),
    integer=("scale", "n_seeds", "n_images"),
    floats=("value", "std", "paper", "diff"),
    required_values=("table", "kind", "model", "scale", "metric"),
    choices={"kind": ("trained", "reference")},
))

VERDICTS = ("reproduced", "contradicted", "not resolvable", "not tested")
CLAIMS = register_schema(Schema(
    name="claims",
    columns=("claim", "statement", "table", "better", "worse", "dataset", "metric", "margin", "mean_better",
             "mean_worse", "advantage", "ci_low", "ci_high", "n_better", "n_worse", "paper_advantage", "verdict",
             "claim_verdict"),
    keys=("claim", "better", "worse", "dataset", "metric"),
    integer=("claim", "n_better", "n_worse"),
    floats=("margin", "mean_better", "mean_worse", "advantage", "ci_low", "ci_high", "paper_advantage"),
    required_values=("claim", "statement", "better", "worse", "metric", "verdict", "claim_verdict"),
    choices={"verdict": VERDICTS},
))

__all__ = ["CLAIMS", "OPERATORS", "STUDY", "STUDY_RUNS", "TRADEOFF", "VERDICTS", "VISUAL", "WALKTHROUGH"]
