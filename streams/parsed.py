"""One strict parse per event per worker process.

The same event bytes reach one worker several times: the router parses each
input, then its work partition parses the copy in the work frame, then one or
two keyed partitions parse the forwarded trade, and every work partition
parses each registry event. Events are immutable, so the stages of one worker
can share the first parse; this was about a fifth of the worker's time.
"""

from __future__ import annotations

from typing import Callable

from amlwatch.events import Event, parse_event


class ParsedEventCache:
    """Raw event bytes -> the parsed event, bounded to two generations of `capacity` entries.

    A new generation starts when the young one is full and the old one is dropped, so a lookup is two
    dict probes and the memory held is at most 2 x capacity events. Bad records are not kept: parsing
    them again raises the same `BadRecord`.
    """

    def __init__(self, capacity: int = 32_768, parse: Callable[[bytes], Event] = parse_event):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._parse = parse
        self._young: dict[bytes, Event] = {}
        self._old: dict[bytes, Event] = {}
        self.hits = 0
        self.misses = 0

    def parse(self, raw: bytes) -> Event:
        event = self._young.get(raw)
        if event is None:
            event = self._old.get(raw)
            if event is None:
                self.misses += 1
                event = self._parse(raw)
            else:
                self.hits += 1
            self._keep(raw, event)
        else:
            self.hits += 1
        return event

    def _keep(self, raw: bytes, event: Event) -> None:
        if len(self._young) >= self.capacity:
            self._old = self._young
            self._young = {}
        self._young[raw] = event

    def __len__(self) -> int:
        return len(self._young) + len(self._old)
