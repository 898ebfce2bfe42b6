"""The detection core: events in event-time order in, alerts out.

One `Monitor` serves file replay and the Faust workers alike. It keeps the
registry and token ledger, runs stream detectors as each trade arrives, and
holds registry-dependent checks of trades with unknown parties until their
late registry data arrives or the grace runs out. Time is event time: the
watermark is the latest event time seen, never the wall clock.
"""

from __future__ import annotations

import dataclasses
import operator
import zlib
from collections import deque
from time import perf_counter
from typing import NamedTuple

import orjson

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
from .skew import unconfirmed_jump
from .speculation import PriceSpikeDetector, PumpDetector, RapidFlipDetector, TransferLockDetector
from .structuring import StructuringDetector
from .wash import LinkedPartiesDetector, PairRepeatDetector, RepeatBuyerDetector, RoundTripDetector
from .watchlist import WatchlistDetector

def detector_order(config: Config) -> dict[str, tuple[bool, int]]:
    """One core's order of an event's alerts, by detector name: its stream detectors as configured, then
    its registry checks. A detector added to the rules (the anomaly model) is not named: it comes after
    the stream detectors, at `(False, len(order))`. Whoever splits the detectors over cores puts their
    alerts back in one core's order with it."""
    full = Monitor(config)
    registry = {d.name for d in full.registry_detectors}
    return {d.name: (d.name in registry, i) for i, d in enumerate(full.detectors)}


class Rejection(NamedTuple):
    """An event the core would not (or could not fully) apply; the caller dead-letters it with `raw`."""

    event: Event
    field: str
    reason: str


REFUSED = frozenset({"duplicate_event_id_conflict", "late_beyond_dedupe_window", "event_time_skew"})
"""Rejection reasons under which the event was not applied at all (the others: applied, one check failed)."""

_FIELDS = {cls: operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))
           for cls in (AccountEvent, CollectionEvent, TradeEvent)}


def content_fingerprint(event: Event) -> int:
    """A stable digest of an event's content (the same in every process, unlike hash()): a redelivery
    repeats it, a different event under a reused event_id does not. The fields as one JSON array (a
    Decimal as its text): repr() of them cost twice the record's parse."""
    return zlib.crc32(orjson.dumps(_FIELDS[type(event)](event), default=str))


EVICT_EVERY_SECONDS = 60.0
TIME_EVERY = 64
"""Every this many trades, each detector's wall time is measured (`Monitor.detector_seconds`)."""


def rule_detectors(config: Config, registry: Registry, ledger: TokenLedger) -> list[Detector]:
    return [
        SettlementDetector(config.settlement),
        FinancialAssetDetector(config.asset),
        UnregisteredCollectionDetector(),
        LinkedPartiesDetector(config.links),
        RoundTripDetector(config.wash, ledger, config.links),
        PairRepeatDetector(config.wash, ledger),
        RepeatBuyerDetector(config.wash, ledger),
        PriceSpikeDetector(config.speculation, ledger),
        PumpDetector(config.speculation, ledger),
        RapidFlipDetector(config.speculation),
        TransferLockDetector(),
        UnverifiedPartyDetector(config.identity),
        PayerMismatchDetector(),
        MinorBuyerDetector(config.identity),
        SharedNationalIdDetector(config.identity, registry),
        UnregisteredPartyDetector(config.identity),
        StructuringDetector(config.structuring),
        WatchlistDetector(),
    ]


class Monitor:
    state_version = 2
    """1: `_seen` maps event ids to content fingerprints (was a set of ids). 2: the fingerprint is a crc32 of
    the fields' JSON (was of their repr): a snapshot's fingerprints would not match redeliveries."""

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
        self._calls(self.stream_detectors, self.registry_detectors)
        self.versions = {"monitor": __version__, "config": config.hash, "model": model_id}
        self.grace = config.identity.registry_grace_minutes * 60.0
        self.dedupe_horizon = config.monitor.dedupe_window_hours * HOUR
        self.max_skew = config.monitor.max_skew_hours * HOUR
        self.time_guards = True
        """Dead-letter events beyond the dedupe window behind, or unconfirmed far ahead of, the watermark. Off
        in a stage that sees only a sparse share of the stream (stage 2), whose own watermark says little."""
        self.watermark = float("-inf")
        self._ahead_t: float | None = None
        """Time of the last event more than `max_skew` ahead that did not move the watermark."""
        self._pending: deque[tuple[float, TradeView]] = deque()
        self._seen: dict[str, int] = {}
        self._seen_order: deque[tuple[float, str]] = deque()
        self._last_evict = float("-inf")
        self.duplicates = 0
        self.rejected: list[Rejection] = []
        """Events refused or only partly applied since the caller last took them (`take_rejected`)."""
        self.rejections: dict[str, int] = {}
        """Count per reason: duplicate_event_id_conflict, late_beyond_dedupe_window, event_time_skew,
        detector_error, monitor_error."""
        self.detector_errors: dict[str, int] = {}
        self.skewed = 0
        """Registry events more than `max_skew` ahead, applied without moving the watermark."""
        self.sample_detector_time(TIME_EVERY)

    def _calls(self, stream: list, registry: list) -> None:
        """(detector, bound method) pairs the hot path runs, without the calls that cannot alert: a
        detector's registry hook it never overrode, and the checks that only a trade with an unknown
        party or collection can fail (`Detector.only_incomplete`) on a trade whose are all known."""
        self._stream_calls = [(d, d.observe) for d in stream]
        self._registry_calls = [(d, d.observe) for d in registry]
        self._complete_calls = [(d, d.observe) for d in registry if not d.only_incomplete]
        self._registry_event_calls = [(d, d.observe_registry) for d in registry
                                      if type(d).observe_registry is not Detector.observe_registry]
        self._keeps_ledger = any(d.scope == "collection" for d in (*stream, *registry))
        """Only a collection-scoped detector may read the token ledger (`TradeView.acquisition`, the wash
        and price histories): the account-keyed stage, which sees a token's trades only where its
        accounts trade, neither records nor reads one."""

    _CALLS = ("_stream_calls", "_registry_calls", "_complete_calls", "_registry_event_calls", "_keeps_ledger")

    def __getstate__(self) -> dict:
        """A snapshot holds no bound methods (a state pickle may name classes only): the call lists are
        rebuilt from the restored detectors."""
        return {k: v for k, v in self.__dict__.items() if k not in self._CALLS}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._calls(self.stream_detectors, self.registry_detectors)

    def take_rejected(self) -> list[Rejection]:
        taken, self.rejected = self.rejected, []
        return taken

    def observe(self, event: Event) -> list[Alert]:
        """Alerts raised by one event (and by any waiting trade whose grace it ended). An event that cannot be
        applied safely is put in `rejected` instead, with its reason (docs/STREAMING.md)."""
        fingerprint = content_fingerprint(event)
        seen = self._seen.get(event.event_id)
        if seen is not None:
            if seen == fingerprint:
                self.duplicates += 1
                return []
            return self._reject(event, "event_id", "duplicate_event_id_conflict",
                                "an earlier event with this event_id had other content")
        t, watermark = event.t, self.watermark
        moves = True
        if self.time_guards and watermark != float("-inf"):
            if t < watermark - self.dedupe_horizon:
                return self._reject(event, "ts", "late_beyond_dedupe_window",
                                    "further behind the watermark than the dedupe window: cannot be told "
                                    "from a redelivery")
            jump, self._ahead_t = unconfirmed_jump(t, watermark, self._ahead_t, self.max_skew)
            if jump:
                if isinstance(event, TradeEvent):
                    return self._reject(event, "ts", "event_time_skew",
                                        f"more than {self.max_skew / HOUR:g} h ahead of the watermark")
                self.skewed += 1
                moves = False
        self._seen[event.event_id] = fingerprint
        self._seen_order.append((min(t, self.watermark) if not moves else t, event.event_id))
        # Waiting trades see every registry event up to their deadline and none after it, whatever
        # else the stream interleaves: a streaming partition that sees only some trades decides alike.
        alerts = self._release(t) if self._pending and self._pending[0][0] < t else []
        if moves and t > watermark:
            self.watermark = t
        try:
            if isinstance(event, TradeEvent):
                found = self._observe_trade(event)
            else:
                found = self._observe_registry(event)
            if found:
                alerts += found
        except Exception as exc:                     # noqa: BLE001 - one event's fault stays with it
            self._reject(event, "<monitor>", "monitor_error", f"{type(exc).__name__}: {exc}")
        if self.watermark - self._last_evict >= EVICT_EVERY_SECONDS:
            self._evict(self.watermark)
        return self._stamp(alerts) if alerts else alerts

    def observe_batch(self, events: list[Event]) -> list[tuple[list[Alert], list[Rejection]]]:
        """`observe` of each event, in order: its alerts and what it left in `rejected` (taken), as one
        event at a time gives them. But a batched detector (`Detector.batched`) only stages each trade,
        and settles the whole batch at the end in one call (the anomaly forest scores every staged row
        in one pass); its alerts take the places `observe` would have given them, and a trade it fails
        on is rejected with that trade's event."""
        batch = self.defer_batched()
        if batch is None:
            return [(self.observe(event), self.take_rejected()) for event in events]
        try:
            results = [(self.observe(event), self.take_rejected()) for event in events]
        finally:
            failed = self.settle_batched(batch)
        if failed:
            index = {id(event): i for i, event in enumerate(events)}
            for rejection in failed:
                results[index[id(rejection.event)]][1].append(rejection)
        return [(self.placed(alerts), rejected) for alerts, rejected in results]

    def defer_batched(self) -> _Batch | None:
        """From now until `settle_batched`, batched detectors only stage the trades observed, and the
        alerts `observe` returns hold a placeholder for theirs (`placed` fills it in). None when no
        detector is batched. A caller that must act on each event as it is observed (the worker's
        forwards read the registry as it stands) uses these three; `observe_batch` is them in one."""
        deferrals = {d: _Deferral(d) for d, _ in self._stream_calls if getattr(d, "batched", False)}
        if not deferrals:
            return None
        batch = _Batch(self._stream_calls, list(deferrals.values()))
        self._stream_calls = [(d, deferrals[d].stage if d in deferrals else call) for d, call in batch.calls]
        return batch

    def settle_batched(self, batch: _Batch) -> list[Rejection]:
        """Settle what was staged since `defer_batched`, in order; the trades a detector failed on."""
        self._stream_calls = batch.calls
        taken = self.take_rejected()
        for deferral in batch.deferrals:
            deferral.settle(self)
        failed, self.rejected = self.rejected, taken
        return failed

    def placed(self, alerts: list) -> list[Alert]:
        """`alerts` with each placeholder replaced by the settled alerts it stood for, stamped."""
        return _placed(alerts, self.versions) if alerts else alerts

    def _reject(self, event: Event, field: str, reason: str, detail: str) -> list[Alert]:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        self.rejected.append(Rejection(event, field, f"{reason}: {detail}"[:500]))
        return []

    def _detector_failed(self, detector, event: Event, exc: Exception) -> None:
        """A detector's bug costs that detector this event, never the other detectors or the stream."""
        name = detector.name
        self.detector_errors[name] = self.detector_errors.get(name, 0) + 1
        self._reject(event, f"detector:{name}", "detector_error", f"{type(exc).__name__}: {exc}")

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
        accounts = registry.accounts
        buyer, seller = accounts.get(trade.buyer_id), accounts.get(trade.seller_id)
        collection = registry.collections.get(trade.collection_id)
        keeps_ledger = self._keeps_ledger
        view = TradeView(trade, buyer, seller, collection, self.ledger.acquisition(trade) if keeps_ledger else None)
        alerts: list[Alert] = []
        self._run(self._stream_calls, view, alerts)
        if buyer is not None and seller is not None and collection is not None:
            self._run(self._complete_calls, view, alerts)
        elif self._registry_calls:
            self._wait(trade.t + self.grace, view)
        if keeps_ledger:
            self.ledger.record(trade)
        return alerts

    def _wait(self, deadline: float, view: TradeView) -> None:
        """Hold a trade's registry checks until its parties and collection are known or `deadline` passes."""
        self._pending.append((deadline, view))

    def _run(self, calls: list, view: TradeView, alerts: list[Alert]) -> None:
        for detector, observe in calls:
            try:
                found = observe(view)
            except Exception as exc:                 # noqa: BLE001
                self._detector_failed(detector, view.trade, exc)
                continue
            if found:
                alerts += found

    def _observe_registry(self, event: AccountEvent | CollectionEvent) -> list[Alert]:
        if isinstance(event, AccountEvent):
            self.registry.apply_account(event)
        else:
            self.registry.apply_collection(event)
        alerts: list[Alert] = []
        for detector, observe_registry in self._registry_event_calls:
            try:
                found = observe_registry(event, self.registry)
            except Exception as exc:                 # noqa: BLE001
                self._detector_failed(detector, event, exc)
                continue
            if found:
                alerts += found
        return alerts

    def _release(self, now: float) -> list[Alert]:
        """Registry checks of waiting trades whose grace ran out before `now`, with what is known now."""
        alerts: list[Alert] = []
        pending = self._pending
        while pending and pending[0][0] < now:
            _, view = pending.popleft()
            view.refresh(self.registry)
            self._run(self._registry_calls, view, alerts)
        return alerts

    def _evict(self, now: float) -> None:
        self._last_evict = now
        self.ledger.evict(now)
        for detector in self.detectors:
            detector.evict(now)
        cutoff = now - self.dedupe_horizon
        order, seen = self._seen_order, self._seen
        while order and order[0][0] < cutoff:
            seen.pop(order.popleft()[1], None)

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
        calls = self._stream_calls, self._registry_calls, self._complete_calls
        # (every registry check, the skipped ones too: each detector gets its figure)
        self._stream_calls, self._registry_calls, self._complete_calls = (
            [(d, _Timed(d, call, self.detector_seconds, self.time_every).observe) for d, call in c]
            for c in (calls[0], calls[1], calls[1]))
        try:
            return self._observe_trade(trade)
        finally:
            self._stream_calls, self._registry_calls, self._complete_calls = calls


class _Batch(NamedTuple):
    """What `defer_batched` replaced: the stream calls to restore, and the deferrals to settle."""

    calls: list
    deferrals: list[_Deferral]


class _Deferral:
    """A batched detector's trades staged during `Monitor.observe_batch`, each with the placeholder that
    holds its place among the alerts, and their settling at the batch's end."""

    __slots__ = ("detector", "staged", "places")

    def __init__(self, detector: Detector):
        self.detector = detector
        self.staged: list = []
        self.places: list[_Place] = []

    def stage(self, view: TradeView) -> list:
        staged = self.detector.stage(view)
        if staged is None:
            return []
        place = _Place(view.trade)
        self.staged.append(staged)
        self.places.append(place)
        return [place]

    def settle(self, monitor: Monitor) -> None:
        """Every staged trade decided in order; should the batch fail, each trade alone, so a detector's
        fault costs only the trades it fails on (as in `observe`)."""
        detector = self.detector
        try:
            settled = detector.settle(self.staged) if self.staged else []
        except Exception:                            # noqa: BLE001
            settled = []
            for staged, place in zip(self.staged, self.places):
                try:
                    settled.append(detector.settle([staged])[0])
                except Exception as exc:             # noqa: BLE001
                    monitor._detector_failed(detector, place.trade, exc)
                    settled.append([])
        for place, alerts in zip(self.places, settled):
            place.alerts = alerts


class _Place:
    """Where a batched detector's alerts on `trade` go in `observe_batch`'s results, once settled."""

    __slots__ = ("trade", "alerts", "versions")

    def __init__(self, trade: TradeEvent):
        self.trade = trade
        self.alerts: list[Alert] = []
        self.versions: dict | None = None


def _placed(alerts: list, versions: dict) -> list[Alert]:
    """`alerts` with each placeholder replaced by the alerts settled for it, stamped."""
    if not any(a.__class__ is _Place for a in alerts):
        return alerts
    out: list[Alert] = []
    for alert in alerts:
        if alert.__class__ is _Place:
            for settled in alert.alerts:
                settled.versions = versions
                out.append(settled)
        else:
            out.append(alert)
    return out


class _Timed:
    """A detector's call behind a stopwatch, adding its estimated share of the unsampled trades too."""

    __slots__ = ("detector", "call", "totals", "scale")

    def __init__(self, detector: Detector, call, totals: dict[str, float], scale: int):
        self.detector, self.call, self.totals, self.scale = detector, call, totals, scale

    @property
    def name(self) -> str:
        return self.detector.name

    def observe(self, view: TradeView) -> list[Alert]:
        started = perf_counter()
        try:
            return self.call(view)
        finally:
            name = self.detector.name
            self.totals[name] = self.totals.get(name, 0.0) + (perf_counter() - started) * self.scale
