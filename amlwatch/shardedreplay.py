"""Replay across processes: the same alerts and dead letters as one process, in the same order.

A backtest of months of a platform's stream is bound by one core's Python. Here the work is split over
`shards` processes as the worker splits it over partitions (docs/STREAMING.md): the collection-scoped
detectors by collection (`shard_of` the collection, as stage 1), the account- and pair-scoped ones by
account (a trade goes to its buyer's and its seller's shard, and the shard of the alert's owner keeps it,
as stage 2). Every shard reads and parses the whole file and applies every event's bookkeeping, since
what one core decides about a trade also depends on the rest of the stream (`ShardMonitor`); shard 0
speaks for what every shard sees alike (bad lines, refused events, registry-only alerts). Each shard
writes its output keyed by where one process would have written it; the parent merges the shards'
files on that key once every shard is done. tests/test_amlwatch/test_sharded_replay.py holds it to
`replay`, byte for byte.

The shards' files are pickles that only this replay writes and reads, in a temporary directory of its
own (mode 0700); nothing read from the stream is unpickled.
"""

from __future__ import annotations

import heapq
import multiprocessing
import pickle
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator

from amlwatch.alerts import Alert
from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.detectors.monitor import REFUSED, detector_order
from amlwatch.detectors.shard import ShardMonitor
from amlwatch.engine import build_monitor
from amlwatch.errors import AmlwatchError
from amlwatch.events import BadRecord, TradeEvent, parse_event, parse_time
from amlwatch.replay import REPLAY_BATCH, ReplaySummary, _count, _sparse_garbage_collection

END = float("inf")
"""The position of what the final flush releases: after every event."""


class ReplayWorkersError(AmlwatchError, ValueError):
    """A replay across processes was asked of what one pass must do (stdin, an archive being written,
    reports); `field` is the option."""

    field = "--workers"


class ShardFailed(AmlwatchError, RuntimeError):
    """A shard's process ended without finishing its part; `field` names the shard."""

    def __init__(self, shard: int, exitcode: int | None):
        self.field = f"shard {shard}"
        super().__init__(f"shard {shard} of the replay exited with code {exitcode}")


def shard_of(key: str, shards: int) -> int:
    """The shard that owns a collection (its collection-scoped work) or an account (its account- and
    pair-scoped alerts): stable across runs and machines."""
    return zlib.crc32(key.encode()) % shards


def sharded_replay(
    open_records: Callable[[], Iterable[tuple[int, bytes]]],
    config: Config,
    emit: Callable[[list[Alert]], None],
    dead_letters: DeadLetterFile,
    *,
    shards: int,
    with_model: bool = True,
    source: str = "-",
    since: float | None = None,
    until: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """`replay` of the stream `open_records()` reads (called once per shard), across `shards` processes."""
    if shards < 2:
        raise ReplayWorkersError(f"a replay across processes needs at least 2, got {shards}")
    context = multiprocessing.get_context("fork")
    done = context.Value("q", 0, lock=False)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="amlwatch-shards-") as scratch:
        outputs = [Path(scratch) / f"shard-{k}.pickle" for k in range(shards)]
        processes = [context.Process(target=_shard_main, name=f"amlwatch-shard-{k}", daemon=True,
                                     args=(open_records, config, with_model, k, shards, outputs[k], source,
                                           since, until, done))
                     for k in range(shards)]
        for process in processes:
            process.start()
        try:
            _wait(processes, done, progress)
        finally:
            for process in processes:
                if process.is_alive():
                    process.kill()
                    process.join()
        summaries: dict[int, ReplaySummary] = {}
        readers = [_read_output(path, summaries, k) for k, path in enumerate(outputs)]
        _merge(readers, emit, dead_letters, summaries)
        summary = summaries[0]
    summary.bad_records = dead_letters.count
    summary.seconds = time.perf_counter() - started
    return summary


def _wait(processes, done, progress) -> None:
    reported = 0
    while any(p.is_alive() for p in processes):
        for k, process in enumerate(processes):
            process.join(0.2)
            if process.exitcode not in (None, 0):
                raise ShardFailed(k, process.exitcode)
        if progress is not None and done.value > reported:
            progress(done.value - reported)
            reported = done.value
    for k, process in enumerate(processes):
        if process.exitcode != 0:
            raise ShardFailed(k, process.exitcode)


def _merge(readers, emit, dead_letters: DeadLetterFile, summaries: dict[int, ReplaySummary]) -> None:
    """One process's output from the shards' keyed outputs, one event's alerts at a time."""
    alerts: list[Alert] = []
    position = None
    alert_counts = ReplaySummary()
    for key, kind, payload in heapq.merge(*readers, key=lambda record: record[0]):
        if key[0] != position:
            if alerts:
                _count(alert_counts, alerts)
                emit(alerts)
                alerts = []
            position = key[0]
        if kind == "a":
            alerts.append(payload)
        else:
            raw, field, reason, where = payload
            dead_letters.write(raw, BadRecord(field, reason), where)
    if alerts:
        _count(alert_counts, alerts)
        emit(alerts)
    summaries[0].alerts = alert_counts.alerts


def _read_output(path: Path, summaries: dict, shard: int) -> Iterator:
    """A shard's records in key order (chunks of them), then its summary, which goes to `summaries`."""
    with open(path, "rb") as handle:
        while True:
            item = pickle.load(handle)
            if isinstance(item, ReplaySummary):
                summaries[shard] = item
                return
            yield from item


def _shard_main(open_records, config, with_model, shard, shards, output, source, since, until, done) -> None:
    run = _ShardRun(config, with_model, shard, shards, source, since, until, done)
    with open(output, "wb") as handle:
        run.run(open_records(), handle)


CHUNK = 4096
"""Records a shard pickles at a time: its output is streamed, never held whole."""


class _ShardRun:
    """One shard's pass over the stream. Its output is `(key, kind, payload)` records in key order, a
    `ReplaySummary` last; kind "a" is an alert, "d" a dead letter `(raw, field, reason, where)`.

    The key of an event's output: `(position, 0, arrival, rank, side, shard, seq)` for what a waiting trade
    that arrived at `arrival` raised as this event released it, `(position, 1, 0, rank, side, shard, seq)`
    for the event's own; `position` counts the lines read, `rank` is the detector's place in one core's
    order (`detector_order`), `side` 1 for an alert its trade's seller owns, and `seq` the shard's own
    count. A bad line's key is its position alone."""

    def __init__(self, config, with_model, shard, shards, source, since, until, done):
        def my_collection(trade: TradeEvent) -> bool:
            return shard_of(trade.collection_id, shards) == shard

        def my_account(trade: TradeEvent) -> bool:
            return shard_of(trade.buyer_id, shards) == shard or shard_of(trade.seller_id, shards) == shard

        self.core: ShardMonitor = build_monitor(config, with_model=with_model, monitor_type=ShardMonitor,
                                                owns_collection=my_collection, owns_account=my_account)
        self.by_account = {d.name: d for d in self.core.detectors if d.scope != "collection"}
        """The account- and pair-scoped detectors, whose alerts their owner's shard keeps."""
        self.order = detector_order(config)
        self.unknown = (False, len(self.order))
        self.shard, self.shards = shard, shards
        self.source, self.since, self.until, self.done = source, since, until, done
        self.seq = 0
        self.summary = ReplaySummary()

    def run(self, records, handle) -> None:
        summary, batch, position, out = self.summary, [], 0, []
        with _sparse_garbage_collection():
            for number, raw in records:
                summary.events += 1
                if self.shard == 0 and not summary.events & 0x3FFF:
                    self.done.value = summary.events
                try:
                    event = parse_event(raw)
                except BadRecord as error:
                    event = error
                else:
                    if self.until is not None and event.t > self.until:
                        summary.events -= 1
                        break
                position += 1
                batch.append((position, number, raw, event))
                if len(batch) >= REPLAY_BATCH:
                    self._batch(batch, out)
                    batch = []
                    if len(out) >= CHUNK:
                        pickle.dump(out, handle, protocol=pickle.HIGHEST_PROTOCOL)
                        out = []
            self._batch(batch, out)
            self._final(out)
        summary.duplicates = self.core.duplicates
        if self.shard == 0:
            self.done.value = summary.events
        pickle.dump(out, handle, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(summary, handle, protocol=pickle.HIGHEST_PROTOCOL)

    def _batch(self, batch: list, out: list) -> None:
        if not batch:
            return
        events = [event for _, _, _, event in batch if not isinstance(event, BadRecord)]
        judged = iter(self.core.observe_batch(events))
        keyed: list = []
        for position, number, raw, event in batch:
            where = {"file": self.source, "line": number}
            if isinstance(event, BadRecord):
                if self.shard == 0:
                    keyed.append(((position,), "d", (raw, event.field, event.reason, where)))
                continue
            if self.since is not None and event.t < self.since:
                self.summary.before_since += 1
            alerts, rejected = next(judged)
            self._keep(keyed, position, event, raw, where, self._mine(alerts, event), self._my_rejections(rejected))
        self.core.places.clear()
        keyed.sort(key=lambda record: record[0])
        out.extend(keyed)

    def _final(self, out: list) -> None:
        """The final flush's output, as `replay` gives it after the last event."""
        where = {"file": self.source, "line": None}
        keyed: list = []
        final = self.core.flush()
        self._keep(keyed, END, None, b"", where, self._mine(final, None), self._my_rejections(self.core.take_rejected()))
        keyed.sort(key=lambda record: record[0])
        out.extend(keyed)

    def _mine(self, alerts: list[Alert], event) -> list[tuple[Alert, int]]:
        """This shard's share of alerts its core raised, each with its side (1: its trade's seller owns it).

        An account- or pair-scoped alert is kept by the shard of its owner (`Detector.owner`), as the
        worker's stage 2 keeps it on its owner's partition; the other party's shard drops its copy. A
        detector raises a trade's buyer's alerts before its seller's. A registry-only alert (no trades) is
        raised alike on every shard: shard 0 speaks for all."""
        shard, shards, by_account, places, mine = self.shard, self.shards, self.by_account, self.core.places, []
        for alert in alerts:
            detector = by_account.get(alert.detector)
            if detector is not None:
                owner = detector.owner(alert, event)
                if shard_of(owner, shards) == shard:
                    mine.append((alert, 0 if owner == event.buyer_id else 1))
            elif shard == 0 or alert.trade_ids or id(alert) in places:
                mine.append((alert, 0))
        return mine

    def _my_rejections(self, rejected: list) -> list:
        """A refused event (REFUSED) is refused alike on every shard: shard 0 speaks for all. An account- or
        pair-scoped detector's fault on a trade is kept by the buyer's shard (which sees every trade its
        buyer makes); any other fault happened on the one shard that judged that part of the trade. (A fault
        of the core itself, `monitor_error`, on a trade two shards judged parts of would be written twice:
        the core's own bug, never seen, and better twice than dropped.)"""
        if not rejected:
            return rejected
        shard, shards, by_account, mine = self.shard, self.shards, self.by_account, []
        for rejection in rejected:
            if rejection.reason.partition(":")[0] in REFUSED:
                if shard == 0:
                    mine.append(rejection)
            elif rejection.field.startswith("detector:") and rejection.field[len("detector:"):] in by_account:
                if shard_of(rejection.event.buyer_id, shards) == shard:
                    mine.append(rejection)
            else:
                mine.append(rejection)
        return mine

    def _keep(self, keyed, position, event, raw, where, alerts: list[tuple[Alert, int]], rejected) -> None:
        """One core's share of an event's output (alerts with their side), keyed by where one process puts it."""
        places, order, unknown, shard, since = self.core.places, self.order, self.unknown, self.shard, self.since
        for alert, side in alerts:
            if since is not None and parse_time(alert.ts).timestamp() < since:
                continue
            self.seq += 1
            keyed.append((self._key(position, places.pop(id(alert), None), order.get(alert.detector, unknown), side),
                          "a", alert))
        for rejection in rejected:
            field = rejection.field
            rank = order.get(field[len("detector:"):], unknown) if field.startswith("detector:") else (True, 1 << 30)
            self.seq += 1
            keyed.append((self._key(position, places.pop(id(rejection), None), rank, 0), "d",
                          (raw if rejection.event is event else b"", field, rejection.reason,
                           {**where, "event_id": rejection.event.event_id})))

    def _key(self, position, arrival: int | None, rank: tuple, side: int) -> tuple:
        if arrival is not None:
            return position, 0, arrival, rank, side, self.shard, self.seq
        return position, 1, 0, rank, side, self.shard, self.seq
