"""The worker's fetches take only the partitions asked for: a fetch spanning a rebalance must not consume
a changelog partition the table recovery has just sought (the survivor's stall after a SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

from aiokafka.consumer.fetcher import FetchResult, Fetcher
from aiokafka.structs import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from amlwatch.config import load_config
from amlwatch.streams.app import AskedPartitionsThread, make_app

CHANGELOG = TopicPartition("t-app-keyed-state-changelog", 0)
WORK = TopicPartition("app.work", 0)


class PartitionState:
    def __init__(self, position: int):
        self.position = position
        self.paused = False

    def consumed_to(self, offset: int) -> None:
        self.position = offset


class Records:
    """A fetched batch as aiokafka keeps it: records from `start`, iterated once."""

    def __init__(self, start: int, count: int):
        self.next_fetch_offset = start
        self._left = list(range(start, start + count))

    def __iter__(self):
        return self

    def __next__(self):
        if not self._left:
            raise StopIteration
        self.next_fetch_offset = self._left.pop(0) + 1
        return self.next_fetch_offset - 1


class Assignment:
    active = True

    def __init__(self, states: dict):
        self.states = states

    def state_value(self, tp):
        return self.states[tp]


class Subscriptions:
    reassignment_in_progress = False

    def is_assigned(self, tp) -> bool:
        return True

    @contextlib.contextmanager
    def fetch_context(self):
        yield


class BufferedFetcher:
    """aiokafka's own `fetched_records` over records already fetched from the broker."""

    fetched_records = Fetcher.fetched_records
    _closed = False
    _wait_consume_future = None

    def __init__(self, assignment: Assignment, batches: dict):
        self._subscriptions = Subscriptions()
        self._records = {tp: FetchResult(tp, assignment=assignment, partition_records=records, backoff=0)
                         for tp, records in batches.items()}

    def _notify(self, future) -> None:
        pass


def after_a_rebalance():
    """Every partition paused for the recovery (Faust's live active set emptied), the changelog sought to
    where its reading starts and its records fetched there by aiokafka."""
    states = {CHANGELOG: PartitionState(0), WORK: PartitionState(17)}
    fetcher = BufferedFetcher(Assignment(states), {CHANGELOG: Records(0, 8), WORK: Records(17, 3)})
    consumer = SimpleNamespace(_fetcher=fetcher, _closed=False)
    return states, consumer, set()


def fetch(thread_class, consumer, live: set) -> dict:
    thread = object.__new__(thread_class)
    thread.consumer = SimpleNamespace(flow_active=True)
    return asyncio.run(thread._fetch_records(consumer, live, timeout=0))


def test_a_fetch_with_nothing_asked_leaves_the_changelog_for_the_recovery():
    states, consumer, live = after_a_rebalance()
    assert fetch(AskedPartitionsThread, consumer, live) == {}
    assert states[CHANGELOG].position == 0, "the changelog records are still there to read"
    live.add(CHANGELOG)                                   # the recovery resumes its changelog partitions
    assert fetch(AskedPartitionsThread, consumer, live) == {CHANGELOG: list(range(8))}
    assert states[WORK].position == 17, "a partition not asked for keeps its position"


def test_faust_own_fetch_consumes_every_partition_when_nothing_is_asked():
    """The cause: without the guard the records go to a fetch that asked for nothing, and Faust drops
    records of partitions it did not ask for; the recovery then waits for offsets that never come."""
    states, consumer, live = after_a_rebalance()
    taken = fetch(AIOKafkaConsumerThread, consumer, live)
    assert taken.keys() == {CHANGELOG, WORK}
    assert states[CHANGELOG].position == 8


def test_the_worker_app_fetches_through_the_guarded_thread():
    app = make_app(load_config(None, env={}).kafka, "/nonexistent")
    assert type(app.consumer._thread) is AskedPartitionsThread
