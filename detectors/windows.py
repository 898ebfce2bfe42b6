"""Event-time windows keyed by account, token, collection or pair.

Each key holds its recent entries oldest first; one global expiry queue lets
`evict(now)` drop whole keys once their newest entry leaves the window, so
memory follows the window length, never the stream length.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import Generic, Hashable, Iterator, Sequence, TypeVar

T = TypeVar("T")


class KeyedWindow(Generic[T]):
    """Entries `(t, item)` per key, oldest first, at most `max_per_key` of them.

    Compact, because a month of trades lives in these windows: a key with one entry (most pairs, most
    buyers of a token) holds the bare entry, a longer one a list, and the expiry queue is flat (time,
    key, time, key, ...), two references per entry instead of a tuple. `recent` and `push` return a
    sequence the caller must not modify: the key's list, or a one-entry tuple.
    """

    state_version = 1
    """1: single entries held bare, flat expiry queue (was a list per key and a (time, key) tuple per entry)."""
    __slots__ = ("horizon", "max_per_key", "_entries", "_expiry")

    def __init__(self, horizon: float, max_per_key: int = 256):
        self.horizon = horizon
        self.max_per_key = max_per_key
        self._entries: dict[Hashable, tuple[float, T] | list[tuple[float, T]]] = {}
        self._expiry: deque = deque()

    def add(self, key: Hashable, t: float, item: T) -> None:
        self.add_entry(key, (t, item))

    def push(self, key: Hashable, entry: tuple[float, T]) -> Sequence[tuple[float, T]]:
        """`add_entry`, then `recent` at the entry's time, in one lookup."""
        held = self.add_entry(key, entry)
        if not isinstance(held, list):
            return (held,)
        cutoff = entry[0] - self.horizon
        if held[0][0] < cutoff:
            _trim(held, cutoff)
        return held

    def add_entry(self, key: Hashable, entry: tuple[float, T]) -> tuple[float, T] | list[tuple[float, T]]:
        """`add` of an entry the caller built, a `(t, item)` tuple that windows keeping one trade share;
        returns what the key now holds (the entry alone, or the key's list)."""
        expiry = self._expiry
        expiry.append(entry[0])
        expiry.append(key)
        store = self._entries
        held = store.get(key)
        if held is None or (self.max_per_key == 1 and not isinstance(held, list)):
            store[key] = entry
            return entry
        if not isinstance(held, list):
            pair = store[key] = [held, entry]
            return pair
        held.append(entry)
        if len(held) > self.max_per_key:
            del held[0]
        return held

    def recent(self, key: Hashable, now: float) -> Sequence[tuple[float, T]]:
        """Entries of `key` inside the window ending at `now`, oldest first (do not modify)."""
        held = self._entries.get(key)
        if held is None:
            return ()
        cutoff = now - self.horizon
        if isinstance(held, list):
            if held and held[0][0] < cutoff:
                _trim(held, cutoff)
            return held
        if held[0] < cutoff:
            del self._entries[key]
            return ()
        return (held,)

    def evict(self, now: float) -> None:
        cutoff = now - self.horizon
        expiry, store = self._expiry, self._entries
        while expiry and expiry[0] < cutoff:
            expiry.popleft()
            key = expiry.popleft()
            held = store.get(key)
            if held is None:
                continue
            if isinstance(held, list):
                _trim(held, cutoff)
                if held:
                    continue
            elif held[0] >= cutoff:
                continue
            del store[key]

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> Iterator[Hashable]:
        return iter(self._entries)

    def entries(self) -> int:
        """Entries held over all keys (expired ones not yet evicted included)."""
        return sum(len(held) if held.__class__ is list else 1 for held in self._entries.values())


def _trim(entries: list, cutoff: float) -> None:
    """Drop entries older than `cutoff` from the front of a time-ordered list."""
    if entries and entries[0][0] < cutoff:
        index = 1
        while index < len(entries) and entries[index][0] < cutoff:
            index += 1
        del entries[:index]


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
    deterministic in event time, so replay and the streaming stages count alike. Each key holds one
    flat list, `[total, start, count, start, count, ...]` oldest bucket first, and the expiry queue is
    flat too: a month of (collection, account) keys is most of the ledger otherwise.
    """

    state_version = 1
    """1: one flat list per key and a flat expiry queue (were a deque of [start, count] and a total)."""
    __slots__ = ("horizon", "bucket", "_counts", "_expiry", "_start")

    def __init__(self, horizon: float, bucket: float = 3600.0):
        self.horizon = horizon
        self.bucket = bucket
        self._counts: dict[Hashable, list] = {}
        self._expiry: deque = deque()
        self._start = 0.0
        """The latest bucket start computed: keys opening the same bucket share its float."""

    def add(self, key: Hashable, t: float) -> None:
        start = t - t % self.bucket
        if start == self._start:
            start = self._start
        else:
            self._start = start
        held = self._counts.get(key)
        if held is not None and len(held) > 1:
            held[0] += 1
            if held[-2] >= start:
                held[-1] += 1
                return
            held.append(start)
            held.append(1)
        elif held is not None:
            held[:] = (1, start, 1)
        else:
            self._counts[key] = [1, start, 1]
        self._expiry.append(start)
        self._expiry.append(key)

    def count(self, key: Hashable, now: float) -> int:
        """Events of `key` in buckets that end after `now - horizon`."""
        held = self._counts.get(key)
        if held is None:
            return 0
        self._trim(held, now - self.horizon)
        return held[0]

    def _trim(self, held: list, cutoff: float) -> None:
        bucket, end = self.bucket, 1
        while end < len(held) and held[end] + bucket <= cutoff:
            held[0] -= held[end + 1]
            end += 2
        if end > 1:
            del held[1:end]

    def evict(self, now: float) -> None:
        cutoff = now - self.horizon
        expiry, counts, bucket = self._expiry, self._counts, self.bucket
        while expiry and expiry[0] + bucket <= cutoff:
            expiry.popleft()
            key = expiry.popleft()
            held = counts.get(key)
            if held is None:
                continue
            self._trim(held, cutoff)
            if len(held) == 1:
                del counts[key]

    def __len__(self) -> int:
        return len(self._counts)
