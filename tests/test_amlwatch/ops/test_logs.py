"""Structured logs: JSON lines with worker_id and extra fields, never raw personal data."""

from __future__ import annotations

import contextlib
import io
import logging

import orjson
import pytest

from amlwatch.ops.logs import REDACTED, configure_logging, scrub_text


@contextlib.contextmanager
def root_logging_restored():
    """configure_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.captureWarnings(False)


@pytest.fixture
def logged():
    out = io.StringIO()
    with root_logging_restored():
        configure_logging("worker-7", "DEBUG", stream=out)
        yield lambda: [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_lines_are_json_with_the_contract_fields_and_extras(logged):
    log = logging.getLogger("amlwatch.streams.worker")
    log.info("partition %d assigned", 3, extra={"partition": 3, "event_id": "ev-0001", "offset": 1200})
    log.debug("quiet")
    [first, second] = logged()
    assert first["msg"] == "partition 3 assigned"
    assert first["level"] == "INFO" and first["logger"] == "amlwatch.streams.worker"
    assert first["worker_id"] == "worker-7"
    assert first["partition"] == 3 and first["event_id"] == "ev-0001" and first["offset"] == 1200
    assert first["ts"].endswith("+00:00") and "T" in first["ts"]
    assert second["level"] == "DEBUG"


def test_level_filters_and_unknown_level_is_rejected(logged):
    configure_logging("w", "warning", stream=io.StringIO())
    assert logging.getLogger().level == logging.WARNING
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("w", "LOUD")


def test_configuring_twice_does_not_duplicate_lines():
    out = io.StringIO()
    with root_logging_restored():
        configure_logging("a", stream=io.StringIO())
        configure_logging("b", stream=out)
        logging.getLogger("x").warning("once")
        assert len(out.getvalue().splitlines()) == 1
        assert orjson.loads(out.getvalue())["worker_id"] == "b"


RAW_PII = {
    "national_id": "11010519491231002X",
    "phone": "13812345678",
    "bank_card": "6222020200112233445",
    "ip": "203.0.113.77",
    "buyer_ip": "2001:db8::1:2:3:4",
    "device_id": "dev-iphone-abc",
    "email": "zhang.san@example.cn",
}


def test_personal_data_never_reaches_the_log(logged):
    log = logging.getLogger("amlwatch.test")
    name_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    log.warning("bad record from 203.0.113.77 card 6222020200112233445 phone +86 13812345678 id 11010519491231002X",
                extra={**RAW_PII, "raw": b'{"price": 1}', "record": {"name_hash": name_hash, "x": 1},
                       "event_id": "ev-0002", "account_id": "acc-42", "name_hash": name_hash,
                       "partition": 1, "offset": 1772330400123,
                       "details": {"payer_name": "Zhang San", "ips": ["198.51.100.1"], "ok": "fine"}})
    try:
        raise ValueError("could not parse 11010519491231002X")
    except ValueError:
        log.exception("failed for zhang.san@example.cn")
    text = "\n".join(orjson.dumps(line).decode() for line in logged())
    for value in [*RAW_PII.values(), "Zhang San", "198.51.100.1", '"price"', "2001:db8"]:
        assert value not in text, value
    first, second = logged()
    for key in [*RAW_PII, "raw", "record"]:
        assert first[key] == REDACTED, key
    assert first["details"] == {"payer_name": REDACTED, "ips": [REDACTED], "ok": "fine"}
    # What may be logged is kept: platform ids, the contract's hashes, offsets (even 13-digit ones).
    assert first["event_id"] == "ev-0002" and first["account_id"] == "acc-42"
    assert first["name_hash"] == name_hash and first["offset"] == 1772330400123
    assert "ValueError" in second["exc"] and REDACTED in second["exc"]
    assert second["msg"] == f"failed for {REDACTED}"


@pytest.mark.parametrize("text", ["ev-0000123", "offset 1772330400123", "acc-13812345678x",
                                  "sha256:0a8b88438995d193", "partition 12 lag 5000", "v0.1.0",
                                  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"])
def test_ordinary_text_is_left_alone(text):
    assert scrub_text(text) == text
