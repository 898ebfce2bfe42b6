"""The local Kafka harness (deploy/kafka) against the real clients amlwatch uses.

* test_roundtrip_kafka_python_and_aiokafka: a 1-node broker (or
  $AMLWATCH_KAFKA_BOOTSTRAP), a 3-partition topic made with kafka-python's
  admin client, 10 messages each way between kafka-python and aiokafka.
* the `slow` tests: a 1-node broker killed and restarted on its data, and a
  3-node cluster losing and regaining brokers.

Skipped (with the reason) when no Kafka can be had, except under CI=true,
where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from support.kafka_broker import (
    BOOTSTRAP_ENV,
    LocalKafka,
    free_port_base,
    kafka_available,
    local_kafka_available,
    require_kafka,
)

pytestmark = pytest.mark.kafka

N = 10


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _create_topic(bootstrap: str, topic: str, partitions: int = 3, replication: int = 1) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="amlwatch-test-admin")
    try:
        admin.create_topics([NewTopic(topic, partitions, replication)], timeout_ms=30_000)
        deadline = time.monotonic() + 30
        while True:
            desc = admin.describe_topics([topic])
            parts = desc[0].get("partitions") or []
            if desc[0].get("error_code", 0) == 0 and len(parts) == partitions and all(
                p.get("leader_id", p.get("leader", -1)) >= 0 for p in parts
            ):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {topic} not ready: {desc}")
            time.sleep(0.2)
    finally:
        admin.close()


def _kp_produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=1000, retry_backoff_ms=200)
    try:
        for i, v in enumerate(values):
            producer.send(topic, key=f"k{i}".encode(), value=v)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def _kp_consume(bootstrap: str, topic: str, expected: int, group: str, timeout: float = 30) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.value for r in records)
        consumer.commit()
    finally:
        consumer.close()
    return got


async def _aio_roundtrip(bootstrap: str, topic: str, values: list[bytes], expected: int) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i, v in enumerate(values):
            await producer.send_and_wait(topic, v, key=f"a{i}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"aio-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                got.extend(r.value for r in records)
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


def _require_local() -> None:
    """Fault tests kill brokers, so they need the local harness; with only an
    external $AMLWATCH_KAFKA_BOOTSTRAP they are skipped (even under CI)."""
    ok, why = local_kafka_available()
    if not ok and os.environ.get(BOOTSTRAP_ENV, "").strip():
        pytest.skip(f"fault tests need deploy/kafka/kafka.sh: {why}")
    require_kafka(local_kafka_available)


def _isolated(tmp_path, nodes: int) -> LocalKafka:
    """A LocalKafka of its own (tmp dir, free ports): never collides with a
    session broker or a developer's `kafka.sh start`."""
    return LocalKafka(home=tmp_path / "kafka", port=free_port_base(nodes))


def test_roundtrip_kafka_python_and_aiokafka(tmp_path):
    require_kafka(kafka_available)
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    kafka = None
    if external:
        bootstrap = external
    else:
        kafka = _isolated(tmp_path, 1)
        bootstrap = kafka.start(nodes=1)
    try:
        topic = _topic("harness")
        _create_topic(bootstrap, topic, partitions=3)

        # kafka-python -> kafka-python
        kp_values = [f"kp-{i}".encode() for i in range(N)]
        _kp_produce(bootstrap, topic, kp_values)
        got = _kp_consume(bootstrap, topic, N, group=f"kp-{uuid.uuid4().hex[:8]}")
        assert sorted(got) == sorted(kp_values)

        # aiokafka -> aiokafka, reading kafka-python's records too
        aio_values = [f"aio-{i}".encode() for i in range(N)]
        got = asyncio.run(_aio_roundtrip(bootstrap, topic, aio_values, 2 * N))
        assert sorted(got) == sorted(kp_values + aio_values)

        # kafka-python reads aiokafka's records
        got = _kp_consume(bootstrap, topic, 2 * N, group=f"kp2-{uuid.uuid4().hex[:8]}")
        assert sorted(got) == sorted(kp_values + aio_values)
    finally:
        if kafka is not None:
            kafka.stop()


@pytest.mark.slow
def test_single_node_restart_keeps_data(tmp_path):
    _require_local()
    kafka = _isolated(tmp_path, 1)
    bootstrap = kafka.start(nodes=1)
    try:
        topic = _topic("restart1")
        _create_topic(bootstrap, topic)
        before = [f"before-{i}".encode() for i in range(N)]
        _kp_produce(bootstrap, topic, before)

        kafka.kill_node(0)  # SIGKILL: unclean, like a crash
        assert "node 0: stopped" in kafka.status()
        assert kafka.start_node(0) == bootstrap

        after = [f"after-{i}".encode() for i in range(N)]
        _kp_produce(bootstrap, topic, after)
        got = _kp_consume(bootstrap, topic, 2 * N, group="restart1")
        assert sorted(got) == sorted(before + after)
    finally:
        kafka.stop()


@pytest.mark.slow
def test_three_nodes_survive_broker_loss(tmp_path):
    _require_local()
    kafka = _isolated(tmp_path, 3)
    bootstrap = kafka.start(nodes=3)
    try:
        assert bootstrap.count(",") == 2
        topic = _topic("restart3")
        _create_topic(bootstrap, topic, partitions=3, replication=3)
        values = [f"a-{i}".encode() for i in range(N)]
        _kp_produce(bootstrap, topic, values)

        kafka.kill_node(1)  # one broker down: RF 3 topic keeps working
        more = [f"b-{i}".encode() for i in range(N)]
        _kp_produce(bootstrap, topic, more)
        values += more

        kafka.start_node(1)
        kafka.restart_node(0, signal="KILL")
        got = asyncio.run(_aio_roundtrip(bootstrap, topic, [], 2 * N))
        assert sorted(got) == sorted(values)
    finally:
        kafka.stop()
