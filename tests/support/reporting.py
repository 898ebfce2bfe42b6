"""Shared builders for the reporting tests: the detector tests' contract-shaped events, and a run
of the core with the reporting hook."""

from __future__ import annotations


import orjson

from amlwatch.config import Config
from amlwatch.detectors.monitor import Monitor
from amlwatch.engine import build_monitor
from amlwatch.events import parse_event
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
