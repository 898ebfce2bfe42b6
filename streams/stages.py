"""A detection stage: its partitions' processors, fed in offset order, their output, their checkpoint.

Stage 1 reads aml.work (keyed by collection, WorkProcessor), stage 2
aml.work.accounts (keyed by account, KeyedProcessor), stage 3
aml.work.ratings (one partition, RatingProcessor: the risk ratings, from the
rating facts stages 1 and 2 send it while `risk.topic` is set). Each partition's
processor is built on first use, from its snapshot when there is one
(streams/snapshots.py), else fresh at the committed offset. Every message is
admitted by the gap guard first (streams/gaps.py), so a state takes its
partition's messages one after another; what a batch released is processed
in slices, its alerts and forwards sent after each. Offsets are committed by
the stage's Checkpoint (streams/checkpoint.py) once a snapshot covers them.

Stage 2's large-value report records go to `lvtr.topic` keyed by customer,
stage 3's ratings to `risk.topic` keyed by subject, and both to the record
archive's audit stream like the replay's (actions `report.lvtr`,
`report.lvtr_late`, `risk.rating`), before the offsets that raised them are
committed. Stage 1 re-reads its watchlists (files, topic) between batches,
at most every `watchlist.reload_check_seconds`, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Awaitable, Callable

from aiokafka.errors import KafkaError

import orjson

from amlwatch.alerts import json_default, wall_clock_now
from amlwatch.config import Config
from amlwatch.reporting.pipeline import REPORT_ACTIONS
from amlwatch.reporting.risk import Dispositions, LabelsError
from amlwatch.reporting.watchlist import Watchlist, WatchlistError, WatchlistReloader

from .checkpoint import Checkpoint
from .codecs import encode_alert
from .gaps import Admit, GapGuard
from .processors import KeyedProcessor, RatingProcessor, WorkProcessor, build_stage_monitor
from .routing import Out
from .snapshots import SnapshotStore

log = logging.getLogger("amlwatch.streams")

SLICE_SECONDS = 0.02
"""A stage works at most this long before it sends what it has and lets the others run."""
DRAIN_SLICE = 500
"""Released events processed before the same (a backlog released at once can take seconds)."""
LABELS_RETRY_SECONDS = 30.0
"""How often the rating stage reads a labels file again that it could not use."""
BROKER_SECONDS = 10.0
"""The longest a stage waits on the consumer for a log start or a seek (it holds the stage's lock)."""


class DetectionStage:
    """`consumer` is the Faust consumer (seek, earliest offsets, committed offsets) and `topic` this
    stage's input topic name; `send(outs)` queues messages on the producer."""

    def __init__(self, stage: int, topic: str, config: Config, *, store: SnapshotStore,
                 checkpoint_steps: dict, consumer: Callable[[], Any], send: Callable[[list[Out]], Awaitable[None]],
                 parse: Callable, gaps: GapGuard, sources: list[str], work_partitions: int, keyed_partitions: int,
                 with_model: bool = True, metrics: Any = None, archive: Any = None):
        self.stage = stage
        self.topic = topic
        self.config = config
        self.kafka = config.kafka
        self.store = store
        self.consumer = consumer
        self.send = send
        self.parse = parse
        self.gaps = gaps
        self.sources = sources
        self.work_partitions = work_partitions
        self.keyed_partitions = keyed_partitions
        self.with_model = with_model
        self.metrics = metrics
        self.archive = archive
        self.procs: dict[int, Any] = {}
        self.reports = 0
        self.ratings = 0
        self._dispositions: Dispositions | None = None
        self.labels_errors = 0
        self._labels_error: LabelsError | None = None
        self._labels_tried = -math.inf
        self.watchlist_errors = 0
        self._reloaders: dict[int, WatchlistReloader] = {}
        """By id of the watchlist: partitions built from one config share none, each is reloaded."""
        self._rejections: dict[int, dict[str, int]] = {}
        """Per partition, its core's rejection counts already exported (the counts live in the state)."""
        self.lock = asyncio.Lock()
        self.phase = "idle"
        """What the stage awaits now (the worker's watchdog names it when the stage is held up)."""
        self.alerts = 0
        self.checkpoint = Checkpoint(
            store, self.lock, partitions=lambda: self.procs,
            snapshot_seconds=self.kafka.snapshot_seconds, budget=self.kafka.snapshot_budget,
            sinks=[archive.commit] if archive is not None else [], on_snapshot=self._snapshot_started,
            **checkpoint_steps)

    def _snapshot_started(self, proc) -> None:
        if self.metrics is not None:
            self.metrics.detector_timings(proc.monitor.take_detector_seconds())

    # -- processing -----------------------------------------------------------

    async def process(self, messages: list) -> None:
        """Handle a batch (Faust messages of this stage's topic) in slices of at most SLICE_SECONDS: after
        each, what was released is processed and sent and the event loop runs the other stages, so a
        large batch (a backlog) neither holds alerts back nor stalls the rest of the worker."""
        if self.stage == 1:
            await self._reload_watchlists()
        alerts, outs, touched = [], [], set()
        deadline = time.perf_counter() + SLICE_SECONDS
        for message in messages:
            partition = message.partition
            proc = self.procs.get(partition)
            if proc is None:
                if not self._assigned(message.tp):
                    continue              # left in a batch by a rebalance that took the partition away
                try:
                    proc = self.procs[partition] = self._load(partition, message.tp)
                except LabelsError:
                    continue              # the rating stage holds until its labels file reads (logged)
            if not await self._admit(message.tp, proc, message.offset):
                continue
            rated = proc.events
            a, o = proc.handle(message.offset, message.value, self.parse)
            if self.stage == 3 and self.metrics is not None and proc.events > rated:
                self.metrics.events_rated(proc.events - rated)
            alerts.extend(a)
            outs.extend(o)
            outs.extend(self._records(proc))
            touched.add(partition)
            if time.perf_counter() > deadline:
                await self._emit(touched, alerts, outs)
                alerts, outs, touched = [], [], set()
                await asyncio.sleep(0)
                deadline = time.perf_counter() + SLICE_SECONDS
        await self._emit(touched, alerts, outs)

    async def _emit(self, touched: set, alerts: list, outs: list) -> None:
        """Process what the touched partitions released, a slice at a time; send alerts, forwards and
        markers after each slice."""
        for partition in touched:
            proc = self.procs.get(partition)
            while proc is not None:
                a, o = proc.drain(DRAIN_SLICE)
                alerts.extend(a)
                outs.extend(o)
                outs.extend(self._records(proc))
                if not proc.releasable:
                    break
                await self._send_alerts(alerts, outs)
                alerts, outs = [], []
                await asyncio.sleep(0)
                if self.procs.get(partition) is not proc:
                    break                 # moved away while the loop ran the others
            if proc is not None and self.procs.get(partition) is proc:
                self._count_rejections(partition, proc)
        await self._send_alerts(alerts, outs)

    def _records(self, proc) -> list[Out]:
        """A partition's new report records and ratings: archived now (committed with the alerts, before the
        offsets that raised them), sent keyed by customer or subject (consumers upsert by `report_id` and
        `rating_id`)."""
        records = proc.take_records()
        if not records:
            return []
        if self.archive is not None:
            for record in records:
                self.archive.append_audit(REPORT_ACTIONS[record["record_type"]], record=record)
        outs = []
        for record in records:
            if record["record_type"] == "risk_rating":
                self.ratings += 1
                if self.metrics is not None:
                    self.metrics.rating_out(record["subject_kind"], record["level"])
                topic, key = self.config.risk.topic, record["subject"]
            else:
                self.reports += 1
                topic, key = self.config.lvtr.topic, record["customer"]
            outs.append(Out(topic, None, key.encode(), orjson.dumps(record, default=json_default)))
        return outs

    async def _reload_watchlists(self) -> None:
        """Re-read each partition's watchlist when its files (or topic) changed, at most every
        `watchlist.reload_check_seconds` (in a thread: a topic read blocks); entries apply from their
        effective event time, so a reload changes nothing for events before it (docs/REPORTING.md)."""
        every = self.config.watchlist.reload_check_seconds
        for proc in list(self.procs.values()):
            for detector in proc.monitor.detectors:
                watchlist = getattr(detector, "watchlist", None)
                if not isinstance(watchlist, Watchlist):   # no lists configured: a bare index, nothing to reload
                    continue
                reloader = self._reloaders.get(id(watchlist))
                if reloader is None or reloader.watchlist is not watchlist:
                    reloader = self._reloaders[id(watchlist)] = WatchlistReloader(watchlist, every)
                if time.time() - reloader.last < every:
                    continue
                self.phase = "watchlist reload"
                try:
                    if await asyncio.to_thread(reloader.check, time.time()):
                        log.info("watchlist reloaded", extra={"stage": self.stage, "partition": proc.partition,
                                                              "watchlist.version": watchlist.version})
                except WatchlistError as error:     # refused whole: the lists in force stay in force
                    self.watchlist_errors += 1
                    log.error("watchlist reload refused", extra={"partition": proc.partition, "field": error.field,
                                                                 "error": str(error)})
                self.phase = "process"
    def _count_rejections(self, partition: int, proc) -> None:
        """Export what the partition's core refused (time guards, event-id conflicts) or its detectors failed
        on since last time; a state reloaded from a snapshot starts from the counts it holds."""
        counts = proc.monitor.rejections
        seen = self._rejections.setdefault(partition, {})
        if counts != seen:
            if self.metrics is not None:
                self.metrics.events_rejected(self.stage, {r: n - seen.get(r, 0) for r, n in counts.items()})
            self._rejections[partition] = dict(counts)

    async def _send_alerts(self, alerts: list, outs: list) -> None:
        if alerts:
            now = wall_clock_now()
            records = [alert.to_dict(now) for alert in alerts]
            for record in records:
                key, value = encode_alert(record)
                outs.append(Out(self.kafka.alerts_topic, None, key, value))
            if self.metrics is not None:
                self.metrics.alerts_out(alerts)
            if self.archive is not None:
                for record in records:
                    self.archive.append_alert(record)
            self.alerts += len(alerts)
        self.phase = "send"
        await self.send(outs)
        self.phase = "process"

    # -- admission: one message after another ---------------------------------

    async def _admit(self, tp, proc, offset: int) -> bool:
        """True for the message the state needs next (streams/gaps.py); a hole is read again, unless the
        broker's log no longer starts before it (retention): then the state starts where the log does."""
        now = time.monotonic()
        verdict = self.gaps.admit(tp, proc.offset + 1, offset, now)
        if verdict is Admit.SEEK:
            expected = await self._rewind(tp, proc.offset + 1)
            if expected > proc.offset + 1:
                proc.offset = expected - 1
                verdict = self.gaps.admit(tp, expected, offset, now)
        return verdict is Admit.NEXT

    async def _rewind(self, tp, expected: int) -> int:
        """Seek back to `expected`, or to the log's start when retention deleted what lay before it;
        returns the offset sought."""
        self.phase = "log start"
        try:
            start = (await asyncio.wait_for(self.consumer().earliest_offsets(tp), BROKER_SECONDS)).get(tp)
        except (asyncio.TimeoutError, KafkaError):
            start = None                  # proves nothing: seek to the expected offset
        target = self.gaps.log_starts_at(tp, expected, start)
        log.warning("partition rewound over a gap", extra={"topic": tp.topic, "partition": tp.partition,
                                                            "expected": expected, "log_start": start,
                                                            "seek": target})
        # In the consumer's own thread: Faust's plain seek() touches the aiokafka consumer from this one,
        # racing its fetch (aiokafka's fetched_records then fails with a KeyError and Faust's fetcher
        # stops for good, seen in the kill/restart soak).
        self.phase = "seek"
        try:
            await asyncio.wait_for(self.consumer().seek_wait({tp: target}), BROKER_SECONDS)
        except (asyncio.TimeoutError, KafkaError) as error:
            log.warning("rewind not confirmed", extra={"topic": tp.topic, "partition": tp.partition,
                                                       "error": repr(error)})   # issued again by the guard
        self.phase = "process"
        return target

    async def retry_rewinds(self) -> None:
        for tp, expected in self.gaps.due(time.monotonic(), self.topic):
            proc = self.procs.get(tp.partition)
            target = await self._rewind(tp, expected)
            if proc is not None and target > proc.offset + 1:
                proc.offset = target - 1

    # -- partitions -----------------------------------------------------------

    def _assigned(self, tp) -> bool:
        """Whether this worker holds `tp` now. A message of a revoked partition can still come in a batch
        of the current generation; loaded, its state would live on here beside its new owner's (seen in
        the kill/restart soak: a worker seeking a partition it no longer had, every 2 s for minutes), and
        could write that partition's snapshot slots under it."""
        assignment = getattr(self.consumer(), "assignment", None)
        return assignment is None or tp in assignment()

    def _load(self, partition: int, tp):
        labels = self._labels() if self.stage == 3 else None
        monitor = build_stage_monitor(self.config, self.stage, self.with_model and self.stage != 3)
        snapshot = self.store.load(partition)
        work_sources = [f"w{p}" for p in range(self.work_partitions)]
        if snapshot is None:
            if self.stage == 1:
                proc = WorkProcessor(partition, monitor, self.sources, self.kafka.keyed_topic,
                                     self.keyed_partitions)
            elif self.stage == 2:
                proc = KeyedProcessor(partition, self.keyed_partitions, monitor, work_sources)
            else:
                proc = RatingProcessor(monitor, work_sources, labels)
            start = self._start_offset(tp)
            proc.offset = start - 1
            self.checkpoint.started(partition, start)
            return self._rating_facts_to(proc)
        if self.stage == 3:
            proc = RatingProcessor.restore(snapshot.blob, monitor, labels)
        else:
            proc = (WorkProcessor if self.stage == 1 else KeyedProcessor).restore(snapshot.blob, monitor)
        self._rating_facts_to(proc)
        proc.offset = max(proc.offset, snapshot.offset)
        self.checkpoint.restored(partition, snapshot.offset)
        self._rejections[partition] = dict(proc.monitor.rejections)
        log.info("restored partition state", extra={"stage": self.stage, "partition": partition,
                                                    "offset": proc.offset, "bytes": len(snapshot.blob)})
        return proc

    def _rating_facts_to(self, proc):
        """Stages 1 and 2 send rating facts while the worker publishes ratings (`risk.topic` set)."""
        if self.stage != 3:
            proc.rating_topic = self.kafka.rating_topic if self.config.risk.topic else ""
        return proc

    def _labels(self) -> Dispositions:
        """The analysts' dispositions the rating stage weighs alerts by (`risk.labels`), read once.

        A file that does not read (malformed, missing) raises `LabelsError`, counted and logged, and is
        read again at most every LABELS_RETRY_SECONDS: meanwhile the stage rates nothing and commits
        nothing, so once the file is fixed it rates from its committed offset with the labels meant (ratings
        weighed without them would be published and never recomputed)."""
        if self._dispositions is None:
            path = self.config.risk.labels
            if not path:
                self._dispositions = Dispositions()
                return self._dispositions
            if self._labels_error is not None and time.monotonic() - self._labels_tried < LABELS_RETRY_SECONDS:
                raise self._labels_error
            self._labels_tried = time.monotonic()
            try:
                self._dispositions = Dispositions.load(path)
            except LabelsError as error:
                self.labels_errors += 1
                self._labels_error = error
                log.error("rating labels refused", extra={"stage": self.stage, "field": error.field,
                                                          "file": path, "error": str(error)})
                if self.metrics is not None:
                    self.metrics.labels_refused()
                raise
            self._labels_error = None
        return self._dispositions

    def _start_offset(self, tp) -> int:
        """Where a partition without a snapshot starts: its committed offset, else offset 0.

        Not the first message read: right after a rebalance that one can already be past messages lost
        to the fetch race (streams/gaps.py). A log whose start was deleted by retention shows a hole at
        0, which the gap guard accepts once the broker's log start offset confirms it.
        """
        committed = getattr(self.consumer(), "_committed_offset", {}).get(tp)
        return committed if committed is not None else 0

    def forget(self, partition: int) -> None:
        """Drop a partition's in-memory state: it is reloaded from the table when next needed."""
        proc = self.procs.pop(partition, None)
        if proc is not None:
            for detector in proc.monitor.detectors:
                self._reloaders.pop(id(getattr(detector, "watchlist", None)), None)
        self._rejections.pop(partition, None)
        self.checkpoint.forget(partition)

    def log_waiting(self) -> None:
        """Which partitions hold buffered events and which sources they wait on."""
        for partition, proc in self.procs.items():
            held = proc.waiting_for() if isinstance(proc, RatingProcessor) else None
            if held is not None:
                log.info("partition waiting for answers", extra={"stage": self.stage, "event_id": held[0],
                                                                "from": held[1], "ready": len(proc.ready)})
            buffer = proc.buffer
            if len(buffer):
                waiting = sorted(source for source, idle in buffer.idle.items()
                                 if not idle and buffer.progress[source] <= buffer.bound())
                log.info("partition waiting", extra={"stage": self.stage, "partition": partition,
                                                     "buffered": len(buffer), "waiting_on": waiting[:8]})
