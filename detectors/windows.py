"""Event-time windows keyed by account, token, collection or pair.

Each key holds its recent entries oldest first; one global expiry queue lets
`evict(now)` drop whole keys once their newest entry leaves the window, so
memory follows the window length, never the stream length.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Hashable, Iterator, TypeVar

T = TypeVar("T")


class KeyedWindow(Generic[T]):
    __slots__ = ("horizon", "max_per_key", "_entries", "_expiry")

    def __init__(self, horizon: float, max_per_key: int = 256):
        self.horizon = horizon
        self.max_per_key = max_per_key
        self._entries: dict[Hashable, deque[tuple[float, T]]] = {}
        self._expiry: deque[tuple[float, Hashable]] = deque()

    def add(self, key: Hashable, t: float, item: T) -> None:
        entries = self._entries.get(key)
        if entries is None:
            entries = self._entries[key] = deque(maxlen=self.max_per_key)
        entries.append((t, item))
        self._expiry.append((t, key))

    def recent(self, key: Hashable, now: float) -> deque[tuple[float, T]]:
        """Entries of `key` inside the window ending at `now`, oldest first."""
        entries = self._entries.get(key)
        if entries is None:
            return _EMPTY
        cutoff = now - self.horizon
        while entries and entries[0][0] < cutoff:
            entries.popleft()
        return entries

    def evict(self, now: float) -> None:
        cutoff = now - self.horizon
        expiry, store = self._expiry, self._entries
        while expiry and expiry[0][0] < cutoff:
            _, key = expiry.popleft()
            entries = store.get(key)
            if entries is None:
                continue
            while entries and entries[0][0] < cutoff:
                entries.popleft()
            if not entries:
                del store[key]

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> Iterator[Hashable]:
        return iter(self._entries)


_EMPTY: deque = deque()
