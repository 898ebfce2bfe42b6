"""The replay hook: a `Monitor` with the reporting duties beside it.

`ReportingMonitor` wraps the detection core and offers the same `observe`/`advance`/`flush` and
`duplicates`, so `amlwatch.replay.replay` (and `archive_replay`) run it unchanged. After the core
has judged an event (and only when it was not a duplicate), the event and the alerts it raised go
to the large-value aggregator and the risk rater, which read the core's registry. Their records go
to `sink` (a callable taking a list of dicts): the record archive (`ArchiveRecordSink`), a JSON
Lines file (`JsonLinesSink`) or, in the Kafka worker, a producer to `aml.reports` / `aml.ratings`.

Invariant: the reporting records are a function of the events in order and the config; the sink
never changes them (it stamps nothing), so any two runs over the same stream write the same records.
"""

from __future__ import annotations

from typing import BinaryIO, Callable

import orjson

from amlwatch.alerts import json_default
from amlwatch.detectors.monitor import REFUSED
from amlwatch.events import parse_time
from amlwatch.reporting.lvtr import LargeValueAggregator
from amlwatch.reporting.risk import Dispositions, RiskRater

REPORT_ACTIONS = {"lvtr": "report.lvtr", "lvtr_late_unassessed": "report.lvtr_late", "risk_rating": "risk.rating",
                  "str": "report.str"}
"""The archive's audit `action` of each record type (reports and ratings live in the audit stream)."""


class ReportingMonitor:
    """A `Monitor` whose events also feed large-value reports and risk ratings."""

    def __init__(self, monitor, config, sink: Callable[[list[dict]], None], *,
                 dispositions: Dispositions | None = None, lvtr: bool = True, ratings: bool = True,
                 since: float | None = None):
        """`since` (replay --since): events before it still build the state, but no report of a day that
        ended by then and no rating of an event before it is written (as no alert raised before it is)."""
        self.monitor = monitor
        self.sink = sink
        self.since = since
        self.skipped = 0
        """Records held back by `since`."""
        self.lvtr = LargeValueAggregator(config.lvtr, config.payment_kind) if lvtr else None
        self.rater = RiskRater(config.risk, monitor.registry, dispositions) if ratings else None
        self.records = 0

    @property
    def duplicates(self) -> int:
        return self.monitor.duplicates

    def __getattr__(self, name: str):
        """Everything else (versions, state sizes, timing) is the core's."""
        monitor = self.__dict__.get("monitor")
        if monitor is None:
            raise AttributeError(name)
        return getattr(monitor, name)

    @property
    def registry(self):
        return self.monitor.registry

    def observe(self, event):
        before = self.monitor.duplicates
        alerts = self.monitor.observe(event)
        if self.monitor.duplicates != before or _refused(self.monitor, event):
            return alerts
        out = []
        if self.lvtr is not None:
            out.extend(self.lvtr.observe(event, self.monitor.registry))
        if self.rater is not None:
            out.extend(self.rater.observe(event, alerts))
        self._emit(out)
        return alerts

    def observe_batch(self, events):
        """One event at a time (the core's batch would not do: the reports read the registry as it stood
        at each event, and the rater each event's alerts), with what each left rejected."""
        return [(self.observe(event), self.monitor.take_rejected()) for event in events]

    def advance(self, t: float):
        alerts = self.monitor.advance(t)
        self._emit(self._released(alerts) + (self.lvtr.advance(t) if self.lvtr is not None else []))
        return alerts

    def flush(self):
        alerts = self.monitor.flush()
        self._emit(self._released(alerts) + (self.lvtr.flush() if self.lvtr is not None else []))
        return alerts

    def _released(self, alerts) -> list[dict]:
        """Alerts the core released without a new event (grace ended, end of stream) re-rate their accounts."""
        out = []
        if self.rater is not None:
            for alert in alerts:
                out.extend(self._rate_released(alert))
        return out

    def _rate_released(self, alert) -> list[dict]:
        """Alerts released at the end of a stream re-rate their accounts (as of the alert's event)."""
        return self.rater.observe(_AlertEvent(alert), [alert])

    def _emit(self, out: list[dict]) -> None:
        if out and self.since is not None:
            kept = [record for record in out if self._from_since(record)]
            self.skipped += len(out) - len(kept)
            out = kept
        if out:
            self.records += len(out)
            self.sink(out)

    def _from_since(self, record: dict) -> bool:
        if "day" in record:               # lvtr, lvtr_late_unassessed: the day must end after `since`
            return self.lvtr.day_end(self.lvtr.day_number(record["day"])) > self.since
        return record.get("ts") is None or parse_time(record["ts"]).timestamp() >= self.since


def _refused(monitor, event) -> bool:
    """The core did not apply the event (a dead letter: skewed, conflicting, beyond the dedupe window).
    It is not data for the reports either, as in the worker, whose stage 1 does not forward it."""
    return any(r.event is event and r.reason.split(":", 1)[0] in REFUSED for r in monitor.rejected)


class _AlertEvent:
    """The event-time face of an alert, for ratings an alert alone triggers."""

    __slots__ = ("t", "ts", "event_id")

    def __init__(self, alert):
        self.ts = alert.ts
        self.t = parse_time(alert.ts).timestamp()
        self.event_id = alert.event_id


class ListSink:
    """Collects records in memory (tests, the CLI's report commands)."""

    def __init__(self):
        self.records: list[dict] = []

    def __call__(self, records: list[dict]) -> None:
        self.records.extend(records)


class JsonLinesSink:
    def __init__(self, handle: BinaryIO):
        self.handle = handle

    def __call__(self, records: list[dict]) -> None:
        self.handle.write(b"".join(orjson.dumps(r, default=json_default) + b"\n" for r in records))


class ArchiveRecordSink:
    """Keeps each record in the record archive's audit stream through the public `append_audit`.

    The action names the record type (`REPORT_ACTIONS`), the record itself is the `record` member;
    the archive's commit (the replay's) makes them durable with the alerts."""

    def __init__(self, archive, inner: Callable[[list[dict]], None] | None = None):
        self.archive = archive
        self.inner = inner

    def __call__(self, records: list[dict]) -> None:
        for record in records:
            self.archive.append_audit(REPORT_ACTIONS.get(record["record_type"], "report.other"), record=record)
        if self.inner is not None:
            self.inner(records)


def archived_records(root, record_type: str | None = None):
    """Reporting records kept in an archive's audit stream, in the order written."""
    from amlwatch.records import ArchiveReader

    reader = ArchiveReader(root)
    actions = set(REPORT_ACTIONS.values()) if record_type is None else {REPORT_ACTIONS[record_type]}
    for stream in reader.streams(("audit",)):
        for record in reader.iter_stream(stream):
            if record.get("action") in actions and isinstance(record.get("record"), dict):
                yield record["record"]
