"""Drift bins: training data compared with itself shows no drift, point masses on edges included."""

from __future__ import annotations

import math

import numpy as np

from amlwatch.models.drift import population_stability
from amlwatch.models.features import FEATURE_NAMES, UNKNOWN_HOURS_HELD
from amlwatch.models.training import drift_bins


class _Model:
    def __init__(self, X):
        self.metadata = {"drift_bins": drift_bins(X)}


def test_a_point_mass_on_a_rounded_edge_falls_in_the_same_bin_when_stored_and_when_compared():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, len(FEATURE_NAMES)))
    # Most trades have no known acquisition, so log_hours_held sits on one value that becomes an edge.
    X[:1500, FEATURE_NAMES.index("log_hours_held")] = math.log1p(UNKNOWN_HOURS_HELD)
    report = population_stability(_Model(X), X)
    assert max(report.psi.values()) < 1e-6, report.psi
