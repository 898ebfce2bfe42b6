"""The trade parser that checks all fields at once agrees with the field-by-field contract on every input:
the same event for what it takes, the same refusal (field and reason) for what it refuses."""

from __future__ import annotations

import itertools

import orjson
import pytest

from amlwatch import events
from amlwatch.events import BadRecord, _parse_by_field, _trade_at_once, parse_event

SALE = {"type": "trade", "event_id": "ev-5", "ts": "2026-03-01T10:00:03.120+08:00", "platform": "demo",
        "trade_id": "tr-1", "collection_id": "col-crane", "token_id": "col-crane-0001", "kind": "secondary",
        "seller_id": "acc-s", "buyer_id": "acc-b", "price": "99.00", "currency": "CNY",
        "payment": {"method": "alipay", "payer_name_hash": "ph", "instrument_hash": "ih"},
        "buyer_device_id": "dev-b", "buyer_ip": "1.2.3.4", "seller_device_id": "dev-s", "seller_ip": "5.6.7.8"}


class Text(str):
    """A str subclass, as a caller's decoded dict might hold (orjson never makes one)."""


ABSENT = object()
ANY_VALUE = [ABSENT, None, "", " ", "x", Text("x"), Text(""), 0, 1, -1, 2**70, 0.0, 1.5, True, False, [], ["x"],
             {}, {"x": 1}, "x" * 100_000]
TEXT_VALUES = ["0", "99.00", "007.50", "0.00000001", "1.123456789", "1e2", "+5", "-0", " 100", "\u0661",
               "1_000", "999999999999999.99", "1000000000000000", "NaN", "5.", ".5", "9" * 25, "\uff11",
               "2026-03-01T10:00:03.120+08:00", "2026-03-01T10:00:03", "2026-03-01", "2026-13-01T00:00+08:00",
               "0001-01-01T00:00:00+08:00", "0001-01-01T09:00:00+08:00", "9999-12-31T23:59:59-01:00",
               "2026-03-01T10:00:03Z", "20260301T100003+0800", "2026-03-01 10:00:03+08:00",
               "2026-03-01T10:00:03.120+08:00:00.5", "primary", "secondary", "gift", "auction", "Primary",
               "alipay", "crypto", "none", "paypal", "CNY", "USDT", "trade", "account"]
FIELDS = [f for f in SALE if f != "payment"]
PAYMENT_FIELDS = ["method", "payer_name_hash", "instrument_hash"]


def _with(record: dict, path: tuple[str, ...], value) -> dict:
    out = {**record, "payment": dict(record["payment"])}
    target = out["payment"] if len(path) == 2 else out
    if value is ABSENT:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return out


def _outcome(parse, record):
    try:
        return "event", parse(record)
    except BadRecord as error:
        return "bad", (error.field, error.reason)


def _records():
    """SALE with each field (and each payment field, and the payment itself) set to every tricky value,
    and with every pair of top-level fields spoiled at once (the first bad field must still be named)."""
    for field in FIELDS + ["payment"]:
        for value in ANY_VALUE + TEXT_VALUES:
            yield _with(SALE, (field,), value)
    for field in PAYMENT_FIELDS:
        for value in ANY_VALUE + TEXT_VALUES:
            yield _with(SALE, ("payment", field), value)
    for a, b in itertools.combinations(FIELDS, 2):
        yield _with(_with(SALE, (a,), 7), (b,), "")


RECORDS = list(_records())


def test_the_table_covers_takes_and_refusals_of_both_kinds():
    outcomes = [_outcome(_parse_by_field, r)[0] for r in RECORDS]
    assert outcomes.count("event") > 100 and outcomes.count("bad") > 500
    assert sum(r.get("type") == "trade" and _trade_at_once(r) is not None for r in RECORDS) > 100


@pytest.mark.parametrize("record", RECORDS)
def test_same_outcome_as_field_by_field(record):
    want = _outcome(_parse_by_field, record)
    assert _outcome(parse_event, record) == want
    try:
        raw = orjson.dumps(record)
    except orjson.JSONEncodeError:           # an integer beyond 64 bits: no such JSON from orjson
        raw = None
    if raw is not None:
        assert _outcome(parse_event, raw) == _outcome(_parse_by_field, orjson.loads(raw))
    fast = _trade_at_once(record) if record.get("type") == "trade" else None
    if fast is not None:
        assert want == ("event", fast)
        assert [type(getattr(fast, f)) for f in fast.__slots__] == \
               [type(getattr(want[1], f)) for f in want[1].__slots__]


def test_a_str_subclass_goes_the_long_way_and_is_taken_there():
    record = _with(SALE, ("buyer_id",), Text("acc-b"))
    assert _trade_at_once(record) is None
    assert parse_event(record) == parse_event(SALE)


def test_a_cached_price_is_the_same_decimal_and_the_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr(events, "AMOUNT_CACHE", 3)
    monkeypatch.setattr(events, "_AMOUNTS", {})
    prices = [f"{n}.50" for n in range(10)]
    for price in prices + prices:
        trade = parse_event(_with(SALE, ("price",), price))
        assert str(trade.price) == price
        assert len(events._AMOUNTS) <= 3
    with pytest.raises(BadRecord, match="not a plain decimal"):
        parse_event(_with(SALE, ("price",), "-0.50"))
    assert "-0.50" not in events._AMOUNTS


def test_events_stay_hashable_and_equal_by_content():
    a, b = parse_event(SALE), parse_event(orjson.dumps(SALE))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
