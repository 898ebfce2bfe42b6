"""wash_trading: linked parties, round trips, pair repeats, repeat buyers (docs/DETECTORS.md)."""

from __future__ import annotations

import pytest
from support.events import (
    account,
    at,
    card_of,
    device_of,
    gift,
    id_of,
    ip_of,
    name_of,
    none_of,
    one,
    phone_of,
    primary,
    run,
    trade,
    trade_ids,
    world,
)

from amlwatch.alerts import SEVERITIES

LINKED = "wash.linked_parties"
ROUND_TRIP = "wash.round_trip"
PAIR = "wash.pair_repeat"
REBUY = "wash.repeat_buyer"


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


# --- wash.linked_parties -------------------------------------------------------------------------


def _linked_trade(**buyer_overrides):
    """acc-s sells to acc-b for 250 CNY; acc-b's registry record carries the overrides."""
    events = world("acc-s") + [account("acc-b", at(hours=-1), **buyer_overrides)]
    sale = trade("acc-s", "acc-b", at(minutes=5), token_id="tok-l", price="250.00")
    return events + [sale], sale


def _assert_linked(alert, sale, link: str, score: float, severity: str):
    assert alert.typology == "wash_trading"
    assert alert.evidence["links"] == {link: score}
    assert alert.score == pytest.approx(score)
    assert alert.severity == severity
    assert alert.trade_ids == [sale["trade_id"]]
    assert set(alert.accounts) == {"acc-s", "acc-b"}
    assert "acc-s" in alert.reason and "acc-b" in alert.reason
    assert link.replace("_", " ") in alert.reason
    assert "250.00 CNY" in alert.reason


def test_linked_by_same_national_id_is_critical():
    events, sale = _linked_trade(id_hash=id_of("acc-s"))
    alert = one(run(events), LINKED)
    _assert_linked(alert, sale, "same_national_id", 1.0, "critical")


def test_shared_device_alone_is_weaker_than_shared_national_id():
    events, sale = _linked_trade(device_id=device_of("acc-s"))
    device = one(run(events), LINKED)
    _assert_linked(device, sale, "shared_device", 0.6, "medium")
    events, _ = _linked_trade(id_hash=id_of("acc-s"))
    national_id = one(run(events), LINKED)
    assert rank(device.severity) < rank(national_id.severity)
    assert device.score < national_id.score


def test_shared_device_seen_only_on_the_trade_links():
    events = world("acc-s", "acc-b")
    sale = trade("acc-s", "acc-b", at(minutes=5), token_id="tok-l", price="250.00",
                 buyer_device_id=device_of("acc-s"))
    alert = one(run(events + [sale]), LINKED)
    _assert_linked(alert, sale, "shared_device", 0.6, "medium")


def test_shared_bank_card_links():
    events, sale = _linked_trade(bank_card_hashes=[card_of("acc-b"), card_of("acc-s")])
    alert = one(run(events), LINKED)
    _assert_linked(alert, sale, "shared_bank_card", 0.9, "critical")


def test_shared_phone_links():
    events, sale = _linked_trade(phone_hash=phone_of("acc-s"))
    alert = one(run(events), LINKED)
    _assert_linked(alert, sale, "shared_phone", 0.85, "high")


def test_seller_funds_buyer_is_wash_not_payer_mismatch():
    events = world("acc-s", "acc-b")
    sale = trade("acc-s", "acc-b", at(minutes=5), token_id="tok-l", price="250.00",
                 payer_name_hash=name_of("acc-s"), instrument_hash=card_of("acc-s"))
    alerts = run(events + [sale])
    _assert_linked(one(alerts, LINKED), sale, "seller_funds_buyer", 0.95, "critical")
    none_of(alerts, "identity.payer_mismatch")


def test_accounts_sharing_only_a_public_ip_are_not_linked():
    shared_ip = "36.110.1.9"
    events = world("acc-s") + [account("acc-b", at(hours=-1), ip=shared_ip)]
    events[1]["ip"] = shared_ip  # acc-s registers from the same NAT address
    assert events[1]["account_id"] == "acc-s"
    sale = trade("acc-s", "acc-b", at(minutes=5), token_id="tok-l", price="250.00",
                 buyer_ip=shared_ip, seller_ip=shared_ip)
    assert run(events + [sale]) == []


def test_gift_between_linked_accounts_is_not_wash():
    events = world("acc-s") + [account("acc-b", at(hours=-1), id_hash=id_of("acc-s"),
                                       device_id=device_of("acc-s"))]
    present = gift("acc-s", "acc-b", at(minutes=5), token_id="tok-l")
    alerts = run(events + [present])
    none_of(alerts, "wash")


def test_unlinked_paid_trade_is_clean():
    events = world("acc-s", "acc-b")
    sale = trade("acc-s", "acc-b", at(minutes=5), token_id="tok-l", price="250.00")
    assert ip_of("acc-s") != ip_of("acc-b")
    assert run(events + [sale]) == []


# --- wash.round_trip -----------------------------------------------------------------------------


def test_round_trip_a_b_a_is_high():
    mint = primary("acc-a", at())
    leg1 = trade("acc-a", "acc-b", at(days=1), price="100.00")
    leg2 = trade("acc-b", "acc-a", at(days=2), price="101.00")
    alert = one(run(world("acc-a", "acc-b") + [mint, leg1, leg2]), ROUND_TRIP)
    assert alert.typology == "wash_trading"
    assert alert.severity == "high"
    assert alert.trade_ids == trade_ids(leg1, leg2)
    assert alert.evidence["legs"] == 2
    assert alert.evidence["path"] == ["acc-a", "acc-b", "acc-a"]
    assert "acc-a -> acc-b -> acc-a" in alert.reason
    assert "2 trades" in alert.reason and "1.0 days" in alert.reason


def test_round_trip_a_b_c_a_is_critical():
    mint = primary("acc-a", at())
    legs = [
        trade("acc-a", "acc-b", at(days=1), price="100.00"),
        trade("acc-b", "acc-c", at(days=2), price="100.00"),
        trade("acc-c", "acc-a", at(days=3), price="100.00"),
    ]
    alert = one(run(world("acc-a", "acc-b", "acc-c") + [mint] + legs), ROUND_TRIP)
    assert alert.severity == "critical"
    assert alert.trade_ids == trade_ids(*legs)
    assert alert.evidence["legs"] == 3
    assert "acc-a -> acc-b -> acc-c -> acc-a" in alert.reason
    assert "3 trades" in alert.reason and "2.0 days" in alert.reason


def test_round_trip_just_inside_the_window_fires():
    leg1 = trade("acc-a", "acc-b", at(days=1))
    leg2 = trade("acc-b", "acc-a", at(days=31, minutes=-1))
    alert = one(run(world("acc-a", "acc-b") + [primary("acc-a", at()), leg1, leg2]), ROUND_TRIP)
    assert alert.trade_ids == trade_ids(leg1, leg2)


def test_round_trip_completing_after_30_days_and_a_minute_is_not_wash():
    leg1 = trade("acc-a", "acc-b", at(days=1))
    leg2 = trade("acc-b", "acc-a", at(days=31, minutes=1))
    alerts = run(world("acc-a", "acc-b") + [primary("acc-a", at()), leg1, leg2])
    none_of(alerts, ROUND_TRIP)


def test_three_leg_cycle_completing_after_the_window_is_not_wash():
    legs = [
        trade("acc-a", "acc-b", at(days=1)),
        trade("acc-b", "acc-c", at(days=10)),
        trade("acc-c", "acc-a", at(days=31, minutes=1)),
    ]
    alerts = run(world("acc-a", "acc-b", "acc-c") + [primary("acc-a", at())] + legs)
    none_of(alerts, ROUND_TRIP)


def test_round_trip_of_gifts_only_is_not_wash():
    legs = [gift("acc-a", "acc-b", at(days=1)), gift("acc-b", "acc-a", at(days=2))]
    alerts = run(world("acc-a", "acc-b") + [gift("acc-issuer", "acc-a", at())] + legs)
    none_of(alerts, ROUND_TRIP)


def test_cycle_longer_than_cycle_max_length_is_not_reported():
    owners = ["acc-a", "acc-b", "acc-c", "acc-d", "acc-e", "acc-a"]  # 5 legs > 4
    legs = [trade(s, b, at(days=i + 1)) for i, (s, b) in enumerate(zip(owners, owners[1:]))]
    alerts = run(world(*owners) + [primary("acc-a", at())] + legs)
    none_of(alerts, ROUND_TRIP)


# --- wash.pair_repeat ----------------------------------------------------------------------------


def test_pair_trading_back_and_forth_is_high():
    trades = [
        trade("acc-a", "acc-b", at(hours=1), token_id="tok-1", price="100.00"),
        trade("acc-b", "acc-a", at(hours=2), token_id="tok-2", price="200.00"),
        trade("acc-a", "acc-b", at(hours=3), token_id="tok-3", price="300.00"),
    ]
    alert = one(run(world("acc-a", "acc-b") + trades), PAIR)
    assert alert.typology == "wash_trading"
    assert alert.severity == "high"
    assert alert.trade_ids == trade_ids(*trades)
    assert set(alert.accounts) == {"acc-a", "acc-b"}
    assert "3 times" in alert.reason and "600.00 CNY" in alert.reason
    assert alert.evidence["trades"] == 3


def test_pair_trading_in_one_direction_only_is_not_a_pair_repeat():
    trades = [trade("acc-a", "acc-b", at(hours=h), token_id=f"tok-{h}") for h in (1, 2, 3, 4)]
    none_of(run(world("acc-a", "acc-b") + trades), PAIR)


def test_pair_with_only_two_trades_is_not_a_pair_repeat():
    trades = [
        trade("acc-a", "acc-b", at(hours=1), token_id="tok-1"),
        trade("acc-b", "acc-a", at(hours=2), token_id="tok-2"),
    ]
    none_of(run(world("acc-a", "acc-b") + trades), PAIR)


def test_pair_repeat_spread_over_more_than_the_window_is_not_wash():
    trades = [
        trade("acc-a", "acc-b", at(), token_id="tok-1"),
        trade("acc-b", "acc-a", at(days=15), token_id="tok-2"),
        trade("acc-a", "acc-b", at(days=30, minutes=1), token_id="tok-3"),
    ]
    none_of(run(world("acc-a", "acc-b") + trades), PAIR)


def test_gifts_do_not_count_towards_a_pair_repeat():
    trades = [
        trade("acc-a", "acc-b", at(hours=1), token_id="tok-1"),
        gift("acc-b", "acc-a", at(hours=2), token_id="tok-2"),
        trade("acc-a", "acc-b", at(hours=3), token_id="tok-3"),
    ]
    none_of(run(world("acc-a", "acc-b") + trades), PAIR)


# --- wash.repeat_buyer ---------------------------------------------------------------------------


def _rebuys(last_at: str):
    return [
        primary("acc-a", at()),
        trade("acc-a", "acc-b", at(days=1)),
        trade("acc-b", "acc-a", at(days=2)),
        trade("acc-a", "acc-c", at(days=3)),
        trade("acc-c", "acc-a", last_at),
    ]


def test_same_account_buying_the_same_token_three_times_in_30_days():
    trades = _rebuys(at(days=4))
    alert = one(run(world("acc-a", "acc-b", "acc-c") + trades), REBUY)
    assert alert.typology == "wash_trading"
    assert alert.severity == "high"
    assert alert.trade_ids == trade_ids(*trades)
    assert alert.trade_ids[-1] == trades[-1]["trade_id"]
    assert alert.token_ids == ["tok-1"]
    assert "acc-a" in alert.reason and "3 times" in alert.reason and "30 days" in alert.reason
    assert alert.evidence["buys"] == 3


def test_third_buy_after_30_days_and_a_minute_is_not_a_repeat_buyer():
    trades = _rebuys(at(days=30, minutes=1))
    none_of(run(world("acc-a", "acc-b", "acc-c") + trades), REBUY)
