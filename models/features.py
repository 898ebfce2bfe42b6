"""The anomaly model's feature vector: fixed, named, versioned, scale-free, from event-time state only.

`FeatureExtractor.extract(view)` is the one function that training, file
replay and the Faust workers all call, so a model scores in production exactly
the vectors it was trained on. State is a handful of exponentially decaying
counters and levels, a bounded window of recent prices per collection (its
floor) and each token's market level when it last changed hands, all keyed
within the trade's collection (an account's activity *in this collection*), so
the whole state of one trade lives with its collection's partition in the
streaming service. O(1) per trade (the floor: O(window)); keys idle for longer
than their horizon are evicted.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from amlwatch.config import DAY, HOUR, LinkConfig
from amlwatch.detectors.base import TradeView
from amlwatch.detectors.wash import LinkedPartiesDetector

FEATURE_VERSION = "trade-features/3"
FEATURE_NAMES = (
    "log_price_over_floor",
    "log_price_over_top",
    "log_markup",
    "log_markup_over_market",
    "log_hold_over_typical",
    "buyer_share_24h_in_collection",
    "seller_share_24h_in_collection",
    "pair_share_30d_in_collection",
    "link_strength",
    "log_collection_rate_ratio",
    "buyer_kyc",
    "seller_kyc",
    "payer_is_buyer",
)
"""Every feature is scale-free: prices relative to the collection's current market (its level and
floor) or to the token's own last price, activity as a share of the collection's, holding time
against the collection's typical one. No absolute CNY, no issue price, no account age: a model
trained on one platform then ranks trades the same way on another whose prices are 100x higher."""
N_FEATURES = len(FEATURE_NAMES)


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

    def set(self, key, now: float, value: float) -> None:
        """Replace the key's level (a value remembered, not averaged)."""
        self._levels[key] = (value, now)
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


class RecentPrices:
    """A collection's last `size` log prices (bounded, in event order): its floor and its top."""

    __slots__ = ("size", "_prices")

    MIN_PRICES = 8

    def __init__(self, size: int = 64):
        self.size = size
        self._prices: dict = {}

    def quantile(self, key, q: float) -> float | None:
        prices = self._prices.get(key)
        if not prices or len(prices) < self.MIN_PRICES:
            return None
        ranked = sorted(prices)
        return ranked[int(q * (len(ranked) - 1))]

    def add(self, key, log_price: float) -> None:
        prices = self._prices.setdefault(key, deque(maxlen=self.size))
        prices.append(log_price)


FLOOR_QUANTILE = 0.1
TOP_QUANTILE = 0.95


class FeatureExtractor:
    """Event-time state behind the feature vector; `extract` then `update` per trade."""

    def __init__(self):
        self.account_trades = DecayingCounts(half_life=12 * HOUR, horizon=3 * DAY)
        self.account_month = DecayingCounts(half_life=15 * DAY, horizon=60 * DAY)
        self.pair_trades = DecayingCounts(half_life=15 * DAY, horizon=60 * DAY)
        self.collection_day = DecayingCounts(half_life=12 * HOUR, horizon=3 * DAY)
        self.collection_fast = DecayingCounts(half_life=1 * HOUR, horizon=1 * DAY)
        self.collection_slow = DecayingCounts(half_life=3 * DAY, horizon=14 * DAY)
        self.levels = PriceLevels(half_life=2 * DAY, horizon=30 * DAY)
        self.holds = PriceLevels(half_life=7 * DAY, horizon=60 * DAY)
        """The collection's typical log(1 + hours held), same exponentially weighted mean."""
        self.prices = RecentPrices()
        self.token_levels = PriceLevels(half_life=DAY, horizon=90 * DAY)
        """Per token: the collection's level when the token last changed hands with money."""
        self.links = LinkedPartiesDetector(LinkConfig())

    def extract(self, view: TradeView) -> np.ndarray:
        """The feature vector of `view.trade` given the state before it."""
        trade, buyer, seller, bought = view.trade, view.buyer, view.seller, view.acquisition
        now = trade.t
        collection_id = trade.collection_id
        log_price = math.log1p(float(trade.price))
        level = self.levels.level(collection_id)
        floor = self.prices.quantile(collection_id, FLOOR_QUANTILE)
        top = self.prices.quantile(collection_id, TOP_QUANTILE)
        typical_hold = self.holds.level(collection_id)
        hold = None if bought is None else math.log1p(max(now - bought.t, 0.0) / HOUR)
        markup = markup_over_market = 0.0
        if bought is not None and bought.kind == "secondary" and bought.paid:
            # A primary sale is at the issuer's flat price, which says nothing of a rare token's value.
            markup = log_price - math.log1p(float(bought.price))
            then = self.token_levels.level((collection_id, trade.token_id))
            if then is not None and level is not None:
                markup_over_market = markup - (level - then)
        pair = (trade.buyer_id, trade.seller_id) if trade.buyer_id < trade.seller_id else (trade.seller_id, trade.buyer_id)
        day = self.collection_day.value(collection_id, now) + 1.0
        pair_count = self.pair_trades.value((collection_id, pair), now)
        quieter = min(self.account_month.value((collection_id, trade.buyer_id), now),
                      self.account_month.value((collection_id, trade.seller_id), now))
        fast = self.collection_fast.value(collection_id, now)
        slow = self.collection_slow.value(collection_id, now)
        return np.array((
            0.0 if floor is None else log_price - floor,
            0.0 if top is None else max(log_price - top, 0.0),
            markup,
            markup_over_market,
            0.0 if hold is None or typical_hold is None else hold - typical_hold,
            self.account_trades.value((collection_id, trade.buyer_id), now) / day,
            self.account_trades.value((collection_id, trade.seller_id), now) / day,
            pair_count / (quieter + 1.0),
            sum(self.links.find_links(view).values()),
            math.log((fast + 1.0) / (slow * HOUR / (3 * DAY) + 1.0)),
            -1.0 if buyer is None else float(buyer.kyc_level),
            -1.0 if seller is None else float(seller.kyc_level),
            _payer_is_buyer(view),
        ), dtype=np.float64)

    def update(self, view: TradeView) -> None:
        trade, bought = view.trade, view.acquisition
        now = trade.t
        collection_id = trade.collection_id
        pair = (trade.buyer_id, trade.seller_id) if trade.buyer_id < trade.seller_id else (trade.seller_id, trade.buyer_id)
        for account in (trade.buyer_id, trade.seller_id):
            self.account_trades.add((collection_id, account), now)
            self.account_month.add((collection_id, account), now)
        self.pair_trades.add((collection_id, pair), now)
        self.collection_day.add(collection_id, now)
        self.collection_fast.add(collection_id, now)
        self.collection_slow.add(collection_id, now)
        if bought is not None and trade.kind == "secondary":
            self.holds.add(collection_id, now, math.log1p(max(now - bought.t, 0.0) / HOUR))
        if trade.paid:
            log_price = math.log1p(float(trade.price))
            self.levels.add(collection_id, now, log_price)
            self.prices.add(collection_id, log_price)
            level = self.levels.level(collection_id)
            self.token_levels.set((collection_id, trade.token_id), now, level)

    def evict(self, now: float) -> None:
        for state in (self.account_trades, self.account_month, self.pair_trades, self.collection_day,
                      self.collection_fast, self.collection_slow, self.levels, self.holds, self.token_levels):
            state.evict(now)


def _payer_is_buyer(view: TradeView) -> float:
    """1 when the buyer's own name or bound instrument paid, 0 when not, 0.5 when unknown."""
    trade, buyer = view.trade, view.buyer
    if not trade.paid or buyer is None or not trade.payer_name_hash:
        return 0.5
    if trade.payer_name_hash == buyer.name_hash or trade.instrument_hash in buyer.cards:
        return 1.0
    return 0.0
