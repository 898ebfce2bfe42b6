"""The routers' input consumer on a real broker: a peer joining mid-batch re-routes nothing."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from kafka import KafkaProducer
from support.service import kafka_config, kafka_env

from amlwatch.streams.intake import Intake
from amlwatch.streams.topics import create_topics

pytestmark = pytest.mark.kafka

RECORDS = 400


def test_a_joining_peer_starts_where_the_batch_in_hand_ends(kafka_bootstrap):
    kafka = kafka_config(kafka_env(kafka_bootstrap))
    create_topics(kafka)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    for i in range(RECORDS):
        producer.send(kafka.trades_topic, key=str(i).encode(), value=b"{}")
    producer.flush()
    producer.close()
    routed = asyncio.run(_two_intakes(kafka))
    copies = Counter(routed)
    assert len(copies) == RECORDS
    assert [record for record, count in copies.items() if count > 1] == []


async def _two_intakes(kafka) -> list[tuple[int, int]]:
    """The first intake is slow with its first batch; the second joins while it holds it."""
    routed: list[tuple[int, int]] = []
    holding = asyncio.Event()

    def router(slow_first: bool):
        first = [slow_first]

        async def route(batch: dict) -> dict:
            if first[0]:
                first[0] = False
                holding.set()
                await asyncio.sleep(4)
            routed.extend((tp.partition, m.offset) for tp, records in batch.items() for m in records)
            return {tp: records[-1].offset + 1 for tp, records in batch.items()}
        return route

    async def idle() -> None:
        return None

    intakes = [Intake(kafka, [kafka.trades_topic], router(slow), lambda tps: None, idle) for slow in (True, False)]
    tasks = [asyncio.ensure_future(intakes[0].run())]
    try:
        await asyncio.wait_for(holding.wait(), 30)
        tasks.append(asyncio.ensure_future(intakes[1].run()))
        async with asyncio.timeout(60):
            while len(set(routed)) < RECORDS or not all(i.assignment() for i in intakes):
                await asyncio.sleep(0.2)
        await asyncio.sleep(2)             # time for a wrongly re-read batch to show
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return routed


def test_a_clean_stop_commits_what_was_routed(kafka_bootstrap):
    from kafka import KafkaConsumer, TopicPartition

    from amlwatch.streams.intake import router_group

    kafka = kafka_config(kafka_env(kafka_bootstrap))
    create_topics(kafka)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    for i in range(RECORDS):
        producer.send(kafka.trades_topic, key=str(i).encode(), value=b"{}")
    producer.flush()
    producer.close()
    routed = asyncio.run(_stopped_after_one_batch(kafka))
    reader = KafkaConsumer(bootstrap_servers=kafka_bootstrap.split(","), group_id=router_group(kafka),
                           enable_auto_commit=False)
    try:
        committed = {p: reader.committed(TopicPartition(kafka.trades_topic, p)) for p in routed}
    finally:
        reader.close()
    assert routed and committed == routed


async def _stopped_after_one_batch(kafka) -> dict[int, int]:
    """Next offset per partition routed by an intake stopped before its background commit could run."""
    routed: dict[int, int] = {}
    stuck = asyncio.Event()

    async def route(batch: dict) -> dict:
        routed.update({tp.partition: records[-1].offset + 1 for tp, records in batch.items()})
        return {tp: records[-1].offset + 1 for tp, records in batch.items()}

    async def tick() -> None:
        if routed:
            stuck.set()
            await asyncio.sleep(60)        # the loop never reaches its commit

    intake = Intake(kafka, [kafka.trades_topic], route, lambda tps: None, tick)
    task = asyncio.ensure_future(intake.run())
    try:
        await asyncio.wait_for(stuck.wait(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return routed
