"""The Faust application and its settings, built from the [kafka] config section.

At-least-once on purpose: faust-streaming's exactly-once mode has open
duplicate and fencing bugs, and amlwatch's alert ids are deterministic, so a
re-processed event repeats the same alert id and consumers dedupe by it
(docs/STREAMING.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from amlwatch.config import KafkaConfig

SESSION_TIMEOUT = 10.0
"""Seconds before the group gives a dead worker's partitions to the others."""
PRODUCER_BATCH_BYTES = 256 * 1024
"""A producer batch (one partition's messages in one request) is closed at this size, or after the linger."""


def make_app(kafka: KafkaConfig, data_dir: str | Path, web_port: int | None = None) -> faust.App:
    app = faust.App(
        kafka.app_id,
        broker=[f"kafka://{host.strip()}" for host in kafka.bootstrap.split(",")],
        store="memory://",
        datadir=str(data_dir),
        autodiscover=False,
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_bind="127.0.0.1",
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication,
        topic_disable_leader=True,
        table_standby_replicas=0,
        processing_guarantee="at_least_once",
        producer_acks=-1,
        producer_linger=0.005,
        # Alerts are one message each (keyed by alert id): 16 KB batches (the default) held about 15,
        # so a backfill raising thousands a second sent a produce request every few alerts.
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.5,
        broker_session_timeout=SESSION_TIMEOUT,
        broker_heartbeat_interval=2.0,
        broker_rebalance_timeout=30.0,
        stream_wait_empty=False,
        stream_recovery_delay=0.0,
    )
    app.transport.Consumer = AskedPartitionsConsumer
    return app


class AskedPartitions:
    """The partitions a fetch asks for, read when the records are taken: Faust's live set of active
    partitions, never empty in the eyes of aiokafka.

    Faust hands aiokafka its live set of active partitions, and aiokafka's `fetched_records(partitions)`
    takes the records of every partition when that set is empty (`if partitions and tp not in
    partitions`). A fetch waiting in the consumer thread over a rebalance finds the set emptied (every
    partition paused for the recovery) and takes what the new assignment fetched, changelog partitions
    included; Faust then drops records of partitions it did not ask for. When that happens after the
    recovery has sought a changelog partition to where its reading starts, the partition's records are
    consumed and gone: the recovery waits for offsets that never come ("No event received for active
    tp ... since recovery start", for minutes; docs/STREAMING.md, "Failover guarantee").
    """

    def __init__(self, live: Any):
        self.live = live

    def __bool__(self) -> bool:
        return True

    def __contains__(self, tp: object) -> bool:
        return self.live is not None and tp in self.live

    def __iter__(self) -> Iterator:
        return iter(self.live or ())


class AskedPartitionsThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread whose fetches take the records of the partitions asked for, and only
    those (the others stay buffered in aiokafka, their positions unmoved)."""

    async def _fetch_records(self, consumer, active_partitions, timeout=None, max_records=None):
        return await super()._fetch_records(consumer, AskedPartitions(active_partitions),
                                            timeout=timeout, max_records=max_records)


class AskedPartitionsConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer on the guarded thread (installed on the app's transport)."""

    def _new_consumer_thread(self) -> AskedPartitionsThread:
        return AskedPartitionsThread(self, loop=self.loop, beacon=self.beacon)


def track_produced_topics(producer, topics: Iterable[str]) -> None:
    """Keep every topic in `topics` in each metadata refresh of `producer` (an AIOKafkaProducer).

    aiokafka's producer tracks a topic only when a send finds it missing from the last refresh, and
    each refresh replaces the cluster map with just the tracked topics. A topic seen in the full
    refresh at start stays untracked; once a later send tracks another (a changelog created at start),
    the next refresh drops the untracked one while batches for it wait, the sender keeps refreshing
    without it, and a flush never returns (found by losing a broker of three mid-stream).
    """
    for topic in topics:
        producer.client.add_topic(topic)
