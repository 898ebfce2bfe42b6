"""A work partition's forward sequence after a restore: the copies it sends again are the same events
under the same numbers, whatever the batch boundaries, so stage 2's per-source sequence check drops
exactly the copies (issue 16: lose nothing, add nothing)."""

from __future__ import annotations

import random
from collections import defaultdict

import orjson
import pytest
from support.events import at, trade, world
from support.pipeline import InMemoryPipeline
from support.streamgen import make_stream

from amlwatch.config import Config
from amlwatch.streams.codecs import decode_frame, encode_event, encode_frame, encode_marker, WorkEvent
from amlwatch.streams.processors import KeyedProcessor, WorkProcessor, build_stage_monitor

SOURCES = ["a", "b"]


def _frames() -> list[bytes]:
    """Two sources; source a's trade at minute 15 arrives after its trade at minute 30 (input out of
    order), after source b got to minute 25: late if the partition released up to 25 before it came."""
    frames = [encode_frame([encode_event("a", i, orjson.dumps(record)) for i, record in
                            enumerate(world("acc-s", "acc-b", t=at(minutes=-60)), 1)])]
    plan = [("a", 10), ("b", 20), ("a", 30), ("b", 25), ("a", 15), ("b", 40), ("a", 50)]
    seqs = {"a": 100, "b": 100}
    for source, minute in plan:
        seqs[source] += 1
        record = trade("acc-s", "acc-b", at(minutes=minute), token_id=f"tok-{minute}")
        record["trade_id"] = f"tr-{minute}"
        frames.append(encode_frame([encode_event(source, seqs[source], orjson.dumps(record))]))
    frames.append(encode_frame([encode_marker(source, 4102444800.0, True) for source in SOURCES]))
    return frames


def _work() -> WorkProcessor:
    return WorkProcessor(0, build_stage_monitor(Config(), 1, False), SOURCES, "keyed", 1)


def _run(proc: WorkProcessor, frames: list[bytes], batches: list[int], start: int = 0) -> list[bytes]:
    """Feed `frames` from `start` in batches of the given sizes, draining after each; the outs' values."""
    values, at_ = [], start
    for size in batches:
        for offset in range(at_, min(at_ + size, len(frames))):
            values.extend(out.value for out in proc.handle(offset, frames[offset])[1])
        at_ += size
        values.extend(out.value for out in proc.drain()[1])
    return values


def _forwards(values: list[bytes]) -> dict[int, str]:
    """seq -> trade id of the forwarded trades among `values`."""
    out = {}
    for message in (m for value in values for m in decode_frame(value)):
        if isinstance(message, WorkEvent):
            out[message.seq] = orjson.loads(message.raw.partition(b"\n")[2])["trade_id"]
    return out


def _sent_and_sent_again() -> tuple[list[bytes], list[bytes]]:
    """What a partition sent after its snapshot, fed one batch of four then one message a batch, and what
    it sends again restored from that snapshot and fed the same messages as one batch."""
    frames = _frames()
    first = _work()
    _run(first, frames, [1])
    snapshot = first.snapshot()
    sent = _run(first, frames, [4, 1, 1, 1, 1], start=1)
    restored = WorkProcessor.restore(snapshot, build_stage_monitor(Config(), 1, False))
    return sent, _run(restored, frames, [len(frames)], start=1)


def test_a_restored_partition_forwards_the_same_trades_under_the_same_numbers_whatever_its_batches():
    sent, again = _sent_and_sent_again()
    assert len(_forwards(sent)) == 7
    assert _forwards(again) == _forwards(sent)


def test_stage_two_takes_every_trade_once_when_the_sender_restarts_from_an_older_snapshot():
    sent, again = _sent_and_sent_again()
    cut = next(i for i, value in enumerate(sent) if 2 in _forwards([value])) + 1   # crash after seq 2 was sent
    keyed = KeyedProcessor(0, 1, build_stage_monitor(Config(), 2, False), ["w0"])
    taken = []
    for offset, value in enumerate(sent[:cut] + again):
        for message in decode_frame(value):
            if isinstance(message, WorkEvent) and message.seq > keyed.last_seq.get(message.source, -1):
                taken.append(_forwards([value])[message.seq])
        keyed.handle(offset, value)
        keyed.drain()
    assert sorted(taken) == sorted(_forwards(sent).values())
    assert keyed.duplicates == len(_forwards(sent[:cut]))


def _displaced(lines: list[bytes], seed: int) -> list[bytes]:
    """The stream with about one trade in three moved up to twenty lines later: input partitions out of event-time
    order, so work partitions see late trades (which the in-order pipeline tests never make)."""
    rng = random.Random(seed)
    out = list(lines)
    for i in range(len(out) - 25, 0, -1):
        if b'"trade_id"' in out[i] and rng.random() < 0.3:
            out.insert(i + rng.randint(5, 20), out.pop(i))
    return out


@pytest.mark.parametrize("seed", [2, 5, 6])
def test_through_crashes_every_keyed_partition_takes_each_forwarded_trade_once(seed, monkeypatch):
    """The in-memory pipeline (crashes, restores, random batches) on a stream with late trades: the trades
    each keyed partition's surviving state took (a list kept in its snapshots) are every trade forwarded to
    it, each once."""
    forwarded: dict[int, set[str]] = defaultdict(set)
    forward, process = WorkProcessor._forward, KeyedProcessor._process

    def recording_forward(self, event, raw):
        outs = forward(self, event, raw)
        for out in outs:
            forwarded[out.partition].add(event.event_id)
        return outs

    def recording_process(self, event, raw, sides=None):
        self.__dict__.setdefault("taken", []).append(event.event_id)
        return process(self, event, raw, sides)

    monkeypatch.setattr(WorkProcessor, "_forward", recording_forward)
    monkeypatch.setattr(KeyedProcessor, "_process", recording_process)
    pipeline = InMemoryPipeline(Config(), input_partitions=3, work_partitions=3, seed=seed)
    pipeline.produce(_displaced(make_stream(seed=seed, trades=600, hours=48), seed))
    pipeline.run()
    assert sum(proc.buffer.late for (stage, _), proc in pipeline.procs.items() if stage == "work") > 0
    for (stage, partition), proc in pipeline.procs.items():
        if stage == "keyed":
            assert sorted(proc.taken) == sorted(forwarded[partition]), f"keyed partition {partition}"
