"""Manifests: what a sealed segment states about its records (count, seq and time range, chain ends, the
latest identity fact per account), computed from the records themselves, so `verify` can recompute and
compare every field. Which fields of an input event name accounts is the events module's knowledge
(`accounts_named`, `identity_fact`), not this one's."""

from __future__ import annotations

import time

import orjson

from amlwatch.events import accounts_named, identity_fact

from .lineformat import FORMAT, record_raw, stream_kind, utc_iso
from .segments import SEALED, SegmentName


event_accounts = accounts_named
"""Accounts an input event names (amlwatch.events owns which fields those are)."""


def record_accounts(record: dict) -> list[str]:
    """Accounts an archived record touches (events by their fields, alerts by `accounts`)."""
    kind = record.get("kind")
    if kind == "alert":
        accounts = (record.get("alert") or {}).get("accounts") or []
        return [a for a in accounts if isinstance(a, str)]
    if kind == "event":
        try:
            return event_accounts(orjson.loads(record_raw(record)))
        except Exception:
            return []
    if kind == "audit":
        return list(record.get("accounts") or [])
    return []


class SegmentStats:
    """What a manifest states about a run of records, computed from the records themselves."""

    def __init__(self, stream: str):
        self.stream = stream
        self.kind = stream_kind(stream)[0]
        self.records = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.prev_hash: str | None = None
        self.last_hash: str | None = None
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.min_t: float | None = None
        self.max_t: float | None = None
        self.raw_bytes = 0
        self.identity: dict[str, list] = {}
        self.max_received: float | None = None
        """Latest wall-clock receipt time of the records (not in the manifest: bounds its `sealed_at`)."""

    def add(self, record: dict, digest: str, nbytes: int) -> None:
        self.records += 1
        self.raw_bytes += nbytes
        received = record.get("received")
        if isinstance(received, (int, float)) and not isinstance(received, bool):
            self.max_received = received if self.max_received is None else max(self.max_received, received)
        seq = record.get("seq")
        if self.first_seq is None:
            self.first_seq = seq
            self.prev_hash = record.get("prev")
        self.last_seq = seq
        self.last_hash = digest
        t = record.get("t")
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            if self.first_t is None:
                self.first_t = t
            self.last_t = t
            self.min_t = t if self.min_t is None else min(self.min_t, t)
            self.max_t = t if self.max_t is None else max(self.max_t, t)
        if self.kind == "event" and record.get("outcome") == "ok" and isinstance(t, (int, float)):
            text = record.get("raw")
            if text is not None and '"account"' not in text and "\\" not in text:
                return  # not an account event (cheap test before decoding)
            try:
                obj = orjson.loads(record_raw(record))
            except Exception:
                return
            fact = identity_fact(obj)
            if fact is not None:
                account, action = fact
                known = self.identity.get(account)
                if known is None or t >= known[0]:
                    self.identity[account] = [t, action]

    def manifest(self, name: SegmentName, sha256: str, nbytes: int, sealed_at: str | None = None) -> dict:
        kind, partition = stream_kind(self.stream)
        return {
            "format": FORMAT,
            "stream": self.stream,
            "kind": kind,
            "partition": partition,
            "day": name.day,
            "segment": name.file(SEALED),
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "first_ts": utc_iso(self.first_t),
            "last_ts": utc_iso(self.last_t),
            "min_t": self.min_t,
            "max_t": self.max_t,
            "prev_hash": self.prev_hash,
            "last_hash": self.last_hash,
            "sha256": sha256,
            "bytes": nbytes,
            "raw_bytes": self.raw_bytes,
            "sealed_at": sealed_at or utc_iso(time.time()),
            "identity": dict(sorted(self.identity.items())),
        }

    CHECKED = ("format", "stream", "kind", "partition", "day", "segment", "records", "first_seq", "last_seq",
               "first_ts", "last_ts", "min_t", "max_t", "prev_hash", "last_hash", "identity", "raw_bytes")
    """Every manifest field but `sha256` and `bytes` (checked against the sealed file) and `sealed_at`
    (checked to lie between the last record's receipt and now): an edit to any of them is found."""

    def compare(self, manifest: dict, name: SegmentName) -> list[str]:
        """Fields where a manifest disagrees with its records."""
        mine = self.manifest(name, manifest.get("sha256", ""), manifest.get("bytes", 0))
        return [key for key in self.CHECKED if manifest.get(key) != mine[key]]
