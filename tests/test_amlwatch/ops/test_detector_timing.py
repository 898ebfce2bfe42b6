"""Sampled per-detector timing in the Monitor: measured on every Nth trade, never changing an alert."""

from __future__ import annotations


import orjson

from amlwatch.detectors.monitor import TIME_EVERY, Monitor
from amlwatch.events import parse_event
from amlwatch.ops.metrics import WorkerMetrics

from support import events as ef


def _stream(trades: int = 300) -> list:
    accounts = [f"acc-{i}" for i in range(12)]
    records = ef.world(*accounts)
    for i in range(trades):
        seller, buyer = accounts[i % 12], accounts[(i * 5 + 1) % 12]
        if seller == buyer:
            buyer = accounts[(i + 1) % 12]
        records.append(ef.trade(seller, buyer, ef.at(minutes=i), token_id=f"tok-{i % 40}",
                                price=f"{100 + (i * 37) % 900}.00"))
    return [parse_event(orjson.dumps(r)) for r in records]


def _run(monitor: Monitor, events: list) -> list[dict]:
    alerts = []
    for event in events:
        alerts.extend(monitor.observe(event))
    alerts.extend(monitor.flush())
    return sorted((a.to_dict(detected_at="-") for a in alerts), key=lambda a: a["alert_id"])


def test_default_samples_every_64th_trade_and_names_each_detector():
    assert TIME_EVERY == 64
    monitor = Monitor()
    assert monitor.time_every == TIME_EVERY
    _run(monitor, _stream(300))
    names = {d.name for d in monitor.detectors}
    assert set(monitor.detector_seconds) == names
    assert all(seconds > 0 for seconds in monitor.detector_seconds.values())


def test_timing_never_changes_the_alerts():
    events = _stream(300)
    untimed, every_trade = Monitor(), Monitor()
    untimed.sample_detector_time(0)
    every_trade.sample_detector_time(1)
    assert _run(untimed, events) == _run(every_trade, events) == _run(Monitor(), events)
    assert untimed.detector_seconds == {}
    assert set(every_trade.detector_seconds) == {d.name for d in every_trade.detectors}


def test_sampled_trades_are_exactly_every_nth():
    monitor = Monitor()
    monitor.sample_detector_time(10)
    timed = []
    original = monitor._observe_trade_timed
    monitor._observe_trade_timed = lambda trade: timed.append(trade.trade_id) or original(trade)
    events = _stream(95)
    _run(monitor, events)
    trades = [e.trade_id for e in events if hasattr(e, "trade_id")]
    assert timed == trades[9::10]


def test_take_returns_growth_since_the_last_take_for_the_metrics():
    monitor = Monitor()
    monitor.sample_detector_time(1)
    events = _stream(40)
    for event in events[:30]:
        monitor.observe(event)
    first = monitor.take_detector_seconds()
    assert first and monitor.take_detector_seconds() == {}
    for event in events[30:]:
        monitor.observe(event)
    second = monitor.take_detector_seconds()
    for name, total in monitor.detector_seconds.items():
        assert abs(first.get(name, 0) + second.get(name, 0) - total) < 1e-9
    metrics = WorkerMetrics()
    metrics.detector_timings(first)
    metrics.detector_timings(second)
    for name, total in monitor.detector_seconds.items():
        value = metrics.registry.get_sample_value("amlwatch_detector_seconds_total", {"detector": name})
        assert abs(value - total) < 1e-9
