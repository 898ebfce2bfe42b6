"""Broker-free: the reorder buffer, the router, and the whole two-stage pipeline in memory.

The in-memory pipeline (tests/support/pipeline.py) feeds a hand-made stream through the same Router,
WorkProcessor and KeyedProcessor the Faust agents use, with the input
partitions read in a random interleaving, and must give exactly the alert
ids of a file replay, snapshots and restores included.
"""

from __future__ import annotations

import base64
import math
from collections import defaultdict

import orjson
import pytest
from support.pipeline import InMemoryPipeline, replay_ids
from support.streamgen import make_stream

from amlwatch.config import Config
from amlwatch.streams.codecs import (FRAME_BYTES, CodecError, WorkEvent, WorkMarker, decode_frame, decode_work,
                                     encode_event, encode_marker)
from amlwatch.streams.ordering import ReorderBuffer
from amlwatch.streams.processors import WorkProcessor, build_stage_monitor
from amlwatch.streams.routing import Out, Router, frame_outs, partition_for

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


DAYS_50 = 50 * 86_400.0


def test_a_trade_the_core_refuses_for_skew_is_released_but_vouches_for_no_progress():
    buf = ReorderBuffer(["a", "b"], max_skew=45 * 86_400.0)
    buf.push("a", 10.0, 2, "t1", "t1", trade=True)
    buf.push("a", 10.0 + DAYS_50, 2, "far", "far", trade=True)       # a mistyped year: the core refuses it
    assert buf.progress["a"] == 10.0
    buf.push("a", 20.0, 2, "t2", "t2", trade=True)                    # not late: "a" still holds the others back
    buf.mark("b", 30.0, idle=True)
    assert buf.release() == ["t1"]
    buf.mark("a", 20.0, idle=True)
    assert buf.release() == ["t2", "far"]
    assert buf.released_until == 20.0, "what the partition passes on to stage 2 stays where the stream is"
    assert buf.late == 0


def test_a_far_ahead_registry_event_and_a_confirmed_jump_count_as_the_core_applies_them():
    buf = ReorderBuffer(["a"], max_skew=45 * 86_400.0)
    buf.push("a", 10.0, 0, "acc", "acc")
    buf.push("a", 10.0 + DAYS_50, 0, "heartbeat", "heartbeat")       # applied by the core (it closes the days)
    assert buf.progress["a"] == 10.0 + DAYS_50 and buf.watermark == 10.0
    buf.push("a", 20.0 + DAYS_50, 2, "t", "t", trade=True)           # the second event near it confirms the jump
    assert buf.progress["a"] == 20.0 + DAYS_50 and buf.watermark == 20.0 + DAYS_50
    unguarded = ReorderBuffer(["a"])                                   # stage 2: behind stage 1's guards
    unguarded.push("a", 10.0, 2, "t1", "t1", trade=True)
    unguarded.push("a", 10.0 + DAYS_50, 2, "far", "far", trade=True)
    assert unguarded.progress["a"] == 10.0 + DAYS_50


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


def _trade(event_id: str, ts: str) -> bytes:
    record = next(orjson.loads(raw) for raw in make_stream(trades=20) if b'"trade_id"' in raw)
    record.update(event_id=event_id, trade_id=event_id, ts=ts)
    return orjson.dumps(record)


def test_a_routers_progress_skips_a_trade_the_core_refuses_for_skew_even_when_read_again():
    router = Router("work", 2, "dead", max_skew=45 * 86_400.0)
    router.route("in", 0, 0, _trade("e1", "2026-03-01T00:00:00Z"))
    before = router.progress["in:0"]
    for offset in (1, 1):                                   # read twice: a router restarted from the last commit
        event, outs = router.route("in", 0, offset, _trade("far", "2150-01-01T00:00:00Z"))
        assert outs, "still routed: the core judges and dead-letters it"
        assert router.progress["in:0"] == before
    router.route("in", 1, 0, _trade("e2", "2026-03-01T01:00:00Z"))
    assert router.progress["in:1"] == before + 3600
    router.route("in", 1, 1, _trade("far2", "2150-01-02T00:00:00Z"))   # a second one near it: a real jump
    assert router.progress["in:1"] > before + DAYS_50


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


@pytest.mark.parametrize("seed", [1, 2])
def test_pipeline_with_the_model_scoring_in_batches_gives_the_replay_alert_ids(seed):
    """Stage 1 settles the anomaly model's scoring per drained batch, and replay per 256 events: the
    anomaly alerts are the same, and so is everything sent beside them."""
    import dataclasses

    config = dataclasses.replace(Config(), anomaly=dataclasses.replace(Config().anomaly, warmup_trades=20,
                                                                       budget=0.05, threshold=0.0))
    lines = make_stream(seed=seed, trades=1500, hours=120)
    heartbeat = orjson.dumps({"type": "account", "event_id": "heartbeat", "ts": "2100-01-01T00:00:00+08:00",
                              "account_id": "amlwatch-heartbeat", "action": "register"})
    pipeline = InMemoryPipeline(config, input_partitions=3, work_partitions=3, seed=seed, with_model=True)
    pipeline.produce(lines + [heartbeat])
    got = pipeline.run()
    want = replay_ids(lines, config, with_model=True)
    anomalies = {a.alert_id for a in pipeline.alerts if a.detector == "anomaly.isolation_forest"}
    assert len(anomalies) > 10, "the model must alert on this stream"
    assert got == want, (sorted(want - got)[:5], sorted(got - want)[:5])
