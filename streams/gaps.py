"""Messages must reach a partition's state one after another: holes are fetched again, not jumped.

Right after a rebalance, Faust's seek to the committed offsets can race a
fetch already in flight: the in-flight messages move Faust's read offset
ahead and the re-read ones are dropped before any agent sees them. A state
that jumped over them would lose those events for good (and the commit
would later pass over them too). So for a while after a partition is
assigned, a message past the next needed offset triggers a seek back
(repeated until answered, since a seek can itself be swallowed the same way)
and is neither processed nor acked; leftovers from before the seek are
skipped the same way.

The work topics have no holes of their own: they are never compacted and
amlwatch's producer is not transactional, so no offset in the middle of their
logs is missing. The one real hole is at the start, when retention deleted
what a state still expected. So a hole is accepted only when the broker's log
start offset says so (`log_starts_at`), and never because a seek was answered
by the same message again: a repeated seek can be swallowed by a fetch in
flight exactly like the first (issue 16: a repeated answer taken as a hole
skipped a partition's registry events). A seek that is never answered is
repeated and logged (a stall to see, not a loss to find later).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Hashable


class Admit(Enum):
    NEXT = "next"
    """The message the state needs: process it."""
    COVERED = "covered"
    """Already in the state (a redelivery): do not process it."""
    SEEK = "seek"
    """Past a hole: seek back to the expected offset (or the log start); do not process it."""
    SKIP = "skip"
    """Past a hole already being re-read: do not process it."""


@dataclass
class Rewind:
    expected: int
    got: int
    at: float
    retries: int = 0


class GapGuard:
    def __init__(self, retry_seconds: float = 2.0):
        self.retry_seconds = retry_seconds
        self.pending: dict[Hashable, Rewind] = {}
        self.seeks = 0
        self.holes = 0

    def assigned(self, tp: Hashable, now: float) -> None:
        self.pending.pop(tp, None)

    def admit(self, tp: Hashable, expected: int, offset: int, now: float) -> Admit:
        if offset < expected:
            return Admit.COVERED
        if offset == expected:
            if self.pending:
                self.pending.pop(tp, None)
            return Admit.NEXT
        rewind = self.pending.get(tp)
        if rewind is not None and rewind.expected == expected:
            return Admit.SKIP             # the expected message has not come yet, however often asked
        self.pending[tp] = Rewind(expected, offset, now)
        self.seeks += 1
        return Admit.SEEK

    def log_starts_at(self, tp: Hashable, expected: int, start: int | None) -> int:
        """Where to seek for `expected`, given the broker's first offset of the partition (None: not
        known): past `expected` only when retention deleted it, a real hole; the state then needs
        `start` next."""
        if start is None or start <= expected:
            return expected
        self.holes += 1
        rewind = self.pending.get(tp)
        if rewind is not None:
            rewind.expected = start
        return start

    def due(self, now: float, topic: str | None = None) -> list[tuple[Hashable, int]]:
        """Seeks not answered within `retry_seconds`: issue them again. The guard is shared by the stages:
        each asks for its own `topic`'s (a (topic, partition) key), since asking restarts the wait: when
        stage 1 took every due seek and issued its own, stage 2's were never issued again, and a stage-2
        partition whose one seek was swallowed skipped every message for good (the kill/restart soak:
        all of one account-stage partition's alerts lost)."""
        out = []
        for tp, rewind in self.pending.items():
            if topic is not None and tp[0] != topic:
                continue
            if now - rewind.at >= self.retry_seconds:
                rewind.at = now
                rewind.retries += 1
                self.seeks += 1
                out.append((tp, rewind.expected))
        return out

    def forget(self, tp: Hashable) -> None:
        self.pending.pop(tp, None)
