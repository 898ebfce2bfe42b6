"""Block and watch lists of national ID, card and phone hashes, devices and accounts.

A list file is an append-only change log (JSON Lines), so the file is its own audit trail:

    {"op": "add", "list": "block", "kind": "id", "value": "<sha256 hex>", "effective": "2026-03-01T00:00:00+08:00",
     "at": "<wall-clock UTC>", "by": "analyst-7", "reason": "court order 2026-11"}
    {"op": "remove", "list": "block", "kind": "id", "value": "<sha256 hex>", "effective": "...", ...}

Invariants:

* Lists hold hashes only: `id`, `card` and `phone` values must be 64 lower-case hex digits (use
  `amlwatch watchlist add`, which hashes a raw value as the contract does). Devices and accounts
  are the contract's own identifiers.
* A change applies from its `effective` event time, never from when a process read it: an event at
  time t is checked against the entries effective at t. Replaying a stream with the same files gives
  the same hits whenever the files were loaded, and a live reload (file mtime check or `reload()`)
  changes nothing for events before an entry's effective time.
* A malformed file is refused whole with a `WatchlistError` naming the file, line and field; on a
  reload the lists in force stay in force (nothing is lost or half-applied).

The index itself (entries, their periods, lookups) is the detection layer's
(`amlwatch.detectors.watchlist_index`); this module reads and checks the change logs.
`amlwatch.engine` loads the configured lists into the screening detector.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import orjson

from amlwatch.detectors.watchlist_index import NEVER, Entry, WatchlistIndex, build_entries
from amlwatch.events import BadRecord, parse_time
from amlwatch.reporting.errors import ReportingError
from amlwatch.reporting.hashing import HEX64

LISTS = ("block", "watch")
KINDS = ("id", "card", "phone", "device", "account")
HASH_KINDS = ("id", "card", "phone")
OPS = ("add", "remove")


class WatchlistError(ReportingError):
    """A malformed list change; `field` names the offending field, `source` the file and line."""


def parse_change(obj, source: str = "") -> dict:
    """A validated change record (the dict as written); raises `WatchlistError`."""
    if not isinstance(obj, dict):
        raise WatchlistError("<record>", "expected a JSON object", source)
    for name, allowed in (("op", OPS), ("list", LISTS), ("kind", KINDS)):
        value = obj.get(name)
        if value not in allowed:
            raise WatchlistError(name, f"expected one of {', '.join(allowed)}, got {value!r}", source)
    value = obj.get("value")
    if not isinstance(value, str) or not value:
        raise WatchlistError("value", "missing or not a string", source)
    if obj["kind"] in HASH_KINDS and not HEX64.match(value):
        raise WatchlistError("value", f"a {obj['kind']} entry must be a SHA-256 hash (64 lower-case hex digits); "
                             "lists hold hashes only: use `amlwatch watchlist add` to hash a raw value", source)
    effective = obj.get("effective")
    if effective is not None:
        if not isinstance(effective, str):
            raise WatchlistError("effective", "expected ISO-8601 text with an offset", source)
        try:
            parse_time(effective, "effective")
        except BadRecord as error:
            raise WatchlistError("effective", error.reason, source) from None
    for name in ("reason", "by", "at"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            raise WatchlistError(name, "expected a string", source)
    return obj


def read_changes(path: str | os.PathLike) -> list[dict]:
    """Every change of one file, validated; the whole file or a `WatchlistError`."""
    changes = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            source = f"{path}:{number}"
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise WatchlistError("<json>", f"invalid JSON: {error}", source) from None
            change = parse_change(obj, source)
            change["_source"] = source
            changes.append(change)
    return changes


class Watchlist(WatchlistIndex):
    """The lists in force (the detection layer's `WatchlistIndex`), loaded from change-log files and a
    topic, reloadable."""

    def __init__(self, entries: Iterable[Entry] = (), paths: Iterable[str | os.PathLike] = (),
                 topic: tuple[str, str] | None = None):
        """`topic` is (bootstrap, topic name) of a compacted topic of entry states (`watchlist_topic`)."""
        self.paths = [Path(p) for p in paths]
        self.topic = tuple(topic) if topic else None
        self._stamps: dict[Path, tuple[int, int]] = {}
        super().__init__(entries)

    @classmethod
    def from_files(cls, paths: Iterable[str | os.PathLike], topic: tuple[str, str] | None = None) -> "Watchlist":
        watchlist = cls(paths=paths, topic=topic)
        watchlist.reload(force=True)
        return watchlist

    def __reduce__(self):
        """A streaming snapshot keeps the files' names, not their entries: a restored worker reads the
        lists as they are now (entries are effective-dated, so that judges every event as replay does)."""
        if self.paths or self.topic:
            return Watchlist.from_files, ([str(p) for p in self.paths], self.topic)
        return Watchlist, (self.entries,)

    def reload(self, force: bool = False) -> bool:
        """Re-read the files if any changed (mtime or size); True when the lists changed.

        A malformed file raises `WatchlistError` and the lists in force stay as they were."""
        stamps = {}
        for path in self.paths:
            stat = path.stat()
            stamps[path] = (stat.st_mtime_ns, stat.st_size)
        if not force and stamps == self._stamps and self.topic is None:
            return False
        changes = [c for path in self.paths for c in read_changes(path)]
        entries = build_entries(changes)
        if self.topic is not None:
            from amlwatch.reporting.watchlist_topic import read_topic_entries

            entries += read_topic_entries(*self.topic)
        self._stamps = stamps
        if entries == self.entries and not force:
            return False
        self._install(entries)
        self.version += 1
        return True


class WatchlistReloader:
    """Live only: checks the files' mtimes at most every `every` seconds of the caller's clock."""

    def __init__(self, watchlist: Watchlist, every: float):
        self.watchlist = watchlist
        self.every = every
        self.last = float("-inf")

    def check(self, now: float) -> bool:
        if now - self.last < self.every:
            return False
        self.last = now
        return self.watchlist.reload()


def load_watchlist(config) -> Watchlist:
    """The lists of `[watchlist] files` and `topic` (on `[kafka] bootstrap`) of a `Config`; empty when none."""
    lists = config.watchlist
    topic = (config.kafka.bootstrap, lists.topic) if lists.topic else None
    return Watchlist.from_files(lists.files, topic) if lists.files or topic else Watchlist()


def _iso(t: float) -> str | None:
    """UTC text of an entry's bound; None for an open one."""
    from datetime import datetime, timezone

    if t in (NEVER, float("-inf")):
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")
