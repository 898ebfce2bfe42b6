"""The anomaly detector: trades unlike the honest trading the forest was fitted on, within an alert budget.

The forest ranks trades; the alert budget (`AlertBudget`) decides how many of
the highest-ranked alert: at most `anomaly.budget` of each collection's scored
trades, above the collection's own recent score quantile, after a warm-up.
Both live here because a snapshot may hold only classes of the state modules
the worker's restricted unpickler allows (streams/statecodec.py).

Why a budget: a model's calibrated threshold is right only for traffic like its training
data; on another platform (other prices, other habits) every trade may sit
above it. So the alert threshold is the collection's own recent score
distribution: a streaming (1 - budget) quantile in event time, kept as an
exponentially decayed histogram of scores. A trade alerts only when

1. its collection has seen `warmup_trades` scored trades (a quantile of a few
   dozen scores means nothing, so small collections stay quiet);
2. its score reaches both the model's score floor and the collection's
   quantile threshold (the top bins holding at most `budget` of the weight);
3. the collection still has a whole alert of allowance: each scored trade
   earns `budget` of an alert, saved up to `burst`, and each alert spends one.

Rule 3 is the guarantee: no collection alerts on more than `budget` of its
scored trades, on any stream, however shifted, so neither does a platform.
Everything is keyed by collection, so the state is the same whichever worker
partition sees a collection's trades, and file replay and the Kafka workers
raise the same alerts. State is plain data: one list per collection,
`[counts (numpy float64 array), reference time, scored trades, allowance]`.
"""

from __future__ import annotations

import math

import numpy as np

from amlwatch.alerts import Alert
from amlwatch.config import DAY, AnomalyConfig, Config
from amlwatch.detectors.base import Detector, TradeView
from amlwatch.events import TradeEvent

from .artifact import DEFAULT_MODEL_DIR, AnomalyModel, load_model
from .features import FEATURE_NAMES, FeatureExtractor

EVIDENCE_FEATURES = 4
MAX_ALERT_SCORE = 0.85
"""An anomaly is a lead for an analyst, never proof: its alerts stop at `high` severity."""
BINS = 500
"""Anomaly scores lie in (0, 1]; bins 0.002 wide."""
RESCALE_AT = 1e12
"""Decay is applied lazily: new weights grow as exp(rate * t) until they pass this and are rescaled."""

COUNTS, T_REF, SEEN, ALLOWANCE = range(4)


class AlertBudget:
    """Per-collection streaming score quantile and alert allowance; `decide` once per scored trade."""

    def __init__(self, budget: float, *, warmup_trades: int, half_life: float, burst: float, floor: float):
        if not 0 < budget < 0.5:
            raise ValueError(f"budget must be in (0, 0.5), got {budget}")
        self.budget = budget
        self.warmup_trades = warmup_trades
        self.rate = math.log(2) / half_life
        self.burst = burst
        self.floor = floor
        self.collections: dict[str, list] = {}

    def decide(self, collection_id: str, score: float, now: float) -> tuple[bool, float]:
        """Whether this trade alerts and the threshold it was held against; then record its score."""
        state = self.collections.get(collection_id)
        if state is None:
            state = self.collections[collection_id] = [np.zeros(BINS), now, 0, 0.0]
        state[ALLOWANCE] = min(self.burst, state[ALLOWANCE] + self.budget)
        threshold = 1.0
        alert = False
        if state[SEEN] >= self.warmup_trades and score >= self.floor and state[ALLOWANCE] >= 1.0:
            threshold = max(self.floor, self.threshold(collection_id))
            alert = score >= threshold
            if alert:
                state[ALLOWANCE] -= 1.0
        self._record(state, score, now)
        return alert, threshold

    def threshold(self, collection_id: str) -> float:
        """The lowest score whose bin and every bin above it hold at most `budget` of the weight."""
        state = self.collections.get(collection_id)
        if state is None:
            return 1.0
        counts = state[COUNTS]
        total = counts.sum()
        if total <= 0:
            return 1.0
        tail = np.cumsum(counts[::-1])
        top_bins = int(np.searchsorted(tail, self.budget * total, side="right"))
        return (BINS - top_bins) / BINS

    def _record(self, state: list, score: float, now: float) -> None:
        weight = math.exp(self.rate * (now - state[T_REF]))
        if weight > RESCALE_AT:
            state[COUNTS] /= weight
            state[T_REF] = now
            weight = 1.0
        state[COUNTS][min(max(int(score * BINS), 0), BINS - 1)] += weight
        state[SEEN] += 1


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

    batched = True
    """Scoring one row costs the forest a pass over every internal node (about 25 us, twice that with
    the detectors' state between calls in the cache); a batch costs about 4 us a row. Features are still
    taken trade by trade (`stage`), the budget decided trade by trade (`settle`)."""

    def observe(self, view: TradeView) -> list[Alert]:
        staged = self.stage(view)
        return [] if staged is None else self.settle([staged])[0]

    def stage(self, view: TradeView) -> tuple[TradeEvent, list[float]] | None:
        row = self.features.observe(view)
        return None if row is None else (view.trade, row)

    def settle(self, staged: list[tuple[TradeEvent, list[float]]]) -> list[list[Alert]]:
        """Scores equal to `score_one`'s, bit for bit (tests/models/test_forest.py), in one forest pass."""
        if len(staged) == 1:
            scores = [self.model.anomaly_score(staged[0][1])]
        else:
            scores = self.model.anomaly_scores(np.array([row for _, row in staged])).tolist()
        return [self._decide(trade, row, score) for (trade, row), score in zip(staged, scores)]

    def _decide(self, trade: TradeEvent, row: list[float], score: float) -> list[Alert]:
        alert, threshold = self.budget.decide(trade.collection_id, score, trade.t)
        if not alert:
            return []
        unusual = self.explain(np.array(row, dtype=np.float64))
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
