"""A stage-1 processor given one frame (a Kafka message) of many events: a detector failing on one of them,
or the core refusing one, costs that event alone; the batch's other events are judged and forwarded."""

from __future__ import annotations

import orjson

from amlwatch.config import Config
from amlwatch.detectors.monitor import Monitor
from amlwatch.streams.codecs import encode_event, encode_frame, encode_marker
from amlwatch.streams.processors import WorkProcessor


class FailsOnOneTrade:
    name = "test.fails_on_t3"
    typology = "anomaly"
    needs_registry = False
    scope = "collection"

    def observe(self, view):
        if view.trade.trade_id == "t3":
            raise ZeroDivisionError("float division by zero")
        return []

    def observe_registry(self, event, registry):
        return []

    def evict(self, now):
        pass


def _trade(n: int, **kw) -> bytes:
    return orjson.dumps({"type": "trade", "event_id": f"e{n}", "ts": f"2026-03-01T10:00:{n:02d}+08:00",
                         "trade_id": f"t{n}", "collection_id": "c", "token_id": f"k{n}", "kind": "secondary",
                         "seller_id": "s", "buyer_id": "b", "price": "10.00", "currency": "USDT",
                         "payment": {"method": "crypto"}, **kw})


def test_one_failing_event_does_not_cost_its_batch():
    config = Config()
    proc = WorkProcessor(0, Monitor(config, extra_detectors=[FailsOnOneTrade()]), ["in:0"], "keyed", 2)
    raws = [_trade(n) for n in range(1, 9)] + [_trade(5, price="1.00")]     # t5's id again, other content
    frame = encode_frame([encode_event("in:0", offset, raw) for offset, raw in enumerate(raws)])
    alerts, outs = proc.handle(0, frame)
    more, outs2 = proc.handle(1, encode_marker("in:0", 4102444800.0, True))
    alerts, outs = alerts + more, outs + outs2
    more, outs3 = proc.drain()
    alerts, outs = alerts + more, outs + outs3
    judged = {a.trade_ids[-1] for a in alerts if a.detector == "settlement.currency"}
    assert judged == {f"t{n}" for n in range(1, 9)}, "every trade of the batch was judged, t3 included"
    dead = {o.key.decode(): orjson.loads(o.value) for o in outs if o.topic == config.kafka.deadletter_topic}
    assert set(dead) == {"e3:detector_error", "e5:duplicate_event_id_conflict"}
    assert dead["e3:detector_error"]["field"] == "detector:test.fails_on_t3"
    forwarded = [o for o in outs if o.topic == "keyed" and o.key is not None]          # markers have none
    assert sorted(o.key for o in forwarded) == sorted(f"t{n}".encode() for n in range(1, 9)), \
        "buyer and seller share one keyed partition here: each trade forwarded once, the refused copy of e5 never"
    assert not [o for o in forwarded if b'"price":"1.00"' in o.value]
    assert proc.monitor.detector_errors == {"test.fails_on_t3": 1}


# -- replay and the partitioned stage 1 near the guards' limits ---------------------------------------
# A stage-1 partition judges the time guards and the event-id check on what it sees: every registry event
# and its own collections' trades. Replay sees everything. On streams in event-time order they agree except
# in the cases below, each bounded as docs/STREAMING.md ("Hostile input and state safety", Limits) says.

GUARD_CONFIG = Config.from_mapping({"kafka": {"deadletter_topic": "dead"}})
REGISTRY_LINES = 5
"""What `_stream` puts before the trades."""


def _collections_on_two_partitions() -> tuple[str, str]:
    from amlwatch.streams.routing import partition_for

    names = [f"col-{n}" for n in range(20)]
    first = names[0]
    return first, next(n for n in names if partition_for(n, 2) != partition_for(first, 2))


def _stream(*trades: tuple[str, float, str]) -> list[bytes]:
    """Registry at day 0 (two accounts, the two collections), then (collection, day, trade id) in order."""
    from support import events as ef

    first, second = _collections_on_two_partitions()
    records = ef.world("acc-a", "acc-b", t=ef.at()) + [ef.collection(second, t=ef.at())]
    for n, (collection, day, trade_id) in enumerate(trades):
        records.append({**ef.trade("acc-a", "acc-b", ef.at(days=day), token_id=f"tok-{n}",
                                   collection_id=collection, trade_id=trade_id), "event_id": trade_id})
    return [orjson.dumps(r) for r in records]


def _replay_refusals(lines: list[bytes]) -> set[str]:
    from amlwatch.events import parse_event

    monitor = Monitor(GUARD_CONFIG)
    refused = set()
    for raw in lines:
        monitor.observe(parse_event(raw))
        refused |= {f"{r.event.event_id}:{r.reason.split(':', 1)[0]}" for r in monitor.take_rejected()}
    return refused


def _partitioned_refusals(lines: list[bytes]) -> set[str]:
    from support.pipeline import InMemoryPipeline

    pipeline = InMemoryPipeline(GUARD_CONFIG, input_partitions=2, work_partitions=2, seed=3)
    pipeline.produce(lines)
    pipeline.run()
    return {out.key.decode() for out in pipeline.dead}


def test_a_jump_in_event_time_costs_each_partition_its_first_trade_where_replay_loses_one():
    """After a real gap over max_skew (45 days) with no event at all, replay refuses the first trade and
    the second, on any collection, confirms the jump. A partition confirms it only with an event it sees:
    each partition refuses the first trade the jump brings it (at most one per stage-1 partition)."""
    one, two = _collections_on_two_partitions()
    lines = _stream((one, 1, "t1"), (two, 1.1, "t2"), (one, 50, "t3"), (two, 50.01, "t4"), (one, 50.02, "t5"),
                    (two, 50.03, "t6"))
    assert _replay_refusals(lines) == {"t3:event_time_skew"}
    assert _partitioned_refusals(lines) == {"t3:event_time_skew", "t4:event_time_skew"}


def test_a_jump_opened_by_a_registry_event_is_judged_alike():
    """A registry event reaches every partition: ahead by over max_skew it is applied, and it confirms
    the jump everywhere, as in replay."""
    from support import events as ef

    one, two = _collections_on_two_partitions()
    lines = _stream((one, 1, "t1"), (two, 1.1, "t2"))
    lines.append(orjson.dumps(ef.account("acc-c", ef.at(days=50))))
    lines += _stream((one, 50.01, "t3"), (two, 50.02, "t4"))[REGISTRY_LINES:]     # the trades alone
    assert _replay_refusals(lines) == _partitioned_refusals(lines) == set()


def test_a_partition_with_no_event_for_over_max_skew_refuses_what_replay_takes():
    """While one collection trades on, the other's partition sees nothing for 50 days (no registry event
    either): its watermark stays behind, and its next trade is refused as skewed (a second one within
    max_skew of it confirms the jump there)."""
    one, two = _collections_on_two_partitions()
    busy = [(one, day, f"b{day}") for day in range(2, 52, 5)]
    lines = _stream((one, 1, "t1"), (two, 1.1, "t2"), *busy, (two, 51, "q1"), (two, 51.1, "q2"))
    assert _replay_refusals(lines) == set()
    assert _partitioned_refusals(lines) == {"q1:event_time_skew"}


def test_an_event_id_reused_on_another_partition_is_caught_only_by_replay():
    """The event-id check remembers what its core saw: two trades of collections on different partitions
    under one event_id are a conflict in replay, two distinct events to the partitions."""
    one, two = _collections_on_two_partitions()
    lines = _stream((one, 1, "t1"), (two, 1.1, "t2"), (two, 1.2, "t3"))
    lines[-1] = lines[-1].replace(b'"event_id":"t3"', b'"event_id":"t1"')
    assert _replay_refusals(lines) == {"t1:duplicate_event_id_conflict"}
    assert _partitioned_refusals(lines) == set()
