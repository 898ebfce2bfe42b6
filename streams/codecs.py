"""Wire formats of amlwatch's own topics.

Work messages (internal topics) are one header line and the original event
bytes, so the event is parsed by the same strict parser at every stage and the
dead-letter copy is byte-exact:

    b"E|<source>|<seq>\\n<raw event JSON>"      an event from <source>, its <seq>-th
    b"M|<source>|<time>|<0 or 1>"               <source> got to <time>; 1 = caught up (idle)

Workers send them in frames, one Kafka message per destination partition and
batch: b"F|" then each message as a 4-byte big-endian length and its bytes.
A Kafka message costs the same few tens of microseconds on both sides
whatever its size, so framing is what lets a worker keep up.

Alerts are the contract's JSON (docs/ALERTS.md) keyed by alert_id; dead
letters are amlwatch.deadletter records plus the raw bytes as base64.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

from amlwatch.alerts import Alert, json_default
from amlwatch.deadletter import dead_letter_record
from amlwatch.errors import AmlwatchError
from amlwatch.events import BadRecord


class CodecError(AmlwatchError, ValueError):
    """A work-topic message amlwatch did not write (or wrote with another version)."""


class WorkEvent(NamedTuple):
    source: str
    seq: int
    """Increasing per source (the input offset, or a work partition's forward count): a copy sent
    again after a failover has a seq already seen and is recognised as such."""
    raw: bytes


class WorkMarker(NamedTuple):
    source: str
    t: float
    idle: bool


def encode_event(source: str, seq: int, raw: bytes) -> bytes:
    return b"E|%s|%d\n%s" % (source.encode(), seq, raw)


def encode_marker(source: str, t: float, idle: bool) -> bytes:
    return f"M|{source}|{t!r}|{int(idle)}".encode()


FRAME_BYTES = 256 * 1024
"""A frame is closed at this size (well under Kafka's 1 MB default message limit)."""


def encode_frame(values: list[bytes]) -> bytes:
    parts = [b"F|"]
    for value in values:
        parts.append(len(value).to_bytes(4, "big"))
        parts.append(value)
    return b"".join(parts)


def decode_frame(value: bytes) -> list[WorkEvent | WorkMarker]:
    """The work messages in one Kafka message (a frame, or a single unframed one)."""
    if value[:2] != b"F|":
        return [decode_work(value)]
    out, at, end = [], 2, len(value)
    while at < end:
        size = int.from_bytes(value[at:at + 4], "big")
        at += 4
        if size > end - at:
            raise CodecError(f"frame cut short: {size} bytes announced, {end - at} left")
        out.append(decode_work(value[at:at + size]))
        at += size
    return out


def decode_work(value: bytes) -> WorkEvent | WorkMarker:
    kind = value[:2]
    if kind == b"E|":
        header, sep, raw = value.partition(b"\n")
        if not sep:
            raise CodecError("event message without a header line")
        source, bar, seq = header[2:].decode().rpartition("|")
        if not bar:
            raise CodecError("event header without a sequence number")
        return WorkEvent(source, int(seq), raw)
    if kind == b"M|":
        try:
            _, source, t, idle = value.decode().split("|")
            return WorkMarker(source, float(t), idle == "1")
        except ValueError as exc:
            raise CodecError(f"bad marker {value[:80]!r}") from exc
    raise CodecError(f"unknown work message {value[:20]!r}")


def encode_alert(alert: Alert | dict, detected_at: str | None = None) -> tuple[bytes, bytes]:
    """(key, value): the alert id and the contract JSON. Given the contract dict (`Alert.to_dict`), it is
    not built again: a worker builds it once per alert for this and for the record archive (each build
    hashes the alert id twice)."""
    record = alert if isinstance(alert, dict) else alert.to_dict(detected_at)
    return record["alert_id"].encode(), orjson.dumps(record, default=json_default)


def encode_dead_letter(raw: bytes, error: BadRecord, topic: str, partition: int, offset: int) -> tuple[bytes, bytes]:
    """(key, value): where it came from, and the replay dead-letter record with the bytes as base64 too."""
    record = dead_letter_record(raw, error, {"topic": topic, "partition": partition, "offset": offset},
                                with_base64=True)
    return f"{topic}:{partition}:{offset}".encode(), orjson.dumps(record)
