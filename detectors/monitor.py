"""The detection core: events in event-time order in, alerts out.

One `Monitor` serves file replay and the Faust workers alike. It keeps the
registry and token ledger, runs stream detectors as each trade arrives, and
holds registry-dependent checks of trades with unknown parties until their
late registry data arrives or the grace runs out. Time is event time: the
watermark is the latest event time seen, never the wall clock.
"""

from __future__ import annotations

from collections import deque
from time import perf_counter

from amlwatch import __version__
from amlwatch.alerts import Alert
from amlwatch.config import DAY, HOUR, Config
from amlwatch.events import AccountEvent, CollectionEvent, Event, TradeEvent

from .asset import FinancialAssetDetector, UnregisteredCollectionDetector
from .base import Detector, TradeView, check_scope
from .identity import (
    MinorBuyerDetector,
    PayerMismatchDetector,
    SharedNationalIdDetector,
    UnregisteredPartyDetector,
    UnverifiedPartyDetector,
)
from .ledger import TokenLedger
from .registry import Registry
from .settlement import SettlementDetector
from .speculation import PriceSpikeDetector, PumpDetector, RapidFlipDetector, TransferLockDetector
from .structuring import StructuringDetector
from .wash import LinkedPartiesDetector, PairRepeatDetector, RepeatBuyerDetector, RoundTripDetector

EVICT_EVERY_SECONDS = 60.0
TIME_EVERY = 64
"""Every this many trades, each detector's wall time is measured (`Monitor.detector_seconds`)."""


def rule_detectors(config: Config, registry: Registry, ledger: TokenLedger) -> list[Detector]:
    return [
        SettlementDetector(config.settlement),
        FinancialAssetDetector(config.asset),
        UnregisteredCollectionDetector(),
        LinkedPartiesDetector(config.links),
        RoundTripDetector(config.wash, ledger),
        PairRepeatDetector(config.wash),
        RepeatBuyerDetector(config.wash, ledger),
        PriceSpikeDetector(config.speculation),
        PumpDetector(config.speculation),
        RapidFlipDetector(config.speculation),
        TransferLockDetector(),
        UnverifiedPartyDetector(config.identity),
        PayerMismatchDetector(),
        MinorBuyerDetector(config.identity),
        SharedNationalIdDetector(config.identity, registry),
        UnregisteredPartyDetector(config.identity),
        StructuringDetector(config.structuring),
    ]


class Monitor:
    def __init__(self, config: Config | None = None, extra_detectors: list[Detector] | None = None,
                 model_id: str | None = None, *, scopes: frozenset[str] | None = None,
                 only: frozenset[str] | None = None, exclude: frozenset[str] = frozenset()):
        """`scopes` keeps the detectors of those scopes (`Detector.scope`): a streaming stage keyed by
        collection runs the collection-scoped ones, a stage keyed by account the account- and
        pair-scoped ones. `only`/`exclude` pick detectors by name (experiments, tests)."""
        self.config = config = config or Config()
        self.registry = Registry()
        self.ledger = TokenLedger(
            history_horizon=config.wash.window_days * DAY,
            holding_horizon=config.monitor.holding_horizon_days * DAY,
            max_per_token=config.wash.max_trades_per_token,
        )
        detectors = rule_detectors(config, self.registry, self.ledger) + list(extra_detectors or [])
        for detector in detectors:
            check_scope(detector)
        detectors = [d for d in detectors if d.name not in exclude and (only is None or d.name in only)
                     and (scopes is None or d.scope in scopes)]
        self.detectors = detectors
        self.stream_detectors = [d for d in detectors if not d.needs_registry]
        self.registry_detectors = [d for d in detectors if d.needs_registry]
        self.versions = {"monitor": __version__, "config": config.hash, "model": model_id}
        self.grace = config.identity.registry_grace_minutes * 60.0
        self.dedupe_horizon = config.monitor.dedupe_window_hours * HOUR
        self.watermark = float("-inf")
        self._pending: deque[tuple[float, TradeView]] = deque()
        self._seen: set[str] = set()
        self._seen_order: deque[tuple[float, str]] = deque()
        self._last_evict = float("-inf")
        self.duplicates = 0
        self.sample_detector_time(TIME_EVERY)

    def observe(self, event: Event) -> list[Alert]:
        """Alerts raised by one event (and by any waiting trade whose grace it ended)."""
        if event.event_id in self._seen:
            self.duplicates += 1
            return []
        self._seen.add(event.event_id)
        self._seen_order.append((event.t, event.event_id))
        # Waiting trades see every registry event up to their deadline and none after it, whatever
        # else the stream interleaves: a streaming partition that sees only some trades decides alike.
        alerts = self._release(event.t) if self._pending and self._pending[0][0] < event.t else []
        if event.t > self.watermark:
            self.watermark = event.t
        if isinstance(event, TradeEvent):
            alerts.extend(self._observe_trade(event))
        else:
            alerts.extend(self._observe_registry(event))
        if self.watermark - self._last_evict >= EVICT_EVERY_SECONDS:
            self._evict(self.watermark)
        return self._stamp(alerts)

    def advance(self, t: float) -> list[Alert]:
        """Every event before event time `t` has been observed: judge trades whose grace ended before `t`."""
        if self._pending and self._pending[0][0] < t:
            return self._stamp(self._release(t))
        return []

    def flush(self) -> list[Alert]:
        """End of a finite stream: judge every waiting trade with what is known."""
        return self._stamp(self._release(float("inf")))

    def _observe_trade(self, trade: TradeEvent) -> list[Alert]:
        self._timing_countdown -= 1
        if not self._timing_countdown:
            return self._observe_trade_timed(trade)
        registry = self.registry
        view = TradeView(
            trade,
            registry.accounts.get(trade.buyer_id),
            registry.accounts.get(trade.seller_id),
            registry.collections.get(trade.collection_id),
            self.ledger.acquisition(trade),
        )
        alerts: list[Alert] = []
        for detector in self.stream_detectors:
            alerts.extend(detector.observe(view))
        if view.complete:
            for detector in self.registry_detectors:
                alerts.extend(detector.observe(view))
        elif self.registry_detectors:
            self._pending.append((trade.t + self.grace, view))
        self.ledger.record(trade)
        return alerts

    def _observe_registry(self, event: AccountEvent | CollectionEvent) -> list[Alert]:
        if isinstance(event, AccountEvent):
            self.registry.apply_account(event)
        else:
            self.registry.apply_collection(event)
        alerts: list[Alert] = []
        for detector in self.registry_detectors:
            alerts.extend(detector.observe_registry(event, self.registry))
        return alerts

    def _release(self, now: float) -> list[Alert]:
        """Registry checks of waiting trades whose grace ran out before `now`, with what is known now."""
        alerts: list[Alert] = []
        pending = self._pending
        while pending and pending[0][0] < now:
            _, view = pending.popleft()
            view.refresh(self.registry)
            for detector in self.registry_detectors:
                alerts.extend(detector.observe(view))
        return alerts

    def _evict(self, now: float) -> None:
        self._last_evict = now
        self.ledger.evict(now)
        for detector in self.detectors:
            detector.evict(now)
        cutoff = now - self.dedupe_horizon
        order, seen = self._seen_order, self._seen
        while order and order[0][0] < cutoff:
            seen.discard(order.popleft()[1])

    def _stamp(self, alerts: list[Alert]) -> list[Alert]:
        for alert in alerts:
            alert.versions = self.versions
        return alerts

    def state_size(self) -> dict[str, int]:
        """Entries held per window, to show memory follows the windows."""
        sizes = {"accounts": len(self.registry.accounts), "collections": len(self.registry.collections),
                 "tokens_recent": len(self.ledger.transfers), "tokens_held": len(self.ledger.last_transfer),
                 "pending": len(self._pending), "seen_event_ids": len(self._seen)}
        for detector in self.detectors:
            for name, value in vars(detector).items() if hasattr(detector, "__dict__") else ():
                if hasattr(value, "evict") and hasattr(value, "__len__"):
                    sizes[f"{detector.name}.{name}"] = len(value)
        return sizes

    # -- sampled detector timing (operations only: never changes an alert) --

    def sample_detector_time(self, every: int) -> None:
        """Time each detector on every `every`-th trade (0: never); the rest pay one integer decrement."""
        self.time_every = max(int(every), 0)
        self._timing_countdown = self.time_every or -1
        self.detector_seconds: dict[str, float] = {}
        """Estimated seconds per detector name since construction: sampled time times `time_every`."""
        self._timing_taken: dict[str, float] = {}

    def take_detector_seconds(self) -> dict[str, float]:
        """The growth of `detector_seconds` since the previous call (what a Prometheus counter adds)."""
        taken, delta = self._timing_taken, {}
        for name, seconds in self.detector_seconds.items():
            if seconds > taken.get(name, 0.0):
                delta[name] = seconds - taken.get(name, 0.0)
        self._timing_taken = dict(self.detector_seconds)
        return delta

    def _observe_trade_timed(self, trade: TradeEvent) -> list[Alert]:
        """`_observe_trade` with every detector behind a stopwatch (registry checks of waiting trades excluded)."""
        self._timing_countdown = self.time_every + 1
        stream, registry = self.stream_detectors, self.registry_detectors
        self.stream_detectors = [_Timed(d, self.detector_seconds, self.time_every) for d in stream]
        self.registry_detectors = [_Timed(d, self.detector_seconds, self.time_every) for d in registry]
        try:
            return self._observe_trade(trade)
        finally:
            self.stream_detectors, self.registry_detectors = stream, registry


class _Timed:
    """A detector's `observe` behind a stopwatch, adding its estimated share of the unsampled trades too."""

    __slots__ = ("detector", "totals", "scale")

    def __init__(self, detector: Detector, totals: dict[str, float], scale: int):
        self.detector, self.totals, self.scale = detector, totals, scale

    def observe(self, view: TradeView) -> list[Alert]:
        started = perf_counter()
        try:
            return self.detector.observe(view)
        finally:
            name = self.detector.name
            self.totals[name] = self.totals.get(name, 0.0) + (perf_counter() - started) * self.scale
