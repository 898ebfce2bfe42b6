"""File replay: a recorded stream through the detection core, alerts out.

The same `Monitor` runs in the Faust workers, so a file gives the same alerts
as the live stream. `since`/`until` select a period by event time: events
before `since` still pass through the core to warm its state (registry,
windows), but only alerts raised from `since` on are written.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable

from amlwatch.alerts import SEVERITIES, TYPOLOGIES, Alert, wall_clock_now
from amlwatch.deadletter import DeadLetterFile
from amlwatch.detectors.monitor import Monitor
from amlwatch.events import BadRecord, parse_event, parse_time


@dataclass
class ReplaySummary:
    events: int = 0
    bad_records: int = 0
    duplicates: int = 0
    before_since: int = 0
    alerts: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> str:
        lines = [
            f"{'events read':<22}{self.events:>12,}",
            f"{'bad records':<22}{self.bad_records:>12,}",
            f"{'duplicates dropped':<22}{self.duplicates:>12,}",
            f"{'events/s':<22}{self.events_per_second:>12,.0f}",
            "",
            f"{'alerts':<22}" + "".join(f"{s:>10}" for s in SEVERITIES) + f"{'total':>10}",
        ]
        for typology in TYPOLOGIES:
            counts = [self.alerts[(typology, s)] for s in SEVERITIES]
            if sum(counts):
                lines.append(f"{typology:<22}" + "".join(f"{c:>10,}" for c in counts) + f"{sum(counts):>10,}")
        total = sum(self.alerts.values())
        lines.append(f"{'all':<22}" + " " * 10 * len(SEVERITIES) + f"{total:>10,}")
        return "\n".join(lines)


def parse_bound(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    return parse_time(text, name).timestamp()


class AlertWriter:
    """Alerts as JSON Lines, stamped with the wall-clock time they were written."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle

    def __call__(self, alerts: list[Alert]) -> None:
        if alerts:
            now = wall_clock_now()
            self.handle.write(b"".join(alert.to_json(now) + b"\n" for alert in alerts))


def replay(
    records: Iterable[tuple[int, bytes]],
    monitor: Monitor,
    emit: Callable[[list[Alert]], None],
    dead_letters: DeadLetterFile,
    *,
    source: str = "-",
    since: float | None = None,
    until: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    summary = ReplaySummary()
    started = time.perf_counter()
    with _sparse_garbage_collection():
        _replay_records(records, monitor, emit, dead_letters, summary, source, since, until, progress)
    summary.bad_records = dead_letters.count
    summary.duplicates = monitor.duplicates
    summary.seconds = time.perf_counter() - started
    return summary


GC_THRESHOLDS = (100_000, 20, 20)
"""Replay allocates millions of short-lived objects beside a large, long-lived detector state with
few reference cycles; at the default gen-0 threshold (700) the collector rescans that state about
a third of the replay time."""


@contextmanager
def _sparse_garbage_collection():
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


REPLAY_BATCH = 256
"""Events observed together (`Monitor.observe_batch`): the anomaly forest scores a batch's trades in one
pass. The alerts, their order and the dead letters' are those of one event at a time."""


def _replay_records(records, monitor, emit, dead_letters, summary, source, since, until, progress) -> None:
    batch: list[tuple[int, bytes, object]] = []
    for number, raw in records:
        summary.events += 1
        if progress is not None and not summary.events & 0x3FFF:
            progress(0x4000)
        try:
            event = parse_event(raw)
        except BadRecord as error:
            batch.append((number, raw, error))
            continue
        if until is not None and event.t > until:
            summary.events -= 1
            break
        batch.append((number, raw, event))
        if len(batch) >= REPLAY_BATCH:
            _replay_batch(batch, monitor, emit, dead_letters, summary, source, since)
            batch = []
    _replay_batch(batch, monitor, emit, dead_letters, summary, source, since)
    final = monitor.flush()
    if monitor.rejected:
        dead_letter_rejections(monitor, dead_letters, {"file": source, "line": None}, None, b"")
    if since is not None:
        final = _from(final, since)
    _count(summary, final)
    emit(final)


def _replay_batch(batch, monitor, emit, dead_letters, summary, source, since) -> None:
    """One batch's events through the core, then each event's dead letters and alerts in stream order."""
    events = [event for _, _, event in batch if not isinstance(event, BadRecord)]
    observe_batch = getattr(monitor, "observe_batch", None)
    results = iter(observe_batch(events) if observe_batch
                   else [(monitor.observe(e), monitor.take_rejected()) for e in events])
    for number, raw, event in batch:
        where = {"file": source, "line": number}
        if isinstance(event, BadRecord):
            dead_letters.write(raw, event, where)
            continue
        alerts, rejected = next(results)
        if rejected:
            write_rejections(rejected, dead_letters, where, event, raw)
        if since is not None:
            if event.t < since:
                summary.before_since += 1
            alerts = _from(alerts, since)
        if alerts:
            _count(summary, alerts)
            emit(alerts)


def dead_letter_rejections(monitor: Monitor, dead_letters: DeadLetterFile, source: dict, event, raw: bytes) -> None:
    """What the core refused (or a detector failed on) goes where bad lines go. A rejection is about the
    event just read, except a detector failing on a trade judged late: its raw bytes are then not at hand,
    and its event_id says which it was."""
    write_rejections(monitor.take_rejected(), dead_letters, source, event, raw)


def write_rejections(rejections, dead_letters: DeadLetterFile, source: dict, event, raw: bytes) -> None:
    for rejection in rejections:
        own = rejection.event is event
        dead_letters.write(raw if own else b"", BadRecord(rejection.field, rejection.reason),
                           {**source, "event_id": rejection.event.event_id})


def _from(alerts: list[Alert], since: float) -> list[Alert]:
    return [a for a in alerts if parse_time(a.ts).timestamp() >= since]


def _count(summary: ReplaySummary, alerts: list[Alert]) -> None:
    for alert in alerts:
        summary.alerts[(alert.typology, alert.severity)] += 1


def progress_bar(total: int | None = None):
    """A tqdm bar on a terminal; nothing when stderr is a file or pipe."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="ev", unit_scale=True, file=sys.stderr, mininterval=0.5)
    return bar.update, bar.close
