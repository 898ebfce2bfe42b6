"""The worker's Faust wiring: topics, tables, agents, timers and rebalance callbacks, nothing else.

router   input topics -> aml.work (trades by collection, registry events to
         every partition, progress markers) or aml.deadletter; read by the
         intake's own consumer in whole fetches (streams/intake.py) and routed
         by the RouterStage (streams/router.py)
work     aml.work partition p: DetectionStage 1 (streams/stages.py), reorder
         by event time, WorkProcessor, alerts -> aml.alerts, paid trades ->
         aml.work.accounts (by buyer and seller)
keyed    aml.work.accounts partition p: DetectionStage 2, KeyedProcessor, alerts
         -> aml.alerts, large-value reports -> aml.reports
ratings  aml.work.ratings (one partition): DetectionStage 3, RatingProcessor,
         the rating facts of stages 1 and 2 -> risk ratings on aml.ratings

Work, keyed and rating partitions keep their processor's snapshot (detector state,
reorder buffer, the input offset it covers) in a changelog-backed table.
Their input offsets are committed by each stage's Checkpoint
(streams/checkpoint.py), only once a snapshot covering them is on the broker
with the alerts and forwards before it; Faust's own acking is off for these
two topics, as it would commit over holes it saw in a fetch. A restarted
partition reloads the snapshot, skips what it covers and reprocesses the
rest: at-least-once with repeatable ids. The rating stage exists only while
`[risk] topic` is set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from faust.types import TP

from amlwatch.config import HOUR, Config

from .app import track_produced_topics
from .gaps import GapGuard
from .intake import Intake
from .parsed import ParsedEventCache
from .router import RouterStage
from .routing import Out, Router, frame_outs, source_name
from .snapshots import CHUNK, SnapshotStore, snapshot_in_child
from .stages import DetectionStage
from .topics import input_topics, partition_counts

log = logging.getLogger("amlwatch.streams")

WAITING_LOG_SECONDS = 5.0
FLUSH_SECONDS = 10.0
"""A producer flush not done by then has its topics tracked again (and goes on waiting)."""
HELD_UP_SECONDS = 10.0
"""A stage whose lock is held this long is logged with what it awaits (the watchdog)."""
REWIND_SECONDS = 2.0
"""A rewind not answered by the expected message within this long is issued again."""


class StreamRuntime:
    """One worker process: the router stage, the detection stages (and the rating stage), and the Faust app
    they run in."""

    def __init__(self, app, config: Config, *, with_model: bool = True, metrics: Any = None, archive: Any = None):
        self.app = app
        self.config = config
        self.kafka = kafka = config.kafka
        self.metrics = metrics
        self.archive = archive
        self.inputs = list(input_topics(kafka).values())
        self.rating = bool(config.risk.topic)
        counts = partition_counts(kafka, self.inputs + [kafka.work_topic, kafka.keyed_topic]
                                  + ([kafka.rating_topic] if self.rating else []))
        self.work_partitions = counts[kafka.work_topic]
        self.keyed_partitions = counts[kafka.keyed_topic]
        self.rating_partitions = counts.get(kafka.rating_topic, 0)
        sources = [source_name(t, p) for t in self.inputs for p in range(counts[t])]
        self.parsed = ParsedEventCache()
        self.ready = False
        self.stale = 0
        self._last_waiting_log = 0.0
        self.gaps = GapGuard(retry_seconds=REWIND_SECONDS)
        self._committing = asyncio.Lock()
        self._held: dict[int, tuple[float, str]] = {}
        self._locked_polls: dict[int, int] = {}

        # acks=False: the stages' checkpoints commit these topics, Faust does not (see the module doc).
        raw = {"key_serializer": "raw", "value_serializer": "raw", "acks": False}
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
        stage_topics = {1: kafka.work_topic, 2: kafka.keyed_topic}
        if self.rating:
            self.rating_topic = app.topic(kafka.rating_topic, partitions=self.rating_partitions, **raw)
            self.tables[3] = app.Table("rating-state", partitions=self.rating_partitions,
                                       extra_topic_configs=changelog, key_type=bytes, value_type=bytes)
            stage_topics[3] = kafka.rating_topic
        self.internal_topics = frozenset(stage_topics.values())
        self.router = RouterStage(kafka, Router(kafka.work_topic, self.work_partitions, kafka.deadletter_topic,
                                                parse=self.parsed.parse,
                                                max_skew=config.monitor.max_skew_hours * HOUR),
                                  send=self._send, flush=self._flush, metrics=metrics, archive=archive)
        self.stages: dict[int, DetectionStage] = {}
        for stage, topic in stage_topics.items():
            self.stages[stage] = DetectionStage(
                stage, topic, config, store=SnapshotStore(self.tables[stage].data),
                checkpoint_steps={"take_snapshot": snapshot_in_child,
                                  "produce_changelog": self._changelog_sender(stage),
                                  "flush_producer": self._flush,
                                  "commit_offsets": self._committer(topic)},
                consumer=lambda: self.app.consumer, send=self._send, parse=self.parsed.parse, gaps=self.gaps,
                sources=sources, work_partitions=self.work_partitions, keyed_partitions=self.keyed_partitions,
                with_model=with_model, metrics=metrics, archive=archive)
        self.stage_topics = {topic: stage for stage, topic in stage_topics.items()}

        self.intake = Intake(kafka, self.inputs, self.router.route, self._forget, self.router.markers)
        self.router.intake = self.intake
        app.task(self._intake_task)
        app.agent(self.work_topic, name="work")(self._stage_agent(1))
        app.agent(self.keyed_topic, name="keyed")(self._stage_agent(2))
        if self.rating:
            app.agent(self.rating_topic, name="ratings")(self._stage_agent(3))
        app.timer(max(0.2, kafka.snapshot_seconds), name="snapshots")(self._snapshot_timer())
        app.timer(HELD_UP_SECONDS / 2, name="watchdog")(self._watchdog)
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_partitions_assigned.connect(self._on_assigned)

    # -- agents -------------------------------------------------------------

    async def _intake_task(self) -> None:
        self._track_produced_topics(changelogs=False)
        await self.intake.run()

    def _stage_agent(self, number: int):
        stage = self.stages[number]

        async def agent(stream):
            async for events in stream.noack_take(500, within=0.01):
                async with stage.lock:
                    self._held[number] = (time.monotonic(), "agent")
                    stage.phase = "process"
                    await stage.process([event.message for event in self._current(events)])
                    stage.phase = "checkpoint"
                    await stage.checkpoint.maybe_snapshot()
                    stage.phase = "idle"
                    self._held.pop(number, None)
        agent.__name__ = {1: "work", 2: "keyed", 3: "ratings"}[number]
        return agent

    def _current(self, events: list) -> list:
        """The events of a batch that belong to the current assignment.

        During a rebalance or table recovery the batch is dropped (not processed, so not committed):
        Faust seeks every partition back to its committed offset afterwards and delivers it again.
        Waiting here instead would stop this agent from draining its stream, and a full stream buffer
        stops Faust's fetcher, which recovery needs to read the changelogs: a deadlock. A batch taken
        before a rebalance can also hold messages of a partition this worker keeps, past its committed
        offset; processed now, they would move the reloaded state past the messages in between.
        """
        app = self.app
        generation = app.consumer_generation_id
        if app.rebalancing or getattr(app, "in_recovery", False) or app.tables.recovery.in_recovery:
            current = []
        else:
            current = [event for event in events if event.message.generation_id == generation]
        if len(current) != len(events):
            self.stale += len(events) - len(current)
            log.info("dropped messages fetched before a rebalance",
                     extra={"messages": len(events) - len(current), "generation": generation})
        return current

    def _snapshot_timer(self):
        async def snapshots():
            for number, stage in self.stages.items():
                async with stage.lock:
                    self._held[number] = (time.monotonic(), "snapshot timer")
                    await stage.checkpoint.maybe_snapshot()
                    self._held.pop(number, None)
                stage.phase = "retry rewinds"
                await stage.retry_rewinds()
                stage.phase = "idle"
            now = time.monotonic()
            if now - self._last_waiting_log >= WAITING_LOG_SECONDS:
                self._last_waiting_log = now
                for stage in self.stages.values():
                    stage.log_waiting()
        return snapshots

    async def _watchdog(self) -> None:
        """Name what a stage held up for HELD_UP_SECONDS awaits: who holds its lock, which step."""
        now = time.monotonic()
        for number, stage in self.stages.items():
            polls = self._locked_polls[number] = self._locked_polls.get(number, 0) + 1 if stage.lock.locked() else 0
            if polls * HELD_UP_SECONDS / 2 < HELD_UP_SECONDS:
                continue
            since, holder = self._held.get(number, (now - polls * HELD_UP_SECONDS / 2, "snapshot task"))
            if now - since < HELD_UP_SECONDS:
                continue              # locked at each poll, but by different batches
            committing = stage.checkpoint.committing
            log.warning("stage held up", extra={"stage": number, "polls": polls, "holder": holder,
                                                "seconds": round(now - since, 1), "phase": stage.phase,
                                                "checkpoint": stage.checkpoint.phase,
                                                "committing": committing is not None and not committing.done()})

    # -- the Kafka ends of the stages and the checkpoint ---------------------

    async def _send(self, outs: list[Out]) -> None:
        send = self.app.producer.send
        future = time.time() + 3000.0   # brokers reject timestamps over an hour ahead: append time then
        for out in frame_outs(outs, self.internal_topics):
            timestamp = out.timestamp if out.timestamp is not None and out.timestamp < future else None
            await send(out.topic, out.key, out.value, out.partition, timestamp, None)

    async def _flush(self) -> None:
        """Wait for everything queued on the producer. A flush held up FLUSH_SECONDS has every produced
        topic tracked again and the metadata refreshed (aiokafka's refresh can drop a topic whose
        batches then wait forever: streams/app.py), and is waited for again: never given up, since
        offsets are committed only after it."""
        flush = asyncio.ensure_future(self.app.producer.flush())
        while not (await asyncio.wait({flush}, timeout=FLUSH_SECONDS))[0]:
            log.warning("producer flush held up: tracking every produced topic again",
                        extra={"seconds": FLUSH_SECONDS})
            self._track_produced_topics(changelogs=self.ready)
            self.app.producer._ensure_producer().client.force_metadata_update()
        flush.result()

    def _changelog_sender(self, stage: int):
        table = self.tables[stage]

        async def send_changelog(records: list) -> None:
            """Snapshot records queued on the producer itself, so the flush that precedes the commit
            covers them. (A Faust table's own send_changelog goes through a buffer whose flush may
            return with records still queued: the input could then be committed ahead of the state.)"""
            for partition, key, value in records:
                await table.changelog_topic.send(key=key, value=value, partition=partition,
                                                 key_serializer=table.key_serializer,
                                                 value_serializer=table.value_serializer, force=True)
        return send_changelog

    def _committer(self, topic: str):
        async def commit_offsets(offsets: dict[int, int]) -> None:
            """Faust's commit path (it keeps its committed offsets and skips revoked partitions)."""
            try:
                async with self._committing:      # one commit at a time, whichever stage asks
                    await self.app.consumer._commit_offsets({TP(topic, p): o for p, o in offsets.items()})
            except (CommitFailedError, IllegalStateError, KafkaError) as error:
                # A rebalance took the partition away: its next owner restarts from an older commit and
                # its snapshot, at least once.
                log.warning("stage commit refused", extra={"topic": topic, "error": str(error)})
        return commit_offsets

    def _track_produced_topics(self, changelogs: bool = True) -> None:
        """Tracking a topic asks the broker for it, which auto-creates a missing one with the broker's
        defaults: the changelogs only once the Faust consumer is assigned, when they exist."""
        kafka = self.kafka
        topics = [kafka.work_topic, kafka.keyed_topic, kafka.alerts_topic, kafka.deadletter_topic,
                  self.config.lvtr.topic]
        if self.rating:
            topics += [kafka.rating_topic, self.config.risk.topic]
        if changelogs:
            topics += [table.changelog_topic.get_topic_name() for table in self.tables.values()]
        track_produced_topics(self.app.producer._ensure_producer(), topics)

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
                self.stages[stage].forget(tp.partition)
            elif tp.topic in self.inputs:
                self.router.forget(tp.topic, tp.partition)
