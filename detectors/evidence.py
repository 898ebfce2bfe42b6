"""Combining a detector's evidence into one score, so the alert queue sorts by what matters.

Each signal is a strength in [0, 1] (how strongly one kind of evidence points
at the typology) with a weight saying how much that kind counts for this
detector. The score is `base + sum(weight * strength)`, capped at 0.99: the
base is what the pattern alone is worth, every signal adds on top. Weights
and bases are per detector in docs/DETECTORS.md; the strengths go into the
alert's `evidence.signals` so an analyst sees why it ranks where it does.
"""

from __future__ import annotations

import math


class Evidence:
    __slots__ = ("base", "signals", "_weights")

    def __init__(self, base: float):
        self.base = base
        self.signals: dict[str, float] = {}
        self._weights: dict[str, float] = {}

    def add(self, name: str, weight: float, strength: float) -> "Evidence":
        self.signals[name] = round(min(1.0, max(0.0, strength)), 3)
        self._weights[name] = weight
        return self

    @property
    def score(self) -> float:
        return min(0.99, self.base + sum(self._weights[n] * s for n, s in self.signals.items()))


def falling(value: float, strong: float, weak: float) -> float:
    """1 at or below `strong`, 0 at or above `weak`, linear in log between (for times and ratios)."""
    if value <= strong:
        return 1.0
    if value >= weak:
        return 0.0
    return 1.0 - math.log(value / strong) / math.log(weak / strong)


def rising(value: float, weak: float, strong: float) -> float:
    """0 at or below `weak`, 1 at or above `strong`, linear in log between."""
    if value <= weak:
        return 0.0
    if value >= strong:
        return 1.0
    return math.log(value / weak) / math.log(strong / weak)


def young(account_t: float | None, trade_t: float, days: float) -> float:
    """How new an account is at a trade: 1 when registered that day, 0 from `days` old (or unknown)."""
    if account_t is None:
        return 0.0
    age_days = max(trade_t - account_t, 0.0) / 86_400.0
    return max(0.0, 1.0 - age_days / days) if days > 0 else 0.0
