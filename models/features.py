"""The anomaly model's feature vector: fixed, named, versioned, from event-time state only.

`FeatureExtractor.extract(view)` is the one function that training, file
replay and the Faust workers all call, so a model scores in production exactly
the vectors it was trained on. State is a handful of exponentially decaying
counters and levels, all keyed within the trade's collection (an account's
activity *in this collection*), so the whole state of one trade lives with its
collection's partition in the streaming service. O(1) per trade; keys idle
for longer than their horizon are evicted.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from amlwatch.config import DAY, HOUR, LinkConfig
from amlwatch.detectors.base import TradeView
from amlwatch.detectors.wash import LinkedPartiesDetector

FEATURE_VERSION = "trade-features/2"
FEATURE_NAMES = (
    "log_price",
    "log_price_over_level",
    "log_price_over_issue",
    "log_hours_held",
    "log_markup",
    "log_buyer_age_days",
    "log_seller_age_days",
    "buyer_trades_24h_in_collection",
    "seller_trades_24h_in_collection",
    "pair_trades_30d_in_collection",
    "link_strength",
    "log_collection_rate_ratio",
    "buyer_kyc",
    "seller_kyc",
    "payer_is_buyer",
)
N_FEATURES = len(FEATURE_NAMES)
UNKNOWN_HOURS_HELD = 24.0 * 365


class DecayingCounts:
    """Per-key counts that decay with event time (half the weight every `half_life`)."""

    __slots__ = ("rate", "horizon", "_values", "_expiry")

    def __init__(self, half_life: float, horizon: float):
        self.rate = math.log(2) / half_life
        self.horizon = horizon
        self._values: dict = {}
        self._expiry: deque = deque()

    def value(self, key, now: float) -> float:
        entry = self._values.get(key)
        if entry is None:
            return 0.0
        return entry[0] * math.exp(-self.rate * (now - entry[1]))

    def add(self, key, now: float, amount: float = 1.0) -> None:
        self._values[key] = (self.value(key, now) + amount, now)
        self._expiry.append((now, key))

    def evict(self, now: float) -> None:
        cutoff = now - self.horizon
        while self._expiry and self._expiry[0][0] < cutoff:
            _, key = self._expiry.popleft()
            entry = self._values.get(key)
            if entry is not None and entry[1] < cutoff:
                del self._values[key]

    def __len__(self) -> int:
        return len(self._values)


class PriceLevels:
    """A collection's typical log price, as an event-time exponentially weighted mean."""

    __slots__ = ("rate", "horizon", "_levels", "_expiry")

    def __init__(self, half_life: float, horizon: float):
        self.rate = math.log(2) / half_life
        self.horizon = horizon
        self._levels: dict = {}
        self._expiry: deque = deque()

    def level(self, key) -> float | None:
        entry = self._levels.get(key)
        return None if entry is None else entry[0]

    def add(self, key, now: float, log_price: float) -> None:
        entry = self._levels.get(key)
        if entry is None:
            self._levels[key] = (log_price, now)
        else:
            keep = math.exp(-self.rate * max(now - entry[1], 0.0))
            weight = max(1.0 - keep, 0.05)
            self._levels[key] = (entry[0] + weight * (log_price - entry[0]), now)
        self._expiry.append((now, key))

    def evict(self, now: float) -> None:
        cutoff = now - self.horizon
        while self._expiry and self._expiry[0][0] < cutoff:
            _, key = self._expiry.popleft()
            entry = self._levels.get(key)
            if entry is not None and entry[1] < cutoff:
                del self._levels[key]


def is_scored(view: TradeView) -> bool:
    """Only paid secondary trades are scored: the open market is where unnamed laundering hides.

    Primary sales are drops at the issuer's price and gifts move no money; the
    rules judge both, and leaving them out keeps a fast sell-out from looking
    stranger than a wash trade.
    """
    trade = view.trade
    return trade.kind == "secondary" and trade.paid


class FeatureExtractor:
    """Event-time state behind the feature vector; `extract` then `update` per trade."""

    def __init__(self):
        self.account_trades = DecayingCounts(half_life=12 * HOUR, horizon=3 * DAY)
        self.pair_trades = DecayingCounts(half_life=15 * DAY, horizon=60 * DAY)
        self.collection_fast = DecayingCounts(half_life=1 * HOUR, horizon=1 * DAY)
        self.collection_slow = DecayingCounts(half_life=3 * DAY, horizon=14 * DAY)
        self.levels = PriceLevels(half_life=2 * DAY, horizon=30 * DAY)
        self.links = LinkedPartiesDetector(LinkConfig())

    def extract(self, view: TradeView) -> np.ndarray:
        """The feature vector of `view.trade` given the state before it."""
        trade, buyer, seller, collection, bought = (
            view.trade, view.buyer, view.seller, view.collection, view.acquisition)
        now = trade.t
        price = float(trade.price)
        log_price = math.log1p(price)
        level = self.levels.level(trade.collection_id)
        issue = float(collection.issue_price) if collection is not None and collection.issue_price else 0.0
        hours_held = UNKNOWN_HOURS_HELD if bought is None else (now - bought.t) / HOUR
        if bought is not None and bought.price:
            markup = log_price - math.log1p(float(bought.price))
        else:
            markup = 0.0
        pair = (trade.buyer_id, trade.seller_id) if trade.buyer_id < trade.seller_id else (trade.seller_id, trade.buyer_id)
        fast = self.collection_fast.value(trade.collection_id, now)
        slow = self.collection_slow.value(trade.collection_id, now)
        return np.array((
            log_price,
            0.0 if level is None else log_price - level,
            0.0 if not issue else log_price - math.log1p(issue),
            math.log1p(max(hours_held, 0.0)),
            markup,
            _log_age(buyer, now),
            _log_age(seller, now),
            self.account_trades.value((trade.collection_id, trade.buyer_id), now),
            self.account_trades.value((trade.collection_id, trade.seller_id), now),
            self.pair_trades.value((trade.collection_id, pair), now),
            sum(self.links.find_links(view).values()),
            math.log((fast + 1.0) / (slow * HOUR / (3 * DAY) + 1.0)),
            -1.0 if buyer is None else float(buyer.kyc_level),
            -1.0 if seller is None else float(seller.kyc_level),
            _payer_is_buyer(view),
        ), dtype=np.float64)

    def update(self, view: TradeView) -> None:
        trade = view.trade
        now = trade.t
        pair = (trade.buyer_id, trade.seller_id) if trade.buyer_id < trade.seller_id else (trade.seller_id, trade.buyer_id)
        self.account_trades.add((trade.collection_id, trade.buyer_id), now)
        self.account_trades.add((trade.collection_id, trade.seller_id), now)
        self.pair_trades.add((trade.collection_id, pair), now)
        self.collection_fast.add(trade.collection_id, now)
        self.collection_slow.add(trade.collection_id, now)
        if trade.paid:
            self.levels.add(trade.collection_id, now, math.log1p(float(trade.price)))

    def evict(self, now: float) -> None:
        for state in (self.account_trades, self.pair_trades, self.collection_fast,
                      self.collection_slow, self.levels):
            state.evict(now)


def _log_age(account, now: float) -> float:
    if account is None:
        return -1.0
    return math.log1p(max(now - account.registered_t, 0.0) / DAY)


def _payer_is_buyer(view: TradeView) -> float:
    """1 when the buyer's own name or bound instrument paid, 0 when not, 0.5 when unknown."""
    trade, buyer = view.trade, view.buyer
    if not trade.paid or buyer is None or not trade.payer_name_hash:
        return 0.5
    if trade.payer_name_hash == buyer.name_hash or trade.instrument_hash in buyer.cards:
        return 1.0
    return 0.0
