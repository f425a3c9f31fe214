"""Confidence intervals stay inside the range of the parameter they bound.

A normal-approximation interval for Cohen's kappa of a near-perfect rater reaches past 1
(1.14 was seen in a report), and a proportion's interval can leave [0, 1]; neither value
can exist. Every interval the analysis reports goes through ``clip_interval`` once."""
from __future__ import annotations

import math

KAPPA_RANGE = (-1.0, 1.0)
PROPORTION_RANGE = (0.0, 1.0)


def clip_interval(low: float, high: float, bounds: tuple[float, float]) -> tuple[float, float]:
    """(low, high) clipped to ``bounds``; NaN stays NaN (an undefined interval stays undefined)."""
    lo, hi = bounds

    def clip(x: float) -> float:
        x = float(x)
        return x if math.isnan(x) else min(max(x, lo), hi)

    return clip(low), clip(high)
