"""A detection stage fed Faust-like messages without a broker: what it takes and what it leaves."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import NamedTuple

import orjson

from amlwatch.config import Config
from amlwatch.events import parse_event
from amlwatch.streams import stages
from amlwatch.streams.codecs import encode_event, encode_frame, encode_marker
from amlwatch.streams.gaps import GapGuard
from amlwatch.streams.snapshots import SnapshotStore
from amlwatch.streams.stages import DetectionStage

WORK = "aml.work"


class TP(NamedTuple):
    topic: str
    partition: int


class Message(NamedTuple):
    tp: TP
    offset: int
    value: bytes

    @property
    def partition(self) -> int:
        return self.tp.partition


class Consumer:
    def __init__(self, assigned: set):
        self.assigned = assigned
        self._committed_offset: dict = {}

    def assignment(self) -> set:
        return set(self.assigned)


async def _nothing(*_args) -> None:
    return None


def _stage(consumer: Consumer) -> DetectionStage:
    steps = {"take_snapshot": _nothing, "produce_changelog": _nothing, "flush_producer": _nothing,
             "commit_offsets": _nothing}
    return DetectionStage(1, WORK, Config(), store=SnapshotStore({}), checkpoint_steps=steps,
                          consumer=lambda: consumer, send=_nothing, parse=parse_event,
                          gaps=GapGuard(), sources=["in:0"], work_partitions=2, keyed_partitions=2,
                          with_model=False)


def _frame(offset: int) -> bytes:
    raw = orjson.dumps({"type": "account", "event_id": f"a{offset}", "ts": "2026-03-01T10:00:00+08:00",
                        "platform": "t", "account_id": f"acc-{offset}", "action": "register", "kyc_level": 1})
    return encode_frame([encode_event("in:0", offset, raw)])


def test_a_message_of_a_partition_this_worker_no_longer_holds_loads_no_state():
    consumer = Consumer({TP(WORK, 0)})
    stage = _stage(consumer)
    asyncio.run(stage.process([Message(TP(WORK, 1), 0, _frame(0)), Message(TP(WORK, 0), 0, _frame(0))]))
    assert set(stage.procs) == {0}, "the revoked partition's message was left alone"
    assert stage.procs[0].offset == 0 and stage.gaps.pending == {}
    consumer.assigned.add(TP(WORK, 1))
    asyncio.run(stage.process([Message(TP(WORK, 1), 0, _frame(0))]))
    assert set(stage.procs) == {0, 1} and stage.procs[1].offset == 0


class _Metrics:
    """Records what the stage reports."""

    def __init__(self):
        self.rated = 0
        self.ratings: list[tuple[str, str]] = []
        self.refused = 0

    def events_rated(self, count: int) -> None:
        self.rated += count

    def rating_out(self, subject_kind: str, level: str) -> None:
        self.ratings.append((subject_kind, level))

    def labels_refused(self) -> None:
        self.refused += 1

    def events_rejected(self, *_args) -> None:
        pass


RATINGS = "aml.work.ratings"


def _rating_stage(labels: str, metrics: _Metrics) -> DetectionStage:
    steps = {"take_snapshot": _nothing, "produce_changelog": _nothing, "flush_producer": _nothing,
             "commit_offsets": _nothing}
    config = Config()
    config = dataclasses.replace(config, risk=dataclasses.replace(config.risk, labels=labels))
    return DetectionStage(3, RATINGS, config, store=SnapshotStore({}), checkpoint_steps=steps,
                          consumer=lambda: Consumer({TP(RATINGS, 0)}), send=_nothing, parse=parse_event,
                          gaps=GapGuard(), sources=["in:0"], work_partitions=1, keyed_partitions=1,
                          with_model=False, metrics=metrics)


def _registration_fact() -> bytes:
    """Stage 1's fact of one judged registration, then its marker: caught up, so the stage rates it."""
    raw = orjson.loads(_frame(0)[2 + 4:].partition(b"\n")[2])
    fact = orjson.dumps({"k": "e", "key": ["r", raw["event_id"]], "alerts": []}) + b"\n" + orjson.dumps(raw)
    return encode_frame([encode_event("w0", 1, fact), encode_marker("w0", 4e9, True)])


def test_a_malformed_labels_file_holds_the_rating_stage_counted_and_logged_until_it_reads(
        tmp_path, caplog, monkeypatch):
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"trade_id": "t-1", "typology": "wash_trading"}\n{"trade_id": "t-2"}\n')
    metrics = _Metrics()
    stage = _rating_stage(str(labels), metrics)
    with caplog.at_level("ERROR", logger="amlwatch.streams"):
        asyncio.run(stage.process([Message(TP(RATINGS, 0), 0, _registration_fact())]))
    assert stage.procs == {} and stage.labels_errors == 1 and metrics.refused == 1
    refused = [r for r in caplog.records if r.getMessage() == "rating labels refused"]
    assert len(refused) == 1 and refused[0].field == "typology" and refused[0].file == str(labels)
    assert f"{labels}:2" in refused[0].error

    asyncio.run(stage.process([Message(TP(RATINGS, 0), 0, _registration_fact())]))
    assert stage.labels_errors == 1, "not read again before LABELS_RETRY_SECONDS"

    labels.write_text('{"trade_id": "t-1", "typology": "wash_trading"}\n')
    monkeypatch.setattr(stages, "LABELS_RETRY_SECONDS", 0.0)
    asyncio.run(stage.process([Message(TP(RATINGS, 0), 0, _registration_fact())]))
    assert stage.labels_errors == 1 and set(stage.procs) == {0}
    assert stage.procs[0].rater.dispositions.confirmed == {("t-1", "wash_trading")}
    assert metrics.rated == 1 and metrics.ratings == [("account", "low")] and stage.ratings == 1


def test_a_missing_labels_file_is_refused_by_name(tmp_path):
    metrics = _Metrics()
    stage = _rating_stage(str(tmp_path / "absent.jsonl"), metrics)
    asyncio.run(stage.process([Message(TP(RATINGS, 0), 0, _registration_fact())]))
    assert stage.procs == {} and metrics.refused == 1 and stage._labels_error.field == "risk.labels"
