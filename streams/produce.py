"""`amlwatch produce`: a recorded stream into the input topics, as a marketplace would publish it.

Keys follow the contract (accounts by account_id, collections by
collection_id, trades by token_id) and each message's Kafka timestamp is its
event time. Lines that do not parse are produced as their raw bytes to the
topic their `type` implies (else the trades topic), so the workers dead-letter
them just as they would a marketplace's bad record.
"""

from __future__ import annotations

import time
from typing import Iterable

import orjson

from amlwatch.config import KafkaConfig
from amlwatch.events import BadRecord, parse_event

from .topics import input_key, input_topics

HEARTBEAT = {"type": "account", "event_id": "amlwatch-heartbeat", "ts": "2100-01-01T00:00:00+00:00",
             "account_id": "amlwatch-heartbeat", "action": "register"}
"""A far-future registry event: ends every trade's grace, as a replay's end-of-file does."""

FUTURE_LIMIT = 3000.0


def _bad_topic(raw: bytes, topics: dict[str, str], default: str) -> str:
    try:
        kind = orjson.loads(raw).get("type")
    except (orjson.JSONDecodeError, AttributeError):
        return default
    return topics.get(kind, default) if isinstance(kind, str) else default


def produce(lines: Iterable[bytes], kafka: KafkaConfig, *, rate: float | None = None,
            heartbeat: bool = False, producer=None) -> dict[str, int]:
    """Produce every line; returns counts per topic. `rate` caps events per second."""
    from kafka import KafkaProducer

    topics = input_topics(kafka)
    own = producer is None
    if own:
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap.split(","), acks="all", linger_ms=10,
                                 batch_size=256 * 1024, max_in_flight_requests_per_connection=1,
                                 retries=10, enable_idempotence=True)
    counts: dict[str, int] = {}
    started = time.perf_counter()
    sent = 0
    try:
        if heartbeat:
            lines = _with_heartbeat(lines)
        for raw in lines:
            try:
                event = parse_event(raw)
            except BadRecord:
                topic, key, timestamp = _bad_topic(raw, topics, topics["trade"]), None, None
            else:
                topic, key = topics[event.type], input_key(event).encode()
                # Brokers reject timestamps over an hour ahead (log.message.timestamp.after.max.ms):
                # such an event (the heartbeat) gets the append time instead.
                timestamp = int(event.t * 1000) if event.t < time.time() + FUTURE_LIMIT else None
            producer.send(topic, value=raw, key=key, timestamp_ms=timestamp)
            counts[topic] = counts.get(topic, 0) + 1
            sent += 1
            if rate:
                ahead = sent / rate - (time.perf_counter() - started)
                if ahead > 0.002:
                    time.sleep(ahead)
        producer.flush()
    finally:
        if own:
            producer.close()
    return counts


def _with_heartbeat(lines: Iterable[bytes]):
    yield from lines
    yield orjson.dumps(HEARTBEAT)
