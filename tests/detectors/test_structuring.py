"""structuring: several payments each just under the 50,000 CNY reporting line (docs/DETECTORS.md)."""

from __future__ import annotations

from support.events import at, config, gift, none_of, one, run, trade, world

NEAR = "structuring.near_threshold"
ACCOUNTS = ("acc-x", "acc-s1", "acc-s2", "acc-s3", "acc-b1", "acc-b2")


def _run(*trades, cfg=None):
    return run(world(*ACCOUNTS, issue_price="40000.00") + list(trades), cfg)


def test_buyer_paying_two_amounts_just_under_the_threshold():
    t1 = trade("acc-s1", "acc-x", at(hours=1), token_id="tok-1", price="45000.00")
    t2 = trade("acc-s2", "acc-x", at(hours=4), token_id="tok-2", price="46000.00")
    alert = one(_run(t1, t2), NEAR)
    assert alert.typology == "structuring"
    assert alert.severity == "high"
    assert alert.trade_ids == [t1["trade_id"], t2["trade_id"]]
    assert alert.accounts[0] == "acc-x" and set(alert.accounts) == {"acc-x", "acc-s1", "acc-s2"}
    assert alert.evidence["role"] == "buyer"
    assert "acc-x paid 2 amounts" in alert.reason
    assert "50,000.00 CNY" in alert.reason and "91,000.00 CNY" in alert.reason and "3.0 hours" in alert.reason


def test_seller_receiving_two_amounts_just_under_the_threshold():
    t1 = trade("acc-x", "acc-b1", at(hours=1), token_id="tok-1", price="49999.99")
    t2 = trade("acc-x", "acc-b2", at(hours=2), token_id="tok-2", price="40000.00")
    alert = one(_run(t1, t2), NEAR)
    assert alert.evidence["role"] == "seller"
    assert alert.trade_ids == [t1["trade_id"], t2["trade_id"]]
    assert "acc-x received 2 amounts" in alert.reason and "89,999.99 CNY" in alert.reason


def test_three_near_threshold_payments_score_higher():
    trades = [trade(s, "acc-x", at(hours=h), token_id=f"tok-{h}", price="41000.00")
              for h, s in ((1, "acc-s1"), (2, "acc-s2"), (3, "acc-s3"))]
    alerts = [a for a in _run(*trades) if a.detector == NEAR]
    assert [len(a.trade_ids) for a in alerts] == [2, 3]
    assert alerts[-1].trade_ids == [t["trade_id"] for t in trades]
    assert alerts[-1].score > alerts[0].score
    assert "123,000.00 CNY" in alerts[-1].reason


def test_second_payment_after_24_hours_and_a_minute_is_not_structuring():
    t1 = trade("acc-s1", "acc-x", at(hours=1), token_id="tok-1", price="45000.00")
    t2 = trade("acc-s2", "acc-x", at(hours=25, minutes=1), token_id="tok-2", price="46000.00")
    none_of(_run(t1, t2), NEAR)


def test_amounts_just_below_the_near_band_are_not_structuring():
    t1 = trade("acc-s1", "acc-x", at(hours=1), token_id="tok-1", price="39999.99")
    t2 = trade("acc-s2", "acc-x", at(hours=2), token_id="tok-2", price="39999.99")
    none_of(_run(t1, t2), NEAR)


def test_a_trade_at_the_threshold_is_reported_by_the_platform_not_structuring():
    t1 = trade("acc-s1", "acc-x", at(hours=1), token_id="tok-1", price="50000.00")
    t2 = trade("acc-s2", "acc-x", at(hours=2), token_id="tok-2", price="45000.00")
    none_of(_run(t1, t2), NEAR)


def test_two_near_threshold_amounts_summing_below_the_threshold_are_not_structuring():
    # With a wide band (15,000-50,000) two amounts can both be "near" and still sum below 50,000.
    wide = config(structuring={"near_fraction": 0.3})
    t1 = trade("acc-s1", "acc-x", at(hours=1), token_id="tok-1", price="24000.00")
    t2 = trade("acc-s2", "acc-x", at(hours=2), token_id="tok-2", price="25999.99")
    none_of(_run(t1, t2, cfg=wide), NEAR)
    t3 = trade("acc-s3", "acc-b1", at(hours=1), token_id="tok-3", price="24000.00")
    t4 = trade("acc-s1", "acc-b1", at(hours=2), token_id="tok-4", price="26000.00")
    assert one(_run(t3, t4, cfg=wide), NEAR).evidence["total"] == "50000.00"


def test_gifts_never_count_towards_structuring():
    t1 = trade("acc-s1", "acc-x", at(hours=1), token_id="tok-1", price="45000.00")
    present = gift("acc-s2", "acc-x", at(hours=2), token_id="tok-2")
    none_of(_run(t1, present), NEAR)
