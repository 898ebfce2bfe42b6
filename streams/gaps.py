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

A log can have real holes (transaction markers, compaction). A hole is
accepted when a repeated seek, with nothing left in flight, is answered by
the same message that revealed it; outside the window after an assignment
(no seek, so no race) a jump is taken as a real hole at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Hashable


class Admit(Enum):
    NEXT = "next"
    """The message the state needs (or the first after a real hole): process it."""
    COVERED = "covered"
    """Already in the state (a redelivery): ack it, do not process it."""
    SEEK = "seek"
    """Past a hole: seek back to the expected offset; neither process nor ack."""
    SKIP = "skip"
    """Past a hole already being re-read: neither process nor ack."""


@dataclass
class Rewind:
    expected: int
    got: int
    at: float
    retries: int = 0


class GapGuard:
    def __init__(self, window_seconds: float = 60.0, retry_seconds: float = 2.0):
        self.window_seconds = window_seconds
        self.retry_seconds = retry_seconds
        self.pending: dict[Hashable, Rewind] = {}
        self.assigned_at: dict[Hashable, float] = {}
        self.seeks = 0
        self.holes = 0

    def assigned(self, tp: Hashable, now: float) -> None:
        self.assigned_at[tp] = now
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
            if offset == rewind.got and rewind.retries:
                del self.pending[tp]
                self.holes += 1
                return Admit.NEXT
            return Admit.SKIP
        if now - self.assigned_at.get(tp, -float("inf")) > self.window_seconds:
            self.holes += 1
            return Admit.NEXT
        self.pending[tp] = Rewind(expected, offset, now)
        self.seeks += 1
        return Admit.SEEK

    def due(self, now: float) -> list[tuple[Hashable, int]]:
        """Seeks not answered within `retry_seconds`: issue them again."""
        out = []
        for tp, rewind in self.pending.items():
            if now - rewind.at >= self.retry_seconds:
                rewind.at = now
                rewind.retries += 1
                self.seeks += 1
                out.append((tp, rewind.expected))
        return out

    def forget(self, tp: Hashable) -> None:
        self.pending.pop(tp, None)
        self.assigned_at.pop(tp, None)
