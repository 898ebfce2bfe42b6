"""speculation: price spikes, pumps, rapid flips, transfer locks (docs/DETECTORS.md)."""

from __future__ import annotations

from support.events import account, at, gift, none_of, one, primary, run, trade, trade_ids, world

SPIKE = "speculation.price_spike"
PUMP = "speculation.pump"
FLIP = "speculation.rapid_flip"
LOCK = "speculation.transfer_lock"

SELLERS = [f"acc-s{i}" for i in range(8)]
BUYERS = [f"acc-b{i}" for i in range(8)]


def _market(prices: list[str], *, step_minutes: float = 60, start_minutes: float = 0):
    """Secondary trades on distinct tokens between distinct, unlinked accounts."""
    return [
        trade(SELLERS[i % 8], BUYERS[i % 8], at(minutes=start_minutes + i * step_minutes),
              token_id=f"tok-m{i}", price=price)
        for i, price in enumerate(prices)
    ]


def _world():
    return world(*SELLERS, *BUYERS)


# --- speculation.price_spike ---------------------------------------------------------------------


def _bought(token_id: str, price: str = "99.00", buyer: str = "acc-s7", days: float = -1):
    """The token's earlier paid sale: its own last price in the ledger."""
    return trade("acc-s6", buyer, at(days=days), token_id=token_id, price=price)


def test_resale_three_times_its_own_price_and_the_collections_top_is_a_spike():
    history = _market(["100.00", "90.00", "100.00", "110.00", "100.00"])
    spike = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="500.00")
    alert = one(run(_world() + [_bought("tok-x")] + history + [spike]), SPIKE)
    assert alert.typology == "speculation"
    assert alert.severity == "medium"
    assert alert.trade_ids == [spike["trade_id"]]
    assert "500.00 CNY" in alert.reason and "4.7x" in alert.reason and "top 5% level" in alert.reason
    assert alert.evidence["median"] == 100.0 and alert.evidence["samples"] == 6  # the 99.00 sale too
    assert alert.evidence["token_last_price"] == 99.0 and alert.evidence["collection_top"] == 107.5


def test_far_larger_spike_scores_higher():
    history = _market(["100.00"] * 5)
    base = run(_world() + [_bought("tok-x")] + history
               + [trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="400.00")])
    far = run(_world() + [_bought("tok-x")] + history
              + [trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="2000.00")])
    low, high = one(base, SPIKE), one(far, SPIKE)
    assert high.score > low.score and high.severity in ("high", "critical")
    assert "20.0x" in high.reason


def test_rare_token_at_its_usual_premium_is_not_a_spike():
    # Rarity premium: the token fetched 800 before in a market around 100, and fetches 900 now.
    history = _market(["100.00", "90.00", "100.00", "110.00", "100.00"])
    rare = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-rare", price="900.00")
    none_of(run(_world() + [_bought("tok-rare", "800.00")] + history + [rare]), SPIKE)


def test_rare_token_far_above_its_own_last_price_is_a_spike():
    history = _market(["100.00", "90.00", "100.00", "110.00", "100.00"])
    rare = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-rare", price="2600.00")
    alert = one(run(_world() + [_bought("tok-rare", "800.00")] + history + [rare]), SPIKE)
    assert "its own last price of 800.00 CNY" in alert.reason


def test_token_bought_under_the_market_and_resold_at_its_top_is_not_a_spike():
    # Bought at 30 (a mispriced listing), resold within the collection's range: 3.7x its own price
    # but not over the collection's top level.
    history = _market(["100.00", "90.00", "100.00", "110.00", "105.00"])
    resale = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="110.00")
    none_of(run(_world() + [_bought("tok-x", "30.00")] + history + [resale]), SPIKE)


def test_unseen_token_needs_ten_times_the_collections_highest_price_and_a_hundred_times_its_floor():
    history = _market(["100.00", "90.00", "100.00", "300.00", "100.00"])
    near = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-new", price="2990.00")
    none_of(run(_world() + history + [near]), SPIKE)
    # 10x the highest but 32x the floor: the rarest token of a heavy-tailed drop fetches that honestly.
    rare = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-new", price="3000.00")
    none_of(run(_world() + history + [rare]), SPIKE)
    spike = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-new", price="9500.00")
    alert = one(run(_world() + history + [spike]), SPIKE)
    assert "31.7x the collection's highest price of 300.00 CNY" in alert.reason


def test_rare_tokens_first_resale_after_a_flat_mint_is_not_a_spike():
    # Every token minted at 99; the floor trades near 100 and a rare token's first resale fetches 40x it:
    # its mint price says nothing about its value, so it is judged as a token without a price of its own.
    mint = primary("acc-s7", at(days=-2), token_id="tok-rare", price="99.00")
    history = _market(["100.00", "95.00", "105.00", "100.00", "98.00", "350.00"])
    rare = trade("acc-s7", "acc-b7", at(hours=7), token_id="tok-rare", price="4000.00")
    none_of(run(_world() + [mint] + history + [rare]), "speculation")
    # Its laundering counterpart: far beyond any rarity premium (over 100x the floor, 10x the top).
    spike = trade("acc-s7", "acc-b7", at(hours=7), token_id="tok-rare", price="12000.00")
    alert = one(run(_world() + [mint] + history + [spike]), SPIKE)
    assert alert.evidence["token_last_price"] is None


def test_busy_collections_ordinary_first_resales_after_a_flat_mint_are_not_speculation():
    # A drop minted at 99, then a busy day of first resales: floor tokens near 100, rare ones at a
    # Pareto-tailed premium, in no order. No token's mint price is its market price.
    import random

    rng = random.Random(11)
    buyers = [f"acc-h{i}" for i in range(80)]
    mints = [primary(buyers[i], at(days=-1, minutes=i), token_id=f"tok-f{i}") for i in range(80)]
    resales = []
    for i in range(80):
        premium = 1.0 if rng.random() < 0.6 else min(rng.paretovariate(1.6), 60)
        resales.append(trade(buyers[i], BUYERS[i % 8], at(minutes=4 * i), token_id=f"tok-f{i}",
                             price=f"{100 * premium * rng.uniform(0.96, 1.06):.2f}"))
    none_of(run(world(*buyers, *BUYERS, supply=100) + mints + resales), "speculation")


def test_price_under_three_times_the_reference_is_not_a_spike():
    history = _market(["100.00"] * 5)
    near = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="299.00")
    none_of(run(_world() + [_bought("tok-x")] + history + [near]), SPIKE)


def test_median_needs_five_earlier_trades_else_issue_price_rule():
    # Four earlier trades: no median yet, 5x of them is fine, the issue-price rule (10 x 99) decides.
    history = _market(["100.00"] * 4)
    near = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="980.00")
    none_of(run(_world() + history + [near]), SPIKE)


def test_price_a_hundred_times_issue_price_with_too_few_trades_is_a_spike():
    spike = trade("acc-s1", "acc-b1", at(minutes=30), token_id="tok-x", price="9900.00")
    alert = one(run(_world() + [spike]), SPIKE)
    assert alert.severity == "medium"
    assert alert.trade_ids == [spike["trade_id"]]
    assert "9,900.00 CNY" in alert.reason and "100.0x" in alert.reason and "99.00 CNY" in alert.reason


def test_rare_first_resale_at_tens_of_times_issue_price_in_a_new_market_is_not_a_spike():
    rare = trade("acc-s1", "acc-b1", at(minutes=30), token_id="tok-x", price="4000.00")
    none_of(run(_world() + [rare]), SPIKE)


def test_token_with_a_resale_price_ten_times_issue_price_with_too_few_trades_is_a_spike():
    bought = _bought("tok-x", "99.00", buyer="acc-s1")
    spike = trade("acc-s1", "acc-b1", at(minutes=30), token_id="tok-x", price="990.00")
    alert = one(run(_world() + [bought, spike]), SPIKE)
    assert "10.0x" in alert.reason


def test_price_9_9_times_issue_price_is_not_a_spike():
    bought = _bought("tok-x", "99.00", buyer="acc-s1")
    near = trade("acc-s1", "acc-b1", at(minutes=30), token_id="tok-x", price="980.00")
    none_of(run(_world() + [bought, near]), SPIKE)


def test_gradual_run_up_is_not_a_spike():
    # 3% a trade, four trades a day, for 20 days: the price ends ~10x the issue price,
    # but the 7-day median moves with it.
    prices = [f"{100 * 1.03 ** i:.2f}" for i in range(80)]
    alerts = run(_world() + _market(prices, step_minutes=360))
    assert float(prices[-1]) > 10 * 99
    none_of(alerts, "speculation")


def test_primary_drop_selling_out_fast_at_issue_price_is_not_speculation():
    buyers = [f"acc-fan{i}" for i in range(60)]
    drop = [primary(b, at(seconds=5 * i), token_id=f"tok-d{i}") for i, b in enumerate(buyers)]
    assert run(world(*buyers, supply=60) + drop) == []


def test_primary_sale_far_above_issue_price_is_not_a_spike():
    sale = primary("acc-b1", at(minutes=1), price="5000.00")
    none_of(run(_world() + [sale]), "speculation")


# --- speculation.pump ----------------------------------------------------------------------------


def _pump(prices: list[str], *, step_minutes: float = 20, bought_at: str = "99.00"):
    """Each token of the run was bought a day before at `bought_at` (its own last price)."""
    earlier = [trade("acc-s6", SELLERS[i % 8], at(days=-1, minutes=i), token_id=f"tok-m{i}", price=bought_at)
               for i in range(len(prices))]
    return earlier, _market(prices, step_minutes=step_minutes)


def test_pump_each_step_above_the_last_is_caught():
    earlier, trades = _pump(["100.00", "130.00", "170.00", "220.00", "290.00"])
    alert = one(run(_world() + earlier + trades), PUMP)
    assert alert.typology == "speculation"
    assert alert.severity == "medium"  # five trades, unlinked accounts: the pattern and little more
    assert alert.trade_ids == trade_ids(*trades)
    assert "5 trades" in alert.reason and "1.7x" in alert.reason
    assert "130.00 CNY" in alert.reason and "220.00 CNY" in alert.reason and "80 minutes" in alert.reason
    assert alert.episode_id == alert.alert_id and alert.episode_seq == 1


def test_pump_in_steps_under_ten_percent_is_caught_and_grows_one_episode():
    prices = [f"{100 * 1.07 ** i:.2f}" for i in range(16)]
    earlier, trades = _pump(prices, step_minutes=10)
    pumps = [a for a in run(_world() + earlier + trades) if a.detector == PUMP]
    assert pumps, "a 7%-a-step pump over 150 minutes (2.6x) must be caught"
    assert len({a.episode_id for a in pumps}) == 1
    assert [a.episode_seq for a in pumps] == list(range(1, len(pumps) + 1))
    assert pumps[-1].trade_ids[-1] == trades[-1]["trade_id"]
    assert set(trade_ids(*trades[-5:])) <= set(pumps[-1].trade_ids)
    assert len({a.alert_id for a in pumps}) == len(pumps)
    assert pumps[-1].score > pumps[0].score  # longer, higher: ranks higher


def test_unrelated_trades_in_a_busy_hour_do_not_chain_into_a_pump():
    # 60 trades in an hour of a heavy-tailed market: each token resells near its own last price
    # (its rarity), in no order.
    import random

    rng = random.Random(7)
    earlier, trades = [], []
    for i in range(60):
        rarity = 100 * rng.lognormvariate(0, 1.2)
        earlier.append(trade("acc-s6", SELLERS[i % 8], at(days=-1, minutes=i), token_id=f"tok-h{i}",
                             price=f"{rarity:.2f}"))
        trades.append(trade(SELLERS[i % 8], BUYERS[i % 8], at(minutes=i), token_id=f"tok-h{i}",
                            price=f"{rarity * rng.uniform(0.9, 1.15):.2f}"))
    none_of(run(_world() + earlier + trades), PUMP)


def test_rising_prices_of_tokens_selling_at_their_own_level_are_not_a_pump():
    # Trades of ever rarer tokens, each at what it last fetched: the level of the tokens does not rise.
    prices = ["100.00", "130.00", "170.00", "220.00", "290.00"]
    earlier = [trade("acc-s6", SELLERS[i], at(days=-1, minutes=i), token_id=f"tok-m{i}", price=p)
               for i, p in enumerate(prices)]
    none_of(run(_world() + earlier + _market(prices, step_minutes=20)), PUMP)


def test_steady_rise_under_one_and_a_half_level_is_not_a_pump():
    earlier, trades = _pump(["100.00", "110.00", "121.00", "133.10", "146.41"], bought_at="50.00")
    none_of(run(_world() + earlier + trades), PUMP)


def test_pump_spread_over_more_than_the_window_is_not_a_pump():
    earlier, trades = _pump(["100.00", "130.00", "170.00", "220.00", "290.00"], step_minutes=46)
    none_of(run(_world() + earlier + trades), PUMP)


# --- speculation.rapid_flip ----------------------------------------------------------------------


def test_resale_within_six_hours_at_double_is_a_flip():
    bought = primary("acc-a", at(), price="99.00")
    resold = trade("acc-a", "acc-b", at(hours=5), price="198.00")
    alert = one(run(world("acc-a", "acc-b") + [bought, resold]), FLIP)
    assert alert.typology == "speculation"
    assert alert.severity == "medium"
    assert alert.trade_ids == trade_ids(bought, resold)
    assert "5.0 hours" in alert.reason and "100% markup" in alert.reason
    assert "198.00 CNY" in alert.reason and "99.00 CNY" in alert.reason


def test_resale_at_six_hours_and_a_minute_is_not_a_flip():
    bought = primary("acc-a", at(), price="99.00")
    resold = trade("acc-a", "acc-b", at(hours=6, minutes=1), price="198.00")
    none_of(run(world("acc-a", "acc-b") + [bought, resold]), FLIP)


def test_quick_resale_at_under_fifty_percent_markup_is_not_a_flip():
    bought = primary("acc-a", at(), price="100.00")
    resold = trade("acc-a", "acc-b", at(hours=1), price="149.99")
    none_of(run(world("acc-a", "acc-b") + [bought, resold]), FLIP)


def test_quick_resale_at_the_market_after_buying_under_it_is_arbitrage_not_a_flip():
    # The collection trades around 200; a listing at 100 is sniped and relisted at the market.
    history = _market(["200.00", "190.00", "210.00", "205.00", "200.00"], start_minutes=-600)
    bought = trade("acc-s5", "acc-a", at(), token_id="tok-1", price="100.00")
    resold = trade("acc-a", "acc-b", at(hours=1), token_id="tok-1", price="200.00")
    none_of(run(world("acc-a", "acc-b", *SELLERS, *BUYERS) + history + [bought, resold]), FLIP)


def test_quick_resale_far_above_the_market_is_a_flip():
    history = _market(["200.00", "190.00", "210.00", "205.00", "200.00"], start_minutes=-600)
    bought = trade("acc-s5", "acc-a", at(), token_id="tok-1", price="200.00")
    resold = trade("acc-a", "acc-b", at(hours=1), token_id="tok-1", price="600.00")
    alert = one(run(world("acc-a", "acc-b", *SELLERS, *BUYERS) + history + [bought, resold]), FLIP)
    assert "3.0x the collection's median" in alert.reason
    assert alert.evidence["market_median"] == 200.0


def test_quick_resale_of_a_gift_is_not_a_flip():
    received = gift("acc-issuer", "acc-a", at())
    resold = trade("acc-a", "acc-b", at(hours=1), price="500.00")
    none_of(run(world("acc-a", "acc-b") + [received, resold]), FLIP)


# --- speculation.transfer_lock -------------------------------------------------------------------


def test_resale_before_the_transfer_lock_ends():
    bought = primary("acc-a", at())
    resold = trade("acc-a", "acc-b", at(days=3), price="100.00")
    alert = one(run(world("acc-a", "acc-b", transfer_lock_days=7) + [bought, resold]), LOCK)
    assert alert.typology == "speculation"
    assert alert.severity == "high"
    assert alert.trade_ids == trade_ids(bought, resold)
    assert "resold" in alert.reason and "3.0 days" in alert.reason and "7 days" in alert.reason


def test_gift_before_the_transfer_lock_ends():
    bought = primary("acc-a", at())
    given = gift("acc-a", "acc-b", at(days=2, hours=12))
    alert = one(run(world("acc-a", "acc-b", transfer_lock_days=7) + [bought, given]), LOCK)
    assert alert.trade_ids == trade_ids(bought, given)
    assert "gave away" in alert.reason and "2.5 days" in alert.reason and "7 days" in alert.reason


def test_resale_at_lock_end_plus_a_minute_is_fine():
    bought = primary("acc-a", at())
    resold = trade("acc-a", "acc-b", at(days=7, minutes=1), price="100.00")
    gifted = gift("acc-b", "acc-c", at(days=15))
    alerts = run(world("acc-a", "acc-b", "acc-c", transfer_lock_days=7) + [bought, resold, gifted])
    none_of(alerts, LOCK)


def test_quick_resale_without_a_lock_is_not_a_lock_violation():
    bought = primary("acc-a", at())
    resold = trade("acc-a", "acc-b", at(hours=1), price="100.00")
    none_of(run(world("acc-a", "acc-b") + [bought, resold]), LOCK)


def test_own_last_price_is_remembered_beyond_the_cycle_window():
    # Bought 60 days ago at 99 (outside the 30-day history, inside the 200-day holding horizon).
    history = _market(["100.00"] * 5)
    # The stream is in event-time order, and a registry update bridges the quiet month (the monitor holds a
    # lone event more than monitor.max_skew_hours ahead for confirmation).
    registry = world(*SELLERS, *BUYERS, t=at(days=-61))
    old = trade("acc-s6", "acc-s7", at(days=-60), token_id="tok-x", price="99.00")
    bridge = account("acc-s6", at(days=-30), action="update")
    spike = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="500.00")
    alert = one(run(registry + [old, bridge] + history + [spike]), SPIKE)
    assert alert.evidence["token_last_price"] == 99.0


def test_own_last_price_moves_with_the_market_since():
    # A rare token fetched 800 when the market sat at 100; the market has tripled: 2,600 is 1.1x that.
    then = _market(["100.00"] * 6, start_minutes=-60 * 24 * 20)
    rare = trade("acc-s6", "acc-s7", at(days=-20, hours=7), token_id="tok-rare", price="800.00")
    now = _market(["300.00"] * 6, start_minutes=0)
    resale = trade("acc-s7", "acc-b7", at(hours=7), token_id="tok-rare", price="2600.00")
    registry = world(*SELLERS, *BUYERS, t=at(days=-21))
    none_of(run(registry + then + [rare] + now + [resale]), SPIKE)
    spike = trade("acc-s7", "acc-b7", at(hours=7), token_id="tok-rare", price="8000.00")
    alert = one(run(registry + then + [rare] + now + [spike]), SPIKE)
    assert alert.evidence["token_last_price"] == 2400.0


def test_pump_of_first_resales_after_a_flat_mint_is_caught():
    # The laundering counterpart of honest first resales: tokens minted at 99 resold in a ladder,
    # the collection's floor driven from 100 to over 2.5x within two hours.
    prices = ["100.00", "125.00", "160.00", "200.00", "250.00", "320.00", "400.00"]
    mints = [primary(SELLERS[i % 8], at(days=-1, minutes=i), token_id=f"tok-m{i}") for i in range(len(prices))]
    trades = _market(prices, step_minutes=12)
    pumps = [a for a in run(_world() + mints + trades) if a.detector == PUMP]
    assert pumps and set(pumps[-1].trade_ids) == set(trade_ids(*trades))


def test_five_first_resales_of_rising_rarity_are_not_a_pump():
    # Five tokens' first resales after a flat mint, rarer each time: five trades of unknown value
    # are not yet a market whose floor rose.
    prices = ["100.00", "130.00", "170.00", "220.00", "290.00"]
    mints = [primary(SELLERS[i % 8], at(days=-1, minutes=i), token_id=f"tok-m{i}") for i in range(len(prices))]
    none_of(run(_world() + mints + _market(prices, step_minutes=20)), PUMP)


def _established_market(start_days: float = -2):
    """Two days of a heavy-tailed market: most tokens on a floor of 100, one in ten at 200-400."""
    prices = ["100.00", "98.00", "103.00", "250.00", "101.00", "99.00", "102.00", "100.00", "400.00", "97.00",
              "104.00", "100.00", "200.00", "99.00", "101.00", "103.00", "98.00", "300.00", "100.00", "102.00"]
    return _market(prices, step_minutes=120, start_minutes=start_days * 24 * 60)


def test_rare_first_resales_in_a_row_in_an_established_market_are_not_a_pump():
    # Three floor trades, then four rare tokens' first resales after a flat mint, rarer each time:
    # the floor of the run rose, but not above where the market's rarest tenth traded.
    prices = ["100.00", "104.00", "102.00", "180.00", "210.00", "260.00", "330.00"]
    mints = [primary(SELLERS[i % 8], at(days=-3, minutes=i), token_id=f"tok-r{i}") for i in range(len(prices))]
    run_trades = [trade(SELLERS[i % 8], BUYERS[i % 8], at(minutes=15 * i), token_id=f"tok-r{i}", price=p)
                  for i, p in enumerate(prices)]
    none_of(run(world(*SELLERS, *BUYERS, t=at(days=-4)) + mints + _established_market() + run_trades), PUMP)


def test_pump_lifting_an_established_markets_floor_above_its_rare_tenth_is_caught():
    # Ten trades in 135 minutes from the floor to 20x it: the cheapest of the last four (750) sits above
    # 1.5x where the rarest tenth traded (255).
    prices = [f"{100 * 1.4 ** i:.2f}" for i in range(10)]
    mints = [primary(SELLERS[i % 8], at(days=-3, minutes=i), token_id=f"tok-r{i}") for i in range(len(prices))]
    run_trades = [trade(SELLERS[i % 8], BUYERS[i % 8], at(minutes=15 * i), token_id=f"tok-r{i}", price=p)
                  for i, p in enumerate(prices)]
    pumps = [a for a in run(world(*SELLERS, *BUYERS, t=at(days=-4)) + mints + _established_market() + run_trades)
             if a.detector == PUMP]
    assert pumps and set(pumps[-1].trade_ids) == set(trade_ids(*run_trades))


def test_mint_resold_within_hours_at_the_opening_floor_is_not_a_flip():
    # Before the collection has a market, a drop's first resales open above the flat issue price (99).
    bought = primary("acc-a", at(), price="99.00")
    opening = trade("acc-a", "acc-b", at(hours=5), price="160.00")
    none_of(run(world("acc-a", "acc-b") + [bought, opening]), FLIP)
    flip = trade("acc-a", "acc-b", at(hours=5), price="180.00")
    assert one(run(world("acc-a", "acc-b") + [bought, flip]), FLIP).trade_ids == trade_ids(bought, flip)


def _pump_run_by_pairs(recent, config, established=lambda: None):
    """`_pump_run`'s definition, brute force: the longest run ending now whose every pair of trades gives
    the trend, and whose level and floor rose."""
    from amlwatch.detectors.speculation import _median3, _pump_bounds

    bounds = _pump_bounds(recent, config)
    if bounds is None:
        return None
    min_trades, floor_trades = bounds
    rise = config.pump_level_rise
    prices = [entry[1][1] for entry in recent]
    for start in range(len(prices) - 1):
        run = prices[start:]
        pairs = [(a, b) for i, a in enumerate(run) for b in run[i + 1:]]
        trend = sum((b > a) - (b < a) for a, b in pairs) / len(pairs)
        level = established()
        if (len(run) >= min_trades and trend >= config.pump_min_trend
                and _median3(run[-3:]) >= rise * _median3(run[:3]) and min(run[-floor_trades:]) >= rise * min(run[:3])
                and (level is None or min(run[-floor_trades:]) >= rise * level)):
            return recent[start:]
    return None


def test_pump_run_counts_concordance_by_bisection_exactly_as_by_pairs():
    """Random windows with ties, flat stretches and rises, under short and long run settings: the same run."""
    import dataclasses
    import random

    from amlwatch.config import SpeculationConfig
    from amlwatch.detectors.speculation import _pump_run

    rng = random.Random(15)
    configs = [SpeculationConfig(), dataclasses.replace(SpeculationConfig(), pump_min_trades=2, pump_unseen_min_trades=2,
                                                        pump_floor_trades=5, pump_min_trend=0.5)]
    found = 0
    for case in range(3000):
        n = rng.randint(1, 48)
        price, entries = rng.choice([1.0, 10.0, 100.0]), []
        for i in range(n):
            price = rng.choice([price, price * rng.uniform(1.0, 1.6), price * rng.uniform(0.7, 1.0),
                                float(rng.randint(1, 4))])
            relative = rng.choice([None, rng.uniform(0.5, 4.0)])
            entries.append((float(i), (f"t{i}", price, relative)))
        config = configs[case % 2]
        level = rng.choice([None, 0.5, 5.0, 50.0])
        expected = _pump_run_by_pairs(entries, config, lambda: level)
        assert _pump_run(entries, config, lambda: level) == expected
        found += expected is not None
    assert found > 100
