"""One work partition's detection state: reorder buffer in, the shared detection core, alerts out.

`WorkProcessor` (stage 1, keyed by collection) runs the collection-scoped
detectors; `KeyedProcessor` (stage 2, keyed by account) runs the account- and
pair-scoped ones, and raises an alert on the partition of the account its
detector names as owner (`Detector.scope`, `Detector.owner`). Stage 2 also
aggregates the large-value reports of the accounts it owns
(amlwatch/reporting/lvtr.py): stage 1, which holds the registry, puts each
party's payment kind and hashes (`trade_sides`) on the forwarded trade, as a
JSON line before the event's bytes, and stage 2 closes days on the low
watermark its sources' markers give it. `RatingProcessor` (stage 3, one partition: the rater's state is
global) rates customers from the "rating facts" the other two send it: each event stage 1 judged with
the alerts it raised, each stage-2 partition's alerts of the forwarded trades it took, and the alerts
of waiting trades a stage-1 core released (docs/REPORTING.md, "Risk ratings in the worker"). All
are plain objects so the ordering and routing can be
tested without Kafka, and each pickles to a snapshot that the Faust agents
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
from amlwatch.detectors.monitor import REFUSED, Monitor, Rejection, detector_order
from amlwatch.engine import build_monitor
from amlwatch.events import AccountEvent, BadRecord, Event, TradeEvent, parse_event, parse_time
from amlwatch.reporting.lvtr import LargeValueAggregator, Side, trade_sides
from amlwatch.reporting.risk import Dispositions, RatedTrade, RiskRater, rated_alert

from .codecs import WorkEvent, WorkMarker, decode_frame, encode_event, encode_marker
from .ordering import ReorderBuffer
from .routing import RANK, Out, keyed_targets, partition_for
from .statecodec import StateMismatch, StateRefused, decode_state, encode_state, state_key  # noqa: F401

STAGE_SCOPES = {1: frozenset({"collection"}), 2: frozenset({"account", "pair"}), 3: frozenset()}
"""Which detector scopes (`Detector.scope`) each stage runs: stage 1 is keyed by collection, stage 2 by
account; stage 3 (ratings) runs none: its core only holds the registry."""


def build_stage_monitor(config: Config, stage: int, with_model: bool):
    """The detection core of one stage: the detectors whose scope (`Detector.scope`) it serves."""
    return build_monitor(config, with_model=with_model, scopes=STAGE_SCOPES[stage])


class _Processor:
    stage = 0
    state_version = 2
    """1: `ready` (what a release decision let go, in processing order) joined the state. 2: stage 2's
    buffered trades carry the source and seq of their forward (the key of their rating facts)."""

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
        self.rating_topic = ""
        """Stage 3's work topic (one partition), or "" when ratings are not rated in the worker."""
        self.facts = 0
        """Rating facts sent: their seq, so stage 3 takes each once (kept in the snapshot like `forwarded`)."""
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
        raw, sides = self._split(message)
        try:
            event = parse(raw)
        except BadRecord:
            self.bad += 1
            return None
        if self.buffer.push(message.source, event.t, RANK[event.type], event.event_id, (event, raw, sides),
                            trade=isinstance(event, TradeEvent)):
            return None
        return event, raw, sides

    def _split(self, message: WorkEvent) -> tuple[bytes, Any]:
        """The event's own bytes, and what the sender put before them (stage 2: the parties' sides)."""
        return message.raw, None

    def drain(self, limit: int | None = None) -> tuple[list[Alert], list[Out]]:
        """Process what was released, in `ready` order (at most `limit` events: `releasable` then says more
        are waiting); once all are, pass the progress on."""
        alerts: list[Alert] = []
        outs: list[Out] = []
        ready = self.ready
        count = len(ready) if limit is None else min(limit, len(ready))
        batch = self.monitor.defer_batched() if count > 1 else None
        if batch is None:
            for _ in range(count):
                a, o = self._process(*ready.popleft())
                alerts.extend(a)
                outs.extend(o)
        else:
            # What is sent of each event is built as it is observed (a forward reads the registry as it
            # stands); only its alerts, and the rating facts that carry them, wait for the batch to settle.
            observed = []
            try:
                for _ in range(count):
                    observed.append(self._observe(*ready.popleft()))
            finally:
                failed = self.monitor.settle_batched(batch)
            for staged in observed:
                a, o = self._finish(staged, failed)
                alerts.extend(a)
                outs.extend(o)
        if ready:
            return alerts, outs
        bound = self.buffer.bound()
        if bound != math.inf:
            released = self._keep(self.monitor.advance(bound), None)
            alerts.extend(released)
            outs.extend(self._released_facts(released))
        if self.out_topic:
            marker = (self.buffer.released_until, self.buffer.all_idle)
            if marker != self._sent_marker and marker[0] != -math.inf:
                self._sent_marker = marker
                self.dirty = True
                value = encode_marker(f"w{self.partition}", *marker)
                outs.extend(Out(self.out_topic, p, None, value) for p in range(self.out_partitions))
                if self.rating_topic:
                    outs.append(Out(self.rating_topic, 0, None, value))
        return alerts, outs

    @property
    def releasable(self) -> bool:
        return bool(self.ready)

    def _process(self, event: Event, raw: bytes, sides: Any = None) -> tuple[list[Alert], list[Out]]:
        return self._finish(self._observe(event, raw, sides))

    def _observe(self, event: Event, raw: bytes, sides: Any) -> tuple:
        """An event through the core, with what is sent of it that its alerts do not decide."""
        self.events += 1
        duplicates = self.monitor.duplicates
        alerts = self.monitor.observe(event)
        fresh = self.monitor.duplicates == duplicates
        if sides is not None and fresh:
            self._aggregate(event, sides)
        refused, outs = (self._dead_letters(self.monitor.take_rejected(), event, raw) if self.monitor.rejected
                         else (False, []))
        if not refused:
            outs += self._forward(event, raw)
        return event, raw, sides, alerts, fresh, refused, outs

    def _finish(self, observed: tuple, failed: list[Rejection] = ()) -> tuple[list[Alert], list[Out]]:
        """The observed event's alerts (settled, when it was observed in a batch) and the rating facts that
        carry them; `failed`, what a batched detector failed on in the batch, is dead-lettered with its event."""
        event, raw, sides, alerts, fresh, refused, outs = observed
        alerts = self._keep(self.monitor.placed(alerts), event)
        if failed:
            own = [rejection for rejection in failed if rejection.event is event]
            if own:
                outs += self._dead_letters(own, event, raw)[1]
        if self.rating_topic:
            outs += self._rating_facts(event, raw, sides, alerts, fresh and not refused, refused)
        return alerts, outs

    # -- rating facts (stage 3's input) ---------------------------------------

    def _fact(self, header: dict, raw: bytes = b"") -> Out:
        self.facts += 1
        value = orjson.dumps(header) + b"\n" + raw
        return Out(self.rating_topic, 0, None, encode_event(self._fact_source, self.facts, value))

    @property
    def _fact_source(self) -> str:
        return f"w{self.partition}"

    def _rating_facts(self, event: Event, raw: bytes, sides: Any, alerts: list[Alert], judged: bool,
                      refused: bool) -> list[Out]:
        return []

    def _released_facts(self, alerts: list[Alert]) -> list[Out]:
        """Alerts of waiting trades whose grace ended, each with its trade's deadline: replay hands them to
        the rater with the first event after the deadline, and so does stage 3."""
        if not alerts or not self.rating_topic:
            return []
        grace = self.monitor.grace
        entries = []
        for alert in alerts:
            t = parse_time(alert.ts).timestamp()
            entries.append([t + grace, t, alert.event_id, rated_alert(alert)])
        return [self._fact({"k": "a", "alerts": entries})]

    def _dead_letters(self, rejections: list[Rejection], event: Event, raw: bytes) -> tuple[bool, list[Out]]:
        """What the core refused or a detector failed on, to the dead-letter topic (from stage 1 only: stage 2
        sees the same trades again); True when `event` itself was refused (then it is not forwarded)."""
        refused, outs = False, []
        topic = self.monitor.config.kafka.deadletter_topic if self.stage == 1 else ""
        for rejection in rejections:
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

    def _rating_facts(self, event: Event, raw: bytes, sides: Any, alerts: list[Alert], judged: bool,
                      refused: bool) -> list[Out]:
        """What stage 3 needs of one event: the event with the alerts it raised here ("e", when the core
        judged it), or that it was not judged ("x") when stage 2 still answers its forward. A trade forwarded
        to stage 2 names its forward (`key`) and the stage-2 partitions that answer it (`need`). Registry
        events are sent whole by partition 0 only; the others say they took them ("s"), so stage 3 rates one
        only once every partition released the waiting trades it ended."""
        if alerts:
            own = [rated_alert(a) for a in alerts if a.event_id == event.event_id]
            outs = self._released_facts([a for a in alerts if a.event_id != event.event_id])
        else:
            own, outs = [], []
        if isinstance(event, TradeEvent):
            forwarded = self.out_topic and event.paid and not refused
            key = [f"w{self.partition}", self.forwarded] if forwarded else None
            need = [f"a{p}" for p in keyed_targets(event, self.out_partitions)] if forwarded else []
            if judged:
                # the fields the rater reads, not the trade's bytes: the rating stage need not parse it again
                outs.append(self._fact({"k": "e", "key": key, "need": need, "alerts": own,
                                        "tr": RatedTrade.fields(event)}))
            elif forwarded:
                outs.append(self._fact({"k": "x", "key": key, "need": need}))
        elif self.partition == 0:
            header = {"k": "e" if judged else "x", "key": ["r", event.event_id]}
            if judged:
                header["alerts"] = own
            outs.append(self._fact(header, raw if judged else b""))
        else:
            outs.append(self._fact({"k": "s", "key": ["r", event.event_id], "t": event.t, "alerts": []}))
        return outs


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

    def _split(self, message: WorkEvent) -> tuple[bytes, Any]:
        raw = message.raw
        if raw[:1] != b"[":
            return raw, None
        head, _, raw = raw.partition(b"\n")
        # plain values while buffered (snapshots hold only state classes); the forward's source and seq key
        # this partition's answer to stage 3
        return raw, (orjson.loads(head), message.source, message.seq)

    @property
    def _fact_source(self) -> str:
        return f"a{self.partition}"

    def _rating_facts(self, event: Event, raw: bytes, sides: Any, alerts: list[Alert], judged: bool,
                      refused: bool) -> list[Out]:
        """One answer ("s") to every forward taken, with the alerts this partition owns (maybe none): stage 3
        rates a paid trade once each partition it went to has answered."""
        if sides is None:
            return []
        return [self._fact({"k": "s", "key": [sides[1], sides[2]], "t": event.t,
                            "alerts": [rated_alert(a) for a in alerts]})]

    def _aggregate(self, trade: TradeEvent, sides: tuple) -> None:
        if trade.t < self.lvtr.watermark - self.monitor.dedupe_horizon:
            # Replay's core refuses it (late_beyond_dedupe_window: its id may be forgotten, so it cannot be
            # told from a copy), and this stage's core runs without time guards: a copy a restored stage-1
            # partition sends again after the stream moved on must not count twice.
            self.beyond_dedupe += 1
            return
        pay, receive = sides[0]
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


class RatingProcessor(_Processor):
    """Stage 3: the customer risk ratings of the whole platform, from the other stages' rating facts.

    One partition: the rater's state is global (the peer median over every active account, accounts linked
    by national ID across partitions, persons). Events come in the order stage 1 releases them (its markers,
    the same tie-break), each rated once every stage-2 partition it went to has answered with its alerts;
    alerts of waiting trades join the first event after their deadline, as in replay. Everything is decided
    and rated as each input message is taken, so the ratings follow from the input log alone. The core has
    no detectors: it holds the registry the rater reads, applied in the same order as replay's."""

    stage = 3

    def __init__(self, monitor, sources: list[str], dispositions: Dispositions | None = None):
        super().__init__(0, monitor, sources, "", 0)
        self.rater = RiskRater(monitor.config.risk, monitor.registry, dispositions)
        self.order = detector_order(monitor.config)
        """Replay's alert order within one event: its stream detectors, then its registry checks."""
        self.answers: dict[tuple, dict[str, deque]] = {}
        """Per forward (or registry event), the answers that came in, by source, oldest first."""
        self.dropped: dict[tuple, list[str]] = {}
        """Forwards of events stage 1 did not judge ("x"): their answers are taken and left unrated."""
        self.waiting: list[list] = []
        """[deadline, trade t, event id, alert] of released waiting trades, for the next event after it."""
        self.released = 0
        """Alerts of waiting trades handed to the rater (counted)."""
        self.unanswered = 0
        """Events rated without an answer that never came (counted; docs/REPORTING.md)."""
        self.answered: dict[str, float] = {}
        """Per answering sender, the latest event time it answered."""
        self.records: list[dict] = []

    def handle(self, offset: int, value: bytes, parse: Callable[[bytes], Event] = parse_event
               ) -> tuple[list[Alert], list[Out]]:
        self.offset = offset
        answers, answered = self.answers, self.answered
        for message in decode_frame(value):
            if isinstance(message, WorkMarker):
                if self.buffer.mark(message.source, message.t, message.idle):
                    self.dirty = True
                continue
            if message.seq <= self.last_seq.get(message.source, -1):
                self.duplicates += 1
                continue
            self.last_seq[message.source] = message.seq
            self.dirty = True
            head, _, raw = message.raw.partition(b"\n")
            fact = orjson.loads(head)
            kind = fact["k"]
            if kind == "s":
                source, key = message.source, tuple(fact["key"])
                if fact["t"] > answered.get(source, -math.inf):
                    answered[source] = fact["t"]
                got = answers.get(key)
                if got is None:
                    answers[key] = {source: deque((fact["alerts"],))}
                else:
                    got.setdefault(source, deque()).append(fact["alerts"])
                if key in self.dropped:
                    self._drop(key)
            elif kind == "a":
                self.waiting.extend(fact["alerts"])
            elif kind == "x":
                key = tuple(fact["key"])
                self.dropped[key] = fact.get("need") or self._others(message.source)
                self._drop(key)
            else:
                trade = fact.get("tr")
                if trade is not None:
                    event = RatedTrade(*trade)
                else:
                    try:
                        event = parse(raw)
                    except BadRecord:
                        self.bad += 1
                        continue
                item = (event, fact, message.source)
                if not self.buffer.push(message.source, event.t, RANK[event.type], event.event_id, item):
                    self.ready.append(item)       # late: after what was released before it
        self._release()
        self._rate_ready()
        return [], []

    def _others(self, source: str) -> list[str]:
        return [s for s in self.buffer.progress if s != source]

    def _need(self, event: Event | RatedTrade, fact: dict, source: str) -> tuple[tuple | None, list[str]]:
        if event.type == "trade":
            return (tuple(fact["key"]) if fact.get("key") else None), fact.get("need") or []
        return ("r", event.event_id), self._others(source)

    def _complete(self, key, need: list[str]) -> bool:
        got = self.answers.get(key, {})
        return all(got.get(source) for source in need)

    def _take_answers(self, key, need: list[str]) -> list:
        got = self.answers.get(key)
        alerts: list = []
        for source in need:
            alerts.extend(got[source].popleft())
            if not got[source]:
                del got[source]
        if got is not None and not got:
            del self.answers[key]
        return alerts

    def waiting_for(self) -> tuple[str, list[str]] | None:
        """(event id, the sources whose answers it waits for) of the event the stage is held at, if any."""
        if not self.ready:
            return None
        event, fact, source = self.ready[0]
        key, need = self._need(event, fact, source)
        got = self.answers.get(key, {})
        return event.event_id, [s for s in need if not got.get(s)]

    def _drop(self, key) -> None:
        need = self.dropped.get(key)
        if need is not None and self._complete(key, need):
            del self.dropped[key]
            self._take_answers(key, need)

    def _rate_ready(self) -> None:
        """Rate released events in order, each once its answers are in (a later one waits behind it)."""
        ready = self.ready
        while ready:
            event, fact, source = ready[0]
            key, need = self._need(event, fact, source)
            if need and not self._complete(key, need):
                got = self.answers.get(key, {})
                missing = [s for s in need if not got.get(s)]
                horizon = self.monitor.dedupe_horizon
                if any(self.answered.get(s, -math.inf) - event.t <= horizon for s in missing):
                    return
                # An answer lost for good (a forward deleted by retention before stage 2 read it): once each
                # missing sender has answered events a dedupe window later (it answers in event-time order,
                # and a later copy would be refused as beyond the window), rated without it, so ratings never
                # stop; its answer, should it come after all, is taken and left unrated.
                self.dropped[key] = missing
                self.unanswered += 1
                need = [s for s in need if s not in missing]
            ready.popleft()
            own = fact.get("alerts") or []
            self._rate(event, own + self._take_answers(key, need) if need else own)

    def _rate(self, event: Event, own: list[dict]) -> None:
        self.events += 1
        t, released = event.t, []
        if self.waiting and any(entry[0] < t for entry in self.waiting):
            released = sorted((e for e in self.waiting if e[0] < t), key=lambda e: (e[0], e[1], e[2]))
            self.waiting = [e for e in self.waiting if e[0] >= t]
            self.released += len(released)
        if event.type == "account":
            self.monitor.registry.apply_account(event)
        elif event.type == "collection":
            self.monitor.registry.apply_collection(event)
        if len(own) > 1:
            order = self.order
            unknown = (False, len(order))
            own.sort(key=lambda a: order.get(a["detector"], unknown))
        self.records.extend(self.rater.observe(event, [e[3] for e in released] + own if released else own))

    def drain(self, limit: int | None = None) -> tuple[list[Alert], list[Out]]:
        """Nothing waits for a drain: `handle` rates what each message lets go."""
        return [], []

    @property
    def releasable(self) -> bool:
        return False

    def take_records(self) -> list[dict]:
        records, self.records = self.records, []
        return records

    def snapshot(self) -> bytes:
        blob = encode_state(self, self._refs(self.monitor, self.rater.dispositions), state_key(),
                            {"config": self.monitor.config.hash})
        self.dirty = False
        return blob

    @classmethod
    def restore(cls, blob: bytes, monitor, dispositions: Dispositions | None = None) -> "RatingProcessor":
        """As the other stages', with the restoring worker's dispositions (its labels file) by reference."""
        dispositions = dispositions or Dispositions()
        processor = decode_state(blob, cls._refs(monitor, dispositions), monitor, state_key(), {"stage": cls.stage},
                                 expect={"config": monitor.config.hash})
        if not isinstance(processor, cls):
            raise StateRefused(f"snapshot holds a {type(processor).__name__}, not a {cls.__name__}", "class")
        return processor

    @staticmethod
    def _refs(monitor, dispositions: Dispositions) -> dict[str, Any]:
        return {**_externals(monitor), "risk": monitor.config.risk, "dispositions": dispositions}


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
