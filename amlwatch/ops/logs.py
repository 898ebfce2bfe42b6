"""Structured logs: one JSON object per line on stderr, with no personal data.

Every line carries `ts` (UTC, ISO-8601), `level`, `logger`, `msg` and
`worker_id`, plus whatever the caller passes with `extra=` (`partition`,
`offset`, `event_id`, `topic`, ...):

    log.warning("bad record", extra={"partition": 3, "offset": 1200, "field": "price"})

The personal-data rule. Logs are read by more people, kept in more places and
for different periods than the record archive, so they may name records but
never carry what the records say about a person:

* allowed: identifiers the platform assigns (`event_id`, `account_id`,
  `trade_id`, `token_id`, `collection_id`, `alert_id`), the contract's SHA-256
  hashes (`*_hash`, `bank_card_hashes`), counts, offsets, partitions, reasons;
* never: raw record bytes or parsed payloads (`raw`, `raw_base64`, `record`,
  `payload`, `event`), IP addresses, device ids, birth years, regions, and any
  raw identity value a producer might wrongly send (names, national ID, phone,
  bank card numbers, addresses, e-mail).

`PersonalDataFilter` enforces it on every record that reaches the handler:
values of the keys in `REDACTED_KEYS` (at any depth of an `extra` value) are
replaced by `"[redacted]"`, and text that looks like a mainland national ID,
mobile number, bank card number, IP address or e-mail address is masked in
the message, the exception text and every string value. Investigators get
the data from the archive (`amlwatch records export`), which keeps an audit
trail; logs never need it.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any

import orjson

from amlwatch.config import LOG_LEVELS

REDACTED = "[redacted]"

REDACTED_KEYS = frozenset({
    # raw input and parsed payloads
    "raw", "raw_base64", "record", "payload", "event", "body", "value",
    # contract fields that are personal data but not hashes
    "ip", "buyer_ip", "seller_ip", "device_id", "buyer_device_id", "seller_device_id",
    "birth_year", "region",
    # raw identity values that must never be in the stream, let alone the logs
    "name", "legal_name", "real_name", "payer_name", "national_id", "id_number", "id_card",
    "phone", "phone_number", "mobile", "bank_card", "card_number", "address", "email",
})
"""Keys whose values are never logged, whatever they hold."""

_PATTERNS = (
    re.compile(r"(?<![\w.])\d{17}[\dXx](?!\w)"),             # mainland resident ID number
    re.compile(r"(?<![\w.])\d{15,19}(?![\w.])"),             # bank card number (not 13-digit epoch ms)
    re.compile(r"(?<![\w.])(?:\+?86[- ]?)?1[3-9]\d{9}(?!\w)"),  # mainland mobile number
    re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"),   # IPv4 address
    re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}(?![\w:])"),  # IPv6 address
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),             # e-mail address
)

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

def scrub_text(text: str) -> str:
    """`text` with anything shaped like personal data masked."""
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def scrub(value: Any, key: str | None = None) -> Any:
    """A copy of an `extra` value that is safe to log (see the module docstring)."""
    if key is not None and key.lower() in REDACTED_KEYS:
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return REDACTED
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return scrub_text(str(value))


class PersonalDataFilter(logging.Filter):
    """Enforces the personal-data rule on every record before it is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg, record.args = scrub_text(message), None
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS:
                setattr(record, name, scrub(value, name))
        if record.exc_info:
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub_text(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, worker_id, then the `extra` fields."""

    def __init__(self, worker_id: str):
        super().__init__()
        self.worker_id = worker_id

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "worker_id": self.worker_id,
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRS and name not in line:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


def configure_logging(worker_id: str, level: str = "INFO", stream=None) -> logging.Handler:
    """Route every logger (amlwatch's, Faust's, aiokafka's) to JSON lines on stderr; returns the handler.

    Replaces the root logger's handlers, so calling it again (a test, a reload)
    does not duplicate lines. Raises `ValueError` for an unknown level.
    """
    name = level.upper()
    if name not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}: one of {', '.join(LOG_LEVELS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(worker_id))
    handler.addFilter(PersonalDataFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(name)
    logging.captureWarnings(True)
    return handler
