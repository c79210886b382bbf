"""The metric registry: what every table, figure and verdict needs to know about a metric, in one place.

Evaluation computes the image metrics through it (:attr:`Metric.image`), the result schemas check units
against it, tables round with its decimals, plots label axes with it, and the study's verdicts read its
direction (an LPIPS advantage is a lower value). A new metric is one entry here (and, for an image
metric, its function of ``(sr, hr, scale, protocol, gray)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ibmdn.metrics.quality import psnr, ssim


@dataclass(frozen=True)
class Metric:
    """A metric: name, axis label, unit, decimals shown, direction, and the image function if it is one."""

    name: str
    label: str
    unit: str
    decimals: int
    higher_is_better: bool | None
    image: Callable | None = None

    @property
    def sign(self) -> float:
        """+1 when higher is better, -1 when lower is (what turns a difference into an advantage)."""
        return -1.0 if self.higher_is_better is False else 1.0

    @property
    def axis(self) -> str:
        """An axis label with the unit (none for unitless metrics)."""
        return self.label + (f" ({self.unit})" if self.unit not in ("1", "count") else "")


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("psnr", "PSNR-Y", "dB", 3, True, psnr),
    Metric("ssim", "SSIM-Y", "1", 4, True, ssim),
    Metric("lpips", "LPIPS", "1", 4, False),  # RGB, whole image, optional backbone: ibmdn.metrics.lpips
    Metric("params", "parameters", "count", 0, None),
)}

IMAGE_METRICS = ("psnr", "ssim")
"""Computed for every evaluated image (LPIPS on request)."""
