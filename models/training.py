"""Fitting the anomaly model on recorded streams.

Feature vectors are collected by running the very `Monitor` that scores live
traffic, with a recorder in place of the scorer, so training sees the state
production will see. Labelled suspicious trades can be left out so the forest
learns honest trading only.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.detectors.base import Detector, TradeView
from amlwatch.detectors.monitor import Monitor
from amlwatch.replay import replay
from amlwatch.sources import read_lines

from .artifact import AnomalyModel, content_id
from .drift import drift_category
from .features import FEATURE_NAMES, FEATURE_VERSION, FeatureExtractor
from .forest import CompiledForest

DRIFT_BINS = 10


class FeatureRecorder(Detector):
    """Records each trade's feature vector instead of scoring it."""

    name = "features.recorder"
    typology = "anomaly"

    def __init__(self):
        self.features = FeatureExtractor()
        self.rows: list[list[float]] = []
        self.trade_ids: list[str] = []

    def observe(self, view: TradeView) -> list:
        row = self.features.observe(view)
        if row is not None:
            self.rows.append(row)
            self.trade_ids.append(view.trade.trade_id)
        return []

    def evict(self, now: float) -> None:
        self.features.evict(now)


def collect_features(paths: Iterable[str | Path], config: Config | None = None,
                     progress=None) -> tuple[np.ndarray, list[str], str]:
    """Feature matrix, trade ids and a hash of the input bytes, over each stream in turn."""
    rows, trade_ids = [], []
    digest = hashlib.sha256()
    for path in paths:
        recorder = FeatureRecorder()
        monitor = Monitor(config or Config(), extra_detectors=[recorder])

        def hashed(records):
            for number, raw in records:
                digest.update(raw + b"\n")
                yield number, raw

        replay(hashed(read_lines(path)), monitor, lambda alerts: None, DeadLetterFile(None),
               source=str(path), progress=progress)
        rows.extend(recorder.rows)
        trade_ids.extend(recorder.trade_ids)
    X = np.array(rows, dtype=np.float64) if rows else np.empty((0, len(FEATURE_NAMES)))
    return X, trade_ids, "sha256:" + digest.hexdigest()


def fit_model(X: np.ndarray, *, data_hash: str, seed: int = 0, contamination: float = 0.001,
              n_estimators: int = 100, max_samples: int = 256) -> AnomalyModel:
    """Fit, compile, and calibrate the alert threshold at the training set's (1 - contamination) quantile."""
    if len(X) < max_samples:
        raise ValueError(f"need at least {max_samples} training trades, got {len(X)}")
    if not 0 < contamination < 0.5:
        raise ValueError(f"contamination must be in (0, 0.5), got {contamination}")
    params = {"n_estimators": n_estimators, "max_samples": max_samples, "random_state": seed,
              "contamination": "auto", "max_features": 1.0, "bootstrap": False}
    forest = CompiledForest.from_sklearn(IsolationForest(**params).fit(X))
    scores = -forest.score_samples(X)
    threshold = float(np.quantile(scores, 1.0 - contamination, method="higher"))
    metadata = {
        "feature_version": FEATURE_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "training_data_hash": data_hash,
        "training_rows": int(len(X)),
        "sklearn_version": sklearn.__version__,
        "params": params,
        "contamination": contamination,
        "threshold": threshold,
        "quantiles": {name: np.quantile(X, q, axis=0).round(6).tolist()
                      for name, q in (("p01", 0.01), ("p50", 0.5), ("p99", 0.99))},
        "drift_bins": drift_bins(X),
        "drift_bins_format": "point-mass/1",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    metadata["id"] = content_id(forest, metadata)
    return AnomalyModel(forest, metadata)


def drift_bins(X: np.ndarray) -> list[dict]:
    """Per feature: decile edges of the training data and the share of rows in each category.

    Categories are "below edge i" and "exactly on edge i" for each edge, plus "above the last"
    (`drift.drift_category`), so a point mass (a feature that is 0 for most trades) is a category of its
    own: a feature whose training data sits on one value is compared as "on it" against "below" and
    "above", not lumped with everything at or above it, where any stream would look stable.
    """
    bins = []
    for column in X.T:
        # Edges are stored rounded and shares counted against the stored edges, so a point mass on an
        # edge falls in the same category in training and in the drift report.
        edges = np.unique(np.quantile(column, np.linspace(0, 1, DRIFT_BINS + 1)[1:-1]).round(9))
        counts = np.bincount(drift_category(edges, column), minlength=2 * len(edges) + 1)
        bins.append({"edges": edges.tolist(), "shares": (counts / len(column)).round(9).tolist()})
    return bins


def train(paths: list[str | Path], out: str | Path, *, seed: int = 0, contamination: float = 0.001,
          exclude_trade_ids: set[str] | None = None, config: Config | None = None, progress=None) -> AnomalyModel:
    X, trade_ids, data_hash = collect_features(paths, config, progress)
    if exclude_trade_ids:
        keep = np.array([t not in exclude_trade_ids for t in trade_ids], dtype=bool)
        X = X[keep]
    model = fit_model(X, data_hash=data_hash, seed=seed, contamination=contamination)
    model.save(out)
    return model
