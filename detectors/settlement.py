"""Prohibited settlement: yuan is the only permitted price and payment currency."""

from __future__ import annotations

from amlwatch.alerts import Alert
from amlwatch.config import SettlementConfig

from .base import Detector, TradeView, money


class SettlementDetector(Detector):
    name = "settlement.currency"
    typology = "prohibited_settlement"

    def __init__(self, config: SettlementConfig):
        self.allowed = frozenset(config.allowed_currencies)
        self.prohibited_methods = frozenset(config.prohibited_methods)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        bad_currency = trade.currency not in self.allowed
        bad_method = trade.payment_method in self.prohibited_methods
        if not (bad_currency or bad_method):
            return []
        what = []
        if bad_currency:
            what.append(f"priced in {trade.currency}")
        if bad_method:
            what.append(f"paid by {trade.payment_method}")
        amount = f"{trade.price} {trade.currency}" if bad_currency else money(trade.price)
        reason = (
            f"Trade {trade.trade_id} of {trade.token_id} for {amount} was {' and '.join(what)}; "
            f"only {', '.join(sorted(self.allowed))} settlement is permitted."
        )
        evidence = {"currency": trade.currency, "payment_method": trade.payment_method,
                    "allowed_currencies": sorted(self.allowed)}
        return [self.alert(trade, 0.95, reason, evidence)]
