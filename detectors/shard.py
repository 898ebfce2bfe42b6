"""A detection core that judges a share of the trades and keeps the whole stream's bookkeeping.

Replay across processes (amlwatch/shardedreplay.py) splits the work over shards as the worker splits it
over partitions: the collection-scoped detectors by collection (stage 1), the account- and pair-scoped
ones by account (stage 2). Every shard still reads every event: what one `Monitor` decides about a
trade also depends on the others (dedupe, the watermark and its time guards, the eviction cadence, and
the order in which waiting trades are released), so each shard applies every event's bookkeeping and
runs on a trade only the detectors whose share it owns. Together they raise what one core raises.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from amlwatch.alerts import Alert
from amlwatch.events import TradeEvent

from .monitor import Monitor


class ShardMonitor(Monitor):
    """`Monitor` that runs its collection-scoped detectors on the trades `owns_collection` accepts and its
    account- and pair-scoped ones on those `owns_account` accepts.

    A trade whose collection it does not own still holds its place among the waiting trades when its
    parties or collection are unknown: one core releases waiting trades from the head of one queue, so a
    trade that waits behind another shard's trade must be released here at the event where one core
    releases it, and see the registry as it stood then.

    `places` maps each released trade's alerts and rejections (by `id`) to the trade's arrival: the
    number of events observed when it came (`observed`), the same on every shard; the replay orders one
    event's output by it and clears it after each batch. No detector time is sampled."""

    def __init__(self, *args, owns_collection: Callable[[TradeEvent], bool],
                 owns_account: Callable[[TradeEvent], bool], **options):
        super().__init__(*args, **options)
        self.owns_collection = owns_collection
        self.owns_account = owns_account
        self.observed = 0
        self._arrivals: deque[int | None] = deque()
        self.places: dict[int, int] = {}
        self._split: dict[int, tuple[list, list, list]] = {}
        """The stream calls (as `defer_batched` may have replaced them) split by scope, and the list split,
        by the list's id."""
        self.sample_detector_time(0)

    def observe(self, event) -> list[Alert]:
        self.observed += 1
        return super().observe(event)

    def _observe_trade(self, trade: TradeEvent) -> list[Alert]:
        collection, account = self.owns_collection(trade), self.owns_account(trade)
        if collection and account:
            return super()._observe_trade(trade)
        if not collection:
            self._hold_place(trade)
            if not account:
                return []
        calls = self._stream_calls, self._registry_calls, self._complete_calls, self._keeps_ledger
        by_collection, by_account = self._split_calls()
        if collection:
            self._stream_calls = by_collection
        else:
            self._stream_calls, self._registry_calls, self._complete_calls = by_account, [], []
            self._keeps_ledger = False
        try:
            return super()._observe_trade(trade)
        finally:
            self._stream_calls, self._registry_calls, self._complete_calls, self._keeps_ledger = calls

    def _split_calls(self) -> tuple[list, list]:
        key = id(self._stream_calls)
        split = self._split.get(key)
        if split is None or split[2] is not self._stream_calls:
            if len(self._split) > 8:
                self._split.clear()
            calls = self._stream_calls
            split = self._split[key] = ([c for c in calls if c[0].scope == "collection"],
                                        [c for c in calls if c[0].scope != "collection"], calls)
        return split[0], split[1]

    def _hold_place(self, trade: TradeEvent) -> None:
        """Another shard judges this trade's registry checks; hold its place if it waits for the registry."""
        if not self._registry_calls:
            return
        accounts = self.registry.accounts
        if (accounts.get(trade.buyer_id) is None or accounts.get(trade.seller_id) is None
                or self.registry.collections.get(trade.collection_id) is None):
            self._pending.append((trade.t + self.grace, None))
            self._arrivals.append(None)

    def _wait(self, deadline: float, view) -> None:
        super()._wait(deadline, view)
        self._arrivals.append(self.observed)

    def _release(self, now: float) -> list[Alert]:
        alerts: list[Alert] = []
        pending, arrivals, places = self._pending, self._arrivals, self.places
        while pending and pending[0][0] < now:
            _, view = pending.popleft()
            arrival = arrivals.popleft()
            if view is None:
                continue
            first_alert, first_rejection = len(alerts), len(self.rejected)
            view.refresh(self.registry)
            self._run(self._registry_calls, view, alerts)
            for item in (*alerts[first_alert:], *self.rejected[first_rejection:]):
                places[id(item)] = arrival
        return alerts
