"""Has live traffic moved away from what the model was trained on?

Population stability index per feature, against the training deciles stored
in the model: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 significant.
Values exactly on an edge form their own category (`drift_category`),
so a feature that was a point mass in training (one edge) drifts as soon as
live traffic leaves that value, instead of always reading "stable".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .artifact import AnomalyModel, ModelError
from .features import FEATURE_NAMES

MODERATE = 0.1
SIGNIFICANT = 0.25
EPSILON = 1e-4


def drift_category(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """2i for values between edge i-1 and edge i (exclusive), 2i+1 for values exactly on edge i."""
    below = np.searchsorted(edges, values, side="left")
    on_edge = (below < len(edges)) & (edges[np.minimum(below, len(edges) - 1)] == values)
    return 2 * below + on_edge


@dataclass
class DriftReport:
    psi: dict[str, float]
    rows: int

    @property
    def significant(self) -> list[str]:
        return [name for name, value in self.psi.items() if value > SIGNIFICANT]

    @property
    def moderate(self) -> list[str]:
        return [name for name, value in self.psi.items() if MODERATE < value <= SIGNIFICANT]

    @property
    def retrain(self) -> bool:
        return bool(self.significant) or len(self.moderate) >= 3

    def verdict(self) -> str:
        if self.retrain:
            drifted = self.significant or self.moderate
            return (f"Retrain: {len(drifted)} feature(s) drifted from the training data "
                    f"({', '.join(drifted)}).")
        if self.moderate:
            return f"Keep the model, but watch {', '.join(self.moderate)} (moderate drift)."
        return "Keep the model: every feature is distributed as in the training data."

    def table(self) -> str:
        lines = [f"{'feature':<34}{'PSI':>8}  level", "-" * 54]
        for name, value in self.psi.items():
            level = "significant" if value > SIGNIFICANT else "moderate" if value > MODERATE else "stable"
            lines.append(f"{name:<34}{value:>8.3f}  {level}")
        lines.append(f"\n{self.rows:,} trades compared. {self.verdict()}")
        return "\n".join(lines)


def population_stability(model: AnomalyModel, X: np.ndarray) -> DriftReport:
    psi = {}
    for index, (name, bins) in enumerate(zip(FEATURE_NAMES, model.metadata["drift_bins"])):
        edges = np.array(bins["edges"])
        expected = np.array(bins["shares"])
        if len(expected) != 2 * len(edges) + 1:
            raise ModelError("drift_bins", "the model's drift bins are in an older format; retrain the model")
        counts = np.bincount(drift_category(edges, X[:, index]), minlength=len(expected))
        actual = counts / max(len(X), 1)
        e = np.clip(expected, EPSILON, None)
        a = np.clip(actual, EPSILON, None)
        psi[name] = round(float(np.sum((a - e) * np.log(a / e))), 4)
    return DriftReport(psi, len(X))
