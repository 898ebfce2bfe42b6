"""Where bad input goes: never dropped silently, always with its reason, and always small enough to send.

A dead letter keeps the original bytes (as text when they are UTF-8, else
base64) up to `MAX_RAW_BYTES`; a longer record keeps its first bytes plus its
full length and SHA-256, so the original can still be found and proven in the
record archive or the input topic. Reasons and field names are clipped too:
a dead-letter record is at most about 100 KB in JSON even with base64, far
under Kafka's default 1 MB message limit, whatever arrived (docs/RECORDS.md).
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from typing import BinaryIO

import orjson

from amlwatch.events import BadRecord

MAX_RAW_BYTES = 32 * 1024
MAX_REASON_CHARS = 1000
MAX_FIELD_CHARS = 200


def dead_letter_record(raw: bytes, error: BadRecord, source: dict, *, with_base64: bool = False) -> dict:
    """The original bytes (bounded), where they came from, and why; `with_base64` adds the kept bytes as
    base64 even when they are text (the worker's dead-letter topic: byte-exact either way)."""
    record = {"reason": str(error.reason)[:MAX_REASON_CHARS], "field": str(error.field)[:MAX_FIELD_CHARS],
              "source": source}
    kept = raw
    if len(raw) > MAX_RAW_BYTES:
        kept = raw[:MAX_RAW_BYTES]
        record["raw_truncated"] = {"bytes": len(raw), "kept_bytes": MAX_RAW_BYTES,
                                   "sha256": hashlib.sha256(raw).hexdigest()}
    text = _utf8(kept, truncated=len(kept) < len(raw))
    if text is not None:
        record["raw"] = text
    if text is None or with_base64:
        record["raw_base64"] = base64.b64encode(kept).decode("ascii")
    return record


def _utf8(data: bytes, truncated: bool) -> str | None:
    """`data` as text; a cut through a multi-byte character at the end of truncated bytes is dropped."""
    for cut in range(4 if truncated else 1):
        try:
            return (data[:len(data) - cut] if cut else data).decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


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
