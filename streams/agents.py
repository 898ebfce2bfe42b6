"""The worker's stages: router, collection-keyed detection, account-keyed detection.

router   input topics -> aml.work (trades by collection, registry events to
         every partition, progress markers) or aml.deadletter; read by the
         intake's own consumer in whole fetches (streams/intake.py)
work     aml.work partition p: reorder by event time, WorkProcessor, alerts
         -> aml.alerts, paid trades -> aml.work.accounts (by buyer and seller)
keyed    aml.work.accounts partition p: reorder, KeyedProcessor, alerts

Work and keyed partitions keep their processor's snapshot (detector state,
reorder buffer, the input offset it covers) in a changelog-backed table.
Events are not acked when processed (`noack_take`): only once a snapshot
covering them is written and the producer flushed (alerts, forwarded trades
and changelog all on the broker) are they acked, so committed offsets never
run ahead of saved state. A restarted partition reloads the snapshot, skips
what it covers and reprocesses the rest: at-least-once with repeatable ids.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from typing import Any

import orjson

from amlwatch.alerts import wall_clock_now
from amlwatch.config import Config

from .app import track_produced_topics
from .codecs import encode_alert
from .processors import KeyedProcessor, WorkProcessor, build_stage_monitor
from .gaps import Admit, GapGuard
from .intake import Intake
from .parsed import ParsedEventCache
from .routing import Out, Router, frame_outs, source_name
from .snapshots import CHUNK, SnapshotFailed, SnapshotStore, snapshot_in_child
from .topics import input_topics, partition_counts

log = logging.getLogger("amlwatch.streams")

WAITING_LOG_SECONDS = 5.0
SLICE_SECONDS = 0.02
"""A stage works at most this long before it sends what it has and lets the others run."""
DRAIN_SLICE = 500
"""Released events processed before the same (a backlog released at once can take seconds)."""
REWIND_SECONDS = 2.0
"""A rewind not answered by the expected message within this long is issued again."""
HEARTBEAT_SECONDS = 1.0
"""Routers repeat unchanged progress markers this often, which also paces snapshots when idle."""


class StreamRuntime:
    """Everything one worker process holds: processors per partition, unacked events, locks."""

    def __init__(self, app, config: Config, *, with_model: bool = True, metrics: Any = None, archive: Any = None):
        self.app = app
        self.config = config
        self.kafka = kafka = config.kafka
        self.with_model = with_model
        self.metrics = metrics
        self.archive = archive
        """The worker's RecordArchive: inputs are acked only once their records are durable in it."""
        self.inputs = list(input_topics(kafka).values())
        counts = partition_counts(kafka, self.inputs + [kafka.work_topic, kafka.keyed_topic])
        self.work_partitions = counts[kafka.work_topic]
        self.keyed_partitions = counts[kafka.keyed_topic]
        self.sources = [source_name(t, p) for t in self.inputs for p in range(counts[t])]
        self.parsed = ParsedEventCache()
        self.router = Router(kafka.work_topic, self.work_partitions, kafka.deadletter_topic,
                             parse=self.parsed.parse)
        self.procs: dict[tuple[int, int], Any] = {}
        self.unacked: dict[tuple[int, int], list] = defaultdict(list)
        self.locks = {1: asyncio.Lock(), 2: asyncio.Lock()}
        self._markers_at = 0.0
        self.streams: dict[int, Any] = {}
        self.saved_at: dict[tuple[int, int], float] = {}
        self.snapshots_paused_until = 0.0
        self.snapshotting: asyncio.Future | None = None
        self.snapshot_key: tuple[int, int] | None = None
        """The partition whose snapshot a child process is taking: its offset must not move meanwhile."""
        self._marker_sent: dict[str, tuple[float, bool, float]] = {}
        self._caught_up: dict[str, float] = {}
        self.ready = False
        self.counts = defaultdict(int)
        self._last_waiting_log = 0.0
        self.gaps = GapGuard(retry_seconds=REWIND_SECONDS)

        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.work_topic = app.topic(kafka.work_topic, partitions=self.work_partitions, **raw)
        self.keyed_topic = app.topic(kafka.keyed_topic, partitions=self.keyed_partitions, **raw)
        changelog = {"segment.ms": "60000", "min.cleanable.dirty.ratio": "0.05",
                     "max.message.bytes": str(2 * CHUNK)}
        self.tables = {
            1: app.Table("work-state", partitions=self.work_partitions, extra_topic_configs=changelog,
                         key_type=bytes, value_type=bytes),
            2: app.Table("keyed-state", partitions=self.keyed_partitions, extra_topic_configs=changelog,
                         key_type=bytes, value_type=bytes),
        }
        self.stores = {stage: SnapshotStore(table.data) for stage, table in self.tables.items()}
        self.stage_topics = {kafka.work_topic: 1, kafka.keyed_topic: 2}
        self.internal_topics = frozenset(self.stage_topics)

        self.intake = Intake(kafka, self.inputs, self._route, self._forget, self._markers)
        app.task(self._intake_task)
        app.agent(self.work_topic, name="work")(self._stage_agent(1))
        app.agent(self.keyed_topic, name="keyed")(self._stage_agent(2))
        app.timer(max(0.2, kafka.snapshot_seconds), name="snapshots")(self._snapshot_timer())
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_partitions_assigned.connect(self._on_assigned)

    # -- agents -------------------------------------------------------------

    async def _route(self, batch: dict) -> dict:
        """One fetch of input records: route (or dead-letter), flush, archive; the offsets to commit."""
        outs: list[Out] = []
        kinds: dict[str, int] = defaultdict(int)
        archived = routed = 0
        commit = {}
        for tp, records in batch.items():
            for message in records:
                parsed, out = self.router.route(message.topic, message.partition, message.offset,
                                                message.value)
                outs.extend(out)
                dead = None if parsed is not None else orjson.loads(out[0].value)
                if dead is None:
                    kinds[parsed.type] += 1
                elif self.metrics is not None:
                    self.metrics.bad_record(dead["field"])
                if self.archive is not None:
                    archived += self._archive_input(message, parsed, dead)
            routed += len(records)
            commit[tp] = records[-1].offset + 1
        outs.extend(self._batch_markers(source_name(tp.topic, tp.partition) for tp in batch))
        if self.metrics is not None:
            for kind, count in kinds.items():
                self.metrics.event_in(kind, count)
            self.metrics.archive_written(archived)
        await self._send(outs)
        await self.app.producer.flush()
        if self.archive is not None:
            self.archive.commit()
        self.counts["routed"] += routed
        return commit

    async def _intake_task(self) -> None:
        self._track_produced_topics(changelogs=False)
        await self.intake.run()

    def _track_produced_topics(self, changelogs: bool = True) -> None:
        """Tracking a topic asks the broker for it, which auto-creates a missing one with the broker's
        defaults: the changelogs only once the Faust consumer is assigned, when they exist."""
        kafka = self.kafka
        topics = [kafka.work_topic, kafka.keyed_topic, kafka.alerts_topic, kafka.deadletter_topic]
        if changelogs:
            topics += [table.changelog_topic.get_topic_name() for table in self.tables.values()]
        track_produced_topics(self.app.producer._ensure_producer(), topics)

    def _archive_input(self, message, parsed, dead: dict | None) -> int:
        """Keep one input message in the record archive; the bytes kept."""
        source = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
        if dead is None:
            self.archive.append_event(message.value, source, "ok", parsed.t)
        else:
            self.archive.append_event(message.value, source, dead["reason"], field=dead["field"])
        return len(message.value)

    def _stage_agent(self, stage: int):
        async def agent(stream):
            self.streams[stage] = stream
            async for events in stream.noack_take(500, within=0.01):
                async with self.locks[stage]:
                    await self._process(stage, stream, events)
                    await self._maybe_snapshot(stage)
        agent.__name__ = "work" if stage == 1 else "keyed"
        return agent

    async def _current(self, events: list) -> list:
        """The events of a batch that belong to the current assignment.

        During a rebalance or table recovery the batch is dropped (neither processed nor acked): Faust
        seeks every partition back to its committed offset afterwards and delivers it again. Waiting
        here instead would stop this agent from draining its stream, and a full stream buffer stops
        Faust's fetcher, which recovery needs to read the changelogs: a deadlock. A batch taken before
        a rebalance can also hold messages of a partition this worker keeps, past its committed offset;
        processed now, they would move the reloaded state past the messages in between.
        """
        app = self.app
        generation = app.consumer_generation_id
        if app.rebalancing or getattr(app, "in_recovery", False) or app.tables.recovery.in_recovery:
            current = []
        else:
            current = [event for event in events if event.message.generation_id == generation]
        if len(current) != len(events):
            self.counts["stale"] += len(events) - len(current)
            log.info("dropped messages fetched before a rebalance",
                     extra={"messages": len(events) - len(current), "generation": generation})
        return current

    async def _process(self, stage: int, stream, events) -> None:
        """Handle a batch in slices of at most SLICE_SECONDS: after each, what was released is processed
        and sent and the event loop runs the other stages, so a large batch (a backlog) neither holds
        alerts back nor stalls the rest of the worker."""
        alerts, outs, touched, covered = [], [], set(), []
        deadline = time.perf_counter() + SLICE_SECONDS
        for event in await self._current(events):
            message = event.message
            key = (stage, message.partition)
            proc = self.procs.get(key)
            if proc is None:
                proc = self.procs[key] = self._load(stage, message.partition)
                if proc.offset < 0:
                    proc.offset = self._start_offset(message) - 1
            if not await self._admit(message.tp, proc.offset + 1, message.offset):
                if message.offset <= proc.offset:
                    covered.append(event)
                continue
            a, o = proc.handle(message.offset, message.value, self.parsed.parse)
            alerts.extend(a)
            outs.extend(o)
            self.unacked[key].append(event)
            touched.add(key)
            if time.perf_counter() > deadline:
                await self._emit(touched, alerts, outs)
                alerts, outs, touched = [], [], set()
                await asyncio.sleep(0)
                deadline = time.perf_counter() + SLICE_SECONDS
        await self._emit(touched, alerts, outs)
        for event in covered:
            await stream.ack(event)

    async def _emit(self, touched: set, alerts: list, outs: list) -> None:
        """Process what the touched partitions released, a slice at a time; send alerts, forwards and
        markers after each slice."""
        for key in touched:
            proc = self.procs.get(key)
            while proc is not None:
                a, o = proc.drain(DRAIN_SLICE)
                alerts.extend(a)
                outs.extend(o)
                if not proc.releasable:
                    break
                await self._send_alerts(alerts, outs)
                alerts, outs = [], []
                await asyncio.sleep(0)
                if self.procs.get(key) is not proc:
                    break                 # moved away while the loop ran the others
        await self._send_alerts(alerts, outs)

    async def _send_alerts(self, alerts: list, outs: list) -> None:
        if alerts:
            now = wall_clock_now()
            for alert in alerts:
                key, value = encode_alert(alert, now)
                outs.append(Out(self.kafka.alerts_topic, None, key, value))
            if self.metrics is not None:
                self.metrics.alerts_out(alerts)
            if self.archive is not None:
                for alert in alerts:
                    self.archive.append_alert(alert, detected_at=now)
            self.counts["alerts"] += len(alerts)
        await self._send(outs)

    def _start_offset(self, message) -> int:
        """Where a partition without a snapshot starts: its committed offset, else offset 0.

        Not the first message read: right after a rebalance that one can already be past messages lost
        to the fetch race (streams/gaps.py). A log whose start was deleted by retention shows a hole at
        0 that the gap guard accepts after one repeated seek.
        """
        committed = getattr(self.app.consumer, "_committed_offset", {}).get(message.tp)
        return committed if committed is not None else 0

    async def _admit(self, tp, expected: int, offset: int) -> bool:
        """True for the message the state needs next (streams/gaps.py); a hole is read again."""
        verdict = self.gaps.admit(tp, expected, offset, time.monotonic())
        if verdict is Admit.NEXT:
            return True
        if verdict is Admit.SEEK:
            log.warning("partition rewound over a gap", extra={"topic": tp.topic, "partition": tp.partition,
                                                                "expected": expected, "got": offset})
            await self.app.consumer.seek(tp, expected)
        return False

    async def _retry_rewinds(self) -> None:
        for tp, expected in self.gaps.due(time.monotonic()):
            log.warning("partition rewound again", extra={"topic": tp.topic, "partition": tp.partition,
                                                          "expected": expected})
            await self.app.consumer.seek(tp, expected)

    async def _send(self, outs: list[Out]) -> None:
        send = self.app.producer.send
        future = time.time() + 3000.0   # brokers reject timestamps over an hour ahead: append time then
        for out in frame_outs(outs, self.internal_topics):
            timestamp = out.timestamp if out.timestamp is not None and out.timestamp < future else None
            await send(out.topic, out.key, out.value, out.partition, timestamp, None)

    # -- snapshots ----------------------------------------------------------

    def _load(self, stage: int, partition: int):
        monitor = build_stage_monitor(self.config, stage, self.with_model)
        snapshot = self.stores[stage].load(partition)
        if snapshot is None:
            if stage == 1:
                return WorkProcessor(partition, monitor, self.sources, self.kafka.keyed_topic, self.keyed_partitions)
            return KeyedProcessor(partition, self.keyed_partitions, monitor,
                                  [f"w{p}" for p in range(self.work_partitions)])
        cls = WorkProcessor if stage == 1 else KeyedProcessor
        proc = cls.restore(snapshot.blob, monitor)
        proc.offset = max(proc.offset, snapshot.offset)
        log.info("restored partition state", extra={"stage": stage, "partition": partition,
                                                    "offset": proc.offset, "bytes": len(snapshot.blob)})
        return proc

    async def _maybe_snapshot(self, stage: int) -> None:
        """Save what can be saved, then ack the events it covers.

        A partition whose messages changed nothing (markers) only moves its saved offset. Of the others,
        one per call is snapshotted (the longest unsaved), and only when the snapshot budget allows:
        after a snapshot that took d seconds, the next waits d * (1 - budget) / budget.
        """
        now = time.monotonic()
        store = self.stores[stage]
        saved, dirty = [], []
        for key, events in self.unacked.items():
            proc = self.procs.get(key)
            if key[0] != stage or not events or proc is None or key == self.snapshot_key:
                continue                  # (a partition whose snapshot is being taken waits for it)
            if proc.dirty:
                dirty.append(key)
            else:
                store.save_offset(key[1], proc.offset)
                saved.append(key)
        due = [key for key in dirty if now - self.saved_at.get(key, -math.inf) >= self.kafka.snapshot_seconds]
        if due and now >= self.snapshots_paused_until and self.snapshotting is None:
            key = min(due, key=lambda k: self.saved_at.get(k, -math.inf))
            proc = self.procs[key]
            events, self.unacked[key] = self.unacked[key], []
            proc.dirty = False            # what changes from here on is the next snapshot's
            self.saved_at[key] = now
            self.snapshot_key = key
            self.snapshotting = asyncio.ensure_future(self._snapshot(stage, key, proc, proc.offset, events))
            if self.metrics is not None:
                self.metrics.detector_timings(proc.monitor.take_detector_seconds())
        if saved:
            events = []
            for key in saved:
                events.extend(self.unacked[key])
                self.unacked[key] = []
            await self._persist_and_ack(stage, events)

    async def _snapshot(self, stage: int, key, proc, offset: int, events: list) -> None:
        """Save one partition's state in the background; then ack the events it covers.

        Pickling runs in a forked child (streams/snapshots.py), so the worker goes on meanwhile; the
        budget spaces snapshots by the child's time, which is CPU taken from the other core."""
        started = time.monotonic()
        try:
            blob = await snapshot_in_child(proc)
        except SnapshotFailed as error:
            log.error("snapshot failed", extra={"stage": stage, "partition": key[1], "error": str(error)})
            self.unacked[key][:0] = events            # acked with the next snapshot instead
            proc.dirty = True
            return
        finally:
            spent = time.monotonic() - started
            budget = min(1.0, max(0.01, self.kafka.snapshot_budget))
            self.snapshots_paused_until = time.monotonic() + spent * (1 - budget) / budget
            self.snapshotting = self.snapshot_key = None
        async with self.locks[stage]:
            if self.procs.get(key) is not proc:
                return                # the partition moved or was reloaded: its events come again
            self.stores[stage].save(key[1], blob, offset)
            self.counts["snapshot_bytes"] += len(blob)
            await self._persist_and_ack(stage, events)

    async def _persist_and_ack(self, stage: int, events: list) -> None:
        """Changelog records, alerts and forwards on the broker and records in the archive; only then
        are the events they cover acked."""
        await self._send_changelog(stage)
        await self.app.producer.flush()
        if self.archive is not None:
            self.archive.commit()
        stream = self.streams.get(stage)
        for event in events:
            await stream.ack(event)

    async def _send_changelog(self, stage: int) -> None:
        """Queue snapshot records on the producer itself, so the flush that precedes the ack covers them.

        (A Faust table's own send_changelog goes through a buffer whose flush may return with records
        still queued: the input could then be committed ahead of the state that covers it.)
        """
        table, store = self.tables[stage], self.stores[stage]
        records, store.pending = store.pending, []
        for partition, key, value in records:
            await table.changelog_topic.send(key=key, value=value, partition=partition,
                                             key_serializer=table.key_serializer,
                                             value_serializer=table.value_serializer, force=True)

    def _snapshot_timer(self):
        async def snapshots():
            for stage in (1, 2):
                if self.streams.get(stage) is None:
                    continue
                async with self.locks[stage]:
                    await self._maybe_snapshot(stage)
            await self._retry_rewinds()
            self._log_waiting()
        return snapshots

    def _log_waiting(self) -> None:
        """Every few seconds, which partitions hold buffered events and which sources they wait on."""
        now = time.monotonic()
        if now - self._last_waiting_log < WAITING_LOG_SECONDS:
            return
        self._last_waiting_log = now
        for (stage, partition), proc in self.procs.items():
            buffer = proc.buffer
            if len(buffer):
                waiting = sorted(source for source, idle in buffer.idle.items()
                                 if not idle and buffer.progress[source] <= buffer.bound())
                log.info("partition waiting", extra={"stage": stage, "partition": partition,
                                                     "buffered": len(buffer), "waiting_on": waiting[:8]})

    # -- progress markers ---------------------------------------------------

    def _batch_markers(self, sources) -> list[Out]:
        """Progress of the sources a batch moved, sent behind its events in the same frames: a work
        partition learns it with the batch instead of up to `marker_ms` later (the median
        produce-to-alert latency at 5,000 events/s fell from about 88 to 73 ms). Whether a source is
        idle stays the periodic markers' business."""
        now = time.monotonic()
        outs: list[Out] = []
        for source in sources:
            t = self.router.progress.get(source, -math.inf)
            sent = self._marker_sent.get(source)
            if t == -math.inf or (sent is not None and sent[:2] == (t, False)):
                continue
            self._marker_sent[source] = (t, False, now)
            outs.extend(self.router.markers(source, False))
        return outs

    async def _markers(self) -> None:
        """Tell every work partition how far each input partition has got, every `marker_ms`.

        Called by the intake between batches (never while one is being routed), so a marker never
        overtakes the events it vouches for."""
        now = time.monotonic()
        if now - self._markers_at < self.kafka.marker_ms / 1000.0:
            return
        self._markers_at = now
        consumer = self.intake.consumer
        assigned = list(self.intake.assignment())
        if not assigned or consumer is None:
            return
        highwaters = {tp: consumer.highwater(tp) for tp in assigned}   # from fetches: no round trip
        # A partition taken over with nothing left to read has no last offset of ours: its consumer
        # position says whether it is caught up (else a failover would stall every work partition).
        positions = {tp: await consumer.position(tp) for tp in assigned
                     if self.router.last_offset.get(source_name(tp.topic, tp.partition)) is None}
        outs: list[Out] = []
        for tp in assigned:
            source = source_name(tp.topic, tp.partition)
            high = highwaters.get(tp)
            if high is None:
                continue
            last = self.router.last_offset.get(source)
            if last is None:
                known = positions.get(tp)
                position = known if known is not None else (0 if high == 0 else -1)
            else:
                position = last + 1
            lag = max(0, high - position) if position >= 0 else high
            if lag:
                self._caught_up.pop(source, None)
            else:
                self._caught_up.setdefault(source, now)
            # Caught up for a while, not just between two fetches: only then may the others go on.
            idle = not lag and now - self._caught_up[source] >= self.kafka.idle_ms / 1000.0
            if self.metrics is not None:
                self.metrics.set_lag(tp.topic, tp.partition, lag)
            t = self.router.progress.get(source, -math.inf)
            sent = self._marker_sent.get(source)
            if sent is None or sent[:2] != (t, idle) or now - sent[2] >= HEARTBEAT_SECONDS:
                self._marker_sent[source] = (t, idle, now)
                outs.extend(self.router.markers(source, idle))
        await self._send(outs)

    # -- rebalancing --------------------------------------------------------

    async def _on_revoked(self, sender, revoked, **kwargs) -> None:
        self._forget(revoked)
        if self.metrics is not None:
            for tp in revoked:
                self.metrics.forget_partition(tp.topic, tp.partition)

    async def _on_assigned(self, sender, assigned, **kwargs) -> None:
        self._track_produced_topics()
        self._forget(assigned)
        now = time.monotonic()
        for tp in assigned:
            self.gaps.assigned(tp, now)
        self.ready = True

    def _forget(self, tps) -> None:
        """Drop in-memory state of these partitions: it is reloaded from the table when next needed."""
        for tp in tps:
            self.gaps.forget(tp)
            stage = self.stage_topics.get(tp.topic)
            if stage is not None:
                self.procs.pop((stage, tp.partition), None)
                self.unacked.pop((stage, tp.partition), None)
                self.saved_at.pop((stage, tp.partition), None)
                self.stores[stage].forget(tp.partition)
            elif tp.topic in self.inputs:
                if self.metrics is not None:
                    self.metrics.forget_partition(tp.topic, tp.partition)
                self._marker_sent.pop(source_name(tp.topic, tp.partition), None)
                self._caught_up.pop(source_name(tp.topic, tp.partition), None)
                self.router.last_offset.pop(source_name(tp.topic, tp.partition), None)
