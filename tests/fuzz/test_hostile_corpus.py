"""Every hostile record of the corpus gets its expected outcome through file replay and through the
worker's router and stage processor (no Kafka), never a crash, and its good neighbour still alerts."""

from __future__ import annotations

import io
import math

import orjson
import pytest
from hostile import NEIGHBOUR, NEIGHBOUR_DETECTOR, WORLD, cases, load_case

from amlwatch.cli import build_monitor
from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.replay import replay
from amlwatch.streams.codecs import encode_marker
from amlwatch.streams.processors import WorkProcessor, build_stage_monitor
from amlwatch.streams.routing import Router

DEAD_LETTER_LIMIT = 200_000
"""Far under Kafka's 1 MB default message limit, whatever arrived."""
CASES = cases()


def _event_id(raw: bytes) -> str | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value.get("event_id") if isinstance(value, dict) else None


def _check(records, expect, dead_by_index: dict[int, list[dict]], duplicates: int, alerts) -> None:
    assert duplicates == sum(e["outcome"] == "duplicate" for e in expect)
    for index, (raw, want) in enumerate(zip(records, expect)):
        got = dead_by_index.get(index, [])
        if want["outcome"] == "dead_letter":
            assert got, f"record {index} ({raw[:60]!r}) was not dead-lettered"
            assert got[0]["field"] == want["field"], got[0]
            assert want["reason"] in got[0]["reason"], got[0]["reason"]
        else:
            assert not got, f"record {index}: {want['outcome']} expected, dead-lettered as {got}"
    assert NEIGHBOUR_DETECTOR in {a.detector for a in alerts}, "the good neighbour after the case got no alert"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_through_replay(path):
    records, expect = load_case(path)
    lines = WORLD + records + [NEIGHBOUR]
    out = io.BytesIO()
    monitor = build_monitor(Config(), with_model=False)
    alerts = []
    replay(enumerate(lines, 1), monitor, alerts.extend, DeadLetterFile(out))
    dead = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert all(len(orjson.dumps(d)) < DEAD_LETTER_LIMIT for d in dead)
    first = len(WORLD) + 1
    by_index: dict[int, list[dict]] = {}
    for letter in dead:
        by_index.setdefault(letter["source"]["line"] - first, []).append(letter)
    _check(records, expect, by_index, monitor.duplicates, alerts)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_through_the_worker_router_and_processor(path):
    records, expect = load_case(path)
    lines = WORLD + records + [NEIGHBOUR]
    config = Config()
    router = Router("work", 1, config.kafka.deadletter_topic)
    proc = WorkProcessor(0, build_stage_monitor(config, 1, False), ["in:0"], "keyed", 2)
    alerts, dead, dead_ids = [], {}, {}
    for offset, raw in enumerate(lines):
        _, outs = router.route("in", 0, offset, raw)
        for out in outs:
            if out.topic == config.kafka.deadletter_topic:
                dead[offset] = orjson.loads(out.value)
                continue
            got, more = proc.handle(offset, out.value)
            alerts += got
            for o in more:
                if o.topic == config.kafka.deadletter_topic:
                    dead_ids.setdefault(o.key.decode().split(":")[0], orjson.loads(o.value))
    got, more = proc.handle(len(lines), encode_marker("in:0", router.progress.get("in:0", -math.inf), True))
    alerts += got
    got, more2 = proc.drain()
    alerts += got
    for o in more + more2:
        if o.topic == config.kafka.deadletter_topic:
            dead_ids.setdefault(o.key.decode().split(":")[0], orjson.loads(o.value))
    assert all(len(orjson.dumps(d)) < DEAD_LETTER_LIMIT for d in [*dead.values(), *dead_ids.values()])
    by_index: dict[int, list[dict]] = {}
    seen_ids = set()
    for index, raw in enumerate(records):
        offset = len(WORLD) + index
        if offset in dead:
            by_index[index] = [dead[offset]]
        event_id = _event_id(raw)
        if event_id in dead_ids and event_id not in seen_ids and index not in by_index:
            # a refused event (a reused id, a far-future time): its dead letter names the later copy
            if expect[index]["outcome"] == "dead_letter" or event_id not in [_event_id(r) for r in records[index + 1:]]:
                by_index[index] = [dead_ids[event_id]]
                seen_ids.add(event_id)
    _check(records, expect, by_index, proc.monitor.duplicates, alerts)


def test_the_whole_corpus_through_an_archived_replay_then_verify(tmp_path):
    """A time outside UTC years 1-9999 used to abort an archived replay, leaving `verify` to say OK on 0
    records: now every record is archived with its outcome, and verify checks them all."""
    from amlwatch.records.replay import archive_replay
    from amlwatch.records.verify import verify_archive

    lines = list(WORLD)
    for path in CASES:
        lines += load_case(path)[0]
    lines.append(NEIGHBOUR)
    summary = archive_replay(enumerate(lines, 1), build_monitor(Config(), with_model=False), tmp_path / "rec",
                             None, DeadLetterFile(None))
    assert summary.events == len(lines)
    report = verify_archive(tmp_path / "rec")
    assert report.ok and not report.empty, report.text()
    assert report.streams["events/p0"].records == len(lines)
    assert f"{len(lines) + 1:,} records checked" in report.text()          # and the neighbour's alert
