"""Result tables: schemas, deterministic atomic writing, validated reading, provenance sidecars.

Every number the project measures, and every number the paper reports, lives in a CSV in the LONG
schema, one number per row::

    table, model, weights, scale, dataset, metric, value, unit, n_images, source [, flag]

* ``table``: the paper artifact the row belongs to (``table1`` .. ``table6``, ``param_audit``, ...).
* ``model``: a registered model name (:func:`ibmdn.list_models`), or a lowercase literature name
  (``srcnn``, ``edsr``, ...) for rows the project does not implement.
* ``weights``: ``paper`` for the paper's own numbers, ``official`` for published checkpoints, else the
  tag of a checkpoint trained here (e.g. ``smoke``, ``short``, ``paper-schedule``).
* ``scale``: integer upscaling factor. ``dataset``: ``set5``, ``set14``, ``bsd100``, ``urban100``, or
  empty for dataset-free metrics such as ``params``.
* ``metric`` / ``unit``: ``params``/``count``, ``psnr``/``dB``, ``ssim``/``1``, ``lpips``/``1`` (the
  units of known metrics are checked; other metrics are free, e.g. ``latency``/``ms``).
* ``n_images``: number of images averaged, empty when not known (the paper's rows).
* ``source``: ``paper`` (typed from the paper), ``published`` (a baseline's own publication),
  ``measured`` (computed by this project).
* ``flag`` (the only optional column): empty, or a short remark on a value that looks wrong where it
  stands (a typo, an inconsistency between tables). Flags document, they never change a value: the
  paper's numbers are kept exactly as printed.

Comparison with the paper is a join on ``(table, model, scale, dataset, metric)`` between a measured
table and :func:`reported`.

Writing (:func:`write_table`) validates, sorts by the schema's key columns, formats floats with a fixed
rounding (``decimals``, trailing zeros stripped, so ``494000.0`` is written ``494000`` and ``0.9584``
stays ``0.9584``), uses ``\\n`` line ends, and writes the CSV and its ``<name>.meta.json`` sidecar to
temporary files that are renamed into place only when both are complete. A re-run producing the same
numbers therefore leaves the CSV byte-identical (only the sidecar's date and git sha move), and a run
killed mid-write leaves the previous files intact.

Other table shapes (the parameter audit) are :class:`~ibmdn.schemas.Schema` objects registered in
:mod:`ibmdn.schemas` with their own columns and keys; the sidecar records the schema name so :func:`read_table` validates each file by its own.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from ibmdn.fileio import _write_tmp, atomic_write_bytes  # noqa: F401  (re-exported)
from ibmdn.schemas import (  # noqa: F401  (re-exported)
    LONG,
    LONG_COLUMNS,
    METRIC_UNITS,
    SOURCES,
    Schema,
    SchemaError,
    get_schema,
    register_schema,
)

__all__ = [
    "LONG_COLUMNS",
    "METRIC_UNITS",
    "SOURCES",
    "Schema",
    "SchemaError",
    "get_schema",
    "meta_path",
    "provenance",
    "read_meta",
    "read_table",
    "register_schema",
    "reported",
    "validate",
    "write_table",
]


_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")


# ----------------------------------------------------------------------------------------------------
# validation


def _is_blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    try:
        if v is pd.NA or v is pd.NaT:
            return True
    except TypeError:
        pass
    return isinstance(v, str) and v.strip() == ""


def _normalise(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Check columns and cast them to the schema's types (integers nullable, text as str, blanks '')."""
    cols = list(df.columns)
    missing = [c for c in schema.columns if c not in cols]
    extra = [c for c in cols if c not in schema.columns + schema.optional]
    if missing or extra:
        raise SchemaError(
            f"schema {schema.name!r}: missing columns {missing}, unexpected columns {extra} "
            f"(required {list(schema.columns)}, optional {list(schema.optional)})"
        )
    if len(set(cols)) != len(cols):
        raise SchemaError(f"schema {schema.name!r}: duplicate column names {cols}")
    out = {}
    for c in [c for c in schema.columns + schema.optional if c in cols]:
        s = df[c]
        if c in schema.integer:
            vals = []
            for i, v in enumerate(s.tolist()):
                if _is_blank(v):
                    vals.append(pd.NA)
                    continue
                try:
                    f = float(v)
                except (TypeError, ValueError):
                    raise SchemaError(f"column {c!r}, row {i}: {v!r} is not an integer") from None
                if not math.isfinite(f) or f != int(f):
                    raise SchemaError(f"column {c!r}, row {i}: {v!r} is not an integer")
                vals.append(int(f))
            out[c] = pd.array(vals, dtype="Int64")
        elif c in schema.floats:
            vals = []
            for i, v in enumerate(s.tolist()):
                if _is_blank(v):
                    vals.append(math.nan)
                    continue
                try:
                    f = float(v)
                except (TypeError, ValueError):
                    raise SchemaError(f"column {c!r}, row {i}: {v!r} is not a number") from None
                if not math.isfinite(f):
                    raise SchemaError(f"column {c!r}, row {i}: {v!r} is not finite")
                vals.append(f)
            out[c] = pd.array(vals, dtype="float64")
        else:
            out[c] = pd.array(["" if _is_blank(v) else str(v) for v in s.tolist()], dtype=object)
    res = pd.DataFrame(out, index=range(len(df)))
    for c in schema.required_values:
        if c in res:
            blank = res[c].isna() if c in schema.integer + schema.floats else res[c] == ""
            if blank.any():
                rows = list(res.index[blank.to_numpy()])[:5]
                raise SchemaError(f"schema {schema.name!r}: column {c!r} is empty in rows {rows}")
    for c, allowed in schema.choices.items():
        if c in res:
            bad = sorted(set(res[c]) - set(allowed) - {""})
            if bad:
                raise SchemaError(f"column {c!r}: values {bad} not in {list(allowed)}")
    dup = res.duplicated(list(schema.keys), keep=False)
    if dup.any():
        rows = res.loc[dup, list(schema.keys)].head(4).to_dict("records")
        raise SchemaError(f"schema {schema.name!r}: duplicate keys {list(schema.keys)}: {rows}")
    return res


def _check_long(df: pd.DataFrame) -> None:
    for c in ("table", "model", "weights", "metric", "source"):
        bad = sorted({v for v in df[c] if not _NAME.match(v)})
        if bad:
            raise SchemaError(f"column {c!r}: {bad[:5]} are not lowercase names ([a-z0-9_.+-])")
    bad = sorted({v for v in df["dataset"] if v and not _NAME.match(v)})
    if bad:
        raise SchemaError(f"column 'dataset': {bad[:5]} are not lowercase names")
    if (df["scale"] < 1).any():
        raise SchemaError("column 'scale': scales must be >= 1")
    if (df["n_images"].dropna() < 0).any():
        raise SchemaError("column 'n_images': must be >= 0")
    for metric, unit in METRIC_UNITS.items():
        wrong = df[(df["metric"] == metric) & (df["unit"] != unit)]
        if len(wrong):
            raise SchemaError(f"metric {metric!r} must have unit {unit!r}, got {sorted(set(wrong['unit']))}")


_CHECKS = {"long": _check_long}


def validate(df: pd.DataFrame, schema: str | Schema = "long") -> pd.DataFrame:
    """Return ``df`` checked against ``schema`` and cast to its types; raise :class:`SchemaError`."""
    sch = get_schema(schema)
    res = _normalise(df, sch)
    check = _CHECKS.get(sch.name)
    if check is not None:
        check(res)
    return res


def register_check(schema: str, fn) -> None:
    """Register an extra row-level check ``fn(df)`` (raises :class:`SchemaError`) for ``schema``."""
    _CHECKS[schema] = fn


# ----------------------------------------------------------------------------------------------------
# writing


def _fmt_float(x: float, decimals: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    s = f"{round(float(x), decimals):.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _csv_cell(s: str) -> str:
    if any(ch in s for ch in ',"\n\r') or s != s.strip():
        return '"' + s.replace('"', '""') + '"'
    return s


def format_csv(df: pd.DataFrame, schema: str | Schema = "long", decimals: int = 6) -> str:
    """The canonical CSV text of ``df``: validated, sorted by the schema keys, fixed float rounding."""
    sch = get_schema(schema)
    res = validate(df, sch)
    keys = list(sch.keys)
    res = res.sort_values(keys, kind="mergesort", na_position="first").reset_index(drop=True)
    cols = [c for c in sch.columns + sch.optional if c in res.columns]
    lines = [",".join(cols)]
    cells: dict[str, list[str]] = {}
    for c in cols:
        if c in sch.integer:
            cells[c] = ["" if v is pd.NA else str(int(v)) for v in res[c].tolist()]
        elif c in sch.floats:
            cells[c] = [_fmt_float(v, decimals) for v in res[c].tolist()]
        else:
            cells[c] = [_csv_cell(v) for v in res[c].tolist()]
    for i in range(len(res)):
        lines.append(",".join(cells[c][i] for c in cols))
    return "\n".join(lines) + "\n"


def meta_path(path: str | os.PathLike) -> Path:
    """``results/x.csv`` -> ``results/x.meta.json``."""
    p = Path(path)
    return p.with_name(p.name[: -len(p.suffix)] + ".meta.json" if p.suffix else p.name + ".meta.json")


def _json_default(o: Any) -> Any:
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):  # numpy / torch scalars
        try:
            return o.item()
        except (TypeError, ValueError):
            pass
    return str(o)


def dumps_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default, ensure_ascii=False) + "\n"


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    meta: Mapping[str, Any] | None = None,
    *,
    schema: str | Schema = "long",
    decimals: int = 6,
) -> Path:
    """Validate, sort and write ``df`` to ``path`` (CSV) with ``<name>.meta.json`` beside it.

    Args:
        df: the table.
        path: destination CSV.
        meta: provenance to store in the sidecar (default: :func:`provenance` of this process).
        schema: schema name or object (default: the LONG schema).
        decimals: rounding of float columns (trailing zeros are stripped).

    Both files are first written completely to temporary files in the destination folder, then renamed
    into place; on any error the previous CSV and sidecar are left untouched.
    """
    sch = get_schema(schema)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = format_csv(df, sch, decimals)
    info = dict(provenance() if meta is None else meta)
    sidecar = {
        "table_file": p.name,
        "schema": sch.name,
        "columns": text.split("\n", 1)[0].split(","),
        "rows": text.count("\n") - 1,
        "decimals": decimals,
        "provenance": info,
    }
    csv_tmp = _write_tmp(p, text.encode("utf-8"))
    meta_tmp: Path | None = None
    try:
        meta_tmp = _write_tmp(p, dumps_json(sidecar).encode("utf-8"))
        os.replace(csv_tmp, p)
        os.replace(meta_tmp, meta_path(p))
    finally:
        csv_tmp.unlink(missing_ok=True)
        if meta_tmp is not None:
            meta_tmp.unlink(missing_ok=True)
    return p


# ----------------------------------------------------------------------------------------------------
# reading


def read_meta(path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar of a table written by :func:`write_table` (None when absent)."""
    mp = meta_path(path)
    if not mp.exists():
        return None
    return json.loads(mp.read_text(encoding="utf-8"))


def read_table(path: str | os.PathLike, schema: str | Schema | None = None) -> pd.DataFrame:
    """Read and validate a result table.

    Args:
        path: the CSV.
        schema: schema to validate against; default: the one named in the sidecar, else LONG.

    Returns:
        the table with typed columns: integers as nullable ``Int64``, floats as ``float64`` (NaN when
        empty), text as ``object`` (``''`` when empty).
    """
    p = Path(path)
    if schema is None:
        meta = read_meta(p)
        schema = (meta or {}).get("schema", "long")
    raw = pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False)
    return validate(raw, schema)


def _reported_file(source: str = "paper") -> Any:
    return resources.files("ibmdn").joinpath("reported", f"{source}.csv")


def reported(table: str | Iterable[str] | None = None, source: str = "paper") -> pd.DataFrame:
    """Typed-in values: the paper's (``reported/paper.csv``) or the literature's (``reported/published.csv``).

    Args:
        table: one table name (``table1`` .. ``table6``; ``bicubic``, ``published``) or several; None for all.
        source: ``"paper"`` (the paper under study, with its typos flagged) or ``"published"`` (the
            standard bicubic table and the baselines' own publications, docs/protocol.md).
    """
    if source not in ("paper", "published"):
        raise ValueError(f"source must be 'paper' or 'published', got {source!r}")
    with resources.as_file(_reported_file(source)) as f:
        df = read_table(f, "long")
    if table is not None:
        names = [table] if isinstance(table, str) else list(table)
        unknown = sorted(set(names) - set(df["table"]))
        if unknown:
            raise KeyError(f"no reported values for {unknown}; tables: {sorted(set(df['table']))}")
        df = df[df["table"].isin(names)].reset_index(drop=True)
    return df


# ----------------------------------------------------------------------------------------------------
# provenance


def _repo_root() -> Path | None:
    for start in (Path(__file__).resolve().parent.parent, Path.cwd()):
        for d in (start, *start.parents):
            if (d / ".git").exists():
                return d
    return None


def _git(*args: str, cwd: Path) -> str | None:
    try:
        r = subprocess.run(
            ["git", *args],
            check=False,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def git_info() -> dict[str, Any]:
    """``{"sha": ..., "dirty": ...}`` of the repository holding the package.

    ``$IBMDN_GIT_SHA``, when set, wins and is recorded as such (``sha_from``): a copy of the tree on
    another machine (a lent GPU) may carry a stale ``.git`` whose HEAD is not the code being run (seen on
    the first device runs of 2026-11-26), so the caller that made the copy states the commit.
    """
    env_sha = os.environ.get("IBMDN_GIT_SHA")
    if env_sha:
        return {"sha": env_sha, "dirty": None, "sha_from": "IBMDN_GIT_SHA"}
    root = _repo_root()
    if root is None:
        return {"sha": None, "dirty": None}
    sha = _git("rev-parse", "HEAD", cwd=root)
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=root)
    return {"sha": sha, "dirty": None if status is None else bool(status)}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_bf16() -> bool | None:
    """Whether the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX); ``None`` where it cannot be read."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return None
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split(":", 1)[1].split()))


def device_info() -> dict[str, Any]:
    """CPU model, core count, the vector instructions PyTorch uses (``cpu_isa``) and whether bf16 is native
    (``cpu_bf16``), plus the CUDA device name when one is visible (no hostname). Hosts sold under one model
    name ("AMD EPYC") differ in both, and CPU timings follow them."""
    info: dict[str, Any] = {"cpu": _cpu_name(), "cpu_count": os.cpu_count(), "cpu_bf16": _cpu_bf16()}
    try:
        import torch

        info["cpu_isa"] = torch.backends.cpu.get_cpu_capability()
        if torch.cuda.is_available():
            info["cuda"] = torch.cuda.get_device_name(0)
            info["cuda_count"] = torch.cuda.device_count()
    except Exception as e:  # noqa: BLE001 - provenance must never fail
        info["cuda_error"] = f"{type(e).__name__}: {e}"
    return info


def _version(mod: str) -> str | None:
    try:
        m = __import__(mod)
        return getattr(m, "__version__", None)
    except Exception:  # noqa: BLE001
        return None


def provenance(**extra: Any) -> dict[str, Any]:
    """Where a result comes from: code, environment, date, command, plus ``extra``.

    Records the git sha and dirty flag, python / torch / numpy / pandas / ibmdn versions, the platform
    (no hostname), CPU model and CUDA device name, the UTC date and ``sys.argv``. Keyword arguments
    (e.g. ``parameters=..., profile="smoke", budget=..., protocol=...``) are added as they are;
    dataclasses are stored as dicts.
    """
    from ibmdn import __version__

    info: dict[str, Any] = {
        "git": git_info(),
        "versions": {
            "python": platform.python_version(),
            "ibmdn": __version__,
            "torch": _version("torch"),
            "numpy": _version("numpy"),
            "pandas": pd.__version__,
        },
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "device": device_info(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "argv": list(sys.argv),
    }
    info.update(json.loads(dumps_json(extra)))
    return info
