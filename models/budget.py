"""The anomaly detector's alert budget: a threshold that follows each collection's own scores.

A model's calibrated threshold is right only for traffic like its training
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
