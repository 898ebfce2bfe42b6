"""The worker's own path without a broker: CPU per event of router, stage 1 and stage 2.

The Kafka benchmark (bench/bench_kafka.py) measures the machine as much as
the worker: the broker, the load generator and the worker share two cores,
and on a loaded machine its wall-clock figure swings by 10x. This one runs
the same objects a worker runs (RouterStage, both DetectionStages with their
processors, the parse cache, the record archive) on the backfill stream of
bench_kafka.py, in one process, with the Kafka ends replaced by lists, and
reports process CPU time per part: what the worker itself costs, which is
what changes when its code does. The fetch pattern follows a backfill: the
router reads up to BACKLOG_BATCH records per fetch (streams/intake.py), its frames reach the stages as
they would through the broker (one message per frame), and the stages
trail the router by `--lead` fetches (a backfill's router reads ahead of
the stages; a far lead is what makes the parse cache miss).

`--model` runs the default anomaly model in stage 1 (a worker's default; off by default, as in
bench_kafka.py), `--one-at-a-time` with its scoring settled per event instead of per drained batch.
`--profile FILE` writes a cProfile of the run. Prints a table and writes
bench/results/worker_path.json.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import sys
import tempfile
import time
import zlib
from collections import defaultdict, deque
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import orjson  # noqa: E402
from support.streamgen import make_stream  # noqa: E402

from amlwatch.config import load_config  # noqa: E402
from amlwatch.events import BadRecord, parse_event  # noqa: E402
from amlwatch.records.replay import open_archive  # noqa: E402
from amlwatch.streams.gaps import GapGuard  # noqa: E402
from amlwatch.streams.intake import BACKLOG_BATCH  # noqa: E402
from amlwatch.streams.parsed import ParsedEventCache  # noqa: E402
from amlwatch.streams.produce import HEARTBEAT  # noqa: E402
from amlwatch.streams.router import RouterStage  # noqa: E402
from amlwatch.streams.routing import Router, frame_outs, source_name  # noqa: E402
from amlwatch.streams.snapshots import SnapshotStore  # noqa: E402
from amlwatch.streams.stages import DetectionStage  # noqa: E402
from amlwatch.streams.topics import input_key, input_topics  # noqa: E402

PARTITIONS = 4


class TP(NamedTuple):
    topic: str
    partition: int


class Message(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes
    tp: TP


def _inputs(lines: list[bytes], kafka) -> dict[TP, list[Message]]:
    """The lines as `amlwatch produce` lays them out: topic by type, partition by key."""
    topics = input_topics(kafka)
    logs: dict[TP, list[Message]] = defaultdict(list)
    for raw in lines:
        try:
            event = parse_event(raw)
            topic, key = topics[event.type], input_key(event)
        except BadRecord:
            topic, key = topics["trade"], raw.decode(errors="replace")
        tp = TP(topic, zlib.crc32(key.encode()) % PARTITIONS)
        logs[tp].append(Message(tp.topic, tp.partition, len(logs[tp]), raw, tp))
    return logs


class _Topic:
    """One internal topic: the frames sent to each partition, as the messages a stage reads."""

    def __init__(self, name: str):
        self.name = name
        self.logs: dict[int, list[Message]] = defaultdict(list)
        self.read: dict[int, int] = defaultdict(int)

    def append(self, partition: int, value: bytes) -> None:
        log = self.logs[partition]
        tp = TP(self.name, partition)
        log.append(Message(self.name, partition, len(log), value, tp))

    def unread(self) -> list[Message]:
        out = []
        for partition, log in self.logs.items():
            out.extend(log[self.read[partition]:])
            self.read[partition] = len(log)
        return out


async def run(lines: list[bytes], lead: int, archive_dir: Path | None, with_model: bool = False) -> dict:
    config = load_config(None, env={"AMLWATCH_ANOMALY__ENABLED": "true" if with_model else "false",
                                    "AMLWATCH_KAFKA__PARTITIONS": str(PARTITIONS)})
    kafka = config.kafka
    logs = _inputs(lines, kafka)
    sources = [source_name(t, p) for t in input_topics(kafka).values() for p in range(PARTITIONS)]
    topics = {kafka.work_topic: _Topic(kafka.work_topic), kafka.keyed_topic: _Topic(kafka.keyed_topic)}
    internal = frozenset(topics)
    alerts = [0]
    cpu: dict[str, float] = defaultdict(float)

    async def send(outs):
        for out in frame_outs(outs, internal):
            topic = topics.get(out.topic)
            if topic is not None:
                topic.append(out.partition, out.value)
            elif out.topic == kafka.alerts_topic:
                alerts[0] += 1

    async def nothing(*_args):
        return None

    # As the worker opens it: full segments are sealed on a thread.
    archive = open_archive(archive_dir, config, background_seals=True) if archive_dir is not None else None
    cache = ParsedEventCache()
    router = RouterStage(kafka, Router(kafka.work_topic, PARTITIONS, kafka.deadletter_topic, parse=cache.parse),
                         send=send, flush=nothing, archive=archive)
    steps = {"take_snapshot": nothing, "produce_changelog": nothing, "flush_producer": nothing,
             "commit_offsets": nothing}
    stages = [DetectionStage(number, topic, config, store=SnapshotStore({}), checkpoint_steps=steps,
                             consumer=lambda: None, send=send, parse=cache.parse, gaps=GapGuard(),
                             sources=sources, work_partitions=PARTITIONS, keyed_partitions=PARTITIONS,
                             with_model=with_model, archive=archive)
              for number, topic in ((1, kafka.work_topic), (2, kafka.keyed_topic))]

    fetches = deque()
    cursors = {tp: 0 for tp in logs}
    while any(cursors[tp] < len(log) for tp, log in logs.items()):
        for tp, log in logs.items():
            if cursors[tp] < len(log):
                fetches.append({tp: log[cursors[tp]:cursors[tp] + BACKLOG_BATCH]})
                cursors[tp] += BACKLOG_BATCH

    async def stages_step():
        for stage in stages:
            started = time.process_time()
            await stage.process(topics[stage.topic].unread())
            cpu[f"stage {stage.stage}"] += time.process_time() - started

    left = {source_name(*tp): len(log) for tp, log in logs.items()}
    await send([out for source in sources if source not in left for out in router.router.markers(source, True)])
    for n, batch in enumerate(fetches):
        started = time.process_time()
        await router.route(batch)
        # A partition read to its end is caught up: the router soon marks it idle (after `idle_ms`;
        # at once here), so it holds no work partition back.
        outs = []
        for tp, records in batch.items():
            source = source_name(*tp)
            left[source] -= len(records)
            if not left[source]:
                outs.extend(router.router.markers(source, True))
        await send(outs)
        cpu["router"] += time.process_time() - started
        if n >= lead:
            await stages_step()
    started = time.process_time()
    outs = []
    for source in sources:
        outs.extend(router.router.markers(source, True))
    await send(outs)
    cpu["router"] += time.process_time() - started
    for _ in range(4):
        await stages_step()
    if archive is not None:
        archive.close()
    return {"events": len(lines), "alerts": alerts[0], "cpu": dict(cpu),
            "cache": {"hits": cache.hits, "misses": cache.misses}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--lead", type=int, default=2, help="fetches the router reads ahead of the stages")
    parser.add_argument("--no-archive", action="store_true")
    parser.add_argument("--profile", help="write a cProfile of the run here")
    parser.add_argument("--model", action="store_true", help="stage 1 runs the default anomaly model (a worker's default)")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="stage 1 settles the model's scoring per event, not per drained batch")
    args = parser.parse_args(argv)
    if args.one_at_a_time:
        from amlwatch.detectors.monitor import Monitor

        Monitor.defer_batched = lambda self: None
    lines = make_stream(seed=9, trades=args.trades, accounts=500, hours=24 * 10) + [orjson.dumps(HEARTBEAT)]
    with tempfile.TemporaryDirectory() as tmp:
        profile = cProfile.Profile() if args.profile else None
        gc.disable()              # as a worker runs (streams/worker.py): collections only on its timer
        gc.freeze()
        started = time.process_time()
        if profile is not None:
            profile.enable()
        result = asyncio.run(run(lines, args.lead, None if args.no_archive else Path(tmp) / "records", args.model))
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        total = time.process_time() - started
    result.update(lead=args.lead, archive=not args.no_archive, model=args.model, batched=not args.one_at_a_time,
                  cpu_seconds=round(total, 3),
                  cpu_us_per_event=round(total / len(lines) * 1e6, 2),
                  events_per_cpu_second=round(len(lines) / total))
    print(f"{'part':<12}{'cpu s':>10}{'us/event':>10}")
    for part, seconds in sorted(result["cpu"].items()):
        print(f"{part:<12}{seconds:>10.3f}{seconds / len(lines) * 1e6:>10.2f}")
    print(f"{'total':<12}{total:>10.3f}{total / len(lines) * 1e6:>10.2f}   "
          f"{result['events_per_cpu_second']} events per CPU second, {result['alerts']} alerts, "
          f"parse cache {result['cache']}")
    out = ROOT / "bench" / "results" / "worker_path.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
