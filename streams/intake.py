"""The input topics, read in whole fetches by a plain aiokafka consumer beside the Faust app.

Routing needs no tables and no per-message agent features, and Faust's path
costs tens of microseconds of coroutines and tasks per message (the input
topics are the only ones whose messages cannot be framed). At the end of a
burst it was also seen holding the last few messages back until the next
arrived, leaving the newest events unrouted. So the routers read with
`getmany` in their own consumer group (`<app_id>-router`) and commit offsets
by hand, only after what a batch routed is flushed and archived, and again
when a rebalance takes partitions away (after the batch in hand is routed) or
the worker stops, so a peer joining or leaving cleanly re-routes nothing. A crash still leaves
uncommitted input: at least once, and a re-routed event is recognised
downstream by its sequence number (its input offset).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from amlwatch.config import KafkaConfig

log = logging.getLogger("amlwatch.streams.intake")

BATCH = 500
"""Records taken per fetch at most while caught up (about 20 ms of routing: the other stages wait
meanwhile)."""
BACKLOG_BATCH = 2000
"""Records taken per fetch at most while the previous fetch came back full (a backlog, where alerts are
late anyway): each batch pays a producer flush, an archive fsync and a round of progress markers, so
four times fewer batches leave more of the worker to detection. Live traffic (5,000 events/s arrive
as about 250 a fetch) never fills BATCH and keeps the small batches and their latency."""
STOP_COMMIT_SECONDS = 5.0
"""How long a stopping worker tries to commit what it routed."""


def fetch_limit(fetched: int) -> int:
    """Records to take at most in the next fetch, after one that brought `fetched`: a full one means a
    backlog."""
    return BACKLOG_BATCH if fetched >= BATCH else BATCH


def router_group(kafka: KafkaConfig) -> str:
    return f"{kafka.app_id}-router"


class Intake:
    """Owns the input consumer: `route(records_by_partition)` routes, flushes and archives a batch and
    returns the next offset to commit per partition; `tick()` runs between batches (progress markers,
    which so never overtake the events they vouch for); `forget(partitions)` drops a revoked
    partition's router state before another worker takes it."""

    def __init__(self, kafka: KafkaConfig, topics: Iterable[str],
                 route: Callable[[dict], Awaitable[dict]], forget: Callable[[Iterable], None],
                 tick: Callable[[], Awaitable[None]]):
        self.kafka = kafka
        self.topics = list(topics)
        self.route = route
        self.forget = forget
        self.tick = tick
        self.consumer: AIOKafkaConsumer | None = None
        self.uncommitted: dict = {}
        """Next offset per partition, routed (flushed and archived) but not committed yet."""
        self.routing = asyncio.Lock()
        """Held while a batch is routed, so a revocation commits its offsets rather than losing them."""
        self.committing: asyncio.Task | None = None

    def assignment(self) -> set[TopicPartition]:
        consumer = self.consumer
        try:
            return set(consumer.assignment()) if consumer is not None else set()
        except IllegalStateError:
            return set()

    async def run(self) -> None:
        consumer = self.consumer = AIOKafkaConsumer(
            bootstrap_servers=[host.strip() for host in self.kafka.bootstrap.split(",")],
            group_id=router_group(self.kafka), client_id=router_group(self.kafka),
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=10_000, heartbeat_interval_ms=2_000, max_poll_interval_ms=300_000,
            fetch_max_wait_ms=50)
        consumer.subscribe(self.topics, listener=_Revocations(self))
        await consumer.start()
        limit = BATCH
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=self.kafka.marker_ms, max_records=limit)
                limit = fetch_limit(sum(map(len, batch.values())))
                if batch:
                    async with self.routing:
                        self.uncommitted.update(await self.route(batch))
                await self.tick()
                if self.uncommitted and (self.committing is None or self.committing.done()):
                    self.committing = asyncio.ensure_future(self._commit(consumer))
        except asyncio.CancelledError:
            raise
        except KafkaError:
            log.exception("input consumer failed")
            raise
        finally:
            self.consumer = None
            await self._commit_at_stop(consumer)
            await consumer.stop()

    async def _commit_at_stop(self, consumer: AIOKafkaConsumer) -> None:
        """A stopping consumer is not told of a revocation: commit what was routed here, so a worker
        that leaves cleanly leaves its partitions' next owner nothing to route again."""
        try:
            if self.committing is not None and not self.committing.done():
                await asyncio.wait_for(asyncio.shield(self.committing), STOP_COMMIT_SECONDS)
            if self.uncommitted:
                await asyncio.wait_for(self._commit(consumer), STOP_COMMIT_SECONDS)
        except (asyncio.TimeoutError, asyncio.CancelledError, KafkaError) as error:
            log.warning("input not committed at stop", extra={"error": repr(error)})

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        """Commit what was routed so far, off the reading loop: a commit can take a while, and the
        newest input would wait behind it (its offsets go with the next commit)."""
        offsets, self.uncommitted = self.uncommitted, {}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            # A rebalance took partitions away meanwhile: their new owner routes those records again,
            # and the copies are dropped downstream by their sequence numbers.
            log.warning("input commit refused after a rebalance", extra={"error": str(error)})

    async def commit_before_revocation(self) -> None:
        """Wait for the batch in hand and any commit under way, then commit everything routed: the
        partitions' next owner starts where this worker stopped instead of re-routing a batch."""
        async with self.routing:
            if self.committing is not None:
                await asyncio.gather(self.committing, return_exceptions=True)
            consumer = self.consumer
            if consumer is not None and self.uncommitted:
                try:
                    await self._commit(consumer)
                except KafkaError as error:
                    log.warning("input commit failed before a revocation", extra={"error": str(error)})


class _Revocations(ConsumerRebalanceListener):
    def __init__(self, intake: Intake):
        self.intake = intake

    async def on_partitions_revoked(self, revoked) -> None:
        await self.intake.commit_before_revocation()
        for tp in revoked:
            self.intake.uncommitted.pop(tp, None)
        self.intake.forget(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        self.intake.forget(assigned)
