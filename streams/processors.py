"""One work partition's detection state: reorder buffer in, the shared detection core, alerts out.

`WorkProcessor` (stage 1, keyed by collection) runs the collection-scoped
detectors; `KeyedProcessor` (stage 2, keyed by account) runs the account- and
pair-scoped ones, and raises an alert on the partition of the account its
detector names as owner (`Detector.scope`, `Detector.owner`). Stage 2 also
aggregates the large-value reports of the accounts it owns
(amlwatch/reporting/lvtr.py): stage 1, which holds the registry, puts each
party's payment kind and hashes (`trade_sides`) on the forwarded trade, as a
JSON line before the event's bytes, and stage 2 closes days on the low
watermark its sources' markers give it. Both are plain objects so the ordering and routing can be
tested without Kafka, and both pickle to a snapshot that the Faust agents
keep in a changelog-backed table (the configuration and the anomaly model are
left out of the snapshot and supplied again on restore).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable

import orjson

from amlwatch.alerts import Alert
from amlwatch.config import Config
from amlwatch.deadletter import dead_letter_record
from amlwatch.detectors.monitor import REFUSED
from amlwatch.engine import build_monitor
from amlwatch.events import BadRecord, Event, TradeEvent, parse_event
from amlwatch.reporting.lvtr import LargeValueAggregator, Side, trade_sides

from .codecs import WorkEvent, WorkMarker, decode_frame, encode_event, encode_marker
from .ordering import ReorderBuffer
from .routing import RANK, Out, keyed_targets, partition_for
from .statecodec import StateMismatch, StateRefused, decode_state, encode_state, state_key  # noqa: F401

STAGE_SCOPES = {1: frozenset({"collection"}), 2: frozenset({"account", "pair"})}
"""Which detector scopes (`Detector.scope`) each stage runs: stage 1 is keyed by collection, stage 2 by
account."""


def build_stage_monitor(config: Config, stage: int, with_model: bool):
    """The detection core of one stage: the detectors whose scope (`Detector.scope`) it serves."""
    return build_monitor(config, with_model=with_model, scopes=STAGE_SCOPES[stage])


class _Processor:
    stage = 0
    state_version = 1
    """1: `ready` (what a release decision let go, in processing order) joined the state."""

    def __init__(self, partition: int, monitor, sources: list[str], out_topic: str, out_partitions: int):
        self.partition = partition
        self.monitor = monitor
        self.buffer = ReorderBuffer(sources, max_skew=monitor.max_skew if self.stage == 1 else math.inf)
        self.ready: deque = deque()
        """Released (and late) events not yet processed, in the order they are processed. Releases are
        decided once per input message, so this order, and the forward count assigned in it, depend only
        on the messages, never on how they were batched or when `drain` ran."""
        self.out_topic = out_topic
        self.out_partitions = out_partitions
        self.offset = -1
        """Last input offset this state reflects (buffered or applied)."""
        self.dirty = False
        self.events = 0
        self.bad = 0
        self.last_seq: dict[str, int] = {}
        """Per source, the last event seq taken: a copy sent again after a failover is not taken twice."""
        self.duplicates = 0
        self.forwarded = 0
        self._sent_marker: tuple[float, bool] | None = None

    def handle(self, offset: int, value: bytes, parse: Callable[[bytes], Event] = parse_event
               ) -> tuple[list[Alert], list[Out]]:
        """Take one Kafka message (a frame of work messages), then decide what the watermark releases; what
        is released or late waits in `ready` for `drain` (stage 2 takes a late event at once). `parse` is
        the worker's shared one (streams/parsed.py); not kept, as the processor is pickled."""
        self.offset = offset
        alerts: list[Alert] = []
        outs: list[Out] = []
        for message in decode_frame(value):
            if isinstance(message, WorkMarker):
                if self.buffer.mark(message.source, message.t, message.idle):
                    self.dirty = True
                continue
            late = self._take(message, parse)
            if late is not None:
                a, o = self._late(late)
                alerts.extend(a)
                outs.extend(o)
        self._release()
        return alerts, outs

    def _release(self) -> None:
        """The release decision: what the watermark lets go joins `ready`, earliest first."""
        self.ready.extend(self.buffer.release())

    def _late(self, late: tuple) -> tuple[list[Alert], list[Out]]:
        """A late event (behind what was released) is processed after what was released before it."""
        self.ready.append(late)
        return [], []

    def _take(self, message: WorkEvent, parse: Callable[[bytes], Event]) -> tuple[Event, bytes] | None:
        """Buffer one event; the event itself when it is late (behind what was released)."""
        if message.seq <= self.last_seq.get(message.source, -1):
            # The sender restarted from an older snapshot (or its router re-read uncommitted input)
            # and replays what it had already sent: same seq, same event.
            self.duplicates += 1
            return None
        self.last_seq[message.source] = message.seq
        self.dirty = True
        raw, sides = self._split(message.raw)
        try:
            event = parse(raw)
        except BadRecord:
            self.bad += 1
            return None
        if self.buffer.push(message.source, event.t, RANK[event.type], event.event_id, (event, raw, sides),
                            trade=isinstance(event, TradeEvent)):
            return None
        return event, raw, sides

    def _split(self, raw: bytes) -> tuple[bytes, Any]:
        """The event's own bytes, and what the sender put before them (stage 2: the parties' sides)."""
        return raw, None

    def drain(self, limit: int | None = None) -> tuple[list[Alert], list[Out]]:
        """Process what was released, in `ready` order (at most `limit` events: `releasable` then says more
        are waiting); once all are, pass the progress on."""
        alerts: list[Alert] = []
        outs: list[Out] = []
        ready = self.ready
        for _ in range(len(ready) if limit is None else min(limit, len(ready))):
            a, o = self._process(*ready.popleft())
            alerts.extend(a)
            outs.extend(o)
        if ready:
            return alerts, outs
        bound = self.buffer.bound()
        if bound != math.inf:
            alerts.extend(self._keep(self.monitor.advance(bound), None))
        if self.out_topic:
            marker = (self.buffer.released_until, self.buffer.all_idle)
            if marker != self._sent_marker and marker[0] != -math.inf:
                self._sent_marker = marker
                self.dirty = True
                value = encode_marker(f"w{self.partition}", *marker)
                outs.extend(Out(self.out_topic, p, None, value) for p in range(self.out_partitions))
        return alerts, outs

    @property
    def releasable(self) -> bool:
        return bool(self.ready)

    def _process(self, event: Event, raw: bytes, sides: Any = None) -> tuple[list[Alert], list[Out]]:
        self.events += 1
        duplicates = self.monitor.duplicates
        alerts = self._keep(self.monitor.observe(event), event)
        if sides is not None and self.monitor.duplicates == duplicates:
            self._aggregate(event, sides)
        if self.monitor.rejected:
            refused, outs = self._dead_letters(event, raw)
            return alerts, outs if refused else outs + self._forward(event, raw)
        return alerts, self._forward(event, raw)

    def _dead_letters(self, event: Event, raw: bytes) -> tuple[bool, list[Out]]:
        """What the core refused or a detector failed on, to the dead-letter topic (from stage 1 only: stage 2
        sees the same trades again); True when `event` itself was refused (then it is not forwarded)."""
        refused, outs = False, []
        topic = self.monitor.config.kafka.deadletter_topic if self.stage == 1 else ""
        for rejection in self.monitor.take_rejected():
            own = rejection.event is event
            refused = refused or (own and rejection.reason.split(":", 1)[0] in REFUSED)
            if topic:
                record = dead_letter_record(raw if own else b"", BadRecord(rejection.field, rejection.reason),
                                            {"stage": self.stage, "partition": self.partition, "offset": self.offset,
                                             "event_id": rejection.event.event_id}, with_base64=True)
                key = f"{rejection.event.event_id}:{rejection.reason.split(':', 1)[0]}".encode()
                outs.append(Out(topic, None, key, orjson.dumps(record)))
        return refused, outs

    def _keep(self, alerts: list[Alert], event: Event | None) -> list[Alert]:
        return alerts

    def _forward(self, event: Event, raw: bytes) -> list[Out]:
        return []

    def _aggregate(self, trade: TradeEvent, sides: list) -> None:
        """Stage 2 only: a forwarded trade's large-value totals."""

    def take_records(self) -> list[dict]:
        """Report records raised since the last call (stage 2): the stage sends and archives them."""
        return []

    # -- snapshots ----------------------------------------------------------

    def snapshot(self) -> bytes:
        """The state as an authenticated, versioned envelope (streams/statecodec.py)."""
        blob = encode_state(self, _externals(self.monitor), state_key(), {"config": self.monitor.config.hash})
        self.dirty = False
        return blob

    @classmethod
    def restore(cls, blob: bytes, monitor) -> "_Processor":
        """Rebuild from a snapshot; `monitor` (freshly built) supplies the config and model. A snapshot that
        is not this code's, not this config's or not authentic is refused (StateMismatch, StateRefused)."""
        processor = decode_state(blob, _externals(monitor), monitor, state_key(), {"stage": cls.stage},
                                 expect={"config": monitor.config.hash})
        if not isinstance(processor, cls):
            raise StateRefused(f"snapshot holds a {type(processor).__name__}, not a {cls.__name__}", "class")
        # The snapshot may have been written before its last marker reached the broker (a crash between
        # the table write and the producer flush): send the progress again rather than trust it was sent.
        processor._sent_marker = None
        return processor


class WorkProcessor(_Processor):
    """Stage 1: every trade of some collections, the whole registry."""

    stage = 1

    def _keep(self, alerts: list[Alert], event: Event | None) -> list[Alert]:
        if self.partition == 0:
            return alerts
        # Registry-only alerts (no trades) are raised alike on every partition: partition 0 speaks for all.
        return [a for a in alerts if a.trade_ids]

    def _forward(self, event: Event, raw: bytes) -> list[Out]:
        if not self.out_topic or not isinstance(event, TradeEvent) or not event.paid:
            return []
        self.forwarded += 1
        sides = trade_sides(event, self.monitor.registry, self.monitor.config.payment_kind)
        value = encode_event(f"w{self.partition}", self.forwarded, orjson.dumps([list(s) for s in sides]) + b"\n" + raw)
        key = event.trade_id.encode()
        return [Out(self.out_topic, p, key, value, event.t) for p in keyed_targets(event, self.out_partitions)]


class KeyedProcessor(_Processor):
    """Stage 2: every paid trade of some accounts; raises only what this partition owns."""

    stage = 2

    def __init__(self, partition: int, partitions: int, monitor, sources: list[str]):
        super().__init__(partition, monitor, sources, "", 0)
        self.partitions = partitions
        monitor.time_guards = False       # a sparse share of the stream: stage 1 applied the time guards
        config = monitor.config
        self.lvtr = LargeValueAggregator(config.lvtr, config.payment_kind, owns=PartitionOwner(partition, partitions))
        self.beyond_dedupe = 0
        self.records: list[dict] = []

    def _split(self, raw: bytes) -> tuple[bytes, Any]:
        if raw[:1] != b"[":
            return raw, None
        head, _, raw = raw.partition(b"\n")
        return raw, orjson.loads(head)    # plain lists while buffered: snapshots hold only state classes

    def _aggregate(self, trade: TradeEvent, sides: list) -> None:
        if trade.t < self.lvtr.watermark - self.monitor.dedupe_horizon:
            # Replay's core refuses it (late_beyond_dedupe_window: its id may be forgotten, so it cannot be
            # told from a copy), and this stage's core runs without time guards: a copy a restored stage-1
            # partition sends again after the stream moved on must not count twice.
            self.beyond_dedupe += 1
            return
        pay, receive = sides
        self.records.extend(self.lvtr.observe_trade(trade, (Side(*pay), Side(*receive))))

    def _late(self, late: tuple) -> tuple[list[Alert], list[Out]]:
        """A late trade meets the watermark of its arrival: what the markers before it released is taken
        first and the days they passed are closed, then the trade. (Else a late trade in one batch with
        earlier ones, a backlog or a restore, met a watermark behind them and joined a day replay had let
        go.)"""
        self._release()
        alerts, outs = self.drain()
        a, o = self._process(*late)
        return alerts + a, outs + o

    def drain(self, limit: int | None = None) -> tuple[list[Alert], list[Out]]:
        """Also closes the large-value days the low watermark passed, once every released trade is in."""
        alerts, outs = super().drain(limit)
        if not self.ready:
            closed = self.lvtr.advance(self.low_watermark())
            if closed:
                self.dirty = True
                self.records.extend(closed)
        return alerts, outs

    def low_watermark(self) -> float:
        """Every trade before this time has been taken: the sources' least progress, or, once every source
        is caught up (idle), the furthest any got, which is the latest event time in the stream, as replay's
        watermark is at the same point."""
        bound = self.buffer.bound()
        if bound != math.inf:
            return bound
        return max(self.buffer.progress.values(), default=-math.inf)

    def take_records(self) -> list[dict]:
        records, self.records = self.records, []
        return records

    def _keep(self, alerts: list[Alert], event: Event | None) -> list[Alert]:
        if not alerts or not isinstance(event, TradeEvent):
            return []
        owners = {detector.name: detector for detector in self.monitor.detectors}
        return [alert for alert in alerts
                if partition_for(owners[alert.detector].owner(alert, event), self.partitions) == self.partition]


class PartitionOwner:
    """Whether an account's large-value totals belong to this stage-2 partition (picklable, for snapshots)."""

    __slots__ = ("partition", "partitions")

    def __init__(self, partition: int, partitions: int):
        self.partition = partition
        self.partitions = partitions

    def __call__(self, account: str) -> bool:
        return partition_for(account, self.partitions) == self.partition


EXTERNAL_ATTRIBUTES = ("model", "watchlist")
"""Detector attributes that are inputs, not state: the anomaly model (over 1 MB) and a watchlist (read from
its files or topic as they are now). A snapshot names them; the restoring worker supplies its own, so a
snapshot can neither carry a stale copy nor make the restore read files or topics it names."""


def _externals(monitor) -> dict[str, Any]:
    """Objects a snapshot refers to by name, supplied again on restore: the config (and its large-value and
    payment-kind sections, outside the config hash), the model, a watchlist."""
    config = monitor.config
    refs: dict[str, Any] = {"config": config, "lvtr": config.lvtr, "payment_kind": config.payment_kind}
    for detector in monitor.detectors:
        for name in EXTERNAL_ATTRIBUTES:
            value = getattr(detector, name, None)
            if value is not None:
                refs[name] = value
    return refs
