"""Snapshot-then-commit for one detection stage: input offsets never run ahead of saved state.

A stage's partitions are processed in memory; what they consumed is committed
only once a snapshot covering it is on the broker. `Checkpoint.commit()` walks
the steps in this order, every time:

1. flush sinks: the record archive makes the alerts it was given durable;
2. produce the changelog: snapshot records queued by the SnapshotStore go to
   the producer itself (not through a Faust table's buffer), only after a
   flush of the producer: the alerts and forwards the snapshotted state sent
   are on the broker before the snapshot can be (a restoring worker uses
   any snapshot the changelog holds, committed or not, and the producer's
   batches for different partitions land in any order: a worker killed
   between a snapshot's last batch and an earlier alert batch would lose
   those alerts for good);
3. flush the producer: alerts, forwarded trades and changelog records are on
   the broker;
4. commit offsets: each partition's input offset moves to just past what its
   durable snapshot covers, never further. The commit itself runs in a task
   of its own, one at a time and bounded by COMMIT_SECONDS, off the stage's
   lock: a commit held up by a rebalance must not stop the stage (seen in the
   kill/restart soak: a stage waiting on its commit for minutes while the
   rebalance it waited for waited on the stage).

Invariants:

* A partition is committed only up to its *durable* covered offset (the
  snapshot whose records step 3 flushed), never up to its in-memory offset: a
  worker killed at any point restarts from a snapshot that holds every event
  below the committed offset.
* A partition without a snapshot is never committed: it takes a snapshot first
  (a fresh state is small), so registry events it took cannot be committed
  past while they live in memory only (issue 16: 58k false unregistered-party
  alerts after a SIGKILL).
* While a partition's snapshot is being taken (in a forked child), its saved
  offset does not move: the previous snapshot is not exact for offsets the
  one in flight covers.
* Offsets are committed by the checkpoint, not by Faust's acks: Faust fills
  the holes it sees in a fetch (the seek race after a rebalance) as acked and
  would commit over messages no state has seen (docs/STREAMING.md).

The Kafka parts (changelog send, flush, commit, the fork) are callables given
to the constructor, so the protocol is tested without a broker.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Awaitable, Callable, Iterable, Mapping

from .snapshots import SnapshotFailed, SnapshotStore

log = logging.getLogger("amlwatch.streams.checkpoint")

COMMIT_SECONDS = 15.0
"""A commit not done by then is given up (logged); the next one carries its offsets."""


class Checkpoint:
    """One stage's checkpointing: which partition to snapshot when, and the commit protocol.

    `partitions()` maps each partition to its live processor (objects with `offset`, `dirty` and
    `snapshot()`); `take_snapshot(proc)` returns the snapshot bytes (a forked child in a worker);
    `produce_changelog(records)` queues (partition, key, value) records on the producer;
    `flush_producer()` waits for everything queued; `commit_offsets({partition: next_offset})` commits;
    `sinks` are called (no arguments) to make what they were given durable; `on_snapshot(proc)` when a
    snapshot starts (the detector timings metric).
    """

    def __init__(self, store: SnapshotStore, lock: asyncio.Lock, *,
                 partitions: Callable[[], Mapping[int, Any]],
                 take_snapshot: Callable[[Any], Awaitable[bytes]],
                 produce_changelog: Callable[[list], Awaitable[None]],
                 flush_producer: Callable[[], Awaitable[None]],
                 commit_offsets: Callable[[dict[int, int]], Awaitable[None]],
                 sinks: Iterable[Callable[[], None]] = (),
                 on_snapshot: Callable[[Any], None] | None = None,
                 snapshot_seconds: float = 1.0, budget: float = 0.1,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.lock = lock
        self.partitions = partitions
        self.take_snapshot = take_snapshot
        self.produce_changelog = produce_changelog
        self.flush_producer = flush_producer
        self.commit_offsets = commit_offsets
        self.sinks = list(sinks)
        self.on_snapshot = on_snapshot
        self.snapshot_seconds = snapshot_seconds
        self.budget = min(1.0, max(0.01, budget))
        self.clock = clock
        self.covered: dict[int, int] = {}
        """Per partition, the last input offset a snapshot on the broker covers."""
        self.committed: dict[int, int] = {}
        """Per partition, the next offset committed (or found committed)."""
        self.saved_at: dict[int, float] = {}
        self.paused_until = -math.inf
        self.in_flight: int | None = None
        """The partition whose snapshot is being taken: its saved offset must not move meanwhile."""
        self.task: asyncio.Future | None = None
        self.committing: asyncio.Future | None = None
        self._to_commit: dict[int, int] = {}
        self.snapshot_bytes = 0
        self.phase = "idle"
        """The step under way (the worker's watchdog names it when a stage is held up)."""
        self._covering: dict[int, int | None] = {}
        """Offsets covered by changelog records sent but not flushed yet."""
        self.failures = 0

    # -- partition lifecycle --------------------------------------------------

    def restored(self, partition: int, offset: int) -> None:
        """A processor rebuilt from a snapshot read back from the changelog (so durable) at `offset`."""
        self.covered[partition] = offset

    def started(self, partition: int, next_offset: int) -> None:
        """A processor without a snapshot, starting at `next_offset` (the committed one, or 0): what lies
        before is committed already, and nothing after it is until a snapshot covers it."""
        self.committed[partition] = next_offset
        self.covered[partition] = next_offset - 1

    def forget(self, partition: int) -> None:
        """Another worker may own the partition now: its snapshot meta is read again when next loaded."""
        self.covered.pop(partition, None)
        self._covering.pop(partition, None)
        self._to_commit.pop(partition, None)
        self.committed.pop(partition, None)
        self.saved_at.pop(partition, None)
        self.store.forget(partition)

    # -- the protocol ---------------------------------------------------------

    async def maybe_snapshot(self) -> None:
        """Save what can be saved, then commit what it covers (call with `lock` held).

        A partition whose messages changed nothing since its last snapshot (markers) only moves that
        snapshot's offset. Of the others, one per call is snapshotted (the longest unsaved), and only
        when the budget allows: after a snapshot that took d seconds, the next waits
        d * (1 - budget) / budget.
        """
        if self._to_commit and (self.committing is None or self.committing.done()):
            self.committing = asyncio.ensure_future(self._commit_pending())   # one given up before
        now = self.clock()
        moved, dirty = False, []
        for partition, proc in self.partitions().items():
            if partition == self.in_flight or proc.offset <= self.covered.get(partition, -1):
                continue
            if not proc.dirty and self.store.offset(partition) is not None:
                moved |= self.store.save_offset(partition, proc.offset)
            else:
                dirty.append(partition)
        due = [p for p in dirty if now - self.saved_at.get(p, -math.inf) >= self.snapshot_seconds]
        if due and now >= self.paused_until and self.in_flight is None:
            partition = min(due, key=lambda p: self.saved_at.get(p, -math.inf))
            proc = self.partitions()[partition]
            proc.dirty = False            # what changes from here on is the next snapshot's
            self.saved_at[partition] = now
            self.in_flight = partition
            self.task = asyncio.ensure_future(self._snapshot(partition, proc, proc.offset))
            if self.on_snapshot is not None:
                self.on_snapshot(proc)
        if moved:
            await self.commit()

    async def _snapshot(self, partition: int, proc: Any, offset: int) -> None:
        """Take one partition's snapshot off the event loop's back; save it and commit what it covers."""
        started = self.clock()
        try:
            try:
                blob = await self.take_snapshot(proc)
            except SnapshotFailed as error:
                log.error("snapshot failed", extra={"partition": partition, "error": str(error)})
                self.failures += 1
                proc.dirty = True             # saved with the next snapshot instead
                return
            finally:
                spent = self.clock() - started
                self.paused_until = self.clock() + spent * (1 - self.budget) / self.budget
            async with self.lock:
                if self.partitions().get(partition) is not proc:
                    return                    # the partition moved or was reloaded: its input comes again
                self.store.save(partition, blob, offset)
                self.snapshot_bytes += len(blob)
                self.in_flight = None         # only now may its saved offset move again
                await self.commit()
        finally:
            if self.in_flight == partition:
                self.in_flight = None

    async def commit(self) -> dict[int, int]:
        """The four steps; returns the offsets committed (partition -> next offset)."""
        # 1. flush sinks
        self.phase = "flush sinks"
        for flush_sink in self.sinks:
            flush_sink()
        # 2. produce the changelog (and note what the records cover), once what the snapshotted state
        # sent is on the broker: a restoring worker trusts any snapshot it finds in the changelog,
        # committed or not, and batches of different partitions reach the broker in any order
        if self.store.pending:
            self.phase = "flush outputs"
            await self.flush_producer()
        records, self.store.pending = self.store.pending, []
        for partition, _, _ in records:
            self._covering[partition] = self.store.offset(partition)
        if records:
            self.phase = "produce changelog"
            await self.produce_changelog(records)
        # 3. flush the producer (what the records cover counts once a flush has returned)
        self.phase = "flush producer"
        await self.flush_producer()
        self.phase = "idle"
        covering, self._covering = self._covering, {}
        for partition, offset in covering.items():
            if offset is not None:
                self.covered[partition] = offset
        # 4. commit offsets: past what durable snapshots cover, never past anything else
        offsets = {}
        for partition, offset in self.covered.items():
            if offset + 1 > max(self.committed.get(partition, 0), self._to_commit.get(partition, 0)):
                offsets[partition] = offset + 1
        if offsets:
            self._to_commit.update(offsets)
            if self.committing is None or self.committing.done():
                self.committing = asyncio.ensure_future(self._commit_pending())
        return offsets

    async def _commit_pending(self) -> None:
        """Commit what is waiting, one commit at a time, until nothing is."""
        while self._to_commit:
            offsets, self._to_commit = self._to_commit, {}
            try:
                await asyncio.wait_for(self.commit_offsets(offsets), COMMIT_SECONDS)
            except asyncio.TimeoutError:
                log.warning("commit not done in time", extra={"partitions": sorted(offsets),
                                                               "seconds": COMMIT_SECONDS})
                for partition, offset in offsets.items():
                    if partition in self.covered and offset > self._to_commit.get(partition, 0):
                        self._to_commit[partition] = offset
                return                    # tried again by the next maybe_snapshot or commit
            for partition, offset in offsets.items():
                if partition in self.covered and offset > self.committed.get(partition, 0):
                    self.committed[partition] = offset
