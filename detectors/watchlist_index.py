"""The block and watch lists in force, indexed for screening: entries with effective-dated periods.

Pure: no files, no topics. The change logs that build an index are read by
`amlwatch.reporting.watchlist` (its `Watchlist` is this index loaded from files
and a topic, reloadable), which the engine hands to the detector
(`detectors/watchlist.py`), so the detection layer screens without doing I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from amlwatch.events import parse_time

NEVER = float("inf")


@dataclass(frozen=True, slots=True)
class Entry:
    list: str
    kind: str
    value: str
    since: float
    until: float
    reason: str
    by: str
    source: str

    def active(self, t: float) -> bool:
        return self.since <= t < self.until


def _effective(change: dict) -> float:
    text = change.get("effective")
    return float("-inf") if text is None else parse_time(text, "effective").timestamp()


def build_entries(changes: Iterable[dict]) -> list[Entry]:
    """Entries with their active periods, from validated changes in file order (a remove ends the open
    entry)."""
    open_entries: dict[tuple, dict] = {}
    entries: list[Entry] = []
    for change in changes:
        key = (change["list"], change["kind"], change["value"])
        t = _effective(change)
        if change["op"] == "add":
            if key not in open_entries:
                open_entries[key] = {"since": t, "reason": change.get("reason") or "", "by": change.get("by") or "",
                                     "source": change.get("_source", "")}
        else:
            started = open_entries.pop(key, None)
            if started is not None:
                entries.append(Entry(*key, started["since"], t, started["reason"], started["by"], started["source"]))
    entries.extend(Entry(*key, e["since"], NEVER, e["reason"], e["by"], e["source"]) for key, e in open_entries.items())
    return entries


class WatchlistIndex:
    """Entries by (kind, value); an event at time t is screened against the entries effective at t."""

    def __init__(self, entries: Iterable[Entry] = ()):
        self.version = 0
        """Bumped on every reload that changed the lists (logged by the worker, kept in audit)."""
        self._install(list(entries))

    def _install(self, entries: list[Entry]) -> None:
        index: dict[tuple[str, str], list[Entry]] = {}
        for entry in entries:
            index.setdefault((entry.kind, entry.value), []).append(entry)
        self.entries = entries
        self.index = index

    def lookup(self, kind: str, value: str | None, t: float) -> list[Entry]:
        if value is None:
            return []
        found = self.index.get((kind, value))
        if not found:
            return []
        return [e for e in found if e.active(t)]

    def __len__(self) -> int:
        return len(self.entries)
