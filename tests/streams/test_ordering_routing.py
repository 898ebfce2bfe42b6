"""Broker-free: the reorder buffer, the router, and the whole two-stage pipeline in memory.

The in-memory pipeline feeds a hand-made stream through the same Router,
WorkProcessor and KeyedProcessor the Faust agents use, with the input
partitions read in a random interleaving, and must give exactly the alert
ids of a file replay, snapshots and restores included.
"""

from __future__ import annotations

import base64
import math
import random
from collections import defaultdict, deque

import orjson
import pytest
from support.streamgen import make_stream

from amlwatch.engine import build_monitor
from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.events import BadRecord, parse_event
from amlwatch.replay import replay
from amlwatch.streams.codecs import (FRAME_BYTES, CodecError, WorkEvent, WorkMarker, decode_frame, decode_work,
                                     encode_event, encode_marker)
from amlwatch.streams.ordering import ReorderBuffer
from amlwatch.streams.parsed import ParsedEventCache
from amlwatch.streams.processors import KeyedProcessor, WorkProcessor, build_stage_monitor
from amlwatch.streams.routing import Out, Router, frame_outs, partition_for
from amlwatch.streams.topics import input_key

# --- reorder buffer ------------------------------------------------------------------------------


def test_buffer_releases_only_what_every_source_has_passed():
    buf = ReorderBuffer(["a", "b"])
    buf.push("a", 5.0, 0, "e5", "a5")
    buf.push("a", 9.0, 0, "e9", "a9")
    assert buf.release() == []                      # b has said nothing yet
    buf.push("b", 7.0, 0, "e7", "b7")
    assert buf.release() == ["a5"]                  # 7 not yet: b may send another event at 7
    buf.mark("b", 10.0, idle=False)
    assert buf.release() == ["b7"]                  # a itself may still send more at 9
    buf.mark("a", 9.5, idle=False)
    assert buf.release() == ["a9"]
    assert buf.released_until == 9.5


def test_idle_source_does_not_hold_back_and_late_events_are_counted():
    buf = ReorderBuffer(["a", "b"])
    buf.push("a", 5.0, 0, "x", "a5")
    buf.mark("b", -math.inf, idle=True)
    assert buf.release() == []                      # b is caught up; a may still send more at 5
    buf.mark("a", 5.0, idle=True)                   # everyone caught up: everything goes
    assert buf.all_idle and buf.release() == ["a5"]
    assert buf.push("b", 1.0, 0, "y", "b1") is False and buf.late == 1


def test_equal_times_are_ordered_registry_first_then_by_event_id():
    buf = ReorderBuffer(["a", "b"])
    buf.push("a", 1.0, 2, "t-2", "trade")
    buf.push("b", 1.0, 0, "z-1", "account")
    buf.mark("a", 2.0, False)
    buf.mark("b", 2.0, False)
    assert buf.release() == ["account", "trade"]


def test_a_limited_release_claims_no_more_progress_than_it_released():
    buf = ReorderBuffer(["a"])
    for i in range(5):
        buf.push("a", float(i), 2, f"t-{i}", i)
    buf.mark("a", 10.0, False)
    assert buf.release(limit=2) == [0, 1] and buf.releasable
    assert buf.released_until == 1.0, "events at 2..4 are not released yet"
    assert buf.release(limit=10) == [2, 3, 4] and not buf.releasable
    assert buf.released_until == 10.0


def test_a_sliced_drain_passes_progress_on_only_once_everything_released_is_processed():
    proc = WorkProcessor(0, build_stage_monitor(Config(), 1, False), ["in:0"], "keyed", 1)
    lines = make_stream(trades=60)
    for offset, raw in enumerate(lines):
        proc.handle(offset, encode_event("in:0", offset, raw))
    proc.handle(len(lines), encode_marker("in:0", 4102444800.0, False))
    _, outs = proc.drain(limit=10)
    assert proc.releasable
    assert not any(decode_frame(out.value)[0].__class__ is WorkMarker for out in outs)
    while proc.releasable:
        _, outs = proc.drain(limit=10)
    assert [m for out in outs for m in decode_frame(out.value) if isinstance(m, WorkMarker)]
    assert proc.events + proc.bad == len(lines) and proc.events > 100


# --- router and codecs ---------------------------------------------------------------------------


def test_router_sends_trades_to_their_collection_and_registry_everywhere():
    lines = make_stream(trades=50)
    router = Router("work", 4, "dead")
    seen = set()
    for offset, raw in enumerate(lines):
        event, outs = router.route("in", 0, offset, raw)
        if event is None:
            assert [o.topic for o in outs] == ["dead"]
            record = orjson.loads(outs[0].value)
            assert base64.b64decode(record["raw_base64"]) == raw
            assert record["source"] == {"topic": "in", "partition": 0, "offset": offset} and record["reason"]
            continue
        if event.type == "trade":
            assert [o.partition for o in outs] == [partition_for(event.collection_id, 4)]
        else:
            assert sorted(o.partition for o in outs) == [0, 1, 2, 3]
        assert isinstance(decode_work(outs[0].value), WorkEvent)
        seen.add(event.type)
    assert seen == {"account", "collection", "trade"} and router.bad == 5


def test_marker_round_trip():
    assert decode_work(encode_marker("t:3", 12.5, True)) == WorkMarker("t:3", 12.5, True)
    assert decode_work(encode_marker("t:3", -math.inf, False)).t == -math.inf
    assert decode_work(encode_event("t.in:1", 42, b'{"a":1}')) == WorkEvent("t.in:1", 42, b'{"a":1}')


def test_frames_keep_each_partitions_order_and_split_at_their_size_limit():
    events = [Out("work", i % 2, None, encode_event("in:0", i, b"x" * 40_000)) for i in range(20)]
    marker = Out("work", 1, None, encode_marker("in:0", 5.0, False))
    alert = Out("alerts", None, b"al-1", b"{}")
    framed = frame_outs(events + [marker, alert], frozenset({"work"}))
    assert alert in framed
    frames = [out for out in framed if out.topic == "work"]
    assert all(len(out.value) <= FRAME_BYTES + 8 for out in frames) and len(frames) > 2
    by_partition = defaultdict(list)
    for out in frames:
        by_partition[out.partition].extend(decode_frame(out.value))
    assert [m.seq for m in by_partition[0]] == list(range(0, 20, 2))
    assert [getattr(m, "seq", "marker") for m in by_partition[1]] == list(range(1, 20, 2)) + ["marker"]
    assert decode_frame(encode_marker("in:0", 1.0, True)) == [WorkMarker("in:0", 1.0, True)]
    with pytest.raises(CodecError, match="cut short"):
        decode_frame(frames[0].value[:-1])


# --- the whole pipeline in memory ----------------------------------------------------------------


def replay_ids(lines: list[bytes], config: Config) -> set[str]:
    alerts = []
    replay(enumerate(lines, 1), build_monitor(config, with_model=False), alerts.extend, DeadLetterFile(None))
    return {a.alert_id for a in alerts}


class InMemoryPipeline:
    """Router -> work partitions -> keyed partitions, with random interleaving and crashes.

    A crashed partition restores its last snapshot and has every message it took since then delivered
    again, after it had already sent what they raised and forwarded (as after a SIGKILL between a flush
    and the next snapshot); a crashed router re-reads its input from the last commit.
    """

    def __init__(self, config: Config, input_partitions: int, work_partitions: int, seed: int):
        self.config = config
        self.rng = random.Random(seed)
        self.inputs = {f"{topic}:{p}": deque() for topic in ("acc", "col", "trd") for p in range(input_partitions)}
        self.input_partitions = input_partitions
        self.parsed = ParsedEventCache(capacity=256)      # shared by every stage, as in a worker; small, to turn over
        self.router = Router("work", work_partitions, "dead", parse=self.parsed.parse)
        self.queues = {("work", p): [] for p in range(work_partitions)}
        self.queues.update({("keyed", p): [] for p in range(work_partitions)})
        self.read = defaultdict(int)
        sources = list(self.inputs)
        self.procs = {("work", p): WorkProcessor(p, build_stage_monitor(config, 1, False), sources, "keyed",
                                                 work_partitions) for p in range(work_partitions)}
        self.procs.update({("keyed", p): KeyedProcessor(p, work_partitions, build_stage_monitor(config, 2, False),
                                                        [f"w{i}" for i in range(work_partitions)])
                           for p in range(work_partitions)})
        self.alerts = []
        self.dead = []
        self.idle_sent = set()
        self.saved: dict = {}
        self.saving = True
        self.taken_since_save: dict = defaultdict(list)
        self.routed_since_commit: dict = defaultdict(list)

    def produce(self, lines: list[bytes]) -> None:
        names = {"account": "acc", "collection": "col", "trade": "trd"}
        for raw in lines:
            try:
                event = parse_event(raw)
            except BadRecord:
                self.inputs[f"trd:{self.rng.randrange(self.input_partitions)}"].append(raw)
                continue
            key = input_key(event)
            self.inputs[f"{names[event.type]}:{partition_for(key, self.input_partitions)}"].append(raw)

    def step_router(self) -> bool:
        for source in self.inputs:
            if not self.inputs[source] and source not in self.idle_sent:
                self.idle_sent.add(source)
                self._send(self.router.markers(source, idle=True))
        live = [s for s, q in self.inputs.items() if q]
        if not live:
            return False
        source = self.rng.choice(live)
        if self.rng.random() < 0.05:
            self.crash_router(source)
        for _ in range(self.rng.randint(1, 20)):
            if not self.inputs[source]:
                break
            topic, partition = source.split(":")
            self.read[source] += 1
            raw = self.inputs[source].popleft()
            self.routed_since_commit[source].append((self.read[source], raw))
            event, outs = self.router.route(topic, int(partition), self.read[source], raw)
            self._send(outs)
        if self.saving and self.rng.random() < 0.05:
            self.routed_since_commit.pop(source, None)
        self._send(self.router.markers(source, idle=False))
        return True

    def _send(self, outs) -> None:
        for out in frame_outs(outs, frozenset({"work", "keyed"})):
            if out.topic == "dead":
                self.dead.append(out)
            else:
                self.queues[(out.topic, out.partition)].append(out.value)

    def step_worker(self, restart: bool) -> None:
        name = self.rng.choice(list(self.queues))
        queue = self.queues[name]
        proc = self.procs[name]
        if restart and name in self.saved:
            proc, queue = self.crash(name)
        take = self.rng.randint(1, 50)
        batch, self.queues[name] = queue[:take], queue[take:]
        for value in batch:
            alerts, outs = proc.handle(0, value, self.parsed.parse)
            self.taken_since_save[name].append(value)
            self.alerts.extend(alerts)
            self._send(outs)
        alerts, outs = proc.drain()
        self.alerts.extend(alerts)
        self._send(outs)
        if self.saving and self.rng.random() < 0.3:
            self.saved[name] = proc.snapshot()
            self.taken_since_save.pop(name, None)

    def run(self) -> set[str]:
        while self.step_router() or any(self.queues.values()):
            for _ in range(3):
                self.step_worker(restart=self.rng.random() < 0.05)
        self.saving = False                     # the last snapshots and commits stay behind what follows
        self.drain_all()
        # Routers and work partitions crash once more after the far-future heartbeat went through: what
        # they send again reaches partitions whose clocks (and dedupe memory) have moved on to 2100.
        for source in self.inputs:
            self.crash_router(source)
        for name in self.procs:
            if name[0] == "work" and name in self.saved:
                self.crash(name)
        self.drain_all()
        return {a.alert_id for a in self.alerts}

    def crash_router(self, source: str) -> None:
        """Uncommitted input is read again by a router that starts afresh."""
        for offset, raw in reversed(self.routed_since_commit.pop(source, [])):
            self.inputs[source].appendleft(raw)
            self.read[source] = offset - 1
        self.router.progress.pop(source, None)
        self.idle_sent.discard(source)

    def crash(self, name):
        monitor = build_stage_monitor(self.config, 1 if name[0] == "work" else 2, False)
        proc = self.procs[name] = type(self.procs[name]).restore(self.saved[name], monitor)
        queue = self.queues[name] = self.taken_since_save.pop(name, []) + self.queues[name]
        return proc, queue

    def drain_all(self) -> None:
        for _ in range(10):   # idle markers flow through both stages
            self.step_router()
            for name in list(self.queues):
                while self.queues[name]:
                    self.step_worker(False)
            for name in self.procs:
                alerts, outs = self.procs[name].drain()
                self.alerts.extend(alerts)
                self._send(outs)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pipeline_in_memory_gives_the_replay_alert_ids(seed):
    config = Config()
    lines = make_stream(seed=seed, trades=700, hours=120)
    heartbeat = orjson.dumps({"type": "account", "event_id": "heartbeat", "ts": "2100-01-01T00:00:00+08:00",
                              "account_id": "amlwatch-heartbeat", "action": "register"})
    pipeline = InMemoryPipeline(config, input_partitions=3, work_partitions=4, seed=seed)
    pipeline.produce(lines + [heartbeat])
    got = pipeline.run()
    want = replay_ids(lines, config)
    assert len({out.key for out in pipeline.dead}) == 5, "a re-read bad record is dead-lettered again under its key"
    assert got == want, (sorted(want - got)[:5], sorted(got - want)[:5])
    assert sum(proc.duplicates for proc in pipeline.procs.values()) > 0, "crashes replayed work"
    detectors = {a.detector for a in pipeline.alerts}
    assert {"structuring.near_threshold", "wash.pair_repeat", "identity.unregistered_party",
            "identity.shared_national_id"} <= detectors
