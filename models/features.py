"""The anomaly model's feature vector: fixed, named, versioned, scale-free, from event-time state only.

`FeatureExtractor.observe(view)` is the one function that training, file
replay and the Faust workers all call, so a model scores in production exactly
the vectors it was trained on. State is a handful of exponentially decaying
counters and levels, a bounded window of recent prices per collection (its
floor and top) and each token's market level when it last changed hands, all
keyed within the trade's collection (an account's activity *in this
collection*), so the whole state of one trade lives with its collection's
partition in the streaming service. O(1) per trade; keys idle for longer than
their horizon are evicted.

This is the hot loop of the anomaly path, so the state is a few flat records
(one list per collection, per account and per pair within a collection, per
token) rather than one window object per quantity, and each decayed value is
computed once per trade, for the feature row and the update alike. Eviction
replays exactly what a separate window per quantity did, out-of-order event
times included (`ExpiryLog`), so every value is the same float it always was.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque

from amlwatch.config import DAY, HOUR, LinkConfig
from amlwatch.detectors.base import TradeView
from amlwatch.detectors.wash import find_links

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


def _decay(half_life: float) -> float:
    """The exponent per second of event time: a weight `w` decays to `w * exp(_decay(h) * elapsed)`."""
    return -(math.log(2) / half_life)


# (decay per second, horizon) of each quantity; a key idle for longer than its horizon is forgotten.
ACCOUNT_DAY = _decay(12 * HOUR), 3 * DAY        # an account's trades in the collection, last half day
ACCOUNT_MONTH = _decay(15 * DAY), 60 * DAY      # ... over the last weeks
PAIR_MONTH = _decay(15 * DAY), 60 * DAY         # a pair's trades in the collection
COLLECTION_DAY = _decay(12 * HOUR), 3 * DAY     # the collection's trades
COLLECTION_FAST = _decay(1 * HOUR), 1 * DAY
COLLECTION_SLOW = _decay(3 * DAY), 14 * DAY
LEVEL = _decay(2 * DAY), 30 * DAY               # the collection's typical log price
HOLD = _decay(7 * DAY), 60 * DAY                # its typical log(1 + hours held)
TOKEN_HORIZON = 90 * DAY                        # a token's collection level when it last sold for money

MIN_LEVEL_WEIGHT = 0.05
"""A level moves at least this share of the way to each new value, however soon after the last."""
PRICE_WINDOW = 64
MIN_PRICES = 8
"""A collection's floor and top are read from its last `PRICE_WINDOW` log prices, once it has `MIN_PRICES`."""
FLOOR_QUANTILE = 0.1
TOP_QUANTILE = 0.95

# A collection's record: its decayed trade counts (one time, as all three move on every trade), its
# levels (each with its own time), its recent log prices in event order and the same prices sorted.
C_T, C_DAY, C_FAST, C_SLOW, C_LEVEL_T, C_LEVEL, C_HOLD_T, C_HOLD, C_PRICES, C_RANKED = range(10)
# An account's record within a collection: both of its counts move on each of its trades.
A_T, A_DAY, A_MONTH = range(3)
# A pair's (count) or a token's (level) record.
T, VALUE = range(2)

LINKS = LinkConfig()
"""The link strengths of the feature are the defaults: a deployment's link settings do not shift the model's input."""


class ExpiryLog:
    """Writes in the order they were made, read by one cursor per horizon: the eviction queues of
    several windows that are always written together, kept once.

    `expire` does what a window with its own queue did: pop the writes made before the cutoff,
    stopping at the first made after it (so a late write waits behind an earlier one, as before),
    and forget each popped key's value if its latest write is before the cutoff too. Each write
    holds its record, so a key written again since (the usual case) costs no dict lookup.
    """

    __slots__ = ("entries", "cursors")

    TRIM_AT = 4096

    def __init__(self, horizons: int):
        self.entries: list[tuple[float, object, list]] = []
        self.cursors = [0] * horizons

    def expire(self, cursor: int, cutoff: float, table: dict, t_at: int, value_at: int,
               partner: int | None) -> None:
        """Forget `record[value_at]` of the keys idle since before `cutoff`. The record is dropped from
        `table` then if `partner` is -1, or if `record[partner]` is forgotten too; never if None."""
        entries = self.entries
        i, n = self.cursors[cursor], len(entries)
        while i < n:
            t, key, record = entries[i]
            if not t < cutoff:
                break
            i += 1
            if record[t_at] >= cutoff:
                continue
            if record[t_at] == DROPPED:
                current = table.get(key)
                if current is None or current[t_at] >= cutoff:
                    continue
                record = current
            if record[value_at] is None:
                continue
            record[value_at] = None
            if partner is not None and (partner < 0 or record[partner] is None):
                del table[key]
                record[t_at] = DROPPED
        self.cursors[cursor] = i
        done = min(self.cursors)
        if done >= self.TRIM_AT and done * 2 >= n:
            del entries[:done]
            self.cursors = [c - done for c in self.cursors]


DROPPED = float("-inf")
"""The time of a record dropped from its table (a later write of its key makes a new one)."""


def is_scored(view: TradeView) -> bool:
    """Only paid secondary trades are scored: the open market is where unnamed laundering hides.

    Primary sales are drops at the issuer's price and gifts move no money; the
    rules judge both, and leaving them out keeps a fast sell-out from looking
    stranger than a wash trade.
    """
    trade = view.trade
    return trade.kind == "secondary" and trade.paid


class FeatureExtractor:
    """Event-time state behind the feature vector; `observe` once per trade, in event order."""

    state_version = 1
    """1: one flat record per collection, account, pair and token (was one window object per quantity)."""

    def __init__(self):
        self.collections: dict[str, list] = {}
        self.accounts: dict[tuple[str, str], list] = {}
        self.pairs: dict[tuple[str, str, str], list] = {}
        self.tokens: dict[tuple[str, str], list] = {}
        self.collection_log = ExpiryLog(3)   # day, fast, slow counts
        self.level_log = ExpiryLog(1)
        self.hold_log = ExpiryLog(1)
        self.account_log = ExpiryLog(2)      # day, month counts
        self.pair_log = ExpiryLog(1)
        self.token_log = ExpiryLog(1)

    def observe(self, view: TradeView) -> list[float] | None:
        """The feature row of `view.trade` given the state before it (None when the trade is not
        scored, see `is_scored`), after which the trade is added to the state."""
        trade, bought = view.trade, view.acquisition
        now = trade.t
        collection_id, buyer_id, seller_id = trade.collection_id, trade.buyer_id, trade.seller_id
        secondary = trade.kind == "secondary"
        paid = trade.paid
        exp = math.exp

        collection = self.collections.get(collection_id)
        if collection is None:
            collection = self.collections[collection_id] = [
                now, None, None, None, now, None, now, None, deque(maxlen=PRICE_WINDOW), []]
        elapsed = now - collection[C_T]
        count = collection[C_DAY]
        day = 0.0 if count is None else count * exp(COLLECTION_DAY[0] * elapsed)
        count = collection[C_FAST]
        fast = 0.0 if count is None else count * exp(COLLECTION_FAST[0] * elapsed)
        count = collection[C_SLOW]
        slow = 0.0 if count is None else count * exp(COLLECTION_SLOW[0] * elapsed)
        accounts = self.accounts
        buyer_key, seller_key = (collection_id, buyer_id), (collection_id, seller_id)
        buyer = accounts.get(buyer_key)
        buyer_day, buyer_month = (0.0, 0.0) if buyer is None else _account_counts(buyer, now)
        seller = accounts.get(seller_key)
        seller_day, seller_month = (0.0, 0.0) if seller is None else _account_counts(seller, now)
        pair_key = (collection_id, buyer_id, seller_id) if buyer_id < seller_id else (
            collection_id, seller_id, buyer_id)
        pair = self.pairs.get(pair_key)
        pair_count = 0.0 if pair is None else pair[VALUE] * exp(PAIR_MONTH[0] * (now - pair[T]))
        log_price = math.log1p(float(trade.price)) if paid else 0.0
        hold = None if bought is None else math.log1p(max(now - bought.t, 0.0) / HOUR)

        row = None
        if secondary and paid:
            level, typical_hold, ranked = collection[C_LEVEL], collection[C_HOLD], collection[C_RANKED]
            markup = markup_over_market = 0.0
            if bought is not None and bought.kind == "secondary" and bought.paid:
                # A primary sale is at the issuer's flat price, which says nothing of a rare token's value.
                markup = log_price - math.log1p(float(bought.price))
                then = self.tokens.get((collection_id, trade.token_id))
                if then is not None and level is not None:
                    markup_over_market = markup - (level - then[VALUE])
            enough = len(ranked) >= MIN_PRICES
            last = len(ranked) - 1
            day_plus_one = day + 1.0
            row = [
                log_price - ranked[int(FLOOR_QUANTILE * last)] if enough else 0.0,
                max(log_price - ranked[int(TOP_QUANTILE * last)], 0.0) if enough else 0.0,
                markup,
                markup_over_market,
                0.0 if hold is None or typical_hold is None else hold - typical_hold,
                buyer_day / day_plus_one,
                seller_day / day_plus_one,
                pair_count / (min(buyer_month, seller_month) + 1.0),
                sum(find_links(view, LINKS).values()),
                math.log((fast + 1.0) / (slow * HOUR / (3 * DAY) + 1.0)),
                -1.0 if view.buyer is None else float(view.buyer.kyc_level),
                -1.0 if view.seller is None else float(view.seller.kyc_level),
                _payer_is_buyer(view),
            ]

        log = self.account_log.entries
        if buyer is None:
            buyer = accounts[buyer_key] = [now, buyer_day + 1.0, buyer_month + 1.0]
        else:
            buyer[A_T], buyer[A_DAY], buyer[A_MONTH] = now, buyer_day + 1.0, buyer_month + 1.0
        log.append((now, buyer_key, buyer))
        if seller_key == buyer_key:   # one account on both sides counts twice, as two writes
            seller = buyer
            seller_day, seller_month = _account_counts(buyer, now)
        if seller is None:
            seller = accounts[seller_key] = [now, seller_day + 1.0, seller_month + 1.0]
        else:
            seller[A_T], seller[A_DAY], seller[A_MONTH] = now, seller_day + 1.0, seller_month + 1.0
        log.append((now, seller_key, seller))
        if pair is None:
            pair = self.pairs[pair_key] = [now, pair_count + 1.0]
        else:
            pair[T], pair[VALUE] = now, pair_count + 1.0
        self.pair_log.entries.append((now, pair_key, pair))
        collection[C_T], collection[C_DAY], collection[C_FAST], collection[C_SLOW] = (
            now, day + 1.0, fast + 1.0, slow + 1.0)
        self.collection_log.entries.append((now, collection_id, collection))
        if hold is not None and secondary:
            _move_level(collection, C_HOLD, C_HOLD_T, HOLD[0], now, hold)
            self.hold_log.entries.append((now, collection_id, collection))
        if paid:
            level = _move_level(collection, C_LEVEL, C_LEVEL_T, LEVEL[0], now, log_price)
            self.level_log.entries.append((now, collection_id, collection))
            prices, ranked = collection[C_PRICES], collection[C_RANKED]
            if len(prices) == PRICE_WINDOW:
                del ranked[bisect_left(ranked, prices[0])]
            prices.append(log_price)
            insort(ranked, log_price)
            token_key = (collection_id, trade.token_id)
            token = self.tokens.get(token_key)
            if token is None:
                token = self.tokens[token_key] = [now, level]
            else:
                token[T], token[VALUE] = now, level
            self.token_log.entries.append((now, token_key, token))
        return row

    def evict(self, now: float) -> None:
        accounts, collections = self.accounts, self.collections
        self.account_log.expire(0, now - ACCOUNT_DAY[1], accounts, A_T, A_DAY, A_MONTH)
        self.account_log.expire(1, now - ACCOUNT_MONTH[1], accounts, A_T, A_MONTH, A_DAY)
        self.pair_log.expire(0, now - PAIR_MONTH[1], self.pairs, T, VALUE, -1)
        self.collection_log.expire(0, now - COLLECTION_DAY[1], collections, C_T, C_DAY, None)
        self.collection_log.expire(1, now - COLLECTION_FAST[1], collections, C_T, C_FAST, None)
        self.collection_log.expire(2, now - COLLECTION_SLOW[1], collections, C_T, C_SLOW, None)
        self.level_log.expire(0, now - LEVEL[1], collections, C_LEVEL_T, C_LEVEL, None)
        self.hold_log.expire(0, now - HOLD[1], collections, C_HOLD_T, C_HOLD, None)
        self.token_log.expire(0, now - TOKEN_HORIZON, self.tokens, T, VALUE, -1)


def _account_counts(account: list, now: float) -> tuple[float, float]:
    """An account record's two trade counts decayed to `now` (0.0 where forgotten)."""
    elapsed = now - account[A_T]
    day, month = account[A_DAY], account[A_MONTH]
    return (0.0 if day is None else day * math.exp(ACCOUNT_DAY[0] * elapsed),
            0.0 if month is None else month * math.exp(ACCOUNT_MONTH[0] * elapsed))


def _move_level(record: list, value_at: int, t_at: int, decay: float, now: float, value: float) -> float:
    """An event-time exponentially weighted mean: the record's level moved toward `value`, returned."""
    level = record[value_at]
    if level is None:
        level = value
    else:
        keep = math.exp(decay * max(now - record[t_at], 0.0))
        level = level + max(1.0 - keep, MIN_LEVEL_WEIGHT) * (value - level)
    record[value_at], record[t_at] = level, now
    return level


def _payer_is_buyer(view: TradeView) -> float:
    """1 when the buyer's own name or bound instrument paid, 0 when not, 0.5 when unknown."""
    trade, buyer = view.trade, view.buyer
    if not trade.paid or buyer is None or not trade.payer_name_hash:
        return 0.5
    if trade.payer_name_hash == buyer.name_hash or trade.instrument_hash in buyer.cards:
        return 1.0
    return 0.0
