"""The Faust application and its settings, built from the [kafka] config section.

At-least-once on purpose: faust-streaming's exactly-once mode has open
duplicate and fencing bugs, and amlwatch's alert ids are deterministic, so a
re-processed event repeats the same alert id and consumers dedupe by it
(docs/STREAMING.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import faust

from amlwatch.config import KafkaConfig

SESSION_TIMEOUT = 10.0
"""Seconds before the group gives a dead worker's partitions to the others."""
PRODUCER_BATCH_BYTES = 256 * 1024
"""A producer batch (one partition's messages in one request) is closed at this size, or after the linger."""


def make_app(kafka: KafkaConfig, data_dir: str | Path, web_port: int | None = None) -> faust.App:
    return faust.App(
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
