"""Event-time order across sources: several in-order partitions merged into one.

A work partition receives events from every input partition (through the
routers), interleaved by arrival. Each source is in event-time order by
itself, so once every source has got past time P, no event earlier than P can
still come: events before P are released, earliest first. A source that is
caught up (idle) does not hold the others back; an event arriving behind what
was already released is "late" and handed over at once (counted).

With `max_skew` (stage 1, whose core applies the time guards), a trade the core
will refuse as too far ahead (`detectors.skew`, the core's own rule over the
events this partition receives) is released in its turn but vouches for no
progress: neither its source's nor `released_until`, which the partition
passes on to stage 2 as its progress.
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Iterable

from amlwatch.detectors.skew import unconfirmed_jump

NEG_INF = -math.inf


class ReorderBuffer:
    __slots__ = ("progress", "idle", "released_until", "late", "max_skew", "watermark", "ahead_t", "_heap", "_seq",
                 "_uncounted")

    def __init__(self, sources: Iterable[str] = (), max_skew: float = math.inf):
        self.progress: dict[str, float] = {}
        self.idle: dict[str, bool] = {}
        self.released_until = NEG_INF
        """Every event before this time has been released."""
        self.late = 0
        self.max_skew = max_skew
        """The core's skew limit; infinite: no guard (stage 2, behind stage 1's guards)."""
        self.watermark = NEG_INF
        self.ahead_t: float | None = None
        """The core's watermark and confirmation memory, over the events pushed here (`unconfirmed_jump`)."""
        self._heap: list[tuple[float, int, str, int, Any]] = []
        self._seq = 0
        self._uncounted: set[int] = set()
        """Sequence numbers of buffered trades the core will refuse for skew: they move no progress."""
        for source in sources:
            self.add_source(source)

    def add_source(self, source: str) -> None:
        if source not in self.progress:
            self.progress[source] = NEG_INF
            self.idle[source] = False

    def push(self, source: str, t: float, rank: int, tiebreak: str, item: Any, trade: bool = False) -> bool:
        """Buffer an item; False when it is late (behind what was released): the caller takes it as is.
        `trade`: the core refuses it (rather than applying it) when it is too far ahead."""
        self.add_source(source)
        counted = True
        if self.max_skew != math.inf:
            jump, self.ahead_t = unconfirmed_jump(t, self.watermark, self.ahead_t, self.max_skew)
            if not jump and t > self.watermark:
                self.watermark = t
            counted = not (jump and trade)
        if counted and t > self.progress[source]:
            self.progress[source] = t
        self.idle[source] = False
        if t < self.released_until:
            self.late += 1
            return False
        self._seq += 1
        if not counted:
            self._uncounted.add(self._seq)
        heapq.heappush(self._heap, (t, rank, tiebreak, self._seq, item))
        return True

    def mark(self, source: str, t: float, idle: bool) -> bool:
        """A source's progress marker; True when it changed anything."""
        self.add_source(source)
        changed = False
        if t > self.progress[source]:
            self.progress[source] = t
            changed = True
        if self.idle[source] != idle:
            self.idle[source] = idle
            changed = True
        return changed

    def bound(self) -> float:
        """Events before this time can be released: the least progress of the sources still sending."""
        active = [t for source, t in self.progress.items() if not self.idle[source]]
        return min(active) if active else math.inf

    @property
    def all_idle(self) -> bool:
        return bool(self.progress) and all(self.idle.values())

    def release(self, limit: int | None = None) -> list[Any]:
        """Items now safe to process, in (time, rank, tiebreak) order; at most `limit` of them (the
        rest on the next call: `releasable` says whether any are left)."""
        bound = self.bound()
        heap, out = self._heap, []
        room = math.inf if limit is None else limit
        while heap and heap[0][0] < bound and len(out) < room:
            entry = heapq.heappop(heap)
            out.append(entry[4])
            if self._uncounted and entry[3] in self._uncounted:
                self._uncounted.discard(entry[3])
            elif entry[0] > self.released_until:
                self.released_until = entry[0]
        if bound > self.released_until and bound != math.inf and not self.releasable:
            self.released_until = bound
        return out

    @property
    def releasable(self) -> bool:
        return bool(self._heap) and self._heap[0][0] < self.bound()

    def __len__(self) -> int:
        return len(self._heap)
