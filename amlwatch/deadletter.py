"""Where bad input goes: never dropped silently, always with its reason."""

from __future__ import annotations

import base64
from collections import Counter
from typing import BinaryIO

import orjson

from amlwatch.events import BadRecord


def dead_letter_record(raw: bytes, error: BadRecord, source: dict) -> dict:
    """The original bytes (as text when they are UTF-8), where they came from, and why."""
    record = {"reason": error.reason, "field": error.field, "source": source}
    try:
        record["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(raw).decode("ascii")
    return record


class DeadLetterFile:
    """Dead letters as JSON Lines, counted by offending field."""

    def __init__(self, handle: BinaryIO | None):
        self.handle = handle
        self.count = 0
        self.by_field: Counter[str] = Counter()

    def write(self, raw: bytes, error: BadRecord, source: dict) -> None:
        self.count += 1
        self.by_field[error.field] += 1
        if self.handle is not None:
            self.handle.write(orjson.dumps(dead_letter_record(raw, error, source)) + b"\n")
