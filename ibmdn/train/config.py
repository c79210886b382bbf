"""Training recipes: one frozen dataclass (:class:`TrainConfig`) and the three profiles.

Every run resolves its recipe in three layers, later ones winning: the profile (``smoke``, ``short``,
``paper``, :data:`PROFILES`), an optional TOML file (``--config FILE``: flat ``field = value`` lines and
an optional ``[model_kwargs]`` table, see ``configs/``), then the command-line flags. The resolved
recipe (``dataclasses.asdict``) is written to the run folder, stored in every checkpoint and recorded
with every result, so a number always says which budget produced it.

The profiles (docs/results-and-provenance.md):

* ``paper``: the paper's section IV.B: HR patches 192, batch 16, Adam (0.9, 0.999), lr 2e-4 halved
  every 2e5 iterations, loss L1 + perceptual (Johnson et al.) and nothing else (the BSConv-S
  regulariser is an option, ``bsconv_s_weight``, for BSConv-S networks only). The paper trains "100 epochs" without
  defining an epoch in iterations; we run 1e6 iterations (the IMDN/RFDN practice that the halving every
  2e5 comes from); change it with ``--iterations``. The perceptual weight is not stated either: we use
  1e-3 x the MSE of VGG16 ``relu2_2`` features (Johnson's super-resolution layer). Measured on 16 HR-192
  training patches against their x2 bicubic reconstructions: feature MSE 2.43, L1 0.026, so the weighted
  term is about a tenth of the L1 term (a PSNR-oriented L1 run with a perceptual nudge).
* ``short``: the same small budget for every model (a fair ranking on a CPU or a lent GPU, not a converged
  network): HR patches 64, batch 8, 1,500 iterations (49M HR pixels), lr 1e-3 with a 50-step linear
  warm-up and cosine decay to 1 % (a short budget wants a high lr and a decay to ~0), L1 only (the same
  loss for every model; VGG16 features on 64x64 patches would cost several times a light network's step
  on a CPU), validation every 250 steps with BatchNorm statistics re-estimated first (``bn_recalibrate``:
  the running averages of the involution's kernel generators lag the weights in the middle of a run).
  The measurements these choices rest on are in ``docs/results-and-provenance.md``.
* ``study``: the budget of the trained tables (:mod:`ibmdn.experiments.study`): ``short``'s recipe run
  with several seeds, on the fast CPU path (channels-last; the fused involution is the CPU default) and
  one thread per run, two runs side by side on the 2-core machine. The iteration count is sized from the
  measured step times so that Tables I-III with three seeds per row fit in about 8 CPU-hours
  (docs/results-and-provenance.md).
* ``study_gpu``: the study's second budget, for a lent GPU (``scripts/gpu_study.sh``): ``short``'s schedule
  shape at HR 128, batch 16 and 3,000 iterations (16x the HR pixels of ``study``), sized so that every
  network of Tables I-III trains side by side within a few minutes of device time. Its records stay apart
  from the CPU study's (``results/study_gpu/``).
* ``smoke``: CI; seconds per model (HR 32, batch 4, 4 iterations, no validation, no perceptual).

GAN runs (Table V, ``--gan``) take the profile's data, schedule and budget and switch the loss to
ESRGAN's: 1e-2 L1 + 1 perceptual + 5e-3 relativistic-average adversarial, after ``gan_warmup`` pixel-only
iterations (ESRGAN pre-trains its generator on L1; the warm-up plays that role; the study gives it half of
each Table V run); the adversarial stage then starts a new Adam at ESRGAN's adversarial learning rate,
``gan_lr`` = 1e-4 (:mod:`ibmdn.train.gan` says what happened without both). ESRGAN's perceptual
term is the L1 distance of VGG19 ``conv5_4`` features before activation; VGG19 has no offline source
here (docs/protocol.md), so the GAN uses VGG16 ``conv5_3`` before activation: a documented deviation.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomllib

from ibmdn.errors import IbmdnError

if TYPE_CHECKING:
    import torch

PROFILE_NAMES = ("smoke", "short", "study", "study_gpu", "paper")


class ConfigError(IbmdnError):
    """A training recipe that cannot be used: unknown profile or field, wrong type, impossible value."""


@dataclass(frozen=True)
class TrainConfig:
    """A complete training recipe (every field recorded with the results).

    Attributes:
        profile: name of the profile the recipe started from.
        train_sets: comma-separated training sets under ``<data root>/train``; ``auto`` = DIV2K when it
            is there, else T91 + BSD200 (whichever exist).
        patch_size: HR patch side (a multiple of the scale); images smaller than it are left out.
        batch_size: global batch (split evenly over DDP processes).
        augment: random flips and 90-degree rotations (the 8 symmetries of the square).
        workers: data-loader worker processes; -1 = auto (0 on CPU, min(8, cores) on CUDA).
        iterations: optimiser steps of the run.
        lr: peak learning rate (Adam).
        betas: Adam's (beta1, beta2).
        weight_decay: Adam weight decay.
        schedule: ``step`` (``lr * gamma ** (step // lr_step)``) or ``cosine`` (to ``lr * min_lr_ratio``).
        lr_step: iterations between halvings (``step`` schedule).
        lr_gamma: factor applied every ``lr_step`` iterations.
        warmup: linear warm-up iterations.
        min_lr_ratio: final lr of the cosine schedule, as a fraction of ``lr``.
        grad_clip: clip the gradient norm to this value (0: off).
        l1_weight: weight of the L1 pixel loss.
        perceptual_weight: weight of the perceptual (feature) loss; 0 disables it.
        perceptual_backbone: ``vgg16`` (torchvision's cache or ``ibmdn weights prepare-lpips``);
            ``vgg16-random`` only for tests (random weights, recorded as such).
        perceptual_layer: feature layer, e.g. ``relu2_2`` (Johnson) or ``conv5_3`` (pre-activation).
        perceptual_criterion: ``mse`` (Johnson's feature reconstruction loss) or ``l1`` (ESRGAN).
        bsconv_s_weight: weight of the BSConv-S orthonormality regulariser (0.1 in the BSConv paper; 0 in
            every profile: the IBMD networks use BSConv-U and the paper's loss is L1 + perceptual. It
            applies only to networks with BSConv-S, e.g. DepthIBN).
        gan: train the Table V GAN pair named by ``--model`` instead of a plain SR network.
        gan_pixel_weight / gan_perceptual_weight / gan_adv_weight: ESRGAN's loss weights.
        gan_perceptual_layer / gan_perceptual_criterion: the GAN's perceptual term (see module docstring).
        gan_warmup: pixel-only generator iterations before the adversarial phase (D idle).
        gan_lr: with ``gan_warmup``: the learning rate at the first adversarial step; from there the schedule
            keeps its shape, scaled to start at ``gan_lr`` (D's by the same factor). ESRGAN's adversarial
            stage runs at 1e-4 (its L1 stage at 2e-4). 0: the schedule runs on unscaled.
        d_lr: discriminator learning rate (0: same as ``lr``); it follows the same schedule.
        val_set: benchmark set validated on (PSNR-Y through :func:`ibmdn.evaluate.evaluate`).
        bn_recalibrate: before each validation, re-estimate every BatchNorm's running statistics over
            this many batches of fixed training patches (precise BN; 0: keep the running averages).
            The re-estimated statistics are what the run saves (``best``, ``last``, ``final``).
        val_every: validate every this many iterations and at the end (0: never).
        log_every: CSV log interval (losses averaged over the interval).
        ckpt_every: write ``last.pth`` every this many iterations (and at the end).
        seed: seeds the weights, the data order, the crops and the augmentations.
        amp: ``none`` or ``bf16`` (autocast; a GPU option, it also runs on CPU).
        channels_last: NHWC memory format for model and batches (every operator, the involution's
            ``fused`` application included, keeps it). ``None`` (the default) picks per device
            (:func:`for_device`): channels-last on CPU (the faster training step for the IBMD networks on
            the CPUs measured, docs/RESULTS.md, training speed), NCHW on GPUs (not measured as a default);
            a resumed run keeps the layout it was started with.
        compile: ``torch.compile`` the training forward (GPU option; needs a working compiler).
        involution_impl: ``auto`` (``fused`` on CPU, the model's own on CUDA), ``unfold``, ``shift`` or
            ``fused`` (:mod:`ibmdn.ops.involution`): the three compute the same function. ``fused``
            has a hand-written shift-and-accumulate backward and keeps a channels-last layout;
            under ``compile`` it runs the ``shift`` form.
        threads: ``torch.set_num_threads`` (0: leave torch's default).
        model_kwargs: extra keyword arguments for ``build_model`` (e.g. a tiny model for tests).
        init_weights: a state dict (e.g. another run's ``final.pth``) whose tensors initialise every
            parameter and buffer of the same name and shape; the others (e.g. the upsampler of another
            scale) keep their fresh initialisation. The usual way to train x3/x4 from an x2 network's body.
    """

    profile: str = "paper"
    # data
    train_sets: str = "auto"
    patch_size: int = 192
    batch_size: int = 16
    augment: bool = True
    workers: int = -1
    # optimisation
    iterations: int = 1_000_000
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "step"
    lr_step: int = 200_000
    lr_gamma: float = 0.5
    warmup: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float = 0.0
    # losses
    l1_weight: float = 1.0
    perceptual_weight: float = 1e-3
    perceptual_backbone: str = "vgg16"
    perceptual_layer: str = "relu2_2"
    perceptual_criterion: str = "mse"
    bsconv_s_weight: float = 0.0
    # GAN (Table V)
    gan: bool = False
    gan_pixel_weight: float = 1e-2
    gan_perceptual_weight: float = 1.0
    gan_adv_weight: float = 5e-3
    gan_perceptual_layer: str = "conv5_3"
    gan_perceptual_criterion: str = "l1"
    gan_warmup: int = 0
    gan_lr: float = 1e-4
    d_lr: float = 0.0
    # validation, logging, checkpoints
    val_set: str = "Set5"
    val_every: int = 5000
    bn_recalibrate: int = 0
    log_every: int = 100
    ckpt_every: int = 1000
    seed: int = 0
    # speed options (channels_last and involution_impl change only the summation order, amp the precision)
    amp: str = "none"
    channels_last: bool | None = None
    compile: bool = False
    involution_impl: str = "auto"
    threads: int = 0
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    init_weights: str = ""

    def __post_init__(self) -> None:
        checks = [
            (self.profile in PROFILE_NAMES, f"profile must be one of {PROFILE_NAMES}"),
            (self.patch_size >= 2, "patch_size must be >= 2"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.iterations >= 1, "iterations must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (
                len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
                "betas must be two numbers in [0, 1)",
            ),
            (self.schedule in ("step", "cosine"), "schedule must be 'step' or 'cosine'"),
            (self.lr_step >= 1, "lr_step must be >= 1"),
            (0 < self.lr_gamma <= 1, "lr_gamma must be in (0, 1]"),
            (self.warmup >= 0 and self.gan_warmup >= 0, "warm-up lengths must be >= 0"),
            (0 <= self.min_lr_ratio <= 1, "min_lr_ratio must be in [0, 1]"),
            (
                min(
                    self.l1_weight,
                    self.perceptual_weight,
                    self.bsconv_s_weight,
                    self.gan_pixel_weight,
                    self.gan_perceptual_weight,
                    self.gan_adv_weight,
                    self.grad_clip,
                    self.d_lr,
                    self.gan_lr,
                )
                >= 0,
                "loss weights, grad_clip, d_lr and gan_lr must be >= 0",
            ),
            (
                self.perceptual_criterion in ("mse", "l1") and self.gan_perceptual_criterion in ("mse", "l1"),
                "perceptual criteria must be 'mse' or 'l1'",
            ),
            (
                self.perceptual_backbone in ("vgg16", "vgg16-random"),
                "perceptual_backbone must be 'vgg16' (or 'vgg16-random' for tests)",
            ),
            (
                self.val_every >= 0 and self.log_every >= 1 and self.ckpt_every >= 1 and self.bn_recalibrate >= 0,
                "val_every and bn_recalibrate must be >= 0, log_every and ckpt_every >= 1",
            ),
            (self.amp in ("none", "bf16"), "amp must be 'none' or 'bf16'"),
            (
                self.involution_impl in ("auto", "unfold", "shift", "fused"),
                "involution_impl must be auto, unfold, shift or fused",
            ),
            (self.threads >= 0 and self.workers >= -1, "threads must be >= 0 and workers >= -1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"bad training config: {msg}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def budget(self) -> dict[str, Any]:
        """What the run costs, in the units every profile shares (recorded with every result)."""
        return {
            "profile": self.profile,
            "iterations": self.iterations,
            "batch_size": self.batch_size,
            "patch_size": self.patch_size,
            "hr_pixels_seen": self.iterations * self.batch_size * self.patch_size**2,
        }


PROFILES: dict[str, TrainConfig] = {
    "paper": TrainConfig(profile="paper"),
    "short": TrainConfig(
        profile="short",
        patch_size=64,
        batch_size=8,
        iterations=1500,
        lr=1e-3,
        schedule="cosine",
        warmup=50,
        min_lr_ratio=0.01,
        perceptual_weight=0.0,
        bsconv_s_weight=0.0,
        val_every=250,
        bn_recalibrate=25,
        log_every=25,
        ckpt_every=100,
    ),
    "smoke": TrainConfig(
        profile="smoke",
        patch_size=32,
        batch_size=4,
        iterations=4,
        lr=5e-4,
        schedule="cosine",
        perceptual_weight=0.0,
        val_every=0,
        log_every=1,
        ckpt_every=2,
        gan_perceptual_weight=1.0,
    ),
}

PROFILES["study"] = dataclasses.replace(PROFILES["short"], profile="study", channels_last=True, threads=1)
PROFILES["study_gpu"] = dataclasses.replace(PROFILES["short"], profile="study_gpu", patch_size=128, batch_size=16,
                                            iterations=3000, warmup=100, val_every=1000, ckpt_every=250)

_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)


def _coerce(name: str, value: Any) -> Any:
    """Check/convert one override to the field's type (TOML gives ints for floats, lists for tuples)."""
    hint = _HINTS[name]
    bad = ConfigError(f"config field {name!r}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint == (bool | None):
        if value is not None and not isinstance(value, bool):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) for v in value):
            raise bad
        return tuple(float(v) for v in value)
    if typing.get_origin(hint) is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    raise bad  # pragma: no cover - every field type is handled above


def with_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``cfg`` with ``overrides`` applied (unknown fields and wrong types raise :class:`ConfigError`)."""
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown}; known: {', '.join(_FIELDS)}")
    if "profile" in overrides and overrides["profile"] != cfg.profile:
        raise ConfigError("'profile' cannot be overridden in a config file; use --profile")
    return dataclasses.replace(cfg, **{k: _coerce(k, v) for k, v in overrides.items()})


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The overrides of a TOML file (flat fields plus an optional ``[model_kwargs]`` table)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None
    return data


def resolve_config(
    profile: str, config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Profile, then the TOML file, then the command-line ``overrides`` (``None`` values ignored)."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
    cfg = PROFILES[profile]
    if config_file:
        cfg = with_overrides(cfg, read_config_file(config_file))
    if overrides:
        cfg = with_overrides(cfg, {k: v for k, v in overrides.items() if v is not None})
    return cfg


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a recorded recipe (from a checkpoint or ``config.json``)."""
    profile = data.get("profile", "paper")
    if profile not in PROFILES:
        raise ConfigError(f"recorded config has an unknown profile {profile!r}")
    return with_overrides(PROFILES[profile], {k: v for k, v in data.items() if k != "profile"})


def for_device(cfg: TrainConfig, device: torch.device, saved: TrainConfig | None = None) -> TrainConfig:
    """``cfg`` with its device-dependent defaults fixed, as a run records it: ``channels_last=None`` becomes
    the ``saved`` run's layout (a resumed run keeps the one it was started with, also one started before
    this default existed), else ``True`` on CPU and ``False`` on other devices."""
    if cfg.channels_last is not None:
        return cfg
    layout = saved.channels_last if saved is not None else None
    return dataclasses.replace(cfg, channels_last=device.type == "cpu" if layout is None else layout)


# fields that may differ between a run and its resumption (they do not change the numbers)
RESUMABLE_CHANGES = ("workers", "threads", "log_every", "ckpt_every", "val_every", "compile")


def resume_differences(saved: TrainConfig, now: TrainConfig) -> list[str]:
    """Fields whose change would make a resumed run differ from an uninterrupted one."""
    a, b = saved.to_dict(), now.to_dict()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if k not in RESUMABLE_CHANGES and a[k] != b[k]]
