"""A detection core that judges some collections' trades and keeps the whole stream's bookkeeping.

Replay across processes (amlwatch/shardedreplay.py) splits the collections over shards, as the worker's
stage 1 splits them over partitions. Every shard still reads every event: what one `Monitor` decides
about a trade also depends on the others (dedupe, the watermark and its time guards, the eviction
cadence, and the order in which waiting trades are released), so each shard applies every event's
bookkeeping and judges only the trades it owns. Together they raise what one core raises.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from amlwatch.alerts import Alert
from amlwatch.events import TradeEvent

from .monitor import Monitor


class ShardMonitor(Monitor):
    """`Monitor` whose detectors see only the trades `owns` accepts.

    A trade it does not own still holds its place among the waiting trades when its parties or collection
    are unknown: one core releases waiting trades from the head of one queue, so a trade that waits
    behind another shard's trade must be released here at the event where one core releases it, and
    see the registry as it stood then.

    `places` maps each released trade's alerts and rejections (by `id`) to the trade's arrival: the
    number of events observed when it came (`observed`), the same on every shard; the replay orders
    one event's output by it and takes the entries it read."""

    def __init__(self, *args, owns: Callable[[TradeEvent], bool], **options):
        super().__init__(*args, **options)
        self.owns = owns
        self.observed = 0
        self._arrivals: deque[int | None] = deque()
        self.places: dict[int, int] = {}

    def observe(self, event) -> list[Alert]:
        self.observed += 1
        return super().observe(event)

    def _observe_trade(self, trade: TradeEvent) -> list[Alert]:
        if self.owns(trade):
            return super()._observe_trade(trade)
        if self._registry_calls:
            accounts = self.registry.accounts
            if (accounts.get(trade.buyer_id) is None or accounts.get(trade.seller_id) is None
                    or self.registry.collections.get(trade.collection_id) is None):
                self._pending.append((trade.t + self.grace, None))
                self._arrivals.append(None)
        return []

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
