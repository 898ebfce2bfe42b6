"""aiokafka's producer on a real broker: a topic left out of its metadata refreshes stalls a flush.

The worker's producer sends to topics that exist before it starts (work, alerts) and to changelogs
Faust creates at start. This reproduces the stall that made a worker hang (docs/STREAMING.md) and
checks that tracking the produced topics up front (`track_produced_topics`) prevents it.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from amlwatch.streams.app import track_produced_topics

pytestmark = pytest.mark.kafka


def _create(bootstrap: str, *topics: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        admin.create_topics([NewTopic(t, 1, 1) for t in topics])
    finally:
        admin.close()


async def _send_then_flush(bootstrap: str, early: str, late: str, track: bool) -> bool:
    """A batch for `early` (found in a full refresh, as after Faust declares a topic) waits in its
    linger while a send to `late` (created since) makes the producer refresh; True if the flush then
    completes."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap.split(","), linger_ms=1000, acks="all")
    await producer.start()
    try:
        await producer.client.force_metadata_update()     # what Faust does after declaring a topic
        if track:
            track_produced_topics(producer, [early])
        await producer.send(early, b"x")
        await asyncio.to_thread(_create, bootstrap, late)
        await producer.send(late, b"y")
        try:
            await asyncio.wait_for(producer.flush(), 8)
        except asyncio.TimeoutError:
            return False
        return True
    finally:
        track_produced_topics(producer, [early])       # lets a stuck batch go, so the producer can stop
        await asyncio.wait_for(producer.stop(), 20)


@pytest.mark.parametrize("track", [False, True], ids=["untracked", "tracked"])
def test_a_flush_completes_only_when_every_produced_topic_is_tracked(kafka_bootstrap, track):
    tag = uuid.uuid4().hex[:8]
    early, late = f"meta-{tag}.early", f"meta-{tag}.late"
    _create(kafka_bootstrap, early)
    completed = asyncio.run(_send_then_flush(kafka_bootstrap, early, late, track))
    # Untracked, the stall is aiokafka's (0.14); should that assertion fail, aiokafka has fixed it
    # and track_produced_topics could go.
    assert completed is track
