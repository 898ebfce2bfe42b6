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
