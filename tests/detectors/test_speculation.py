"""speculation: price spikes, pumps, rapid flips, transfer locks (docs/DETECTORS.md)."""

from __future__ import annotations

from support.events import at, gift, none_of, one, primary, run, trade, trade_ids, world

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


def test_price_five_times_the_median_is_a_spike():
    history = _market(["100.00", "90.00", "100.00", "110.00", "100.00"])
    spike = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="500.00")
    alert = one(run(_world() + history + [spike]), SPIKE)
    assert alert.typology == "speculation"
    assert alert.severity == "medium"
    assert alert.trade_ids == [spike["trade_id"]]
    assert "500.00 CNY" in alert.reason and "5.0x" in alert.reason
    assert "100.00 CNY" in alert.reason and "5 trades" in alert.reason
    assert alert.evidence["median"] == 100.0 and alert.evidence["samples"] == 5


def test_far_larger_spike_scores_higher():
    history = _market(["100.00"] * 5)
    spike = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="1000.00")
    alert = one(run(_world() + history + [spike]), SPIKE)
    assert alert.severity == "high"  # 2x beyond the threshold: 0.7 + 0.1
    assert alert.score > 0.7
    assert "10.0x" in alert.reason


def test_price_4_9_times_the_median_is_not_a_spike():
    history = _market(["100.00"] * 5)
    near = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="490.00")
    none_of(run(_world() + history + [near]), SPIKE)


def test_median_needs_five_earlier_trades_else_issue_price_rule():
    # Four earlier trades: no median yet, 5x of them is fine, the issue-price rule (10 x 99) decides.
    history = _market(["100.00"] * 4)
    near = trade("acc-s7", "acc-b7", at(hours=6), token_id="tok-x", price="980.00")
    none_of(run(_world() + history + [near]), SPIKE)


def test_price_ten_times_issue_price_with_too_few_trades_is_a_spike():
    spike = trade("acc-s1", "acc-b1", at(minutes=30), token_id="tok-x", price="990.00")
    alert = one(run(_world() + [spike]), SPIKE)
    assert alert.severity == "medium"
    assert alert.trade_ids == [spike["trade_id"]]
    assert "990.00 CNY" in alert.reason and "10.0x" in alert.reason and "99.00 CNY" in alert.reason


def test_price_9_9_times_issue_price_is_not_a_spike():
    near = trade("acc-s1", "acc-b1", at(minutes=30), token_id="tok-x", price="980.00")
    none_of(run(_world() + [near]), SPIKE)


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


def test_pump_each_step_above_the_last_is_high():
    trades = _market(["100.00", "120.00", "150.00", "190.00", "240.00"], step_minutes=20)
    alert = one(run(_world() + trades), PUMP)
    assert alert.typology == "speculation"
    assert alert.severity == "high"
    assert alert.trade_ids == trade_ids(*trades)
    assert "5 trades" in alert.reason and "2.4x" in alert.reason
    assert "100.00 CNY" in alert.reason and "240.00 CNY" in alert.reason and "80 minutes" in alert.reason


def test_pump_with_one_step_of_only_five_percent_is_not_a_pump():
    trades = _market(["100.00", "120.00", "150.00", "157.50", "240.00"], step_minutes=20)
    none_of(run(_world() + trades), PUMP)


def test_steady_ten_percent_steps_rising_under_2x_are_not_a_pump():
    trades = _market(["100.00", "110.00", "121.00", "133.10", "146.41"], step_minutes=20)
    none_of(run(_world() + trades), PUMP)


def test_pump_spread_over_more_than_two_hours_is_not_a_pump():
    trades = _market(["100.00", "120.00", "150.00", "190.00", "240.00"], step_minutes=31)
    none_of(run(_world() + trades), PUMP)


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
