"""Monitor scheduling: late registry data, grace, duplicates, deterministic ids, bounded state."""

from __future__ import annotations


import orjson
import pytest
from support.events import (
    account,
    at,
    card_of,
    collection,
    gift,
    id_of,
    monitor_run,
    name_of,
    none_of,
    one,
    primary,
    run,
    trade,
    world,
)

from amlwatch.config import Config
from amlwatch.detectors.monitor import Monitor, content_fingerprint
from amlwatch.events import parse_event

UNREGISTERED = "identity.unregistered_party"


def _feed(monitor: Monitor, record: dict):
    return monitor.observe(parse_event(orjson.dumps(record)))


# --- late registry data --------------------------------------------------------------------------


def test_trade_before_its_buyers_registry_events_raises_no_identity_alert():
    sale = primary("acc-late", at(minutes=1))
    late = [
        account("acc-late", at(minutes=4), kyc_level=1),
        account("acc-late", at(minutes=4), action="verify"),
    ]
    later = account("acc-other", at(minutes=30))
    alerts = run(world() + [sale] + late + [later])
    assert alerts == [], [f"{a.detector}: {a.reason}" for a in alerts]


def test_late_buyer_who_only_reaches_kyc_1_is_unverified_not_unregistered():
    sale = primary("acc-late", at(minutes=1))
    alerts = run(world() + [sale, account("acc-late", at(minutes=4), kyc_level=1)])
    none_of(alerts, UNREGISTERED)
    assert one(alerts, "identity.unverified_party").trade_ids == [sale["trade_id"]]


def test_buyer_who_never_registers_is_reported_at_flush():
    monitor = Monitor(Config())
    for record in world():
        assert _feed(monitor, record) == []
    sale = primary("acc-ghost", at(minutes=1))
    assert _feed(monitor, sale) == []
    assert monitor.state_size()["pending"] == 1
    alerts = monitor.flush()
    alert = one(alerts, UNREGISTERED)
    assert alert.trade_ids == [sale["trade_id"]]
    assert alert.evidence["unregistered"] == ["acc-ghost"]
    assert alert.ts == sale["ts"]
    assert monitor.state_size()["pending"] == 0
    assert monitor.flush() == []


def test_buyer_who_never_registers_is_reported_when_event_time_passes_the_grace():
    monitor = Monitor(Config())
    for record in world():
        _feed(monitor, record)
    sale = primary("acc-ghost", at(minutes=1))
    assert _feed(monitor, sale) == []
    assert _feed(monitor, account("acc-x", at(minutes=10, seconds=59))) == []
    alerts = _feed(monitor, account("acc-y", at(minutes=11, seconds=1)))
    alert = one(alerts, UNREGISTERED)
    assert alert.trade_ids == [sale["trade_id"]]
    assert "acc-ghost" in alert.reason
    assert monitor.flush() == []


def test_registry_checks_of_a_trade_with_known_parties_run_at_once():
    monitor = Monitor(Config())
    for record in world("acc-s", "acc-b"):
        _feed(monitor, record)
    sale = trade("acc-s", "acc-b", at(minutes=1), payer_name_hash=name_of("acc-z"),
                 instrument_hash=card_of("acc-z"))
    assert [a.detector for a in _feed(monitor, sale)] == ["identity.payer_mismatch"]
    assert monitor.state_size()["pending"] == 0


def test_trade_in_an_unknown_collection_is_reported():
    sale = trade("acc-s", "acc-b", at(minutes=1), collection_id="col-unknown")
    alerts = run(world("acc-s", "acc-b") + [sale])
    assert [a.detector for a in alerts] == ["asset.unregistered_collection"]
    assert alerts[0].trade_ids == [sale["trade_id"]]


# --- duplicates ----------------------------------------------------------------------------------


def test_redelivered_event_yields_no_second_alert():
    first = trade("acc-a", "acc-b", at(hours=1), token_id="tok-1")
    back = trade("acc-b", "acc-a", at(hours=2), token_id="tok-2", currency="USDT")
    launch = collection("col-bond", at(minutes=-30), asset_class="security")
    events = world("acc-a", "acc-b") + [launch, launch, first, back, back, first]
    monitor, alerts = monitor_run(events)
    assert monitor.duplicates == 3
    # Counted once, the pair has only two trades: no pair repeat from the re-deliveries.
    none_of(alerts, "wash.pair_repeat")
    assert [a.detector for a in alerts] == ["asset.financial", "settlement.currency"]


@pytest.mark.parametrize("change", [{"price": "100.0"}, {"buyer_ip": None}, {"buyer_ip": "None"},
                                    {"ts": at(hours=1, seconds=1)}, {"payment": None}])
def test_fingerprint_tells_changed_content_from_a_redelivery(change):
    record = trade("acc-a", "acc-b", at(hours=1), price="100.00", buyer_ip="1.2.3.4")
    same = parse_event(orjson.dumps(record))
    assert content_fingerprint(parse_event(record)) == content_fingerprint(same)
    assert content_fingerprint(parse_event({**record, **change})) != content_fingerprint(same)


def test_fingerprint_of_registry_events_covers_decimals_booleans_and_card_lists():
    launch = collection("col-x", at(minutes=-5), issue_price="99.00", fractional=False)
    verify = account("acc-a", at(minutes=-4), action="verify")
    for record, change in ((launch, {"issue_price": "99.0"}), (launch, {"fractional": None}),
                           (verify, {"bank_card_hashes": []}), (verify, {"bank_card_hashes": None})):
        assert content_fingerprint(parse_event(record)) == content_fingerprint(parse_event(dict(record)))
        assert content_fingerprint(parse_event({**record, **change})) != content_fingerprint(parse_event(record))


# --- determinism ---------------------------------------------------------------------------------


def _busy_stream():
    events = world("acc-a", "acc-b", "acc-c", "acc-kid") + [
        account("acc-kid", at(minutes=-30), action="update", birth_year=2012),
        account("acc-twin", at(minutes=-20), id_hash=id_of("acc-a")),
        collection("col-bond", at(minutes=-10), asset_class="security"),
    ]
    events += [
        primary("acc-a", at(minutes=1)),
        trade("acc-a", "acc-b", at(hours=1), price="400.00"),
        trade("acc-b", "acc-a", at(hours=2), price="900.00"),
        trade("acc-b", "acc-kid", at(hours=3), token_id="tok-2", currency="USDT", method="crypto"),
        trade("acc-c", "acc-b", at(hours=4), token_id="tok-3", collection_id="col-bond"),
        trade("acc-c", "acc-ghost", at(hours=5), token_id="tok-4", price="49000.00", method="digital_rmb"),
        trade("acc-twin", "acc-ghost", at(hours=6), token_id="tok-5", price="49500.00", method="digital_rmb"),
        gift("acc-a", "acc-c", at(hours=7)),
    ]
    return events


def test_alert_ids_and_contents_are_deterministic():
    events = _busy_stream()
    first = [a.to_dict() for a in run(events)]
    second = [a.to_dict() for a in run(events)]
    assert len(first) >= 8
    for a in first + second:
        a.pop("detected_at")
    assert first == second
    assert len({a["alert_id"] for a in first}) == len(first)
    assert {a["detector"] for a in first} >= {
        "wash.round_trip", "speculation.rapid_flip", "identity.minor_buyer", "settlement.currency",
        "asset.financial", "identity.shared_national_id", "identity.unregistered_party",
        "structuring.near_threshold",
    }
    assert all(a["versions"]["config"] == Config().hash for a in first)


def test_alert_serialises_with_detected_at_as_the_only_wall_clock_value():
    alert = run(_busy_stream())[0]
    one_ = orjson.loads(alert.to_json("2026-01-01T00:00:00.000+00:00"))
    two = orjson.loads(alert.to_json("2027-01-01T00:00:00.000+00:00"))
    assert one_["detected_at"] != two["detected_at"]
    one_.pop("detected_at"), two.pop("detected_at")
    assert one_ == two
    assert one_["alert_id"].startswith("al-")


# --- bounded state -------------------------------------------------------------------------------


def test_state_is_evicted_as_event_time_moves_on():
    n, days = 5000, 100
    step = days * 24 * 60 / n  # minutes between trades
    events = world()
    for i in range(n):
        seller, buyer = f"acc-s{i}", f"acc-b{i}"
        events.append(account(seller, at(minutes=i * step - 1)))
        events.append(account(buyer, at(minutes=i * step - 1)))
        events.append(trade(seller, buyer, at(minutes=i * step), token_id=f"tok-{i}",
                            price=f"{100 + i % 7}.00"))
    monitor = Monitor(Config())
    peak: dict[str, int] = {}
    alerts = []
    for record in events:
        alerts += monitor.observe(parse_event(record))
        for key, value in monitor.state_size().items() if record["type"] == "trade" else ():
            peak[key] = max(peak.get(key, 0), value)
    alerts += monitor.flush()
    assert alerts == []

    size = monitor.state_size()
    per_day = n / days
    # The token history holds ~30 days of transfers (plus one minute of eviction slack), not 100.
    assert 29 * per_day <= size["tokens_recent"] <= 30 * per_day + 3
    assert peak["tokens_recent"] <= 30 * per_day + 3
    assert peak["wash.pair_repeat.window"] <= 30 * per_day + 3
    assert peak["wash.repeat_buyer.window"] <= 30 * per_day + 3
    assert peak["seen_event_ids"] <= 3 * (2 * per_day) + 6  # 48 h of events
    assert peak["pending"] == 0 and size["pending"] == 0
    assert peak["speculation.price_spike.prices"] == 1 and peak["speculation.pump.trades"] == 1
    assert peak["structuring.near_threshold.window"] == 0
    assert size["tokens_held"] == n  # 200-day holding horizon: still within it

    # One event far ahead does not move event time (it could be a typo in a year) ...
    _feed(monitor, account("acc-late", at(days=days + 201)))
    assert monitor.state_size()["tokens_held"] == n and monitor.skewed == 1
    # ... a second one near it confirms the jump: once event time moves far past every window, all drain.
    _feed(monitor, account("acc-later", at(days=days + 201, minutes=1)))
    drained = monitor.state_size()
    assert drained["tokens_recent"] == 0 and drained["tokens_held"] == 0
    # The unconfirmed one was remembered at the watermark's time (so it never blocks the expiry order).
    assert drained["seen_event_ids"] == 1
    for key, value in drained.items():
        if "." in key:
            assert value == 0, key
