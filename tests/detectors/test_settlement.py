"""prohibited_settlement: yuan only, never crypto (docs/DETECTORS.md)."""

from __future__ import annotations

import pytest
from support.events import at, gift, none_of, one, primary, run, trade, world

from amlwatch.config import Config
from amlwatch.detectors.monitor import Monitor
from amlwatch.events import parse_event

CURRENCY = "settlement.currency"


def test_non_cny_currency_is_critical():
    sale = trade("acc-s", "acc-b", at(minutes=1), price="12.50", currency="USDT", method="alipay")
    alert = one(run(world("acc-s", "acc-b") + [sale]), CURRENCY)
    assert alert.typology == "prohibited_settlement"
    assert alert.severity == "critical"
    assert alert.trade_ids == [sale["trade_id"]]
    assert "priced in USDT" in alert.reason and "12.50 USDT" in alert.reason and "CNY" in alert.reason
    assert "paid by" not in alert.reason
    assert alert.evidence["currency"] == "USDT"


@pytest.mark.parametrize("currency", ["USD", "HKD", "ETH", "cny"])
def test_any_other_currency_code_is_prohibited(currency):
    sale = trade("acc-s", "acc-b", at(minutes=1), currency=currency)
    assert one(run(world("acc-s", "acc-b") + [sale]), CURRENCY).trade_ids == [sale["trade_id"]]


def test_crypto_payment_method_is_critical_even_when_priced_in_cny():
    sale = primary("acc-b", at(minutes=1), method="crypto", instrument_hash="wallet-0xabc")
    alert = one(run(world("acc-b") + [sale]), CURRENCY)
    assert alert.severity == "critical"
    assert alert.trade_ids == [sale["trade_id"]]
    assert "paid by crypto" in alert.reason and "99.00 CNY" in alert.reason
    assert "priced in" not in alert.reason


def test_crypto_and_foreign_currency_together_is_one_alert():
    sale = trade("acc-s", "acc-b", at(minutes=1), currency="USDT", method="crypto")
    alert = one(run(world("acc-s", "acc-b") + [sale]), CURRENCY)
    assert "priced in USDT and paid by crypto" in alert.reason


def test_settlement_is_checked_at_once_even_for_unknown_parties():
    monitor = Monitor(Config())
    sale = trade("acc-nobody", "acc-ghost", at(), currency="USDT")
    alerts = monitor.observe(parse_event(sale))
    assert [a.detector for a in alerts] == [CURRENCY]


@pytest.mark.parametrize("method", ["bank_card", "alipay", "wechat_pay", "digital_rmb"])
def test_yuan_by_permitted_methods_is_fine(method):
    sale = trade("acc-s", "acc-b", at(minutes=1), method=method)
    assert run(world("acc-s", "acc-b") + [sale]) == []


def test_yuan_gift_with_no_payment_is_fine():
    assert run(world("acc-s", "acc-b") + [gift("acc-s", "acc-b", at(minutes=1))]) == []


def test_allowed_currencies_come_from_config():
    config = Config.from_mapping({"settlement": {"allowed_currencies": ["CNY", "HKD"]}})
    sale = trade("acc-s", "acc-b", at(minutes=1), currency="HKD")
    none_of(run(world("acc-s", "acc-b") + [sale], config), CURRENCY)
