"""Benchmark evaluation of published checkpoints and of the bicubic baseline, resumable, compared with the literature.

``checkpoint_eval`` runs every official checkpoint (IMDN and BSRN x2/x3/x4; RFDN-AIM, FMEN-S and
DepthIBN x4) on Set5, Set14, BSD100 and Urban100 through :func:`ibmdn.evaluate.evaluate`;
``shipped_eval`` runs the package's own shipped checkpoints (``ibmdn upscale``'s defaults) the same way;
``bicubic_eval`` runs the parameter-free ``bicubic`` model at x2/x3/x4 under the default protocol and
under ``gray_as_y`` (the classic MATLAB table scores Set14's single-channel ``bridge`` on its raw gray
level: the two rows show the effect of that choice, ~0.09 dB on Set14, nothing elsewhere);
``precision_eval`` runs four official checkpoints and the shipped ones on Set5 twice, in float32 and in bfloat16
(:func:`ibmdn.evaluate.evaluate`'s ``precision``), for the PSNR cost of bf16 inference (``weights`` of the
bf16 rows carry the suffix ``+bf16``).

Each (model, scale, dataset, protocol) summary is kept in a parts folder as soon as it is measured, so a
killed run resumes where it stopped; the final table is written only when every part exists.
``compare_published`` joins a measured table with ``reported/published.csv`` (docs/protocol.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from ibmdn.errors import IbmdnError
from ibmdn.fileio import atomic_write_bytes
from ibmdn.metrics.quality import Protocol

DATASETS = ("set5", "set14", "bsd100", "urban100")
CHECKPOINTS = (("imdn", 2), ("imdn", 3), ("imdn", 4), ("bsrn", 2), ("bsrn", 3), ("bsrn", 4),
               ("rfdn_aim", 4), ("fmen_s", 4), ("depthibn", 4))
PRECISION_CHECKPOINTS = (("imdn", 2), ("imdn", 4), ("rfdn_aim", 4), ("depthibn", 4))
"""The official checkpoints of ``precision_eval``: IMDN at both ends of the scale range, the peer of
``ibmdn bench`` and the authors' own trained involution network (a bf16 pass costs minutes each on a CPU
without native bf16, so not all nine)."""
LONG = ["table", "model", "weights", "scale", "dataset", "metric", "value", "unit", "n_images", "source"]


def _part_path(parts: Path, table: str, model: str, scale: int, weights: str | None, dataset: str,
               protocol: Protocol, precision: str = "fp32") -> Path:
    """The cached summary of one evaluation, named by everything it depends on: the network, the weights
    (a checkpoint file by its content, so two checkpoints of one network, or a file retrained under the same
    name, never share a part), the set, the protocol and the precision."""
    from ibmdn.evaluate import weights_tag
    from ibmdn.fileio import sha256_file

    key = hashlib.sha256(json.dumps(asdict(protocol), sort_keys=True).encode()).hexdigest()[:10]
    wkey = "" if weights in (None, "official") else f"{weights_tag(weights)}-{sha256_file(weights)[:10]}_"
    suffix = "" if precision == "fp32" else "_" + precision
    return parts / table / f"{model}_x{scale}_{wkey}{dataset}_{key}{suffix}.csv"


def run_rows(table: str, rows: list[tuple[str, int, str | None, Protocol]], datasets=DATASETS, device="cpu",
             data_root=None, weights_root=None, parts_dir: str | Path = ".cache/parts",
             precision: str = "fp32") -> pd.DataFrame:
    """Evaluate ``(model, scale, weights, protocol)`` rows on ``datasets``; long summary rows (``table``).

    The ``weights`` column is ``official``/``none``; a protocol other than the default, and a
    ``precision`` other than fp32, are recorded in it as suffixes (e.g. ``none+gray_as_y``, ``official+bf16``) so both
    can stand in one table.
    """
    from tqdm.auto import tqdm

    from ibmdn.evaluate import evaluate, summarize, weights_tag
    from ibmdn.models import build_model
    from ibmdn.ops.involution import set_involution_impl

    parts = Path(parts_dir)
    frames = []
    jobs = [(m, s, w, p, d) for m, s, w, p in rows for d in datasets]
    for model_name, scale, weights, protocol, dataset in tqdm(jobs, desc=table, unit="set"):
        part = _part_path(parts, table, model_name, scale, weights, dataset, protocol, precision)
        if part.exists():
            frames.append(pd.read_csv(part, keep_default_na=False))
            continue
        model = build_model(model_name, scale, weights=weights, weights_root=weights_root)
        set_involution_impl(model, "shift")  # the same function as the reference unfold, in less time and memory
        summary = summarize(evaluate(model, dataset, scale, protocol, device, data_root=data_root, progress=True,
                                     precision=precision))
        tag = weights_tag(weights)
        changed = [f.name for f in Protocol.__dataclass_fields__.values()
                   if getattr(protocol, f.name) != getattr(Protocol(), f.name)]
        summary.insert(0, "table", table)
        summary.insert(1, "model", model_name)
        summary.insert(2, "weights", "+".join([tag, *changed, *([precision] if precision != "fp32" else [])]))
        summary["source"] = "measured"
        atomic_write_bytes(part, summary[LONG].to_csv(index=False).encode())
        frames.append(summary[LONG])
    return pd.concat(frames, ignore_index=True)[LONG]


def checkpoint_eval(**kw) -> pd.DataFrame:
    """Every official checkpoint on the four benchmarks (table ``checkpoint_eval``)."""
    return run_rows("checkpoint_eval", [(m, s, "official", Protocol()) for m, s in CHECKPOINTS], **kw)


def bicubic_eval(**kw) -> pd.DataFrame:
    """The bicubic baseline at x2/x3/x4 under the default protocol and ``gray_as_y`` (table ``bicubic``)."""
    protocols = (Protocol(), replace(Protocol(), gray_as_y=True))
    return run_rows("bicubic", [("bicubic", s, None, p) for s in (2, 3, 4) for p in protocols], **kw)


def shipped_eval(**kw) -> pd.DataFrame:
    """The package's shipped checkpoints (``ibmdn/weights``) on the four benchmarks (table ``shipped_eval``;
    ``weights`` = ``shipped-<tag>``)."""
    from ibmdn.shipped import shipped_weights

    rows = [(s.model, s.scale, str(s.path), Protocol()) for s in shipped_weights()]
    df = run_rows("shipped_eval", rows, **kw)
    return df.assign(weights="shipped-" + df["weights"].str.split("_").str[-1])


def precision_eval(datasets=("set5",), **kw) -> pd.DataFrame:
    """The :data:`PRECISION_CHECKPOINTS` and every shipped checkpoint in float32 and in bfloat16 (table
    ``precision_eval``; Set5
    unless ``datasets`` says otherwise: on a CPU without native bf16 the bf16 pass is several times slower)."""
    from ibmdn.shipped import shipped_weights

    rows = [(m, s, "official", Protocol()) for m, s in PRECISION_CHECKPOINTS]
    rows += [(s.model, s.scale, str(s.path), Protocol()) for s in shipped_weights()]
    df = pd.concat([run_rows("precision_eval", rows, datasets=datasets, precision=d, **kw) for d in ("fp32", "bf16")],
                   ignore_index=True)
    return df.assign(weights=df["weights"].str.replace(r"^.+_x\d_([^+_]+)", r"shipped-\1", regex=True))


def annotate_shipped(df: pd.DataFrame) -> list[Path]:
    """Write each shipped checkpoint's benchmark numbers (``shipped_eval`` rows) into the JSON beside it
    (``benchmarks``: PSNR-Y / SSIM-Y per set, the protocol), where ``ibmdn upscale --help`` reads them."""
    from ibmdn.results import dumps_json
    from ibmdn.shipped import shipped_weights

    done = []
    for s in shipped_weights():
        rows = df[(df["model"] == s.model) & (df["scale"] == s.scale) & (df["weights"] == f"shipped-{s.tag}")]
        js = s.path.with_suffix(".json")
        if rows.empty or not js.is_file():
            continue
        meta = json.loads(js.read_text(encoding="utf-8"))
        meta["benchmarks"] = {
            "protocol": asdict(Protocol()),
            **{m: {r.dataset: round(float(r.value), 4) for r in rows[rows["metric"] == m].itertuples()}
               for m in ("psnr", "ssim")},
            "source": "ibmdn eval-checkpoints (results/shipped_eval.csv)"}
        atomic_write_bytes(js, dumps_json(meta).encode("utf-8"))
        done.append(js)
    return done


def compare_published(measured: pd.DataFrame) -> pd.DataFrame:
    """Measured vs published (docs/protocol.md) on (model, scale, dataset, metric), with the difference."""
    from ibmdn.results import reported

    pub = reported(source="published")
    pub = pub.assign(model=pub["model"].replace({"rfdn": "rfdn_paper"}))  # RFDN's paper model != rfdn_aim
    keys = ["model", "scale", "dataset", "metric"]
    out = measured.merge(pub[keys + ["value"]].rename(columns={"value": "published"}), on=keys, how="left")
    out["diff"] = out["value"] - out["published"]
    return out


def checkpoint_eval_command(args) -> int:
    """``ibmdn eval-checkpoints``: write results/checkpoint_eval.csv, bicubic_eval.csv and shipped_eval.csv."""
    from ibmdn.inference import resolve_device
    from ibmdn.results import provenance, write_table

    device = resolve_device(args.device)
    out = Path(args.out)
    kw = dict(datasets=tuple(args.datasets.split(",")), device=device, data_root=args.data_root,
              weights_root=args.weights_root, parts_dir=args.parts)
    tables = args.tables.split(",")
    known = ("bicubic_eval", "checkpoint_eval", "shipped_eval", "precision_eval")
    if set(tables) - set(known):
        raise IbmdnError(f"unknown table(s) {', '.join(sorted(set(tables) - set(known)))}; choose from "
                         f"{', '.join(known)}")
    for name, fn in (("bicubic_eval", bicubic_eval), ("checkpoint_eval", checkpoint_eval),
                     ("shipped_eval", shipped_eval), ("precision_eval", precision_eval)):
        if name not in tables:
            continue
        df = fn(**{**kw, "datasets": ("set5",)}) if name == "precision_eval" else fn(**kw)
        meta = provenance(protocol=asdict(Protocol()), parameters={"datasets": kw["datasets"],
                          "device": str(device)}, note=fn.__doc__)
        write_table(df, out / f"{name}.csv", meta, decimals=4)
        if name == "shipped_eval":
            annotate_shipped(df)
        cmp = compare_published(df).dropna(subset=["published"])
        print(f"{name}: {len(df)} numbers; vs published: max |dPSNR| "
              f"{cmp.loc[cmp.metric == 'psnr', 'diff'].abs().max():.4f} dB, max |dSSIM| "
              f"{cmp.loc[cmp.metric == 'ssim', 'diff'].abs().max():.4f}")
    return 0
