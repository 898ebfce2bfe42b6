"""The anomaly detector: trades unlike the honest trading the forest was fitted on."""

from __future__ import annotations

import numpy as np

from amlwatch.alerts import Alert
from amlwatch.config import Config
from amlwatch.detectors.base import Detector, TradeView

from .artifact import DEFAULT_MODEL_DIR, AnomalyModel, load_model
from .features import FEATURE_NAMES, FeatureExtractor, is_scored

EVIDENCE_FEATURES = 4
MAX_ALERT_SCORE = 0.85
"""An anomaly is a lead for an analyst, never proof: its alerts stop at `high` severity."""


class IsolationForestDetector(Detector):
    """Scores every trade; alerts when the anomaly score reaches the calibrated threshold."""

    name = "anomaly.isolation_forest"
    typology = "anomaly"

    def __init__(self, model: AnomalyModel, threshold: float | None = None):
        self.model = model
        self.model_id = model.model_id
        self.threshold = model.threshold if threshold is None else threshold
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
        if score < self.threshold:
            return []
        trade = view.trade
        unusual = self.explain(x)
        named = ", ".join(f"{u['feature']} = {u['value']:.3g} (training {u['p01']:.3g} to {u['p99']:.3g})"
                          for u in unusual[:2])
        reason = (
            f"Trade {trade.trade_id} looks unlike honest trading (anomaly score {score:.3f}, "
            f"threshold {self.threshold:.3f}); most unusual: {named or 'a combination of features'}."
        )
        evidence = {"anomaly_score": round(score, 4), "threshold": round(self.threshold, 4),
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
    return IsolationForestDetector(load_model(directory), config.anomaly.threshold)
