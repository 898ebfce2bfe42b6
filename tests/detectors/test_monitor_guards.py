"""The core's guards: reused event ids, times far off the watermark, a failing detector; each is a counted
rejection with its reason, never a crash, a silent drop, or state applied from the wrong event."""

from __future__ import annotations

import orjson
from support.events import account, at, monitor_run, one, trade, world

from amlwatch.config import Config
from amlwatch.detectors.monitor import Monitor
from amlwatch.events import parse_event

UNVERIFIED = "identity.unverified_party"


def _observe(monitor: Monitor, record: dict):
    return monitor.observe(parse_event(orjson.dumps(record)))


def _fresh(events: list[dict]) -> Monitor:
    monitor, _ = monitor_run(events)
    monitor.take_rejected()
    return monitor


def test_an_identical_redelivery_is_a_silent_counted_duplicate():
    monitor = _fresh(world("acc-a", "acc-b"))
    sale = trade("acc-a", "acc-b", at(hours=1))
    _observe(monitor, sale)
    assert _observe(monitor, dict(sale)) == [] and monitor.duplicates == 1
    assert monitor.rejected == [] and monitor.rejections == {}


def test_a_reused_event_id_with_other_content_is_rejected_not_dropped_or_applied():
    monitor = _fresh(world("acc-a", "acc-b"))
    kyc_kept = account("acc-b", at(hours=1), action="verify", kyc_level=3)
    downgrade = {**kyc_kept, "kyc_level": 0, "ts": at(hours=2)}           # same event_id, other content
    _observe(monitor, kyc_kept)
    assert _observe(monitor, downgrade) == []
    (rejection,) = monitor.take_rejected()
    assert rejection.field == "event_id" and rejection.reason.startswith("duplicate_event_id_conflict")
    assert rejection.event.kyc_level == 0
    assert monitor.registry.accounts["acc-b"].kyc_level == 3, "the downgrade was not applied"
    assert monitor.rejections == {"duplicate_event_id_conflict": 1} and monitor.duplicates == 0
    # ... so a trade of acc-b raises no false unverified-party alert
    assert not [a for a in _observe(monitor, trade("acc-a", "acc-b", at(hours=3))) if a.detector == UNVERIFIED]


def test_after_the_dedupe_window_an_old_event_is_rejected_not_applied_as_new():
    monitor = _fresh(world("acc-a", "acc-b"))
    old = account("acc-b", at(hours=1), action="verify", kyc_level=3)
    _observe(monitor, old)
    _observe(monitor, account("acc-c", at(hours=60)))                      # 48 h dedupe window has passed
    _observe(monitor, account("acc-d", at(hours=60, minutes=2)))
    assert _observe(monitor, {**old, "kyc_level": 0}) == []
    (rejection,) = monitor.take_rejected()
    assert rejection.reason.startswith("late_beyond_dedupe_window") and rejection.field == "ts"
    assert monitor.registry.accounts["acc-b"].kyc_level == 3


def test_one_far_future_trade_does_not_wipe_state_and_is_rejected():
    events = world("acc-a", "acc-b") + [trade("acc-a", "acc-b", at(hours=h), token_id=f"tok-{h}")
                                        for h in range(1, 6)]
    monitor = _fresh(events)
    held = monitor.state_size()
    stray = trade("acc-a", "acc-b", "2100-01-01T00:00:00+08:00", token_id="tok-x")
    assert _observe(monitor, stray) == []
    (rejection,) = monitor.take_rejected()
    assert rejection.reason.startswith("event_time_skew") and rejection.event.trade_id == stray["trade_id"]
    _observe(monitor, trade("acc-b", "acc-a", at(hours=7), token_id="tok-7"))
    after = monitor.state_size()
    assert after["tokens_recent"] == held["tokens_recent"] + 1, "the windows kept their history"
    assert monitor.watermark < parse_event(orjson.dumps(stray)).t


def test_a_far_future_registry_event_is_applied_without_moving_event_time():
    """The `amlwatch produce --heartbeat` account (dated 2100) ends the grace of waiting trades, as always."""
    monitor = _fresh(world("acc-a", "acc-b"))
    waiting = trade("acc-a", "acc-nobody", at(hours=1))
    _observe(monitor, waiting)
    alerts = _observe(monitor, account("amlwatch-heartbeat", "2100-01-01T00:00:00+08:00"))
    assert any(a.detector == "identity.unregistered_party" for a in alerts)
    assert monitor.skewed == 1 and monitor.watermark < 4e9 and monitor.rejected == []


def test_a_real_jump_in_event_time_is_confirmed_by_a_second_event():
    monitor = _fresh(world("acc-a", "acc-b"))
    _observe(monitor, account("acc-c", at(days=120)))
    _observe(monitor, trade("acc-a", "acc-b", at(days=120, hours=1)))
    assert monitor.rejected == [] and monitor.watermark == parse_event(
        orjson.dumps(trade("acc-a", "acc-b", at(days=120, hours=1)))).t


def test_gaps_shorter_than_the_max_skew_are_ordinary():
    monitor = _fresh(world("acc-a", "acc-b"))
    _observe(monitor, trade("acc-a", "acc-b", at(days=40)))
    assert monitor.rejected == []


class Broken:
    name = "test.broken"
    typology = "anomaly"
    needs_registry = False
    scope = "collection"

    def observe(self, view):
        raise ZeroDivisionError("float division by zero")

    def observe_registry(self, event, registry):
        return []

    def evict(self, now):
        pass


def test_a_detector_exception_costs_that_detector_that_event_only():
    monitor = Monitor(Config(), extra_detectors=[Broken()])
    for record in world("acc-a", "acc-b"):
        _observe(monitor, record)
    crypto = trade("acc-a", "acc-b", at(hours=1), currency="USDT")
    alerts = _observe(monitor, crypto)
    one(alerts, "settlement.currency")
    (rejection,) = monitor.take_rejected()
    assert rejection.field == "detector:test.broken" and "ZeroDivisionError" in rejection.reason
    assert monitor.detector_errors == {"test.broken": 1}
    _observe(monitor, trade("acc-b", "acc-a", at(hours=2), token_id="tok-2"))
    assert monitor.detector_errors == {"test.broken": 2} and monitor.ledger.transfers


def test_max_skew_must_be_positive():
    import pytest

    from amlwatch.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="max_skew_hours"):
        load_config(None, env={"AMLWATCH_MONITOR__MAX_SKEW_HOURS": "0"})
