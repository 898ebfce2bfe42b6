"""Large-value transaction reports: per customer, per event-time day, per payment kind and direction.

`LargeValueAggregator` is pure logic on event time. Each paid trade adds its amount to the buyer's
"pay" total and the seller's "receive" total for the trade's reporting day (in `lvtr.day_offset`,
+08:00 by default), under the payment kind `amlwatch.paymentkind.payment_kind` gives that customer.
Totals are one-sided (receipts and payments apart), as the PBOC measures say cumulative amounts are
counted (secondary sources).

Invariants:

* A day closes when the watermark (the latest event time observed, or `advance(t)`) passes its end
  plus `close_after_minutes`; only then are its reports emitted, in a fixed order. The watermark is
  the only clock, so replay and live agree whenever they see the same watermark.
* A trade of a closed day is late. Within `late_days` of the close its day's totals are still kept:
  it joins them, and either raises a `normal` report flagged `late` (the total now reaches the line)
  or a `supplement` referring to the day's original report. A trade later still is never dropped
  silently: it yields a `late_unassessed` record and is counted.
* State is bounded: open days plus `late_days` of closed ones. A closed day keeps per customer its
  totals and trade count; the trades themselves only of customers not reported yet (a late trade
  may still push them over the line, and that late report lists the day's trades), packed into one
  compressed blob per day (`packed`). A reported customer's trades are no longer needed: a late
  trade raises a supplement listing that trade alone.

What the aggregator needs of each party is a `Side` (payment kind, hashes, organisation or not),
computed from the registry by `trade_sides`. Replay computes it in place; the Kafka worker's
stage 1 (which holds the registry) computes it and forwards it with the trade to stage 2 (keyed by
account, no registry), which calls `observe_trade` with it.
"""

from __future__ import annotations

import hashlib
import sys
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Callable, NamedTuple

import orjson

from amlwatch.events import Event, TradeEvent
from amlwatch.paymentkind import is_organisation, payment_kind
from amlwatch.reporting.settings import LargeValueConfig, PaymentKindConfig

DAY = 86_400
SOURCE = "PBOC Order 2016 No. 3, Art. 5 (checked against secondary sources only)"


class Side(NamedTuple):
    """One party of a paid trade as the reports see it, from the registry at the trade."""

    kind: str
    id_hash: str | None
    name_hash: str | None
    organisation: bool


def trade_sides(trade: TradeEvent, registry, kinds: PaymentKindConfig) -> tuple[Side, Side]:
    """(buyer's "pay" side, seller's "receive" side) of a paid trade, from the registry's states."""
    accounts = registry.accounts if registry is not None else {}
    buyer, seller = accounts.get(trade.buyer_id), accounts.get(trade.seller_id)
    return (_side(trade, buyer, seller, trade.buyer_id, kinds), _side(trade, seller, buyer, trade.seller_id, kinds))


def _side(trade: TradeEvent, state, other, customer: str, kinds: PaymentKindConfig) -> Side:
    kind = payment_kind(trade, state, kinds, customer_id=customer, counterparty_state=other)
    return Side(kind, getattr(state, "id_hash", None), getattr(state, "name_hash", None),
                is_organisation(state, kinds, customer))


@dataclass(slots=True)
class _Bucket:
    total: Decimal = Decimal(0)
    trades: list = field(default_factory=list)
    """An open day's: every trade. A closed day's: only those that arrived after the close (the others
    are in the day's packed blob until the bucket is reported, and needed no more after)."""
    count: int = 0
    """Trades in the total, wherever they are kept."""
    reported: str | None = None
    """report_id of the day's first report for this bucket, once emitted."""
    id_hash: str | None = None
    name_hash: str | None = None
    organisation: bool = False


class LargeValueAggregator:
    """`observe(event, registry)` -> report records (dicts) for days it closed or late trades it assessed."""

    state_version = 1
    """1: closed days keep their unreported buckets' trades packed (`packed`), bucket trade counts."""

    def __init__(self, config: LargeValueConfig | None = None, kinds: PaymentKindConfig | None = None, *,
                 owns: Callable[[str], bool] | None = None):
        """`owns(account)` limits the customers aggregated (a worker partition keyed by account owns some)."""
        self.config = config = config or LargeValueConfig()
        self.kinds = kinds or PaymentKindConfig()
        self.owns = owns
        self.offset = config.offset_seconds
        self.close_delay = config.close_after_minutes * 60.0
        self.late_horizon = config.late_days * DAY
        self.watermark = float("-inf")
        self.open: dict[int, dict[tuple, _Bucket]] = {}
        self.closed: dict[int, dict[tuple, _Bucket]] = {}
        self.packed: dict[int, bytes] = {}
        """Per closed day, the trades its unreported buckets had at the close (`_pack`), opened only when a
        late trade pushes one over the line."""
        self.closed_through = None
        """The last day number closed (days up to it are closed, whether they saw trades or not)."""
        self.late_unassessed = 0
        self.late_assessed = 0
        self._next_close = float("-inf")
        """The watermark at which the next day closes (most events only move the watermark)."""

    # -- time

    def day_of(self, t: float) -> int:
        return int((t + self.offset) // DAY)

    def day_end(self, day: int) -> float:
        return (day + 1) * DAY - self.offset

    def day_text(self, day: int) -> str:
        return (datetime(1970, 1, 1) + timedelta(days=day)).date().isoformat()

    def day_number(self, text: str) -> int:
        return (datetime.fromisoformat(text) - datetime(1970, 1, 1)).days

    # -- input

    def observe(self, event: Event, registry=None) -> list[dict]:
        """Reports from one event: `registry` holds the parties' states (the monitor's, already updated)."""
        reports = self.advance(event.t)
        if isinstance(event, TradeEvent) and event.paid:
            reports.extend(self._add(event, trade_sides(event, registry, self.kinds)))
        return reports

    def observe_trade(self, trade: TradeEvent, sides: tuple[Side, Side]) -> list[dict]:
        """Reports from one paid trade whose parties' `sides` were computed elsewhere (`trade_sides`)."""
        reports = self.advance(trade.t)
        reports.extend(self._add(trade, sides))
        return reports

    def advance(self, t: float) -> list[dict]:
        """The watermark moved to `t`: close every day that ended `close_after_minutes` before it."""
        if t <= self.watermark:
            return []
        self.watermark = t
        if t < self._next_close:
            return []
        last_closable = self.day_of(t - self.close_delay) - 1
        self._next_close = self.day_end(last_closable + 1) + self.close_delay
        reports = []
        for day in sorted(d for d in self.open if d <= last_closable):
            reports.extend(self._close(day, "watermark"))
        self.closed_through = last_closable if self.closed_through is None else max(self.closed_through, last_closable)
        self._evict()
        return reports

    def flush(self) -> list[dict]:
        """End of a finite stream (a replayed file): close every open day."""
        reports = []
        for day in sorted(self.open):
            reports.extend(self._close(day, "end_of_stream"))
            self.closed_through = day if self.closed_through is None else max(self.closed_through, day)
        return reports

    def _add(self, trade: TradeEvent, sides: tuple[Side, Side]) -> list[dict]:
        day = self.day_of(trade.t)
        late = self.closed_through is not None and day <= self.closed_through
        reports = []
        price = str(trade.price)
        pay, receive = sides
        for customer, direction, side, counterparty in (
                (trade.buyer_id, "pay", pay, trade.seller_id),
                (trade.seller_id, "receive", receive, trade.buyer_id)):
            if self.owns is not None and not self.owns(customer):
                continue
            kind = side.kind
            entry = (trade.trade_id, trade.ts, price, _shared(counterparty), _shared(trade.payment_method),
                     _shared(trade.instrument_hash), _shared(trade.collection_id), trade.token_id, trade.event_id)
            key = (customer, kind, direction)
            if not late:
                buckets = self.open.get(day)
                if buckets is None:
                    buckets = self.open[day] = {}
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = buckets[(_shared(customer), _shared(kind), direction)] = _Bucket()
                bucket.total += trade.price
                bucket.count += 1
                bucket.trades.append(entry)
                _identify(bucket, side)
                continue
            reports.extend(self._late(day, key, trade, entry, side))
        return reports

    def _late(self, day: int, key: tuple, trade: TradeEvent, entry: tuple, side: Side) -> list[dict]:
        buckets = self.closed.get(day)
        if buckets is None and self.day_end(day) + self.close_delay + self.late_horizon < self.watermark:
            self.late_unassessed += 1
            customer, kind, direction = key
            return [{"record_type": "lvtr_late_unassessed", "report_id": _report_id("late", trade.trade_id, customer),
                     "customer": customer, "day": self.day_text(day), "payment_kind": kind, "direction": direction,
                     "trade": _trade_dict(entry), "reason": f"trade arrived more than {self.config.late_days:g} "
                     "days after its day closed; its day's totals are no longer kept: assess it by hand"}]
        self.late_assessed += 1
        buckets = self.closed.setdefault(day, {})
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[(_shared(key[0]), _shared(key[1]), key[2])] = _Bucket()
        bucket.total += trade.price
        bucket.count += 1
        _identify(bucket, side)
        threshold = self.config.threshold(key[1])
        if bucket.reported is not None:
            return [self._report(day, key, bucket, "supplement", closed_by="late_trade", late=True,
                                 trades=[entry], original=bucket.reported)]
        bucket.trades.append(entry)
        if bucket.total >= threshold:
            report = self._report(day, key, bucket, "normal", closed_by="late_trade", late=True,
                                  trades=self._unpack(day, key) + bucket.trades)
            bucket.reported = report["report_id"]
            bucket.trades = []
            return [report]
        return []

    def _close(self, day: int, closed_by: str) -> list[dict]:
        buckets = self.open.pop(day)
        reports = []
        rows = []
        for key in sorted(buckets):
            bucket = buckets[key]
            if bucket.total >= self.config.threshold(key[1]):
                report = self._report(day, key, bucket, "normal", closed_by=closed_by)
                bucket.reported = report["report_id"]
                reports.append(report)
            else:
                rows.append([*key, bucket.trades])
            bucket.trades = []
        self.closed[day] = buckets
        if rows:
            self.packed[day] = _pack(rows)
        return reports

    def _unpack(self, day: int, key: tuple) -> list[tuple]:
        """The trades `key`'s bucket of closed `day` had at the close."""
        blob = self.packed.get(day)
        return _unpacked(blob, key) if blob is not None else []

    def _evict(self) -> None:
        horizon = self.watermark - self.late_horizon - self.close_delay
        for day in [d for d in self.closed if self.day_end(d) < horizon]:
            del self.closed[day]
            self.packed.pop(day, None)

    def _report(self, day: int, key: tuple, bucket: _Bucket, message_kind: str, *, closed_by: str,
                late: bool = False, trades: list | None = None, original: str | None = None) -> dict:
        customer, kind, direction = key
        listed = bucket.trades if trades is None else trades
        report_id = _report_id("lvtr", self.day_text(day), customer, kind, direction,
                               *([message_kind, listed[-1][0]] if message_kind != "normal" or late else []))
        return {
            "record_type": "lvtr",
            "report_id": report_id,
            "message_kind": message_kind,
            "original_report_id": original,
            "customer": customer,
            "customer_id_hash": bucket.id_hash,
            "customer_name_hash": bucket.name_hash,
            "customer_type": "organisation" if bucket.organisation else "individual",
            "day": self.day_text(day),
            "day_offset": self.config.day_offset,
            "payment_kind": kind,
            "direction": direction,
            "trait_code": self.config.trait_codes.get(kind, ""),
            "threshold": str(self.config.threshold(kind)),
            "total": str(bucket.total),
            "trade_count": bucket.count,
            "currency": "CNY",
            "late": late,
            "closed_by": closed_by,
            "watermark": _iso(self.watermark),
            "trades": [_trade_dict(e) for e in sorted(listed, key=_listing_order)],
            "source": SOURCE,
        }

    def state_size(self) -> dict[str, int]:
        return {"open_days": len(self.open), "open_buckets": sum(len(b) for b in self.open.values()),
                "closed_days_kept": len(self.closed),
                "trade_entries": sum(len(b.trades) for days in (self.open, self.closed) for d in days.values()
                                     for b in d.values()),
                "packed_bytes": sum(map(len, self.packed.values()))}


def _identify(bucket: _Bucket, side: Side) -> None:
    """The customer's hashes as the registry knew them at its latest trade of the day."""
    bucket.organisation = side.organisation
    if side.id_hash and side.id_hash != bucket.id_hash:
        bucket.id_hash = _shared(side.id_hash)
    if side.name_hash and side.name_hash != bucket.name_hash:
        bucket.name_hash = _shared(side.name_hash)


def _shared(text: str | None) -> str | None:
    """One object per distinct value (customer ids, hashes, kinds repeat over buckets and days): a snapshot
    pickles it once, as pickle shares objects, not equal strings."""
    return sys.intern(text) if text is not None else None


ENTRY_FIELDS = ("trade_id", "ts", "amount", "counterparty", "payment_method", "instrument_hash", "collection_id",
                "token_id", "event_id")
TABLED = (3, 4, 5, 6)
"""Entry fields that repeat over a day's trades (counterparty, payment method, instrument hash, collection):
packed once per day in a table, each entry holding an index."""


def _pack(rows: list[list]) -> bytes:
    """Rows `[customer, kind, direction, [entry, ...]]` as zlib-compressed JSON, by column: `[[customer,
    kind, direction, count], ...]` and each entry field's values in row order (alike values side by side
    compress best), the repeating fields as `[table, indices]`."""
    heads = [[customer, kind, direction, len(entries)] for customer, kind, direction, entries in rows]
    flat = [entry for *_, entries in rows for entry in entries]
    columns: list = [list(column) for column in zip(*flat)] or [[] for _ in ENTRY_FIELDS]
    for n in TABLED:
        table = list(dict.fromkeys(columns[n]))
        index = {value: i for i, value in enumerate(table)}
        columns[n] = [table, [index[value] for value in columns[n]]]
    return zlib.compress(orjson.dumps([heads, columns]), 1)


def _unpacked(blob: bytes, key: tuple) -> list[tuple]:
    """The entries `_pack` kept for `key`, as they were."""
    heads, columns = orjson.loads(zlib.decompress(blob))
    start = 0
    for customer, kind, direction, count in heads:
        if (customer, kind, direction) == key:
            end = start + count
            fields = [[column[0][i] for i in column[1][start:end]] if n in TABLED else column[start:end]
                      for n, column in enumerate(columns)]
            return list(zip(*fields))
        start += count
    return []


def _listing_order(entry: tuple) -> tuple:
    """A report lists its trades by event time (then trade id): the order they arrived in is the file's in
    replay and, after a failover, the re-sorted one in the worker, and a report must not depend on it."""
    return entry[1], entry[0]


def _trade_dict(entry: tuple) -> dict:
    return dict(zip(ENTRY_FIELDS, entry))


def _report_id(prefix: str, *parts: str) -> str:
    """Deterministic: the same stream and config give the same ids in replay and live."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}-{digest[:24]}"


def _iso(t: float) -> str | None:
    if t in (float("inf"), float("-inf")):
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")

