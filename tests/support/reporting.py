"""Shared builders for the reporting tests: the detector tests' contract-shaped events, and a run
of the core with the reporting hook."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson

from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.detectors.monitor import Monitor
from amlwatch.engine import build_monitor
from amlwatch.events import BadRecord, parse_event
from amlwatch.replay import replay
from amlwatch.reporting.pipeline import ListSink, ReportingMonitor


def reporting_run(records: list[dict], config: Config | None = None, *, flush: bool = False, detectors: bool = False,
                  dispositions=None, ratings: bool = False):
    """(records the hook produced, the wrapped monitor, alerts) for contract dicts in order."""
    config = config or Config()
    core = build_monitor(config, with_model=False) if detectors else Monitor(config, only=frozenset())
    sink = ListSink()
    monitor = ReportingMonitor(core, config, sink, dispositions=dispositions, ratings=ratings)
    alerts = []
    for record in records:
        alerts.extend(monitor.observe(parse_event(orjson.dumps(record))))
    if flush:
        alerts.extend(monitor.flush())
    return sink.records, monitor, alerts


def lvtr_of(records: list[dict]) -> list[dict]:
    return [r for r in records if r["record_type"] == "lvtr"]


HEARTBEAT = orjson.dumps({"type": "account", "event_id": "heartbeat", "ts": "2100-01-01T00:00:00+08:00",
                          "account_id": "amlwatch-heartbeat", "action": "register"})


def late_trades(lines: list[bytes]) -> list[bytes]:
    """Copies of the stream's last paid trades dated 12 to 42 hours before its end, in steps of 3 hours, on
    one token: they reach the worker in the file's order (a supplement's running total depends on it, and
    late trades on different input partitions have no order but their arrival)."""
    events = []
    for raw in lines:
        try:
            events.append((parse_event(raw), raw))
        except BadRecord:
            continue
    last = max(events, key=lambda e: e[0].t)[0]
    trades = [orjson.loads(raw) for event, raw in events if event.type == "trade" and event.paid]
    out = []
    token = {"collection_id": trades[-1]["collection_id"], "token_id": trades[-1]["token_id"]}
    for n, record in enumerate(trades[-11:]):
        ts = datetime.fromisoformat(last.ts) - timedelta(hours=12 + 3 * n)
        record.update(event_id=f"late-{n}", trade_id=f"late-{n}", ts=ts.isoformat(timespec="milliseconds"),
                      price="1500.00", **token)
        out.append(orjson.dumps(record))
    return out


def replay_reports(lines: list[bytes], config: Config) -> list[dict]:
    """The large-value records `amlwatch replay --reports` writes for `lines` (no model, no ratings)."""
    sink = ListSink()
    monitor = ReportingMonitor(build_monitor(config, with_model=False), config, sink, ratings=False)
    replay(enumerate(lines, 1), monitor, lambda alerts: None, DeadLetterFile(None))
    return sink.records


def comparable(records: list[dict]) -> dict[str, dict]:
    """By report id (consumers upsert by it); `watermark` says where the emitting process was, which is
    replay's latest event time and a partition's low watermark in the worker."""
    return {r["report_id"]: {k: v for k, v in r.items() if k != "watermark"} for r in records}


def replay_ratings(lines: list[bytes], config: Config, dispositions=None) -> list[dict]:
    """The risk ratings `amlwatch replay --reports` writes for `lines` (no model, no large-value records)."""
    sink = ListSink()
    monitor = ReportingMonitor(build_monitor(config, with_model=False), config, sink, dispositions=dispositions,
                               lvtr=False)
    replay(enumerate(lines, 1), monitor, lambda alerts: None, DeadLetterFile(None))
    return sink.records
