"""Payment kinds: the one mapping from the contract's payment fields to the large-value lines."""

from __future__ import annotations

import orjson
import pytest
from support.events import account, at, trade

from amlwatch.detectors.registry import Registry
from amlwatch.events import parse_event
from amlwatch.paymentkind import payment_kind
from amlwatch.reporting.settings import PaymentKindConfig


def _state(account_id: str, **kw):
    registry = Registry()
    return registry.apply_account(parse_event(orjson.dumps(account(account_id, at(), **kw))))


def _trade(method="alipay", buyer="acc-b", seller="acc-s"):
    return parse_event(orjson.dumps(trade(seller, buyer, at(), method=method, price="10.00")))


@pytest.mark.parametrize("method", ["bank_card", "alipay", "wechat_pay", None])
def test_card_alipay_and_wechat_are_transfers_not_cash(method):
    record = trade("acc-s", "acc-b", at(), method=method or "none")
    assert payment_kind(parse_event(orjson.dumps(record)), _state("acc-b")) == "individual_domestic"


def test_digital_rmb_is_cash_even_for_an_organisation():
    config = PaymentKindConfig(organisation_accounts=("acc-b",))
    assert payment_kind(_trade("digital_rmb"), _state("acc-b"), config) == "cash"


def test_organisation_by_list_or_prefix_even_without_registry_state():
    assert payment_kind(_trade(), _state("acc-b"), PaymentKindConfig(organisation_accounts=("acc-b",))) == "organisation"
    prefixed = _trade(buyer="org-7")
    assert payment_kind(prefixed, None, PaymentKindConfig(organisation_prefixes=("org-",))) == "organisation"
    assert payment_kind(prefixed, None) == "individual_domestic"


@pytest.mark.parametrize("region, kind", [("CN-31", "individual_domestic"), ("CN", "individual_domestic"),
                                          ("CN-HK", "individual_cross_border"), ("CN-91", "individual_cross_border"),
                                          ("US-CA", "individual_cross_border"), ("SG", "individual_cross_border")])
def test_cross_border_from_the_customers_region(region, kind):
    assert payment_kind(_trade(), _state("acc-b", region=region)) == kind


def test_cross_border_when_the_counterparty_is_outside_and_unknown_region_is_domestic():
    home, abroad = _state("acc-s", region="CN-31"), _state("acc-b", region="JP-13")
    trade_ = _trade()
    assert payment_kind(trade_, home, customer_id="acc-s", counterparty_state=abroad) == "individual_cross_border"
    assert payment_kind(trade_, _state("acc-b", region=None)) == "individual_domestic"
    assert payment_kind(trade_, None) == "individual_domestic"
