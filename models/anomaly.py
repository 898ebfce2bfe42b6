"""The anomaly detector: trades unlike the honest trading the forest was fitted on, within an alert budget.

The forest ranks trades; the budget (models/budget.py) decides how many of the
highest-ranked alert: at most `anomaly.budget` of each collection's scored
trades, above the collection's own recent score quantile, after a warm-up.
"""

from __future__ import annotations

import numpy as np

from amlwatch.alerts import Alert
from amlwatch.config import DAY, AnomalyConfig, Config
from amlwatch.detectors.base import Detector, TradeView

from .artifact import DEFAULT_MODEL_DIR, AnomalyModel, load_model
from .budget import AlertBudget
from .features import FEATURE_NAMES, FeatureExtractor, is_scored

EVIDENCE_FEATURES = 4
MAX_ALERT_SCORE = 0.85
"""An anomaly is a lead for an analyst, never proof: its alerts stop at `high` severity."""


class IsolationForestDetector(Detector):
    """Scores every trade; alerts when the anomaly score reaches the calibrated threshold."""

    name = "anomaly.isolation_forest"
    typology = "anomaly"
    scope = "collection"
    """Features and budget are keyed by collection: stage 1 of the Kafka worker runs it."""

    def __init__(self, model: AnomalyModel, config: AnomalyConfig | None = None):
        config = config or AnomalyConfig()
        self.model = model
        self.model_id = model.model_id
        self.floor = model.threshold if config.threshold is None else config.threshold
        """No trade scoring under the model's calibrated threshold alerts, whatever the budget leaves."""
        self.budget = AlertBudget(config.budget, warmup_trades=config.warmup_trades,
                                  half_life=config.quantile_half_life_days * DAY, burst=config.burst,
                                  floor=self.floor)
        self.features = FeatureExtractor()
        quantiles = model.metadata["quantiles"]
        self._low = np.array(quantiles["p01"])
        self._mid = np.array(quantiles["p50"])
        self._high = np.array(quantiles["p99"])
        self._spread = np.maximum(self._high - self._low, 1e-9)

    def observe(self, view: TradeView) -> list[Alert]:
        if not is_scored(view):
            self.features.update(view)
            return []
        x = self.features.extract(view)
        self.features.update(view)
        score = self.model.anomaly_score(x)
        trade = view.trade
        alert, threshold = self.budget.decide(trade.collection_id, score, trade.t)
        if not alert:
            return []
        unusual = self.explain(x)
        named = ", ".join(f"{u['feature']} = {u['value']:.3g} (training {u['p01']:.3g} to {u['p99']:.3g})"
                          for u in unusual[:2])
        reason = (
            f"Trade {trade.trade_id} looks unlike honest trading (anomaly score {score:.3f}, in the top "
            f"{self.budget.budget:.1%} of {trade.collection_id}'s recent trades: threshold {threshold:.3f}); "
            f"most unusual: {named or 'a combination of features'}."
        )
        evidence = {"anomaly_score": round(score, 4), "threshold": round(threshold, 4),
                    "model_floor": round(self.floor, 4), "budget": self.budget.budget,
                    "unusual_features": unusual}
        return [self.alert(trade, min(score, MAX_ALERT_SCORE), reason, evidence)]

    def explain(self, x: np.ndarray) -> list[dict]:
        """Features outside the training p01-p99 band, furthest (in band widths) first."""
        outside = np.where(x > self._high, (x - self._high) / self._spread,
                           np.where(x < self._low, (self._low - x) / self._spread, 0.0))
        order = np.argsort(-outside, kind="stable")[:EVIDENCE_FEATURES]
        return [
            {"feature": FEATURE_NAMES[i], "value": round(float(x[i]), 4), "p01": round(float(self._low[i]), 4),
             "p50": round(float(self._mid[i]), 4), "p99": round(float(self._high[i]), 4),
             "band_widths_outside": round(float(outside[i]), 3)}
            for i in order if outside[i] > 0
        ]

    def evict(self, now: float) -> None:
        self.features.evict(now)


def load_anomaly_detector(config: Config) -> IsolationForestDetector | None:
    """The configured model, or the shipped default; None when neither exists."""
    directory = config.anomaly.model_dir or DEFAULT_MODEL_DIR
    if not config.anomaly.model_dir and not (DEFAULT_MODEL_DIR / "model.json").exists():
        return None
    return IsolationForestDetector(load_model(directory), config.anomaly)
