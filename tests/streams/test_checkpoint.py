"""The checkpoint protocol without a broker: offsets never run ahead of saved state (issue 16).

A fake producer and consumer record each step; processors are stand-ins with the three attributes the
checkpoint reads (`offset`, `dirty`, `snapshot()`).
"""

from __future__ import annotations

import asyncio

import pytest

from amlwatch.streams.checkpoint import Checkpoint
from amlwatch.streams.snapshots import SnapshotFailed, SnapshotStore


class Proc:
    def __init__(self, offset: int = -1):
        self.offset = offset
        self.dirty = False
        self.state: list[int] = []

    def take(self, offset: int, changes: bool = True) -> None:
        self.offset = offset
        if changes:
            self.state.append(offset)
            self.dirty = True

    def snapshot(self) -> bytes:
        return repr(self.state).encode()


class FakeKafka:
    """Producer and consumer ends: a log of the steps, the changelog sent, offsets committed."""

    def __init__(self):
        self.steps: list[str] = []
        self.changelog: list[tuple] = []
        self.flushed_changelog: list[tuple] = []
        self.committed: dict[int, int] = {}
        self.fail_flush = False
        self.gate: asyncio.Event | None = None
        self.fail_snapshot = False
        self.sent: list[str] = []
        """Outputs (alerts, forwards) queued on the producer and not yet flushed."""
        self.unflushed_at_changelog: list[str] = []

    async def take_snapshot(self, proc) -> bytes:
        blob = proc.snapshot()                 # the fork: a copy of the state as it is now
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_snapshot:
            raise SnapshotFailed("child died")
        return blob

    async def produce_changelog(self, records) -> None:
        self.steps.append("changelog")
        self.unflushed_at_changelog.extend(self.sent)
        self.changelog.extend(records)

    async def flush(self) -> None:
        if self.fail_flush:
            raise ConnectionError("broker gone")
        self.steps.append("flush")
        self.flushed_changelog = list(self.changelog)
        self.sent = []

    async def commit(self, offsets) -> None:
        self.steps.append("commit")
        self.committed.update(offsets)

    def sink(self) -> None:
        self.steps.append("sink")


def make(procs: dict, kafka: FakeKafka, data: dict | None = None) -> Checkpoint:
    return Checkpoint(SnapshotStore({} if data is None else data), asyncio.Lock(), partitions=lambda: procs,
                      take_snapshot=kafka.take_snapshot, produce_changelog=kafka.produce_changelog,
                      flush_producer=kafka.flush, commit_offsets=kafka.commit, sinks=[kafka.sink],
                      snapshot_seconds=0.0, budget=1.0)


async def settle(checkpoint: Checkpoint) -> None:
    """The snapshot in flight, then the commit it started."""
    if checkpoint.task is not None:
        await checkpoint.task
    await committed(checkpoint)


async def committed(checkpoint: Checkpoint) -> None:
    if checkpoint.committing is not None:
        await checkpoint.committing


def test_commit_walks_the_steps_in_order_and_commits_just_past_the_snapshot():
    async def run():
        kafka, procs = FakeKafka(), {0: Proc()}
        checkpoint = make(procs, kafka)
        checkpoint.started(0, 0)
        procs[0].take(0)
        procs[0].take(1)
        await checkpoint.maybe_snapshot()
        await settle(checkpoint)
        assert kafka.steps == ["sink", "flush", "changelog", "flush", "commit"]
        assert kafka.committed == {0: 2}
        assert any(key == b"0/meta" for _, key, _ in kafka.flushed_changelog)
    asyncio.run(run())


def test_what_the_snapshotted_state_sent_is_on_the_broker_before_the_snapshot():
    """A restoring worker uses the snapshot it finds, committed or not: had the snapshot landed and the
    alerts of the events it covers not (a SIGKILL between two batches), they were lost for good."""
    async def run():
        kafka, procs = FakeKafka(), {0: Proc()}
        checkpoint = make(procs, kafka)
        checkpoint.started(0, 0)
        procs[0].take(0)
        kafka.sent.append("alert raised by offset 0")
        await checkpoint.maybe_snapshot()
        procs[0].take(1)                                # taken while the snapshot is in flight
        kafka.sent.append("alert raised by offset 1")
        await settle(checkpoint)
        assert any(key == b"0/meta" for _, key, _ in kafka.changelog)
        assert kafka.unflushed_at_changelog == []
        assert kafka.committed == {0: 1}
    asyncio.run(run())


def test_a_partition_without_a_snapshot_is_snapshotted_not_committed():
    """Messages that changed nothing visible (markers) on a partition that has no snapshot yet: its
    state may still hold events only memory has, so it is saved before anything is committed."""
    async def run():
        kafka, procs = FakeKafka(), {3: Proc(offset=99)}
        checkpoint = make(procs, kafka)
        checkpoint.started(3, 100)
        procs[3].take(140, changes=False)
        kafka.gate = asyncio.Event()
        await checkpoint.maybe_snapshot()
        assert checkpoint.in_flight == 3 and kafka.committed == {}
        await checkpoint.commit()                       # any other commit meanwhile: nothing for 3
        await committed(checkpoint)
        assert kafka.committed == {}
        kafka.gate.set()
        await settle(checkpoint)
        assert kafka.committed == {3: 141}
    asyncio.run(run())


def test_a_snapshot_in_flight_freezes_the_partitions_saved_offset():
    """The race behind issue 16's lost registry events: while a partition's snapshot is being taken,
    markers that change nothing must not move the old snapshot's offset (nor commit) past events only
    the snapshot in flight holds."""
    async def run():
        kafka, procs = FakeKafka(), {0: Proc()}
        checkpoint = make(procs, kafka)
        checkpoint.started(0, 0)
        procs[0].take(10)
        await checkpoint.maybe_snapshot()
        await settle(checkpoint)
        assert kafka.committed == {0: 11}
        procs[0].take(20)                               # registry events
        kafka.gate = asyncio.Event()
        await checkpoint.maybe_snapshot()
        procs[0].take(25, changes=False)                # markers while the child pickles
        await checkpoint.maybe_snapshot()
        assert kafka.committed == {0: 11} and checkpoint.store.offset(0) == 10
        kafka.gate.set()
        await settle(checkpoint)
        assert kafka.committed == {0: 21}
        await checkpoint.maybe_snapshot()               # now the unchanged state may move on
        await committed(checkpoint)
        assert kafka.committed == {0: 26} and checkpoint.store.offset(0) == 25
    asyncio.run(run())


def test_nothing_is_committed_when_the_producer_flush_fails():
    async def run():
        kafka, procs = FakeKafka(), {0: Proc()}
        checkpoint = make(procs, kafka)
        checkpoint.started(0, 0)
        procs[0].take(5)
        kafka.fail_flush = True
        await checkpoint.maybe_snapshot()
        with pytest.raises(ConnectionError):
            await settle(checkpoint)
        assert kafka.committed == {} and checkpoint.covered[0] == -1
        kafka.fail_flush = False
        await checkpoint.commit()                       # the records queued before are flushed now
        await committed(checkpoint)
        assert kafka.committed == {0: 6}
    asyncio.run(run())


def test_a_failed_snapshot_commits_nothing_and_is_taken_again():
    async def run():
        kafka, procs = FakeKafka(), {0: Proc()}
        checkpoint = make(procs, kafka)
        checkpoint.started(0, 0)
        procs[0].take(7)
        kafka.fail_snapshot = True
        await checkpoint.maybe_snapshot()
        await settle(checkpoint)
        assert kafka.committed == {} and procs[0].dirty and checkpoint.in_flight is None
        kafka.fail_snapshot = False
        await checkpoint.maybe_snapshot()
        await settle(checkpoint)
        assert kafka.committed == {0: 8}
    asyncio.run(run())


def test_a_snapshot_of_a_partition_that_moved_meanwhile_is_dropped():
    async def run():
        kafka, procs = FakeKafka(), {0: Proc()}
        checkpoint = make(procs, kafka)
        checkpoint.started(0, 0)
        procs[0].take(4)
        kafka.gate = asyncio.Event()
        await checkpoint.maybe_snapshot()
        checkpoint.forget(0)
        procs[0] = Proc()                               # reloaded (or taken by another worker)
        kafka.gate.set()
        await settle(checkpoint)
        assert kafka.committed == {} and checkpoint.store.offset(0) is None
    asyncio.run(run())


def test_a_restored_partition_commits_only_once_it_moves_past_its_snapshot():
    async def run():
        kafka, first = FakeKafka(), {0: Proc()}
        data: dict = {}
        checkpoint = make(first, kafka, data)
        checkpoint.started(0, 0)
        first[0].take(30)
        await checkpoint.maybe_snapshot()
        await settle(checkpoint)
        # A new worker: the table holds the snapshot, the group holds an older commit.
        kafka2, procs = FakeKafka(), {0: Proc(offset=30)}
        restarted = make(procs, kafka2, data)
        snapshot = restarted.store.load(0)
        restarted.restored(0, snapshot.offset)
        await restarted.maybe_snapshot()
        assert kafka2.committed == {} and restarted.task is None
        procs[0].take(31, changes=False)
        await restarted.maybe_snapshot()
        await committed(restarted)
        assert kafka2.committed == {0: 32}, "a marker on a restored snapshot just moves its offset"
    asyncio.run(run())


def test_a_commit_that_hangs_does_not_hold_the_stage(monkeypatch):
    """A commit held up (by a rebalance, a slow coordinator) is given up after COMMIT_SECONDS; the stage
    goes on, and the next commit carries the offsets."""
    import amlwatch.streams.checkpoint as checkpoint_module

    monkeypatch.setattr(checkpoint_module, "COMMIT_SECONDS", 0.05)

    async def run():
        kafka, procs = FakeKafka(), {0: Proc()}
        checkpoint = make(procs, kafka)
        hang = asyncio.Event()
        real_commit = kafka.commit

        async def stuck(offsets):
            if not hang.is_set():
                await asyncio.sleep(3600)
            await real_commit(offsets)
        checkpoint.commit_offsets = stuck
        checkpoint.started(0, 0)
        procs[0].take(3)
        await checkpoint.maybe_snapshot()
        await checkpoint.task                           # saved; its commit hangs in the background
        assert checkpoint.lock.locked() is False and kafka.committed == {}
        await committed(checkpoint)                     # given up
        hang.set()
        await checkpoint.maybe_snapshot()               # nothing new: the given-up commit is tried again
        await committed(checkpoint)
        assert kafka.committed == {0: 4}
        procs[0].take(4, changes=False)
        await checkpoint.maybe_snapshot()
        await committed(checkpoint)
        assert kafka.committed == {0: 5}
    asyncio.run(run())
