"""amlwatch's topics: names from the [kafka] config, created explicitly with kafka-python's admin.

Faust creates only its own changelog topics; the input, alert, dead-letter,
internal work and reporting (`lvtr.topic`, `risk.topic`) topics are made here
with explicit partitions, replication and retention, so a worker never depends
on broker auto-creation.
"""

from __future__ import annotations

import logging
import time

from typing import Iterable

from amlwatch.config import Config, KafkaConfig
from amlwatch.errors import AmlwatchError
from amlwatch.events import Event

log = logging.getLogger("amlwatch.streams.topics")


class TopicError(AmlwatchError, RuntimeError):
    """A topic could not be created or did not become ready; `field` names the topic (or
    `kafka.bootstrap` when no broker answered)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def input_topics(kafka: KafkaConfig) -> dict[str, str]:
    """Event type -> its input topic."""
    return {"account": kafka.accounts_topic, "collection": kafka.collections_topic, "trade": kafka.trades_topic}


def input_key(event: Event) -> str:
    """The contract's producer key: accounts by account_id, collections by collection_id, trades by token_id."""
    if event.type == "account":
        return event.account_id
    if event.type == "collection":
        return event.collection_id
    return event.token_id


def report_topics(config: Config) -> list[str]:
    """The reporting duties' topics (docs/REPORTING.md): large-value reports keyed by customer, ratings by
    subject, both idempotent by their record id like alerts by alert_id."""
    return [config.lvtr.topic, config.risk.topic]


def all_topics(kafka: KafkaConfig, extra: Iterable[str] = ()) -> list[str]:
    return [*input_topics(kafka).values(), kafka.alerts_topic, kafka.deadletter_topic, kafka.work_topic,
            kafka.keyed_topic, kafka.rating_topic, *(t for t in extra if t)]


SINGLE_PARTITION = ("rating_topic",)
"""Topics created with one partition whatever `partitions` says: the rating stage's state is global."""


def partitions_of(kafka: KafkaConfig, topic: str) -> int:
    return 1 if topic in {getattr(kafka, name) for name in SINGLE_PARTITION} else kafka.partitions


def topic_configs(kafka: KafkaConfig) -> dict[str, str]:
    """Retention counts from arrival (LogAppendTime), not from the producer's timestamp: events carry
    their event time as Kafka timestamp, and a backfill of events older than the retention would
    otherwise be rolled and deleted by the broker before any worker read it."""
    return {"retention.ms": str(int(kafka.retention_hours * 3_600_000)),
            "min.insync.replicas": str(kafka.min_insync_replicas),
            "message.timestamp.type": "LogAppendTime"}


def create_topics(kafka: KafkaConfig, timeout: float = 60.0, extra: Iterable[str] = ()) -> list[str]:
    """Create whichever amlwatch topics are missing (and the `extra` ones: `report_topics`); returns the
    names created. Waits for leaders."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap.split(","), client_id=f"{kafka.app_id}-admin",
                                 request_timeout_ms=int(timeout * 1000))
    except KafkaError:
        raise TopicError(f"no Kafka broker answered at {kafka.bootstrap}", "kafka.bootstrap") from None
    try:
        existing = set(admin.list_topics())
        topics = all_topics(kafka, extra)
        wanted = [t for t in topics if t not in existing]
        if wanted:
            new = [NewTopic(t, partitions_of(kafka, t), kafka.replication, topic_configs=topic_configs(kafka))
                   for t in wanted]
            try:
                admin.create_topics(new, timeout_ms=int(timeout * 1000))
            except TopicAlreadyExistsError:
                pass
            log.info("created topics", extra={"topics": wanted, "partitions": kafka.partitions,
                                              "replication": kafka.replication})
        _wait_ready(admin, topics, timeout)
        return wanted
    finally:
        admin.close()


def _wait_ready(admin, topics: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        described = admin.describe_topics(topics)
        ready = all(d.get("error_code", 0) == 0 and d.get("partitions") and
                    all(p.get("leader_id", p.get("leader", -1)) >= 0 for p in d["partitions"]) for d in described)
        if ready:
            return
        if time.monotonic() > deadline:
            raise TopicError(f"topics not ready after {timeout:.0f} s: {described}", ",".join(topics))
        time.sleep(0.2)


def partition_counts(kafka: KafkaConfig, topics: list[str], timeout: float = 30.0) -> dict[str, int]:
    """Partitions of each topic as the cluster has them (the user's input topics may differ from ours)."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap.split(","), client_id=f"{kafka.app_id}-meta")
    except KafkaError:
        raise TopicError(f"no Kafka broker answered at {kafka.bootstrap}", "kafka.bootstrap") from None
    try:
        deadline = time.monotonic() + timeout
        counts = {}
        for topic in topics:
            while True:
                parts = consumer.partitions_for_topic(topic)
                if parts:
                    counts[topic] = len(parts)
                    break
                if time.monotonic() > deadline:
                    raise TopicError(f"topic {topic} not found", topic)
                time.sleep(0.2)
        return counts
    finally:
        consumer.close()
