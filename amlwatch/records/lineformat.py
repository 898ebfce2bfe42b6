"""Archive line format and hash chain: stream ids, the record line with its trailing SHA-256, the chain's
genesis, times as UTC text and days, and the fsync helpers every writer step uses (docs/RECORDS.md).

A record line is its JSON body with a last member `"hash":"<sha256 of the body>"`; `split_line` returns the
exact bytes that were hashed, so a verifier never re-serialises what it checks.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson

from amlwatch.errors import AmlwatchError
from amlwatch.events import BadRecord, parse_time

FORMAT = "amlwatch.records/1"
KINDS = ("event", "alert", "audit")
KIND_DIRS = {"event": "events", "alert": "alerts", "audit": "audit"}
DIR_KINDS = {v: k for k, v in KIND_DIRS.items()}
DAY_SECONDS = 86_400

HASH_PREFIX = b',"hash":"'
HASH_SUFFIX_LEN = len(HASH_PREFIX) + 64 + 2  # ,"hash":"<64 hex>"}


class ArchiveError(AmlwatchError, RuntimeError):
    """The archive cannot be written safely as it is (run `amlwatch records verify`)."""


class ArchiveBusy(ArchiveError):
    """Another writer holds a stream of this archive."""


class RecordFormatError(AmlwatchError, ValueError):
    """A line that is not an archive record."""


def stream_id(kind: str, partition: int | None = 0) -> str:
    if kind not in KIND_DIRS:
        raise ValueError(f"unknown record kind {kind!r}")
    if kind == "audit":
        return "audit"
    if not isinstance(partition, int) or isinstance(partition, bool) or partition < 0:
        raise ValueError(f"partition must be a non-negative integer, got {partition!r}")
    return f"{KIND_DIRS[kind]}/p{partition}"


def stream_kind(stream: str) -> tuple[str, int | None]:
    """`events/p3` -> ("event", 3); `audit` -> ("audit", None)."""
    head, _, tail = stream.partition("/")
    kind = DIR_KINDS.get(head)
    if kind is None:
        raise ValueError(f"not a stream id: {stream!r}")
    if kind == "audit":
        return kind, None
    return kind, int(tail[1:])


def genesis_hash(stream: str) -> str:
    """What the first record of a stream chains to."""
    return hashlib.sha256(f"{FORMAT} genesis {stream}".encode()).hexdigest()


def seal_line(body: bytes) -> tuple[bytes, str]:
    """The archive line of a record body (a JSON object without `hash`), and the hash."""
    digest = hashlib.sha256(body).hexdigest()
    return body[:-1] + HASH_PREFIX + digest.encode() + b'"}\n', digest


def split_line(line: bytes) -> tuple[bytes, str]:
    """(body, stored hash) of an archive line; the body is the exact bytes that were hashed."""
    line = line.rstrip(b"\n")
    if (len(line) < HASH_SUFFIX_LEN + 2 or not line.endswith(b'"}')
            or line[-HASH_SUFFIX_LEN:-HASH_SUFFIX_LEN + len(HASH_PREFIX)] != HASH_PREFIX):
        raise RecordFormatError("no trailing hash member")
    stored = line[-66:-2]
    try:
        text = stored.decode("ascii")
    except UnicodeDecodeError:
        raise RecordFormatError("hash is not hex") from None
    return line[:-HASH_SUFFIX_LEN] + b"}", text


def record_raw(record: dict) -> bytes:
    """The input bytes of an archived event, exactly as received."""
    if "raw" in record:
        return record["raw"].encode("utf-8")
    return base64.b64decode(record["raw_base64"])


def utc_iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def day_end(day: str) -> float:
    """Epoch seconds at the end of a UTC day."""
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp() + DAY_SECONDS


def event_time(raw: bytes) -> float | None:
    """Event time of a raw record, or None when it has no parsable `ts`."""
    try:
        obj = orjson.loads(raw)
        return parse_time(obj["ts"]).timestamp()
    except Exception:  # anything malformed: the caller falls back to the previous record's day
        return None


def time_of(ts) -> float | None:
    if ts is None:
        return None
    if isinstance(ts, bool):
        raise TypeError("ts must be a time, not a bool")
    if isinstance(ts, (int, float)):
        return float(ts)
    if isinstance(ts, datetime):
        return ts.timestamp()
    try:
        return parse_time(ts).timestamp()
    except BadRecord:
        return None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mkdirs(path: Path) -> None:
    """mkdir -p, fsyncing each parent whose entries changed."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir()
        except FileExistsError:
            continue
        fsync_dir(p.parent)
