"""The whole streaming pipeline in memory, against which the stages are checked without Kafka.

The same Router, WorkProcessor and KeyedProcessor (and, with `ratings`, RatingProcessor) the Faust agents use, input partitions read in a random
interleaving, with crashes and restores; `replay_ids` is what a file replay of the same stream raises.
"""

from __future__ import annotations

import random
from collections import defaultdict, deque

from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.engine import build_monitor
from amlwatch.events import BadRecord, parse_event
from amlwatch.replay import replay
from amlwatch.streams.parsed import ParsedEventCache
from amlwatch.streams.processors import KeyedProcessor, RatingProcessor, WorkProcessor, build_stage_monitor
from amlwatch.streams.routing import Router, frame_outs, partition_for
from amlwatch.streams.topics import input_key


def replay_ids(lines: list[bytes], config: Config, *, with_model: bool = False) -> set[str]:
    alerts = []
    replay(enumerate(lines, 1), build_monitor(config, with_model=with_model), alerts.extend, DeadLetterFile(None))
    return {a.alert_id for a in alerts}


class InMemoryPipeline:
    """Router -> work partitions -> keyed partitions, with random interleaving and crashes.

    A crashed partition restores its last snapshot and has every message it took since then delivered
    again, after it had already sent what they raised and forwarded (as after a SIGKILL between a flush
    and the next snapshot); a crashed router re-reads its input from the last commit.
    """

    def __init__(self, config: Config, input_partitions: int, work_partitions: int, seed: int, *,
                 ratings: bool = False, dispositions=None, with_model: bool = False):
        """`ratings`: the two stages send rating facts to a rating stage ("rating", 0), whose ratings
        collect in `ratings` (at least once: copies after crashes)."""
        self.config = config
        self.with_model = with_model
        """Stage 1 runs the anomaly model (and so settles its scoring in batches, as a worker's does)."""
        self.rng = random.Random(seed)
        self.inputs = {f"{topic}:{p}": deque() for topic in ("acc", "col", "trd") for p in range(input_partitions)}
        self.input_partitions = input_partitions
        self.parsed = ParsedEventCache(capacity=256)      # shared by every stage, as in a worker; small, to turn over
        self.router = Router("work", work_partitions, "dead", parse=self.parsed.parse)
        self.queues = {("work", p): [] for p in range(work_partitions)}
        self.queues.update({("keyed", p): [] for p in range(work_partitions)})
        self.read = defaultdict(int)
        sources = list(self.inputs)
        self.procs = {("work", p): WorkProcessor(p, build_stage_monitor(config, 1, with_model), sources, "keyed",
                                                 work_partitions) for p in range(work_partitions)}
        self.procs.update({("keyed", p): KeyedProcessor(p, work_partitions, build_stage_monitor(config, 2, False),
                                                        [f"w{i}" for i in range(work_partitions)])
                           for p in range(work_partitions)})
        self.dispositions = dispositions
        if ratings:
            self.queues[("rating", 0)] = []
            self.procs[("rating", 0)] = RatingProcessor(build_stage_monitor(config, 3, False),
                                                        [f"w{i}" for i in range(work_partitions)], dispositions)
            for name, proc in self.procs.items():
                if name[0] != "rating":
                    proc.rating_topic = "rating"
        self.ratings = []
        self.alerts = []
        self.reports = []
        """Large-value report records the keyed partitions raised (at least once: copies after crashes)."""
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
        for out in frame_outs(outs, frozenset({"work", "keyed", "rating"})):
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
        self._take_records(proc)
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

    def take_all(self, crashes: bool = True) -> None:
        """Everything produced (or to be read again) so far through every stage, with crashes on the way if
        `crashes` (`run` without its final crashes, which assume the stream ended with the heartbeat)."""
        while self.step_router() or any(self.queues.values()):
            for _ in range(3):
                self.step_worker(restart=crashes and self.rng.random() < 0.05)
        self.drain_all()

    def run_in_steps(self, lines: list[bytes], late: list[bytes], heartbeat: bytes, after_stream=None) -> None:
        """The stream, then its late trades, then the heartbeat, each produced once the one before was taken
        (`after_stream(self)` runs between the first two). Produced with the late trades, the heartbeat
        could pass them (a caught-up source does not hold the others back), which a replay of the file
        does not."""
        self.produce(lines)
        self.take_all()
        if after_stream is not None:
            after_stream(self)
        self.produce(late)
        self.take_all()
        self.produce([heartbeat])
        self.run()
        self.take_all(crashes=False)             # what the routers' last crashes left to read again

    def crash_router(self, source: str) -> None:
        """Uncommitted input is read again by a router that starts afresh."""
        for offset, raw in reversed(self.routed_since_commit.pop(source, [])):
            self.inputs[source].appendleft(raw)
            self.read[source] = offset - 1
        self.router.progress.pop(source, None)
        self.idle_sent.discard(source)

    def crash(self, name):
        stage = {"work": 1, "keyed": 2, "rating": 3}[name[0]]
        monitor = build_stage_monitor(self.config, stage, self.with_model and stage == 1)
        if stage == 3:
            proc = self.procs[name] = RatingProcessor.restore(self.saved[name], monitor, self.dispositions)
        else:
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
                self._take_records(self.procs[name])
                self._send(outs)

    def _take_records(self, proc) -> None:
        for record in proc.take_records():
            (self.ratings if record["record_type"] == "risk_rating" else self.reports).append(record)
