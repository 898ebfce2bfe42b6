"""Where each input event goes: the router's decisions, free of Kafka.

Trades go to the work partition of their collection (a token never changes
collection, so every per-token and per-collection window lives there);
account and collection events go to every work partition, so each holds the
whole registry. The second stage is keyed by account: a paid trade goes to
its buyer's and its seller's partition, where the account-scoped
(structuring) and pair-scoped (wash.pair_repeat, owned by the pair's smaller
account) detectors see every trade they need.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from amlwatch.config import HOUR, MonitorConfig
from amlwatch.detectors.skew import unconfirmed_jump
from amlwatch.events import BadRecord, Event, TradeEvent, parse_event

from .codecs import FRAME_BYTES, encode_dead_letter, encode_event, encode_frame, encode_marker

RANK = {"account": 0, "collection": 1, "trade": 2}
"""Tie-break at equal event time: registry facts before the trades that may need them."""


def partition_for(key: str, partitions: int) -> int:
    """Stable across processes and Python versions (unlike hash())."""
    return zlib.crc32(key.encode()) % partitions


def source_name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


class Out(NamedTuple):
    topic: str
    partition: int | None
    key: bytes | None
    value: bytes
    timestamp: float | None = None


@dataclass
class Router:
    """Input message -> work-topic messages (or a dead letter); tracks each source's progress."""

    work_topic: str
    work_partitions: int
    deadletter_topic: str
    progress: dict[str, float] = field(default_factory=dict)
    last_offset: dict[str, int] = field(default_factory=dict)
    bad: int = 0
    parse: Callable[[bytes], Event] = parse_event
    """A worker passes its ParsedEventCache's parse, so its stages reuse the router's parse."""
    max_skew: float = MonitorConfig.max_skew_hours * HOUR
    """The core's skew limit (`monitor.max_skew_hours`): a trade it will refuse as too far ahead moves no
    progress, else its marker would vouch for a time the stream never reached (and close the days)."""
    watermark: float = -math.inf
    """The latest event time of this router's sources that the core would let move its watermark."""
    ahead_t: float | None = None
    """The core's confirmation memory (`detectors.skew.unconfirmed_jump`), over this router's sources."""
    ahead_event: str | None = None
    """The event that set `ahead_t`: read again (uncommitted input after a restart), it confirms nothing,
    as the core takes it for a duplicate."""

    def route(self, topic: str, partition: int, offset: int, raw: bytes) -> tuple[Event | None, list[Out]]:
        source = source_name(topic, partition)
        self.last_offset[source] = offset
        try:
            event = self.parse(raw)
        except BadRecord as error:
            self.bad += 1
            key, value = encode_dead_letter(raw, error, topic, partition, offset)
            return None, [Out(self.deadletter_topic, None, key, value)]
        t = event.t
        if event.event_id == self.ahead_event:
            jump = True
        else:
            jump, self.ahead_t = unconfirmed_jump(t, self.watermark, self.ahead_t, self.max_skew)
            if jump:
                self.ahead_event = event.event_id
            elif t > self.watermark:
                self.watermark = t
        # A far-ahead registry event is applied by the core (the heartbeat closes the days); a trade is refused.
        if t > self.progress.get(source, -math.inf) and not (jump and isinstance(event, TradeEvent)):
            self.progress[source] = t
        value = encode_event(source, offset, raw)
        if isinstance(event, TradeEvent):
            target = partition_for(event.collection_id, self.work_partitions)
            return event, [Out(self.work_topic, target, event.collection_id.encode(), value, event.t)]
        return event, [Out(self.work_topic, p, None, value, event.t) for p in range(self.work_partitions)]

    def markers(self, source: str, idle: bool) -> list[Out]:
        """Tell every work partition how far `source` has got (and whether it is caught up)."""
        value = encode_marker(source, self.progress.get(source, -math.inf), idle)
        return [Out(self.work_topic, p, None, value) for p in range(self.work_partitions)]


def frame_outs(outs: list[Out], topics: frozenset[str]) -> list[Out]:
    """Messages to the internal `topics` joined into one frame per partition (in order, split at
    FRAME_BYTES); the others (alerts, dead letters) as they are."""
    frames: dict[tuple[str, int], list[list[bytes]]] = {}
    sizes: dict[tuple[str, int], int] = {}
    passed = []
    for out in outs:
        if out.topic not in topics or out.partition is None:
            passed.append(out)
            continue
        where = (out.topic, out.partition)
        chunks = frames.setdefault(where, [[]])
        if sizes.get(where, 0) + len(out.value) > FRAME_BYTES and chunks[-1]:
            chunks.append([])
            sizes[where] = 0
        chunks[-1].append(out.value)
        sizes[where] = sizes.get(where, 0) + len(out.value) + 4
    for (topic, partition), chunks in frames.items():
        passed.extend(Out(topic, partition, None, encode_frame(chunk)) for chunk in chunks)
    return passed


def keyed_targets(trade: TradeEvent, partitions: int) -> list[int]:
    """Second-stage partitions of a paid trade: its buyer's and its seller's."""
    buyer = partition_for(trade.buyer_id, partitions)
    seller = partition_for(trade.seller_id, partitions)
    return [buyer] if buyer == seller else [buyer, seller]
