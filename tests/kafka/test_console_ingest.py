"""Alert ingest from a real Apache Kafka topic: own consumer group, restartable, duplicates and bad records."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from support.console import alert_line, sqlite_engine  # noqa: F401 (a fixture)
from sqlalchemy import func, select
from support.kafka_broker import kafka_available, kafka_cluster, require_kafka

from amlwatch.config import load_config
from amlwatch.console.ingest import ingest_alert_topic
from amlwatch.console.schema import alerts, episodes, ingest_errors

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def bootstrap():
    require_kafka(kafka_available)
    with kafka_cluster(nodes=1) as servers:
        yield servers


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    if topic not in admin.list_topics():
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i, value in enumerate(values):
        producer.send(topic, key=str(i % 2).encode(), value=value)
    producer.flush()
    producer.close()


def stored(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()
                     for t in (alerts, episodes, ingest_errors))


def test_topic_ingest_keeps_bad_records_skips_duplicates_and_resumes(bootstrap, sqlite_engine):
    topic, group = f"console-alerts-{uuid.uuid4().hex[:8]}", f"console-{uuid.uuid4().hex[:8]}"
    kafka = replace(load_config(None).kafka, bootstrap=bootstrap)
    produce(bootstrap, topic, [alert_line("al-1"), b"{broken", alert_line("al-1"),
                               alert_line("al-2", episode_id="ep", episode_seq=1),
                               alert_line("al-3", episode_id="ep", episode_seq=2), b'{"alert_id": ""}'])
    first = ingest_alert_topic(sqlite_engine, kafka, group=group, topic=topic, idle_timeout=3)
    assert (first.read, first.new, first.duplicate, first.malformed) == (6, 3, 1, 2)
    assert stored(sqlite_engine) == (3, 2, 2)
    with sqlite_engine.connect() as conn:
        positions = conn.execute(select(ingest_errors.c.source, ingest_errors.c.position, ingest_errors.c.raw)).all()
    assert {(s, raw) for s, _, raw in positions} == {(f"kafka:{topic}", b"{broken"), (f"kafka:{topic}", b'{"alert_id": ""}')}
    assert all(":" in p for _, p, _ in positions)  # partition:offset, to find the record on the topic

    # a restart of the same group resumes after the committed offsets: only the new alert is read
    produce(bootstrap, topic, [alert_line("al-4")])
    again = ingest_alert_topic(sqlite_engine, kafka, group=group, topic=topic, idle_timeout=3)
    assert (again.read, again.new) == (1, 1)
    # a new group re-reads everything, and the redelivery changes nothing
    replayed = ingest_alert_topic(sqlite_engine, kafka, group=group + "-b", topic=topic, idle_timeout=3)
    assert (replayed.read, replayed.new, replayed.duplicate, replayed.malformed) == (7, 0, 5, 2)
    assert stored(sqlite_engine) == (4, 3, 2)


def test_a_crash_before_the_offset_commit_loses_nothing_and_stores_nothing_twice(bootstrap, sqlite_engine,
                                                                                 monkeypatch):
    from kafka import KafkaConsumer

    topic, group = f"console-alerts-{uuid.uuid4().hex[:8]}", f"console-{uuid.uuid4().hex[:8]}"
    kafka = replace(load_config(None).kafka, bootstrap=bootstrap)
    produce(bootstrap, topic, [alert_line(f"al-{i}") for i in range(10)])

    def crash(self, *args, **kwargs):
        raise RuntimeError("killed between the store's commit and the offset commit")

    with monkeypatch.context() as patch:
        patch.setattr(KafkaConsumer, "commit", crash)
        with pytest.raises(RuntimeError, match="killed"):
            ingest_alert_topic(sqlite_engine, kafka, group=group, topic=topic, idle_timeout=3)
    crashed = stored(sqlite_engine)[0]
    assert crashed > 0
    after = ingest_alert_topic(sqlite_engine, kafka, group=group, topic=topic, idle_timeout=3)
    assert after.read >= crashed and after.duplicate == crashed and stored(sqlite_engine)[0] == 10
