"""structuring: amounts split to stay under the large-value line of their payment kind (docs/DETECTORS.md)."""

from __future__ import annotations

from support.events import at, collection, config, gift, none_of, one, run, trade, world

from amlwatch.config import StructuringConfig
from amlwatch.events import parse_event
from amlwatch.paymentkind import payment_kind

NEAR = "structuring.near_threshold"
ACCOUNTS = ("acc-x", "acc-s1", "acc-s2", "acc-s3", "acc-b1", "acc-b2")
CASH = "digital_rmb"


def _run(*trades, cfg=None):
    events = world(*ACCOUNTS, issue_price="40000.00")
    events += [collection(f"col-{n}", at(hours=-1), issue_price="40000.00") for n in (2, 3)]
    return run(events + list(trades), cfg)


def _pay(seller, buyer, hours, token, price, *, method=CASH, col="col-art", **kw):
    return trade(seller, buyer, at(hours=hours), token_id=token, price=price, method=method,
                 collection_id=col, **kw)


def test_buyer_paying_digital_rmb_just_under_the_cash_line_in_two_collections():
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "45000.00")
    t2 = _pay("acc-s2", "acc-x", 4, "tok-2", "46000.00", col="col-2")
    alert = one(_run(t1, t2), NEAR)
    assert alert.typology == "structuring"
    assert alert.severity == "medium"
    assert alert.trade_ids == [t1["trade_id"], t2["trade_id"]]
    assert alert.accounts[0] == "acc-x" and set(alert.accounts) == {"acc-x", "acc-s1", "acc-s2"}
    assert alert.evidence["role"] == "buyer" and alert.evidence["payment_kind"] == "cash"
    assert alert.evidence["signals"]["spread_over_collections"] == 1.0
    assert "acc-x paid 2 amounts" in alert.reason and "cash reporting line" in alert.reason
    assert "50,000.00 CNY" in alert.reason and "91,000.00 CNY" in alert.reason and "3.0 hours" in alert.reason


def test_two_purchases_at_the_market_price_in_one_collection_are_not_structuring():
    # The collection's floor sits just under the line: two honest buys from two sellers land there.
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "45000.00")
    t2 = _pay("acc-s2", "acc-x", 4, "tok-2", "46000.00")
    none_of(_run(t1, t2), NEAR)


def test_repeated_counterparty_in_one_collection_is_splitting():
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "45000.00")
    t2 = _pay("acc-s1", "acc-x", 4, "tok-2", "46000.00")
    alerts = [a for a in _run(t1, t2) if a.detector == NEAR]
    # The buyer paid and the seller received the same split sum: each side is an alert of its own.
    assert sorted(a.evidence["role"] for a in alerts) == ["buyer", "seller"]
    for alert in alerts:
        assert alert.evidence["signals"]["repeated_counterparty"] == 1.0
        assert alert.evidence["counterparties"] == 1


def test_amounts_packed_against_the_line_are_splitting_even_in_one_collection():
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "49800.00")
    t2 = _pay("acc-s2", "acc-x", 4, "tok-2", "49900.00")
    alert = one(_run(t1, t2), NEAR)
    assert alert.evidence["packed"] is True
    loose = _pay("acc-s2", "acc-x", 4, "tok-2", "47400.00")
    none_of(_run(t1, loose), NEAR)


def test_seller_receiving_two_amounts_just_under_the_line():
    t1 = _pay("acc-x", "acc-b1", 1, "tok-1", "49999.99")
    t2 = _pay("acc-x", "acc-b2", 2, "tok-2", "40000.00", col="col-2")
    alert = one(_run(t1, t2), NEAR)
    assert alert.evidence["role"] == "seller"
    assert alert.trade_ids == [t1["trade_id"], t2["trade_id"]]
    assert "acc-x received 2 amounts" in alert.reason and "89,999.99 CNY" in alert.reason


def test_card_payments_are_held_against_the_domestic_transfer_line():
    # 45,000 by Alipay is nowhere near the 500,000 line of an individual's transfers.
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "45000.00", method="alipay")
    t2 = _pay("acc-s2", "acc-x", 4, "tok-2", "46000.00", method="bank_card", col="col-2")
    none_of(_run(t1, t2), NEAR)
    t3 = _pay("acc-s1", "acc-x", 1, "tok-1", "450000.00", method="alipay")
    t4 = _pay("acc-s2", "acc-x", 4, "tok-2", "480000.00", method="wechat_pay", col="col-2")
    alert = one(_run(t3, t4), NEAR)
    assert alert.evidence["payment_kind"] == "individual_domestic" and alert.evidence["threshold"] == "500000"
    assert "500,000.00 CNY individual domestic reporting line" in alert.reason


def test_cash_and_transfer_legs_do_not_add_up_against_one_line():
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "45000.00")
    t2 = _pay("acc-s2", "acc-x", 4, "tok-2", "46000.00", method="alipay", col="col-2")
    none_of(_run(t1, t2), NEAR)


def test_lines_are_configurable_per_payment_kind():
    cfg = config(structuring={"domestic_transfer_threshold": "50000"})
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "45000.00", method="alipay")
    t2 = _pay("acc-s2", "acc-x", 4, "tok-2", "46000.00", method="alipay", col="col-2")
    assert one(_run(t1, t2, cfg=cfg), NEAR).evidence["threshold"] == "50000"


def test_payment_kind_follows_the_method_and_the_payer():
    def trade_with(method):
        return parse_event(trade("acc-a", "acc-b", at(), method=method))

    class Payer:
        def __init__(self, **fields):
            self.__dict__.update(fields)

    assert payment_kind(trade_with("digital_rmb")) == "cash"
    assert payment_kind(trade_with("alipay")) == "individual_domestic"
    assert payment_kind(trade_with("bank_card"), Payer(region="CN-31")) == "individual_domestic"
    assert payment_kind(trade_with("bank_card"), Payer(region="US-CA")) == "individual_cross_border"
    assert payment_kind(trade_with("wechat_pay"), Payer(customer_type="organisation")) == "organisation"
    lines = StructuringConfig()
    assert [str(lines.line(k)) for k in ("cash", "individual_domestic", "individual_cross_border",
                                          "organisation")] == ["50000", "500000", "200000", "2000000"]


def test_three_near_threshold_payments_extend_one_episode_and_score_higher():
    trades = [_pay(s, "acc-x", h, f"tok-{h}", "41000.00", col=c)
              for h, s, c in ((1, "acc-s1", "col-art"), (2, "acc-s2", "col-2"), (3, "acc-s3", "col-3"))]
    alerts = [a for a in _run(*trades) if a.detector == NEAR]
    assert [len(a.trade_ids) for a in alerts] == [2, 3]
    assert alerts[-1].trade_ids == [t["trade_id"] for t in trades]
    assert alerts[-1].score > alerts[0].score
    assert [a.episode_seq for a in alerts] == [1, 2]
    assert alerts[0].episode_id == alerts[1].episode_id == alerts[0].alert_id
    assert "123,000.00 CNY" in alerts[-1].reason


def test_second_payment_after_24_hours_and_a_minute_is_not_structuring():
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "45000.00")
    t2 = trade("acc-s2", "acc-x", at(hours=25, minutes=1), token_id="tok-2", price="46000.00", method=CASH,
               collection_id="col-2")
    none_of(_run(t1, t2), NEAR)


def test_amounts_just_below_the_near_band_are_not_structuring():
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "39999.99")
    t2 = _pay("acc-s2", "acc-x", 2, "tok-2", "39999.99", col="col-2")
    none_of(_run(t1, t2), NEAR)


def test_a_trade_at_the_line_is_reported_by_the_platform_not_structuring():
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "50000.00")
    t2 = _pay("acc-s2", "acc-x", 2, "tok-2", "45000.00", col="col-2")
    none_of(_run(t1, t2), NEAR)


def test_two_near_threshold_amounts_summing_below_the_line_are_not_structuring():
    # With a wide band (15,000-50,000) two amounts can both be "near" and still sum below 50,000.
    wide = config(structuring={"near_fraction": 0.3})
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "24000.00")
    t2 = _pay("acc-s2", "acc-x", 2, "tok-2", "25999.99", col="col-2")
    none_of(_run(t1, t2, cfg=wide), NEAR)
    t3 = _pay("acc-s3", "acc-b1", 1, "tok-3", "24000.00")
    t4 = _pay("acc-s1", "acc-b1", 2, "tok-4", "26000.00", col="col-2")
    assert one(_run(t3, t4, cfg=wide), NEAR).evidence["total"] == "50000.00"


def test_gifts_never_count_towards_structuring():
    t1 = _pay("acc-s1", "acc-x", 1, "tok-1", "45000.00")
    present = gift("acc-s2", "acc-x", at(hours=2), token_id="tok-2", collection_id="col-2")
    none_of(_run(t1, present), NEAR)


def test_busy_dealer_buying_from_one_seller_twice_is_not_structuring_unless_packed():
    # acc-x buys 15 small items in the day, and twice near the line from acc-s1: a dealer's volume.
    small = [_pay("acc-b1" if n % 2 else "acc-b2", "acc-x", n * 0.1, f"tok-s{n}", "300.00") for n in range(15)]
    t1 = _pay("acc-s1", "acc-x", 2, "tok-1", "45000.00")
    t2 = _pay("acc-s1", "acc-x", 4, "tok-2", "46000.00")
    none_of([a for a in _run(*small, t1, t2) if a.evidence.get("role") == "buyer"], NEAR)
    packed = [_pay("acc-s1", "acc-x", 2, "tok-1", "49500.00"), _pay("acc-s1", "acc-x", 4, "tok-2", "49800.00")]
    alert = [a for a in _run(*small, *packed) if a.detector == NEAR and a.evidence["role"] == "buyer"]
    assert alert and alert[0].evidence["trades_in_window"] == 17
