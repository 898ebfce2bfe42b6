"""Strict parsing of the input contract (docs/EVENTS.md): typed events, or BadRecord naming the field."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import orjson
import pytest

from amlwatch.events import (
    AccountEvent,
    BadRecord,
    CollectionEvent,
    EventError,
    TradeEvent,
    parse_event,
    parse_time,
)

# Lines of the shared contract's example.jsonl, embedded so the test needs nothing outside the repo.
ISSUER = b'{"type":"account","event_id":"ev-0001","ts":"2026-03-01T09:00:00.000+08:00","platform":"demo","account_id":"acc-issuer","action":"register","kyc_level":3,"name_hash":"5d2c0b1e7f3a9c4e8b6d2f1a0c9e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d","id_hash":"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90","bank_card_hashes":["c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"],"device_id":"dev-77","ip":"36.110.1.9","region":"CN-11"}'  # noqa: E501
REGISTER = b'{"type":"account","event_id":"ev-0002","ts":"2026-03-01T09:05:00.000+08:00","platform":"demo","account_id":"acc-alice","action":"register","kyc_level":1,"phone_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","device_id":"dev-a1","ip":"112.65.4.20","region":"CN-31"}'  # noqa: E501
VERIFY = b'{"type":"account","event_id":"ev-0003","ts":"2026-03-01T09:07:12.500+08:00","platform":"demo","account_id":"acc-alice","action":"verify","kyc_level":3,"name_hash":"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","id_hash":"fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9","birth_year":1994,"bank_card_hashes":["b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"],"device_id":"dev-a1","ip":"112.65.4.20"}'  # noqa: E501
LAUNCH = b'{"type":"collection","event_id":"ev-0004","ts":"2026-03-01T10:00:00.000+08:00","platform":"demo","collection_id":"col-crane","action":"launch","issuer_id":"acc-issuer","asset_class":"art","fractional":false,"issue_price":"99.00","currency":"CNY","supply":1000,"transfer_lock_days":0}'  # noqa: E501
SALE = b'{"type":"trade","event_id":"ev-0005","ts":"2026-03-01T10:00:03.120+08:00","platform":"demo","trade_id":"tr-0001","collection_id":"col-crane","token_id":"col-crane-0001","kind":"primary","seller_id":"acc-issuer","buyer_id":"acc-alice","price":"99.00","currency":"CNY","payment":{"method":"alipay","payer_name_hash":"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","instrument_hash":"b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"},"buyer_device_id":"dev-a1","buyer_ip":"112.65.4.20","seller_device_id":"dev-77","seller_ip":"36.110.1.9"}'  # noqa: E501
USDT = b'{"type":"trade","event_id":"ev-0006","ts":"2026-03-01T10:00:09.000+08:00","platform":"demo","trade_id":"tr-0002","collection_id":"col-crane","token_id":"col-crane-0002","kind":"primary","seller_id":"acc-issuer","buyer_id":"acc-bob","price":"99.00","currency":"USDT","payment":{"method":"crypto","instrument_hash":"7d865e959b2466918c9863afca942d0fb89d7c9ac0c99bafc3749504ded97730"},"buyer_device_id":"dev-b2","buyer_ip":"101.7.3.3","seller_device_id":"dev-77","seller_ip":"36.110.1.9"}'  # noqa: E501
BAD_PRICE = b'{"type":"trade","event_id":"ev-0007","ts":"2026-03-01T10:00:11.000+08:00","platform":"demo","trade_id":"tr-0003","collection_id":"col-crane","token_id":"col-crane-0003","kind":"primary","seller_id":"acc-issuer","buyer_id":"acc-alice","price":"ninety-nine","currency":"CNY"}'  # noqa: E501


def _obj(line: bytes) -> dict:
    return orjson.loads(line)


def _bad(record, field: str) -> BadRecord:
    with pytest.raises(BadRecord) as info:
        parse_event(record)
    assert info.value.field == field, info.value
    assert isinstance(info.value, EventError) and isinstance(info.value, ValueError)
    assert field in str(info.value)
    return info.value


# --- good records --------------------------------------------------------------------------------


def test_account_register_and_verify():
    issuer = parse_event(ISSUER)
    assert isinstance(issuer, AccountEvent) and issuer.type == "account"
    assert issuer.account_id == "acc-issuer" and issuer.action == "register" and issuer.kyc_level == 3
    assert issuer.bank_card_hashes == ("c0ffee00" * 8,)
    assert issuer.platform == "demo" and issuer.region == "CN-11"
    register = parse_event(REGISTER)
    assert register.kyc_level == 1 and register.name_hash is None and register.id_hash is None
    assert register.bank_card_hashes is None and register.birth_year is None
    verify = parse_event(VERIFY)
    assert verify.action == "verify" and verify.birth_year == 1994 and verify.kyc_level == 3
    assert verify.id_hash.startswith("fcde2b2e") and verify.region is None


def test_collection_launch():
    launch = parse_event(LAUNCH)
    assert isinstance(launch, CollectionEvent) and launch.type == "collection"
    assert launch.collection_id == "col-crane" and launch.action == "launch"
    assert launch.issuer_id == "acc-issuer" and launch.asset_class == "art"
    assert launch.fractional is False and launch.supply == 1000 and launch.transfer_lock_days == 0
    assert launch.issue_price == Decimal("99.00") and isinstance(launch.issue_price, Decimal)
    assert launch.currency == "CNY"


def test_trade_with_payment():
    sale = parse_event(SALE)
    assert isinstance(sale, TradeEvent) and sale.type == "trade"
    assert sale.trade_id == "tr-0001" and sale.token_id == "col-crane-0001" and sale.kind == "primary"
    assert sale.seller_id == "acc-issuer" and sale.buyer_id == "acc-alice"
    assert sale.price == Decimal("99.00") and isinstance(sale.price, Decimal)
    assert sale.currency == "CNY" and sale.payment_method == "alipay"
    assert sale.payer_name_hash.startswith("2c26b46b") and sale.instrument_hash.startswith("b5bb9d80")
    assert sale.buyer_device_id == "dev-a1" and sale.seller_ip == "36.110.1.9"
    assert sale.paid


def test_trade_in_usdt_parses_it_is_the_detectors_job_to_flag_it():
    trade = parse_event(USDT)
    assert trade.currency == "USDT" and trade.payment_method == "crypto" and trade.payer_name_hash is None


def test_same_record_as_bytes_text_or_dict():
    assert parse_event(SALE) == parse_event(SALE.decode()) == parse_event(_obj(SALE))


def test_decimal_price_is_exact():
    record = _obj(SALE)
    record["price"] = "0.10"
    trade = parse_event(record)
    assert trade.price * 3 == Decimal("0.30")
    record["price"] = "123456789012345.67"
    assert parse_event(record).price == Decimal("123456789012345.67")


def test_gift_and_zero_priced_transfers_are_not_paid():
    record = _obj(SALE)
    record.update(kind="gift", price="0", payment={"method": "none"})
    assert not parse_event(record).paid
    record.update(kind="secondary", price="0.00")
    assert not parse_event(record).paid


def test_times_are_timezone_aware_and_keep_their_text():
    sale = parse_event(SALE)
    assert sale.ts == "2026-03-01T10:00:03.120+08:00"
    moment = datetime.fromisoformat(sale.ts)
    assert sale.t == pytest.approx(moment.timestamp())
    assert sale.t == pytest.approx(datetime.fromisoformat("2026-03-01T02:00:03.120+00:00").timestamp())
    assert sale.year == 2026
    assert parse_time(sale.ts).utcoffset().total_seconds() == 8 * 3600
    record = _obj(SALE)
    record["ts"] = "2026-03-01T02:00:03.120Z"
    assert parse_event(record).t == pytest.approx(sale.t)


def test_year_is_the_local_year_of_the_event():
    record = _obj(SALE)
    record["ts"] = "2026-01-01T00:30:00+08:00"  # still 2025 in UTC
    assert parse_event(record).year == 2026


def test_unknown_fields_are_ignored():
    record = _obj(SALE)
    record["loyalty_points"] = 12
    record["payment"]["wallet_brand"] = {"x": 1}
    record["schema_version"] = "2.1"
    assert parse_event(record) == parse_event(SALE)


def test_optional_fields_may_be_absent_or_null():
    record = {"type": "account", "event_id": "e1", "ts": "2026-03-01T09:00:00+08:00",
              "account_id": "a", "action": "update", "kyc_level": None, "device_id": None}
    event = parse_event(record)
    assert event.kyc_level is None and event.device_id is None and event.platform is None


# --- bad records ---------------------------------------------------------------------------------


def test_invalid_json():
    _bad(b'{"type": "trade", ', "<json>")
    _bad(b"\xff\xfe not utf-8", "<json>")
    _bad("", "<json>")


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"trade"', b"42", b"null"])
def test_not_an_object(raw):
    _bad(raw, "<record>")


def test_missing_type():
    record = _obj(SALE)
    del record["type"]
    _bad(record, "type")


@pytest.mark.parametrize("kind", ["refund", "Trade", 7, ["trade"]])
def test_unknown_type(kind):
    record = _obj(SALE)
    record["type"] = kind
    _bad(record, "type")


def test_missing_or_empty_event_id():
    record = _obj(SALE)
    del record["event_id"]
    _bad(record, "event_id")
    record["event_id"] = ""
    _bad(record, "event_id")
    record["event_id"] = 17
    _bad(record, "event_id")


@pytest.mark.parametrize("ts", ["2026-03-01T10:00:03.120", "2026-03-01 10:00:03", "2026-03-01"])
def test_naive_time(ts):
    record = _obj(SALE)
    record["ts"] = ts
    assert "offset" in _bad(record, "ts").reason


@pytest.mark.parametrize("ts", ["yesterday", "2026-13-01T10:00:00+08:00", "2026-03-01T25:00:00+08:00", ""])
def test_unparsable_time(ts):
    record = _obj(SALE)
    record["ts"] = ts
    _bad(record, "ts")


def test_time_as_a_number():
    record = _obj(SALE)
    record["ts"] = 1772330403.12
    _bad(record, "ts")


def test_missing_time():
    record = _obj(SALE)
    del record["ts"]
    _bad(record, "ts")


@pytest.mark.parametrize("price", [99.0, 99, True, ["99.00"]])
def test_price_as_a_json_number_or_other_type(price):
    record = _obj(SALE)
    record["price"] = price
    _bad(record, "price")


def test_unparsable_price_from_the_example():
    error = _bad(BAD_PRICE, "price")
    assert "ninety-nine" in error.reason


@pytest.mark.parametrize("price", ["-1.00", "-0.01", "NaN", "Infinity", "", "1,000.00"])
def test_negative_or_non_finite_price(price):
    record = _obj(SALE)
    record["price"] = price
    _bad(record, "price")


@pytest.mark.parametrize("price", ["1000000000000000", "999999999999999999.5"])
def test_price_beyond_any_real_trade(price):
    record = _obj(SALE)
    record["price"] = price
    assert "beyond any real trade" in _bad(record, "price").reason


@pytest.mark.parametrize("price", [
    "1e999999999", "1e-400", "1e-999999999", "1E2", "1_000", " 100 ", "100 ", "\u0661\u0660\u0660", "+5", "-0",
    "5.", ".5", "1.2.3", "0x10", "1.123456789", "0" * 30, "\uff11\uff10",
])
def test_strict_decimal_grammar_refuses_what_decimal_would_take(price):
    """Decimal() accepts all of these; the contract's decimal string is digits and an optional fraction."""
    record = _obj(SALE)
    record["price"] = price
    assert "not a plain decimal" in _bad(record, "price").reason


@pytest.mark.parametrize("price, value", [("0", "0"), ("0.00", "0.00"), ("007.50", "7.50"),
                                          ("999999999999999.99", "999999999999999.99"), ("0.00000001", "1E-8")])
def test_plain_decimals_are_taken(price, value):
    record = _obj(SALE)
    record["price"] = price
    assert parse_event(orjson.dumps(record)).price == Decimal(value)


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-01:00",
                                "0001-01-01T07:59:59.999+08:00"])
def test_a_time_outside_utc_years_1_to_9999_is_bad(ts):
    record = _obj(SALE)
    record["ts"] = ts
    assert "outside UTC years 1-9999" in _bad(record, "ts").reason


def test_time_at_the_edges_of_utc_years_1_to_9999_is_taken():
    for ts in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "0001-01-01T09:00:00+08:00"):
        record = _obj(SALE)
        record["ts"] = ts
        assert parse_event(orjson.dumps(record)).ts == ts


def test_a_huge_value_is_clipped_in_the_reason():
    record = _obj(SALE)
    record["kind"] = "x" * 500_000
    assert len(_bad(record, "kind").reason) < 200


def test_missing_price():
    record = _obj(SALE)
    del record["price"]
    _bad(record, "price")


def test_bad_issue_price():
    record = _obj(LAUNCH)
    record["issue_price"] = 99.0
    _bad(record, "issue_price")
    record["issue_price"] = "-5"
    _bad(record, "issue_price")


@pytest.mark.parametrize("level", [-1, 4, 10])
def test_kyc_level_out_of_range(level):
    record = _obj(VERIFY)
    record["kyc_level"] = level
    _bad(record, "kyc_level")


@pytest.mark.parametrize("line,field,value", [
    (VERIFY, "kyc_level", "3"),
    (VERIFY, "kyc_level", True),
    (VERIFY, "kyc_level", 2.0),
    (VERIFY, "birth_year", "1994"),
    (VERIFY, "bank_card_hashes", "b5bb9d80"),
    (VERIFY, "bank_card_hashes", [1, 2]),
    (VERIFY, "name_hash", 5),
    (LAUNCH, "fractional", "false"),
    (LAUNCH, "fractional", 0),
    (LAUNCH, "supply", "1000"),
    (LAUNCH, "supply", True),
    (LAUNCH, "transfer_lock_days", 7.5),
    (SALE, "currency", 156),
    (SALE, "buyer_id", None),
    (SALE, "buyer_ip", 112),
    (SALE, "payment", "alipay"),
])
def test_wrong_type_for_a_field(line, field, value):
    record = _obj(line)
    record[field] = value
    _bad(record, field)


@pytest.mark.parametrize("method", ["paypal", "CRYPTO", 3, ["alipay"], {"name": "alipay"}])
def test_unknown_payment_method(method):
    record = _obj(SALE)
    record["payment"]["method"] = method
    _bad(record, "payment.method")


def test_wrong_type_inside_payment():
    record = _obj(SALE)
    record["payment"]["payer_name_hash"] = 12
    _bad(record, "payment.payer_name_hash")
    record = _obj(SALE)
    record["payment"]["instrument_hash"] = ["x"]
    _bad(record, "payment.instrument_hash")


@pytest.mark.parametrize("line,field,value", [
    (VERIFY, "action", "delete"),
    (LAUNCH, "action", "mint"),
    (SALE, "kind", "auction"),
])
def test_unknown_enum_values(line, field, value):
    record = _obj(line)
    record[field] = value
    _bad(record, field)


@pytest.mark.parametrize("line,field", [
    (VERIFY, "account_id"), (VERIFY, "action"),
    (LAUNCH, "collection_id"), (LAUNCH, "action"),
    (SALE, "trade_id"), (SALE, "collection_id"), (SALE, "token_id"), (SALE, "kind"),
    (SALE, "seller_id"), (SALE, "buyer_id"), (SALE, "currency"),
])
def test_missing_required_fields(line, field):
    record = _obj(line)
    del record[field]
    _bad(record, field)
