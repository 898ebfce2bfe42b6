"""Partition snapshots survive a worker killed in the middle of writing one."""

from __future__ import annotations

import os

from amlwatch.streams.snapshots import CHUNK, SnapshotStore


class ChangelogTable:
    """A table's data and the changelog records written for it, in order (the broker's copy)."""

    def __init__(self, data: dict | None = None):
        self.data = dict(data or {})
        self.changelog: list[tuple[int, bytes, bytes]] = []

    def store(self) -> SnapshotStore:
        store = SnapshotStore(self.data)
        store.pending = self.changelog
        return store

    def replayed(self, upto: int | None = None) -> "ChangelogTable":
        """What a worker taking the partition over rebuilds from the first `upto` changelog records."""
        return ChangelogTable({key: value for _, key, value in self.changelog[:upto]})


def test_a_snapshot_reads_back_whole_across_chunks():
    table = ChangelogTable()
    blob = os.urandom(CHUNK * 2 + 10)
    table.store().save(3, blob, offset=41)
    assert table.replayed().store().load(3) == (blob, 41)
    assert table.replayed().store().load(2) is None


def test_a_worker_killed_mid_snapshot_leaves_the_previous_one_whole():
    table = ChangelogTable()
    store = table.store()
    first, second = os.urandom(CHUNK + 5), os.urandom(CHUNK + 7)
    store.save(0, first, offset=10)
    written = len(table.changelog)
    store.save(0, second, offset=20)
    for upto in range(written, len(table.changelog)):       # every cut before the new meta
        assert table.replayed(upto).store().load(0) == (first, 10)
    assert table.replayed().store().load(0) == (second, 20)


def test_a_new_owner_writes_to_the_slot_the_meta_does_not_name():
    table = ChangelogTable()
    table.store().save(1, b"a" * 10, offset=5)
    new_owner = table.store()
    assert new_owner.load(1) == (b"a" * 10, 5)
    new_owner.save(1, b"b" * 10, offset=9)
    killed_before_meta = table.replayed(len(table.changelog) - 1)
    assert killed_before_meta.store().load(1) == (b"a" * 10, 5)


def test_an_unchanged_state_moves_only_its_offset():
    table = ChangelogTable()
    store = table.store()
    assert not store.save_offset(0, 7), "no snapshot yet: nothing to move"
    store.save(0, b"state", offset=7)
    before = len(table.changelog)
    assert not store.save_offset(0, 7)
    assert store.save_offset(0, 12)
    assert [key for _, key, _ in table.changelog[before:]] == [b"0/meta"]
    assert table.replayed().store().load(0) == (b"state", 12)
