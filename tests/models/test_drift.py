"""Drift bins: training data compared with itself shows no drift, point masses on edges included,
and a feature that sat on one value in training drifts when traffic leaves that value."""

from __future__ import annotations

import numpy as np

from amlwatch.models.drift import population_stability
from amlwatch.models.features import FEATURE_NAMES
from amlwatch.models.training import drift_bins

PAIR = FEATURE_NAMES.index("pair_share_30d_in_collection")


class _Model:
    def __init__(self, X):
        self.metadata = {"drift_bins": drift_bins(X)}


def _training(rows=2000):
    return np.random.default_rng(0).normal(size=(rows, len(FEATURE_NAMES)))


def test_a_point_mass_on_a_rounded_edge_falls_in_the_same_bin_when_stored_and_when_compared():
    X = _training()
    # Most trades have no earlier trade of the pair, so the pair share sits on one value that becomes an edge.
    X[:1500, PAIR] = 0.0
    report = population_stability(_Model(X), X)
    assert max(report.psi.values()) < 1e-6, report.psi


def test_a_feature_constant_in_training_is_not_stable_when_traffic_moves_off_its_value():
    X = _training()
    X[:, PAIR] = 0.0
    model = _Model(X)
    assert model.metadata["drift_bins"][PAIR]["edges"] == [0.0]
    live = _training(1000)
    live[:, PAIR] = 0.0
    assert population_stability(model, live).psi[FEATURE_NAMES[PAIR]] < 1e-6
    for shifted in (0.5, -0.5):
        live[:, PAIR] = shifted
        report = population_stability(model, live)
        assert FEATURE_NAMES[PAIR] in report.significant, report.psi
        assert report.retrain


def test_a_single_edge_feature_is_compared_below_on_and_above_the_edge():
    X = _training()
    X[:, PAIR] = np.where(np.arange(len(X)) < 1900, 0.0, 1.0)
    model = _Model(X)
    bins = model.metadata["drift_bins"][PAIR]
    assert bins["edges"] == [0.0] and bins["shares"] == [0.0, 0.95, 0.05]
    live = _training(1000)
    live[:, PAIR] = np.where(np.arange(len(live)) < 500, 0.0, 1.0)
    assert FEATURE_NAMES[PAIR] in population_stability(model, live).significant
