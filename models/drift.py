"""Has live traffic moved away from what the model was trained on?

Population stability index per feature, against the training deciles stored
in the model: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 significant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .artifact import AnomalyModel
from .features import FEATURE_NAMES

MODERATE = 0.1
SIGNIFICANT = 0.25
EPSILON = 1e-4


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
        counts = np.bincount(np.searchsorted(edges, X[:, index], side="right"), minlength=len(edges) + 1)
        actual = counts / max(len(X), 1)
        e = np.clip(expected, EPSILON, None)
        a = np.clip(actual, EPSILON, None)
        psi[name] = round(float(np.sum((a - e) * np.log(a / e))), 4)
    return DriftReport(psi, len(X))
