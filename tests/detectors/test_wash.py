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
    monitor_run,
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
from amlwatch.config import Config

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


def test_round_trip_a_b_c_a_carries_a_ring_signal():
    mint = primary("acc-a", at())
    legs = [
        trade("acc-a", "acc-b", at(days=1), price="100.00"),
        trade("acc-b", "acc-c", at(days=2), price="100.00"),
        trade("acc-c", "acc-a", at(days=3), price="100.00"),
    ]
    alert = one(run(world("acc-a", "acc-b", "acc-c") + [mint] + legs), ROUND_TRIP)
    assert alert.severity == "medium"  # one price, three days, new accounts: no links
    assert alert.evidence["signals"]["ring"] == 1.0
    assert alert.evidence["isolation"] == pytest.approx((2 / 3 + 1 + 1) / 3, abs=1e-3)
    assert alert.trade_ids == trade_ids(*legs)
    assert alert.evidence["legs"] == 3
    assert "acc-a -> acc-b -> acc-c -> acc-a" in alert.reason
    assert "3 trades" in alert.reason and "2.0 days" in alert.reason


def _phone_linked(*others):
    """acc-a and acc-b share a phone (slow cycles need such evidence to score)."""
    return world("acc-a", *others) + [account("acc-b", at(hours=-1), phone_hash=phone_of("acc-a"))]


def test_round_trip_just_inside_the_window_fires():
    leg1 = trade("acc-a", "acc-b", at(days=1))
    leg2 = trade("acc-b", "acc-a", at(days=31, minutes=-1))
    alert = one(run(_phone_linked() + [primary("acc-a", at()), leg1, leg2]), ROUND_TRIP)
    assert alert.trade_ids == trade_ids(leg1, leg2)


def test_round_trip_completing_after_30_days_and_a_minute_is_not_wash():
    leg1 = trade("acc-a", "acc-b", at(days=1))
    leg2 = trade("acc-b", "acc-a", at(days=31, minutes=1))
    alerts = run(_phone_linked() + [primary("acc-a", at()), leg1, leg2])
    none_of(alerts, ROUND_TRIP)


def test_slow_buy_back_at_one_price_between_old_unlinked_accounts_is_not_wash():
    leg1 = trade("acc-a", "acc-b", at(days=1))
    leg2 = trade("acc-b", "acc-a", at(days=20))
    none_of(run(world("acc-a", "acc-b", t=at(days=-30)) + [primary("acc-a", at()), leg1, leg2]), ROUND_TRIP)


def test_dealer_meeting_its_tokens_again_is_not_a_round_trip_or_repeat_buyer():
    # acc-d buys a large share of the collection (30 of ~40 trades): tokens come back to it by chance.
    others = [f"acc-o{i}" for i in range(10)]
    book = [trade(others[i % 10], "acc-d", at(hours=i), token_id=f"tok-d{i}") for i in range(30)]
    book += [trade("acc-d", others[i], at(hours=30 + i), token_id=f"tok-d{i}") for i in range(10)]
    cycle = [trade("acc-d", "acc-b", at(days=3), token_id="tok-1"),
             trade("acc-b", "acc-d", at(days=3, hours=2), token_id="tok-1"),
             trade("acc-d", "acc-c", at(days=3, hours=4), token_id="tok-1"),
             trade("acc-c", "acc-d", at(days=3, hours=6), token_id="tok-1")]
    events = world("acc-d", "acc-b", "acc-c", *others, t=at(days=-30)) + [primary("acc-d", at())]
    alerts = run(events + book + cycle)
    none_of(alerts, ROUND_TRIP, REBUY)
    # The same cycle by an account that trades little else there is caught.
    quiet = [trade(s.replace("acc-d", "acc-q") if s == "acc-d" else s, b.replace("acc-d", "acc-q"), at(days=3, hours=2 * n),
                   token_id="tok-q") for n, (s, b) in enumerate(
                       [("acc-d", "acc-b"), ("acc-b", "acc-d"), ("acc-d", "acc-c"), ("acc-c", "acc-d")])]
    caught = run(world("acc-q", "acc-b", "acc-c", *others, t=at(days=-30)) + [primary("acc-q", at(), token_id="tok-q")]
                 + book + quiet)
    assert [a.detector for a in caught if a.detector in (ROUND_TRIP, REBUY)]


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


# --- honest patterns next to their laundering counterparts (issue 12) ----------------------------


def test_honest_buy_back_a_week_later_in_a_rising_market_is_not_a_round_trip():
    # Sold at 100, bought back 8 days later at 250 (the collection rose): a cycle, nothing more.
    events = world("acc-a", "acc-b", t=at(days=-30))
    mint = primary("acc-a", at(), price="99.00")
    sold = trade("acc-a", "acc-b", at(days=1), price="100.00")
    back = trade("acc-b", "acc-a", at(days=9), price="250.00")
    none_of(run(events + [mint, sold, back]), ROUND_TRIP)


def test_fast_round_trip_at_one_price_between_old_accounts_still_fires():
    events = world("acc-a", "acc-b", t=at(days=-30))
    sold = trade("acc-a", "acc-b", at(days=1), price="100.00")
    back = trade("acc-b", "acc-a", at(days=1, hours=3), price="100.00")
    alert = one(run(events + [primary("acc-a", at()), sold, back]), ROUND_TRIP)
    # acc-a's three trades there (mint, sale, buy-back) are two legs of the cycle: isolation (2/3 + 1) / 2.
    assert alert.evidence["isolation"] == pytest.approx(0.833, abs=1e-3)
    assert alert.evidence["signals"]["price_symmetry"] == alert.evidence["signals"]["speed"] == 0.833
    assert alert.severity == "medium"


def test_same_cycle_among_accounts_trading_with_many_others_is_chance():
    # acc-a and acc-b each trade 20 other tokens with others: one token coming back is no ring.
    others = [f"acc-o{i}" for i in range(20)]
    busy = [trade(o, a, at(hours=i), token_id=f"tok-{a}-{i}") for a in ("acc-a", "acc-b") for i, o in enumerate(others)]
    events = world("acc-a", "acc-b", *others, t=at(days=-30))
    sold = trade("acc-a", "acc-b", at(days=1), price="100.00")
    back = trade("acc-b", "acc-a", at(days=1, hours=3), price="100.00")
    none_of(run(events + busy + [primary("acc-a", at()), sold, back]), ROUND_TRIP)


def test_linked_parties_raise_a_round_trip_score():
    plain = world("acc-a", "acc-b", t=at(days=-30))
    linked = world("acc-a", t=at(days=-30)) + [account("acc-b", at(days=-30), phone_hash=phone_of("acc-a"))]
    legs = [primary("acc-a", at()), trade("acc-a", "acc-b", at(days=1)), trade("acc-b", "acc-a", at(days=5))]
    low, high = one(run(plain + legs), ROUND_TRIP), one(run(linked + legs), ROUND_TRIP)
    assert high.evidence["links"] == {"shared_phone": 0.85}
    assert high.score > low.score


def test_round_trip_path_names_every_owner_even_across_an_unrecorded_transfer():
    # acc-b's sale to acc-c is missing from the stream: the path still names acc-c.
    legs = [
        primary("acc-a", at()),
        trade("acc-a", "acc-b", at(days=1)),
        trade("acc-c", "acc-a", at(days=2)),
    ]
    alert = one(run(world("acc-a", "acc-b", "acc-c") + legs), ROUND_TRIP)
    assert alert.evidence["path"] == ["acc-a", "acc-b", "acc-c", "acc-a"]
    assert alert.evidence["unrecorded_transfers"] == 1
    assert "acc-a -> acc-b -> acc-c -> acc-a" in alert.reason


def test_one_way_bulk_sweep_with_one_trade_back_is_not_a_pair_repeat():
    sweep = [trade("acc-a", "acc-b", at(hours=1, minutes=m), token_id=f"tok-{m}") for m in range(10)]
    back = trade("acc-b", "acc-a", at(hours=2), token_id="tok-0")
    none_of(run(world("acc-a", "acc-b") + sweep + [back]), PAIR)


def test_configurable_minimum_each_way():
    trades = [
        trade("acc-a", "acc-b", at(hours=1), token_id="tok-1"),
        trade("acc-b", "acc-a", at(hours=2), token_id="tok-2"),
        trade("acc-a", "acc-b", at(hours=3), token_id="tok-3"),
    ]
    strict = Config.from_mapping({"wash": {"pair_min_each_way": 2}})
    none_of(run(world("acc-a", "acc-b") + trades, strict), PAIR)
    one(run(world("acc-a", "acc-b") + trades + [trade("acc-b", "acc-a", at(hours=4), token_id="tok-4")],
            strict), PAIR)


def test_very_active_market_maker_trading_both_ways_with_a_client_is_not_a_pair_repeat():
    # acc-mm trades with 20 others; its three trades with acc-c are a small share of its activity,
    # though most of acc-c's.
    others = [f"acc-o{i}" for i in range(20)]
    book = [trade("acc-mm", o, at(minutes=i), token_id=f"tok-o{i}") for i, o in enumerate(others)]
    book += [trade(o, "acc-mm", at(minutes=30 + i), token_id=f"tok-p{i}") for i, o in enumerate(others)]
    client = [
        trade("acc-mm", "acc-c", at(hours=2), token_id="tok-c1"),
        trade("acc-c", "acc-mm", at(hours=3), token_id="tok-c2"),
        trade("acc-mm", "acc-c", at(hours=4), token_id="tok-c3"),
    ]
    none_of(run(world("acc-mm", "acc-c", *others) + book + client), PAIR)


def test_pair_growing_over_many_trades_is_one_episode():
    trades = [trade(*(("acc-a", "acc-b") if i % 2 == 0 else ("acc-b", "acc-a")), at(hours=i + 1),
                    token_id=f"tok-{i}") for i in range(8)]
    alerts = [a for a in run(world("acc-a", "acc-b") + trades) if a.detector == PAIR]
    assert len(alerts) == 6  # the 3rd to the 8th trade
    assert len({a.episode_id for a in alerts}) == 1 and alerts[0].episode_id == alerts[0].alert_id
    assert [a.episode_seq for a in alerts] == [1, 2, 3, 4, 5, 6]
    assert alerts[-1].trade_ids == trade_ids(*trades)
    assert len({a.alert_id for a in alerts}) == 6


# --- state: compact entries, bounded by the window (issue 15) --------------------------------------


def _market(days: int, per_day: int, start_day: float = 0.0) -> list[dict]:
    """Unrelated registered accounts each selling a token of their own once, `per_day` trades a day."""
    events = []
    for n in range(days * per_day):
        day = start_day + n / per_day
        seller, buyer = f"bg-s{n}", f"bg-b{n}"
        events += [account(seller, at(days=day, minutes=-5)), account(buyer, at(days=day, minutes=-5)),
                   trade(seller, buyer, at(days=day), token_id=f"bg-tok{n}", price=f"{100 + n % 50}.00")]
    return events


def _merged(*streams: list[dict]) -> list[dict]:
    return sorted((e for stream in streams for e in stream), key=lambda e: e["ts"])


def _held_entries(monitor):
    ledger = monitor.ledger
    windows = [ledger.transfers, ledger.last_transfer]
    windows += [d.window for d in monitor.detectors if d.name in (PAIR, REBUY)]
    return windows, [entry for w in windows for held in w._entries.values()
                     for entry in (held if isinstance(held, list) else [held])]


def test_wash_patterns_spread_over_the_window_survive_a_busy_market_and_its_evictions():
    """Each pattern's first trade is four weeks old when it completes, under a thousand other trades."""
    phone = phone_of("acc-r")
    pattern = world("acc-a", "acc-b", "acc-c", "acc-d", t=at(days=-40)) + [
        account("acc-r", at(days=-40), phone_hash=phone), account("acc-q", at(days=-40), phone_hash=phone),
        # pair repeat: acc-a and acc-b, both ways, days 0, 14 and 28
        trade("acc-a", "acc-b", at(days=0), token_id="tok-p1", price="500.00"),
        trade("acc-b", "acc-a", at(days=14), token_id="tok-p2", price="510.00"),
        trade("acc-a", "acc-b", at(days=28), token_id="tok-p3", price="505.00"),
        # repeat buyer: acc-c buys tok-rb on days 1, 15 and 29
        trade("acc-d", "acc-c", at(days=1), token_id="tok-rb", price="300.00", kind="primary"),
        trade("acc-c", "acc-d", at(days=8), token_id="tok-rb", price="300.00"),
        trade("acc-d", "acc-c", at(days=15), token_id="tok-rb", price="300.00"),
        trade("acc-c", "acc-d", at(days=22), token_id="tok-rb", price="300.00"),
        trade("acc-d", "acc-c", at(days=29), token_id="tok-rb", price="300.00"),
        # round trip between two accounts sharing a phone: out on day 2, back on day 27
        trade("acc-r", "acc-q", at(days=2), token_id="tok-rt", price="800.00"),
        trade("acc-q", "acc-r", at(days=27), token_id="tok-rt", price="800.00"),
    ]
    monitor, alerts = monitor_run(_merged(pattern, _market(30, 40)))
    [pair] = [a for a in alerts if a.detector == PAIR and a.accounts == ["acc-a", "acc-b"]]
    assert pair.trade_ids == trade_ids(*pattern[-10:-7]) and pair.evidence["trades"] == 3
    rebuy = one(alerts, REBUY)
    assert rebuy.evidence["buys"] == 3 and rebuy.trade_ids == trade_ids(*pattern[-7:-2])
    assert rebuy.evidence["path"] == ["acc-d", "acc-c", "acc-d", "acc-c", "acc-d", "acc-c"]
    trip = one(alerts, ROUND_TRIP)
    assert trip.trade_ids == trade_ids(*pattern[-2:]) and trip.evidence["path"] == ["acc-r", "acc-q", "acc-r"]
    assert trip.evidence["days"] == 25.0 and trip.evidence["prices"] == ["800.00", "800.00"]


def test_wash_state_keeps_compact_shared_entries_bounded_by_the_window_on_a_long_stream():
    from amlwatch.detectors.ledger import Transfer
    from amlwatch.events import TradeEvent

    per_day, days = 20, 120
    monitor, alerts = monitor_run(_market(days, per_day))
    none_of(alerts, "wash_trading")
    windows, held = _held_entries(monitor)
    ledger, pair, rebuy = windows[0], windows[2], windows[3]
    month = 30 * per_day + 2                         # 30 days of trades (plus one eviction interval)
    assert ledger.entries() <= month and pair.entries() <= month and rebuy.entries() <= month
    assert len(monitor.ledger.activity) <= 3 * month  # the collection and both parties of each trade
    assert len(ledger._expiry) <= 2 * month           # flat: a time and a key per entry
    # Nothing keeps the trade events themselves: one (t, Transfer) tuple per trade, shared by every window.
    assert all(type(entry[1]) is Transfer for entry in held)
    assert not any(isinstance(entry[1], TradeEvent) for entry in held)
    newest = pair.recent(next(reversed(pair._entries)), float("-inf"))[-1]
    assert ledger.recent(newest[1].token_id, newest[0])[-1] is newest
    assert rebuy.recent((newest[1].buyer_id, newest[1].token_id), newest[0])[-1] is newest
