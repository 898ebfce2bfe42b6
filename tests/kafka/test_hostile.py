"""A hostile batch on a real broker: every record of the fuzz corpus inside an ordinary stream. The worker
gives the alerts file replay gives (none of the good neighbours is dropped), dead-letters each hostile
record once per key, keeps every dead letter far under the producer's message limit, and keeps running."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
import pytest
from support.service import Worker, collect, kafka_config, kafka_env
from support.streamgen import make_stream

from amlwatch.cli import build_monitor
from amlwatch.config import load_config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.replay import replay
from amlwatch.streams.produce import produce
from amlwatch.streams.topics import create_topics

_spec = importlib.util.spec_from_file_location("hostile", Path(__file__).resolve().parents[1] / "fuzz" / "hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)
NEIGHBOUR, WORLD, cases, load_case = hostile.NEIGHBOUR, hostile.WORLD, hostile.cases, hostile.load_case

pytestmark = pytest.mark.kafka


def hostile_stream() -> tuple[list[bytes], int]:
    """An ordinary stream with the corpus (and its world) near its start; how many dead letters it expects."""
    lines = make_stream(seed=8, trades=400, accounts=80, hours=24)
    loaded = [load_case(path) for path in cases()]
    hostile = [raw for records, _ in loaded for raw in records]
    dead = sum(e["outcome"] == "dead_letter" for _, expect in loaded for e in expect)
    dead += sum(1 for raw in lines if not _parses(raw))          # the stream's own few bad lines
    at = next(i for i, raw in enumerate(lines) if b'"2026-03-01T10:' in raw)
    return lines[:at] + WORLD + hostile + [NEIGHBOUR] + lines[at:], dead


@pytest.mark.slow
def test_a_hostile_batch_does_not_drop_its_good_neighbours(kafka_bootstrap, tmp_path):
    env = kafka_env(kafka_bootstrap, partitions=2)
    kafka = kafka_config(env)
    lines, hostile = hostile_stream()
    alerts, dead_file = [], tmp_path / "dead.jsonl"
    with open(dead_file, "wb") as handle:
        replay(enumerate(lines, 1), build_monitor(load_config(None, env=env), with_model=False), alerts.extend,
               DeadLetterFile(handle))
    want = {a.alert_id for a in alerts}
    replay_dead = [orjson.loads(line) for line in dead_file.read_bytes().splitlines()]
    assert "neighbour" in {a.event_id for a in alerts}
    create_topics(kafka)
    produce(lines, kafka, heartbeat=True)
    worker = Worker(env, tmp_path / "w0", "w0")
    try:
        records = collect(kafka_bootstrap, kafka.alerts_topic, lambda rs: want <= {r["alert_id"] for r in rs}, 150)
        got = {r["alert_id"] for r in records}
        assert got == want, (len(want - got), len(got - want), worker.output()[-3000:])
        dead = collect(kafka_bootstrap, kafka.deadletter_topic, lambda rs: len(_keys(rs)) >= len(replay_dead), 30)
        assert worker.proc.poll() is None, "the worker is still running"
    finally:
        worker.stop()
    assert all(len(orjson.dumps(d)) < 200_000 for d in dead), "every dead letter fits the producer's limit"
    router = {(d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]) for d in dead
              if "topic" in d["source"]}
    core = {(d["source"]["event_id"], d["reason"].split(":")[0]) for d in dead if "event_id" in d["source"]}
    replay_core = {(d["source"]["event_id"], d["reason"].split(":")[0]) for d in replay_dead
                   if "event_id" in d["source"]}
    assert core == replay_core
    assert len(router) == len(replay_dead) - len(replay_core)
    assert len(replay_dead) == hostile, "the expected dead letters, no more, no fewer"


def _parses(raw: bytes) -> bool:
    from amlwatch.events import BadRecord, parse_event

    try:
        parse_event(raw)
    except BadRecord:
        return False
    return True


def _keys(dead: list[dict]) -> set[tuple]:
    """Dead letters as a consumer dedupes them: by source coordinates, or by event and reason."""
    return {(d["source"].get("topic"), d["source"].get("partition"), d["source"].get("offset"))
            if "topic" in d["source"] else (d["source"]["event_id"], d["reason"].split(":")[0]) for d in dead}
