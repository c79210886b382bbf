"""The one registry of result-table schemas: :class:`Schema`, the project's LONG schema and the catalogue
of the others. :func:`ibmdn.results.read_table` validates every file by the schema named in its sidecar
(:func:`get_schema`); writing, reading and provenance live in :mod:`ibmdn.results`, which re-exports the
names defined here. It imports nothing heavy.

* ``long`` (:data:`LONG`): one number per row; the format of most result tables.
* ``param_audit`` (``param_audit.csv``): one row per (model, scale) of the parameter audit
  (:mod:`ibmdn.experiments.audit` gives the meaning of each column).
* ``eval_per_image``: ``ibmdn eval``'s per-image numbers.

* ``visual`` (``fig4_visual.csv``): one panel of the Fig. 4 visual comparison per row, in panel order.
* ``tradeoff`` (``tradeoff.csv``): one (model, weights, scale, dataset) point of the PSNR / parameters /
  latency chart, with where each number comes from.
* ``operators`` (``ibmdn_operators.csv``): IBMDN's operators, read from the model definition.
* ``walkthrough`` (``walkthrough_*.csv``): the numbers a teaching walkthrough shows, one per row.
* ``study_runs``, ``study``, ``claims``: the study's per-run means, its tables (Tables I-V: mean, standard
  deviation and number of seeds per row) and its verdicts (:mod:`ibmdn.experiments.claims`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ibmdn.metrics.registry import METRICS


class SchemaError(ValueError):
    """A table does not satisfy its schema (missing/extra columns, bad values, duplicate keys)."""


@dataclass(frozen=True)
class Schema:
    """Columns and rules of one kind of result table.

    Attributes:
        name: schema name, recorded in the sidecar.
        columns: required columns, in the order they are written.
        keys: columns that identify a row (unique together); the file is sorted by them.
        optional: columns that may be present (written after the required ones).
        integer: columns holding integers (nullable unless in ``required_values``).
        floats: columns holding floats (nullable unless in ``required_values``).
        required_values: columns that may not be empty.
        choices: allowed values per column.
    """

    name: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    optional: tuple[str, ...] = ()
    integer: tuple[str, ...] = ()
    floats: tuple[str, ...] = ()
    required_values: tuple[str, ...] = ()
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def text(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns + self.optional if c not in self.integer + self.floats)


LONG_COLUMNS = (
    "table",
    "model",
    "weights",
    "scale",
    "dataset",
    "metric",
    "value",
    "unit",
    "n_images",
    "source",
)
SOURCES = ("paper", "published", "measured")
METRIC_UNITS = {name: m.unit for name, m in METRICS.items()}

_SCHEMAS: dict[str, Schema] = {}


def register_schema(schema: Schema) -> Schema:
    """Register ``schema`` under its name (re-registering an identical schema is a no-op)."""
    old = _SCHEMAS.get(schema.name)
    if old is not None and old != schema:
        raise ValueError(f"schema {schema.name!r} registered twice with different definitions")
    _SCHEMAS[schema.name] = schema
    return schema


def get_schema(schema: str | Schema) -> Schema:
    """The schema object, by name."""
    if isinstance(schema, Schema):
        return schema
    try:
        return _SCHEMAS[schema]
    except KeyError:
        raise SchemaError(f"unknown schema {schema!r}; known: {sorted(_SCHEMAS)}") from None


LONG = register_schema(
    Schema(
        name="long",
        columns=LONG_COLUMNS,
        keys=("table", "model", "weights", "scale", "dataset", "metric", "source"),
        optional=("flag",),
        integer=("scale", "n_images"),
        floats=("value",),
        required_values=("table", "model", "weights", "scale", "metric", "value", "unit", "source"),
        choices={"source": SOURCES},
    )
)


TOLERANCES = ("exact", "1%", "3%", "contradiction")
AUDIT_STATUS = ("pass", "fail", "missing", "error", "documented")

PARAM_AUDIT = register_schema(
    Schema(
        name="param_audit",
        columns=(
            "model",
            "scale",
            "paper_label",
            "tolerance",
            "status",
            "params",
            "reference",
            "reference_source",
            "diff",
            "diff_pct",
            "paper_params",
            "paper_tables",
            "note",
        ),
        keys=("model", "scale"),
        integer=("scale", "params", "reference", "diff", "paper_params"),
        floats=("diff_pct",),
        required_values=("model", "scale", "tolerance", "status"),
        choices={"tolerance": TOLERANCES, "status": AUDIT_STATUS, "reference_source": ("upstream", "paper")},
    )
)
"""The parameter audit (``results/param_audit.csv``), one row per (model, scale); see
:mod:`ibmdn.experiments.audit` for the meaning of each column."""

EVAL_PER_IMAGE = register_schema(Schema(
    name="eval_per_image",
    columns=("table", "model", "weights", "scale", "dataset", "image", "metric", "value", "unit", "source"),
    keys=("table", "model", "weights", "scale", "dataset", "image", "metric"),
    integer=("scale",),
    floats=("value",),
    required_values=("table", "model", "weights", "scale", "dataset", "image", "metric", "value", "unit", "source"),
    choices=dict(LONG.choices),
))
"""``ibmdn eval``'s per-image file: the LONG columns with the image's name instead of ``n_images``."""


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
INTERVALS = ("welch", "pooled", "")
"""How a claim comparison's interval was found: Welch over its own seeds, or the pooled seed variance."""
CLAIMS = register_schema(Schema(
    name="claims",
    columns=("claim", "statement", "table", "better", "worse", "dataset", "metric", "margin", "mean_better",
             "mean_worse", "advantage", "ci_low", "ci_high", "n_better", "n_worse", "interval", "paper_advantage",
             "verdict", "claim_verdict", "seeds_to_resolve"),
    keys=("claim", "better", "worse", "dataset", "metric"),
    integer=("claim", "n_better", "n_worse", "seeds_to_resolve"),
    floats=("margin", "mean_better", "mean_worse", "advantage", "ci_low", "ci_high", "paper_advantage"),
    required_values=("claim", "statement", "better", "worse", "metric", "verdict", "claim_verdict"),
    choices={"verdict": VERDICTS, "interval": INTERVALS},
))

__all__ = ["AUDIT_STATUS", "CLAIMS", "EVAL_PER_IMAGE", "INTERVALS", "OPERATORS", "PARAM_AUDIT", "STUDY", "STUDY_RUNS",
           "TOLERANCES", "TRADEOFF", "VERDICTS", "VISUAL", "WALKTHROUGH"]
