"""The payment kind of a trade for the large-value lines: one mapping for reports and structuring.

PBOC Order 2016 No. 3 Art. 5 (read in secondary sources only) sets four per-customer daily lines:
cash (50,000 CNY), organisation transfers (2,000,000), individual domestic transfers (500,000) and
individual cross-border transfers (200,000). The event contract has no customer-type or
cross-border flag, so the kind is derived, with these assumptions (docs/REPORTING.md):

* `payment.method` in `payment_kind.cash_methods` (default `digital_rmb`) is cash, whoever pays:
  e-CNY is central-bank money. Card, Alipay and WeChat Pay payments are transfers, not cash.
* A customer is an organisation when its account is listed in `payment_kind.organisation_accounts`,
  starts with one of `organisation_prefixes`, or its state carries `customer_type == "organisation"`
  (a field a platform may add to the registry; absent from today's contract).
* An individual's transfer is cross-border when the customer's or the counterparty's registered
  `region` lies outside the mainland: not `CN-...`, or Hong Kong, Macao or Taiwan. An unknown
  region counts as domestic (the higher line), so a cross-border report needs registry evidence.
"""

from __future__ import annotations

from amlwatch.events import TradeEvent
from amlwatch.reportconfig import PaymentKindConfig

CASH = "cash"
INDIVIDUAL_DOMESTIC = "individual_domestic"
INDIVIDUAL_CROSS_BORDER = "individual_cross_border"
ORGANISATION = "organisation"
PAYMENT_KINDS = (CASH, INDIVIDUAL_DOMESTIC, INDIVIDUAL_CROSS_BORDER, ORGANISATION)

_DEFAULT = PaymentKindConfig()


def payment_kind(trade: TradeEvent, buyer_state=None, config: PaymentKindConfig | None = None, *,
                 customer_id: str | None = None, counterparty_state=None) -> str:
    """One of PAYMENT_KINDS for `trade`, as the line of the customer whose state is `buyer_state`.

    `buyer_state` is the paying buyer's registry state (an `AccountState` or None when unknown); to
    measure the receiving seller's line pass the seller's state, `customer_id=trade.seller_id` and the
    buyer as `counterparty_state`.
    """
    config = config or _DEFAULT
    if trade.payment_method in config.cash_methods:
        return CASH
    if is_organisation(buyer_state, config, customer_id or trade.buyer_id):
        return ORGANISATION
    if is_outside(_region(buyer_state), config) or is_outside(_region(counterparty_state), config):
        return INDIVIDUAL_CROSS_BORDER
    return INDIVIDUAL_DOMESTIC


def is_organisation(state, config: PaymentKindConfig, account_id: str | None = None) -> bool:
    """Whether the customer (its state, or just its account id when the registry has none) is an organisation."""
    if state is not None:
        if getattr(state, "customer_type", None) == "organisation":
            return True
        account_id = getattr(state, "account_id", account_id)
    if account_id is None:
        return False
    return account_id in config.organisation_accounts or account_id.startswith(config.organisation_prefixes or ("\0",))


def is_outside(region: str | None, config: PaymentKindConfig) -> bool:
    if not region:
        return False
    region = region.upper()
    if region in config.outside_regions:
        return True
    return not (region == config.home_country or region.startswith(config.home_country + "-"))


def _region(state) -> str | None:
    return getattr(state, "region", None) if state is not None else None
