"""Structuring: several payments each just under the large-value reporting line."""

from __future__ import annotations

from amlwatch.alerts import Alert
from amlwatch.config import HOUR, StructuringConfig

from .base import Detector, TradeView, money
from .windows import KeyedWindow


class StructuringDetector(Detector):
    """Looks at each account as buyer (paying) and as seller (receiving)."""

    name = "structuring.near_threshold"
    typology = "structuring"
    scope = "account"

    def __init__(self, config: StructuringConfig):
        self.config = config
        self.floor = config.reporting_threshold * config.near_fraction
        self.window: KeyedWindow = KeyedWindow(config.window_hours * HOUR, 64)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        threshold = self.config.reporting_threshold
        if not trade.paid or not (self.floor <= trade.price < threshold):
            return []
        alerts = []
        for role, account in (("buyer", trade.buyer_id), ("seller", trade.seller_id)):
            key = (role, account)
            self.window.add(key, trade.t, trade)
            recent = self.window.recent(key, trade.t)
            if len(recent) < self.config.min_trades:
                continue
            trades = [entry[1] for entry in recent]
            total = sum(t.price for t in trades)
            if total < threshold:
                continue
            hours = (trade.t - trades[0].t) / HOUR
            verb = "paid" if role == "buyer" else "received"
            reason = (
                f"Account {account} {verb} {len(trades)} amounts each just under the "
                f"{money(threshold)} reporting threshold within {hours:.1f} hours, {money(total)} in all."
            )
            evidence = {"role": role, "trades": len(trades), "total": str(total),
                        "amounts": [str(t.price) for t in trades], "threshold": str(threshold),
                        "floor": str(self.floor), "window_hours": self.config.window_hours}
            score = min(0.95, 0.75 + 0.05 * (len(trades) - self.config.min_trades))
            alerts.append(self.alert(trade, score, reason, evidence, trades, key=role,
                                     accounts=[account] + [a for t in trades for a in (t.seller_id, t.buyer_id) if a != account]))
        return alerts

    def evict(self, now: float) -> None:
        self.window.evict(now)
