"""The weights shipped in the package (``ibmdn/weights/<model>_x<scale>_<tag>.pth``, each with its
provenance ``.json``), how a command picks them, and loading a network for inference.

:func:`shipped_weights` lists them, best first (highest validation PSNR, then by tag);
:func:`resolve_weights` turns a ``--weights`` argument (a path, ``official`` or nothing: the best shipped
checkpoint, sha256-checked against its provenance) into what :func:`ibmdn.models.build_model` takes;
:func:`load_model` builds the network with them, re-parameterised for inference. ``ibmdn upscale`` and
``ibmdn export`` use these, so both run the same network.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "ibmdn_stable"
"""The network ``ibmdn upscale`` runs by default: IBMDN with stable involutions, the form the study ships
weights for (the faithful form's eval-mode network is unstable on high-contrast inputs; see
``docs/networks.md`` and ``results/involution_stability.csv``)."""
TAG_PREFERENCE = ("paper", "short", "smoke")
_NAME = re.compile(r"^(?P<model>.+)_x(?P<scale>\d)_(?P<tag>[^_]+)$")

@dataclass(frozen=True)
class Shipped:
    """A checkpoint shipped in the package and what its provenance file says."""

    path: Path
    model: str
    scale: int
    tag: str
    meta: dict | None

    @property
    def psnr(self) -> float | None:
        """The validation PSNR its provenance records: the best one, else the last; None without one."""
        m = self.meta or {}
        v = m.get("best_psnr") if m.get("best_psnr") is not None else m.get("val_psnr")
        try:
            return None if v is None else float(v)
        except (TypeError, ValueError):
            return None


def shipped_weights(model: str | None = None, scale: int | None = None, root: Path | None = None) -> list[Shipped]:
    """Shipped checkpoints ``<model>_x<scale>_<tag>.pth``, preferred first: best validation PSNR, then tag.

    ``tag`` is the training profile, optionally followed by ``-<recipe variant>`` (``short-lr2e-3-clip1``).
    """
    root = WEIGHTS_DIR if root is None else root
    out = []
    if root.is_dir():
        for p in sorted(root.glob("*.pth")):
            m = _NAME.match(p.stem)
            if not m or (model and m["model"] != model) or (scale and int(m["scale"]) != scale):
                continue
            meta = None
            js = p.with_suffix(".json")
            if js.is_file():
                try:
                    meta = json.loads(js.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    meta = {"error": f"unreadable provenance file {js.name}"}
            out.append(Shipped(p, m["model"], int(m["scale"]), m["tag"], meta))
    rank = {t: i for i, t in enumerate(TAG_PREFERENCE)}
    # the best-validated first, so that a longer recipe stopped early never displaces a better-trained one
    return sorted(out, key=lambda s: (s.model, s.scale, -(s.psnr if s.psnr is not None else float("-inf")),
                                      rank.get(s.tag.split("-", 1)[0], len(rank)), s.tag))


def _recipe_changes(meta: dict) -> str:
    """`` (recipe changes: lr: 0.001 -> 0.002)``: how the recorded recipe differs from its profile's (the
    trainer's own comparison, :func:`ibmdn.train.config.resume_differences`); empty when none or unknown."""
    from ibmdn.train.config import PROFILES, config_from_dict, resume_differences

    try:
        cfg = config_from_dict(meta["config"])
    except Exception:  # noqa: BLE001 - no or an unreadable recipe: nothing to say (--help must always work)
        return ""
    diff = resume_differences(PROFILES[cfg.profile], cfg)
    return f" (recipe changes: {', '.join(diff)})" if diff else ""


def _describe(s: Shipped) -> str:
    m = s.meta or {}
    if not m:
        return f"  {s.path.name}: no provenance file ({s.path.with_suffix('.json').name} missing)"
    parts = [f"profile {m.get('profile', s.tag)}" + _recipe_changes(m)]
    if m.get("steps") is not None:
        parts.append(f"{m['steps']} steps")
    cfg = m.get("config") or {}
    for key in ("batch_size", "patch_size"):
        if cfg.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {cfg[key]}")
    if m.get("stopped_early"):
        parts.append(f"stopped by --time-limit (recipe: {cfg.get('iterations')} iterations)")
    if m.get("train_sets"):
        sets = m["train_sets"]
        n = f"{m['train_images']} images of " if m.get("train_images") else ""
        parts.append(f"trained on {n}" + (", ".join(sets) if isinstance(sets, list) else str(sets)))
    if s.psnr is not None:
        parts.append(f"{m.get('val_set', 'val')} PSNR-Y {s.psnr:.2f} dB")
    bench = (m.get("benchmarks") or {}).get("psnr") or {}
    if bench:
        names = {"set5": "Set5", "set14": "Set14", "bsd100": "BSD100", "urban100": "Urban100"}
        parts.append("benchmarks PSNR-Y " + " / ".join(f"{n} {bench[k]:.2f}" for k, n in names.items() if k in bench)
                     + " dB")
    git = (m.get("git") or {}).get("sha")
    if git:
        parts.append(f"git {git[:10]}" + ("+dirty" if (m.get("git") or {}).get("dirty") else ""))
    if m.get("date_utc"):
        parts.append(str(m["date_utc"]))
    if m.get("hr_pixels_seen"):
        parts.append(f"{m['hr_pixels_seen'] / 1e6:,.0f} M HR pixels seen")
    elif m.get("budget"):
        parts.append(f"budget: {m['budget']}")
    return f"  {s.path.name} ({s.model} x{s.scale}): " + "; ".join(parts)


def describe_shipped_weights() -> str:
    """The ``--help`` text on default weights (reads only the JSON files; never fails)."""
    head = (__doc__ or "").strip().splitlines()[0]
    try:
        items = shipped_weights()
    except Exception as e:  # noqa: BLE001 - --help must always work
        return f"{head}\n\nshipped weights: unavailable ({e})"
    lines = [head, "", (f"Default weights (shipped in {WEIGHTS_DIR}; per model and scale the first listed: the "
                        f"best validation PSNR, then by tag {' > '.join(TAG_PREFERENCE)} > others):")]
    lines += [_describe(s) for s in items] or ["  none shipped yet: pass --weights PATH"]
    scales = sorted({(s.model, s.scale) for s in items})
    lines += ["", "Without shipped weights for the requested model and scale, pass --weights PATH (a checkpoint",
              "of `ibmdn train`) or --weights official (published baseline checkpoints)."]
    if scales:
        lines.append("Shipped: " + ", ".join(f"{m} x{s}" for m, s in scales) + ".")
    return "\n".join(lines)


def resolve_weights(model: str, scale: int, weights: str | None) -> tuple[str, str]:
    """``(weights argument for build_model, description)``; the shipped default when ``weights`` is None."""
    from ibmdn.errors import ChecksumError, IbmdnError

    if weights is not None:
        return weights, weights
    found = shipped_weights(model, scale)
    if not found:
        others = sorted({f"x{s.scale}" for s in shipped_weights(model)})
        have = f" (shipped for {model}: {', '.join(others)})" if others else ""
        raise IbmdnError(f"no trained weights for {model} x{scale} are shipped with the package{have}; pass "
                         f"--weights PATH (a checkpoint of `ibmdn train`, e.g. runs/{model}_x{scale}_<profile>/"
                         f"final.pth) or --weights official for a baseline with a published checkpoint. "
                         f"Refusing to run an untrained network.")
    s = found[0]
    digest = (s.meta or {}).get("weights_sha256")
    if digest:
        from ibmdn.fileio import sha256_file

        got = sha256_file(s.path)
        if got != digest:
            raise ChecksumError(f"{s.path}: sha256 {got} differs from its provenance file's {digest}")
    warning = below_bicubic(s)
    if warning:
        print(f"ibmdn upscale: warning: {warning}", file=sys.stderr)
    return str(s.path), f"shipped {s.path.name}"


def below_bicubic(s: Shipped) -> str | None:
    """A warning when shipped weights validated below bicubic interpolation (undertrained), else None.

    The comparison is on the validation set of the weights' own provenance (Set5 PSNR-Y) against the
    published bicubic value of ``ibmdn/reported/published.csv``; users get told rather than silently
    served an image worse than plain interpolation.
    """
    from ibmdn.results import reported

    m, psnr = s.meta or {}, s.psnr
    if psnr is None:
        return None
    ref = reported("bicubic", source="published")
    ref = ref[(ref["scale"] == s.scale) & (ref["dataset"] == str(m.get("val_set", "Set5")).lower())
              & (ref["metric"] == "psnr")]
    if ref.empty or psnr >= float(ref["value"].iloc[0]):
        return None
    return (f"{s.path.name} scores {psnr:.2f} dB PSNR-Y on {m.get('val_set')}, below bicubic "
            f"interpolation ({float(ref['value'].iloc[0]):.2f} dB): these weights are undertrained "
            f"({m.get('steps')} steps); pass --weights PATH for better ones")


def load_model(name: str, scale: int, weights: str | None, weights_root=None, device="cpu",
               precision: str = "fp32", fuse: bool = True):
    """The network with its trained weights, fused for inference, on ``device`` in ``precision``."""
    from ibmdn.errors import IbmdnError
    from ibmdn.models import build_model

    spec_weights, desc = resolve_weights(name, scale, weights)
    try:
        model = build_model(name, scale=scale, weights=spec_weights, weights_root=weights_root)
    except (KeyError, ValueError, RuntimeError) as e:
        raise IbmdnError(f"cannot load {name} x{scale} from {desc}: {str(e).strip(chr(39))[:500]}") from None
    model.eval()
    if fuse:
        from ibmdn.fuse import fuse_for_inference

        model = fuse_for_inference(model)
    from ibmdn.inference import PRECISIONS

    return model.to(device=device, dtype=PRECISIONS[precision]), desc
