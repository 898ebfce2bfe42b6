"""Replay observes events in batches (`Monitor.observe_batch`) so the anomaly forest scores many rows in one
pass; the alerts, their order and the dead letters must be those of one event at a time."""

from __future__ import annotations

import dataclasses
import gzip
import io
import random

import orjson
import pytest

import amlwatch.replay as replay_module
from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.detectors.base import Detector
from amlwatch.engine import build_monitor
from amlwatch.events import BadRecord, parse_event
from amlwatch.replay import replay
from amlwatch.simulator import simulate
from support.events import WARM_MODEL as WARM


@pytest.fixture(scope="module")
def dirty_lines(tmp_path_factory):
    """A simulated month's first days with every kind of dead letter mixed in: bad lines, a reused event id
    with other content, an exact redelivery, and a trade far ahead of the watermark."""
    out = tmp_path_factory.mktemp("sim")
    simulate(out, seed=5, days=10, accounts=600)
    lines = gzip.decompress((out / "events.jsonl.gz").read_bytes()).splitlines()
    rng = random.Random(8)
    trades = [line for line in lines if b'"type":"trade"' in line]
    extra = [b"{not json", b'{"type": "refund", "event_id": "x-2", "ts": "2026-03-01T10:00:00+08:00"}']
    for line in rng.sample(trades, 20):
        record = orjson.loads(line)
        extra.append(line)                                    # redelivered as it was
        extra.append(orjson.dumps({**record, "price": "1.00"}))  # the same event id, other content
    far = orjson.loads(trades[0])
    extra.append(orjson.dumps({**far, "event_id": "far-1", "trade_id": "far-1", "ts": "2027-06-01T00:00:00+08:00"}))
    mixed = list(lines)
    for line in extra:
        mixed.insert(rng.randrange(len(mixed) // 10, len(mixed)), line)
    return mixed


class FlakyBatchedDetector(Detector):
    """A batched detector that alerts on every paid trade, whose staging fails on some trades and whose
    settling fails on others: a fault must cost those trades only, batched or not."""

    name = "test.flaky_batched"
    typology = "anomaly"
    batched = True

    def observe(self, view):
        staged = self.stage(view)
        return [] if staged is None else self.settle([staged])[0]

    def stage(self, view):
        trade = view.trade
        if trade.trade_id.endswith("3"):
            raise RuntimeError("stage failed")
        return trade if trade.paid else None

    def settle(self, staged):
        if any(trade.trade_id.endswith("7") for trade in staged):
            raise RuntimeError("settle failed")
        return [[self.alert(trade, 0.3, f"paid trade {trade.trade_id}", {})] for trade in staged]


def _replayed(lines, batch, monkeypatch, *, model=True, extra=()):
    """Replay's alerts and dead letters; batch None: without `observe_batch`, `observe` event by event."""
    monkeypatch.setattr(replay_module, "REPLAY_BATCH", batch or 64)
    monitor = build_monitor(WARM, with_model=model)
    if batch is None:
        monitor.observe_batch = None
    for detector in extra:         # first: its alerts then precede the other detectors' on the same trade
        monitor.detectors.insert(0, detector)
        monitor.stream_detectors.insert(0, detector)
    monitor._calls(monitor.stream_detectors, monitor.registry_detectors)
    alerts: list[bytes] = []
    dead = io.BytesIO()
    replay(enumerate(lines, 1), monitor, lambda found: alerts.extend(a.to_json("x") for a in found),
           DeadLetterFile(dead))
    return alerts, dead.getvalue().splitlines()


def test_batched_replay_gives_the_alerts_and_dead_letters_of_one_event_at_a_time(dirty_lines, monkeypatch):
    one_alerts, one_dead = _replayed(dirty_lines, None, monkeypatch)
    batch_alerts, batch_dead = _replayed(dirty_lines, 256, monkeypatch)
    assert sum(b'"anomaly.isolation_forest"' in a for a in one_alerts) > 20, "the model must alert on this stream"
    assert batch_alerts == one_alerts
    assert batch_dead == one_dead
    reasons = {orjson.loads(d)["reason"].split(":")[0] for d in one_dead}
    assert {"duplicate_event_id_conflict", "event_time_skew"} <= reasons


def test_a_batched_detectors_faults_cost_the_trades_it_fails_on_only(dirty_lines, monkeypatch):
    one_alerts, one_dead = _replayed(dirty_lines, None, monkeypatch, model=False, extra=[FlakyBatchedDetector()])
    batch_alerts, batch_dead = _replayed(dirty_lines, 256, monkeypatch, model=False, extra=[FlakyBatchedDetector()])
    flaky = [a for a in batch_alerts if b'"test.flaky_batched"' in a]
    assert flaky and not any(orjson.loads(a)["trade_ids"][-1].endswith(("3", "7")) for a in flaky)
    assert batch_alerts == one_alerts
    assert batch_dead == one_dead
    failed = [orjson.loads(d) for d in batch_dead if b"detector:test.flaky_batched" in d]
    assert {d["reason"].split(": ", 1)[-1] for d in failed} == {"RuntimeError: stage failed",
                                                                   "RuntimeError: settle failed"}


def test_observe_batch_equals_observe_event_by_event(dirty_lines):
    events = []
    for line in dirty_lines[:6000]:
        try:
            events.append(parse_event(line))
        except BadRecord:
            continue
    one, batched = build_monitor(WARM, with_model=True), build_monitor(WARM, with_model=True)
    expected = [([a.to_json("x") for a in one.observe(e)], one.take_rejected()) for e in events]
    got = []
    for start in range(0, len(events), 500):
        got += [([a.to_json("x") for a in alerts], rejected)
                for alerts, rejected in batched.observe_batch(events[start:start + 500])]
    assert any(alerts for alerts, _ in got) and any(rejected for _, rejected in got)
    assert got == expected
    assert batched.rejected == []
