"""Event-time windows keyed by account, token, collection or pair.

Each key holds its recent entries oldest first; one global expiry queue lets
`evict(now)` drop whole keys once their newest entry leaves the window, so
memory follows the window length, never the stream length.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import Generic, Hashable, Iterator, TypeVar

T = TypeVar("T")


class KeyedWindow(Generic[T]):
    """Entries per key in plain lists: most keys (a pair, a buyer and token) only ever hold one
    entry, and a one-item list is a tenth of the size of a deque."""

    __slots__ = ("horizon", "max_per_key", "_entries", "_expiry")

    def __init__(self, horizon: float, max_per_key: int = 256):
        self.horizon = horizon
        self.max_per_key = max_per_key
        self._entries: dict[Hashable, list[tuple[float, T]]] = {}
        self._expiry: deque[tuple[float, Hashable]] = deque()

    def add(self, key: Hashable, t: float, item: T) -> None:
        entries = self._entries.get(key)
        if entries is None:
            self._entries[key] = [(t, item)]
        else:
            entries.append((t, item))
            if len(entries) > self.max_per_key:
                del entries[0]
        self._expiry.append((t, key))

    def recent(self, key: Hashable, now: float) -> list[tuple[float, T]]:
        """Entries of `key` inside the window ending at `now`, oldest first (do not modify)."""
        entries = self._entries.get(key)
        if entries is None:
            return _EMPTY
        _trim(entries, now - self.horizon)
        return entries

    def evict(self, now: float) -> None:
        cutoff = now - self.horizon
        expiry, store = self._expiry, self._entries
        while expiry and expiry[0][0] < cutoff:
            _, key = expiry.popleft()
            entries = store.get(key)
            if entries is None:
                continue
            _trim(entries, cutoff)
            if not entries:
                del store[key]

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> Iterator[Hashable]:
        return iter(self._entries)


def _trim(entries: list, cutoff: float) -> None:
    """Drop entries older than `cutoff` from the front of a time-ordered list."""
    if entries and entries[0][0] < cutoff:
        index = 1
        while index < len(entries) and entries[index][0] < cutoff:
            index += 1
        del entries[:index]


_EMPTY: list = []


class SortedWindow:
    """Recent numbers per key, kept sorted as well as in arrival order.

    A median over a full window then costs an insertion and a removal per
    trade instead of copying and sorting up to `max_per_key` values.
    """

    __slots__ = ("horizon", "max_per_key", "_entries", "_sorted", "_expiry")

    def __init__(self, horizon: float, max_per_key: int = 256):
        self.horizon = horizon
        self.max_per_key = max_per_key
        self._entries: dict[Hashable, deque[tuple[float, float]]] = {}
        self._sorted: dict[Hashable, list[float]] = {}
        self._expiry: deque[tuple[float, Hashable]] = deque()

    def add(self, key: Hashable, t: float, value: float) -> None:
        entries = self._entries.get(key)
        if entries is None:
            entries = self._entries[key] = deque()
            ordered = self._sorted[key] = []
        else:
            ordered = self._sorted[key]
            if len(entries) >= self.max_per_key:
                _drop(ordered, entries.popleft()[1])
        entries.append((t, value))
        insort(ordered, value)
        self._expiry.append((t, key))

    def recent(self, key: Hashable, now: float) -> list[float]:
        """Values of `key` inside the window ending at `now`, ascending."""
        entries = self._entries.get(key)
        if entries is None:
            return []
        ordered = self._sorted[key]
        cutoff = now - self.horizon
        while entries and entries[0][0] < cutoff:
            _drop(ordered, entries.popleft()[1])
        return ordered

    def evict(self, now: float) -> None:
        cutoff = now - self.horizon
        expiry = self._expiry
        while expiry and expiry[0][0] < cutoff:
            _, key = expiry.popleft()
            entries = self._entries.get(key)
            if entries is None:
                continue
            ordered = self._sorted[key]
            while entries and entries[0][0] < cutoff:
                _drop(ordered, entries.popleft()[1])
            if not entries:
                del self._entries[key]
                del self._sorted[key]

    def __len__(self) -> int:
        return len(self._entries)


def _drop(ordered: list[float], value: float) -> None:
    del ordered[bisect_left(ordered, value)]


class CountWindow:
    """How many events each key had within the window, counted in event-time buckets.

    Memory is one count per key and active bucket (never one entry per event), so a market maker's
    thousands of trades cost what a few hours of them do. The window is exact to one bucket:
    deterministic in event time, so replay and the streaming stages count alike.
    """

    __slots__ = ("horizon", "bucket", "_buckets", "_totals", "_expiry")

    def __init__(self, horizon: float, bucket: float = 3600.0):
        self.horizon = horizon
        self.bucket = bucket
        self._buckets: dict[Hashable, deque[list]] = {}
        self._totals: dict[Hashable, int] = {}
        self._expiry: deque[tuple[float, Hashable]] = deque()

    def add(self, key: Hashable, t: float) -> None:
        start = t - t % self.bucket
        buckets = self._buckets.get(key)
        if buckets is None:
            self._buckets[key] = deque(([start, 1],))
            self._totals[key] = 1
            self._expiry.append((start, key))
            return
        last = buckets[-1]
        if last[0] >= start:
            last[1] += 1
        else:
            buckets.append([start, 1])
            self._expiry.append((start, key))
        self._totals[key] += 1

    def count(self, key: Hashable, now: float) -> int:
        """Events of `key` in buckets that end after `now - horizon`."""
        buckets = self._buckets.get(key)
        if buckets is None:
            return 0
        self._trim(key, buckets, now - self.horizon)
        return self._totals.get(key, 0)

    def _trim(self, key: Hashable, buckets: deque, cutoff: float) -> None:
        while buckets and buckets[0][0] + self.bucket <= cutoff:
            self._totals[key] -= buckets.popleft()[1]

    def evict(self, now: float) -> None:
        cutoff = now - self.horizon
        expiry = self._expiry
        while expiry and expiry[0][0] + self.bucket <= cutoff:
            _, key = expiry.popleft()
            buckets = self._buckets.get(key)
            if buckets is None:
                continue
            self._trim(key, buckets, cutoff)
            if not buckets:
                del self._buckets[key]
                del self._totals[key]

    def __len__(self) -> int:
        return len(self._buckets)
