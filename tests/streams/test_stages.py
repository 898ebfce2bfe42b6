"""A detection stage fed Faust-like messages without a broker: what it takes and what it leaves."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import orjson

from amlwatch.config import Config
from amlwatch.events import parse_event
from amlwatch.streams.codecs import encode_event, encode_frame
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
