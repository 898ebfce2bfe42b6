"""Structuring: one payment split into several, each just under the large-value line that applies.

The line depends on the payment kind (amlwatch/paymentkind.py): 50,000 CNY
for cash and digital RMB, 500,000 for an individual's domestic transfer, and
so on. A market whose floor sits just under a line makes many honest buys
land there, so amounts in the band and a sum over the line are not enough:
an alert needs evidence of splitting (docs/DETECTORS.md):
- amounts packed against the line (all within `tight_fraction` of it);
- the same counterparty on several legs;
- legs in several collections: independent markets do not agree on a price
  just under the line, a launderer choosing the amounts does.
A busy account (more than `busy_trades` paid trades in the role within the
window, a dealer) meets repeated counterparties and many collections by its
volume: for it only packed amounts count.

Account-scoped (stage 2 sees every paid trade of the account and nothing of
the registry), so the payment kind comes from the trade alone.
"""

from __future__ import annotations

from decimal import Decimal

from amlwatch.alerts import Alert, Episodes
from amlwatch.config import HOUR, StructuringConfig
from amlwatch.paymentkind import payment_kind

from .base import Detector, TradeView, money
from .evidence import Evidence
from .windows import CountWindow, KeyedWindow


class StructuringDetector(Detector):
    """Looks at each account as buyer (paying) and as seller (receiving), per payment kind."""

    name = "structuring.near_threshold"
    typology = "structuring"
    scope = "account"

    def __init__(self, config: StructuringConfig):
        self.config = config
        self.window: KeyedWindow = KeyedWindow(config.window_hours * HOUR, 64)
        self.activity = CountWindow(config.window_hours * HOUR, HOUR / 4)
        self.episodes = Episodes(config.window_hours * HOUR)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        if not trade.paid:
            return []
        config = self.config
        self.activity.add(("buyer", trade.buyer_id), trade.t)
        self.activity.add(("seller", trade.seller_id), trade.t)
        kind = payment_kind(trade, None)
        line = config.line(kind)
        if not (line * config.near_fraction <= trade.price < line):
            return []
        alerts = []
        for role, account in (("buyer", trade.buyer_id), ("seller", trade.seller_id)):
            key = (role, account, kind)
            self.window.add(key, trade.t, trade)
            trades = [entry[1] for entry in self.window.recent(key, trade.t)]
            if len(trades) < config.min_trades:
                continue
            total = sum(t.price for t in trades)
            if total < line:
                continue
            busy = self.activity.count((role, account), trade.t)
            evidence, facts = self._splitting(trades, role, line, busy)
            if evidence is None:
                continue
            hours = (trade.t - trades[0].t) / HOUR
            verb = "paid" if role == "buyer" else "received"
            reason = (
                f"Account {account} {verb} {len(trades)} amounts each just under the {money(line)} "
                f"{kind.replace('_', ' ')} reporting line within {hours:.1f} hours, {money(total)} in all "
                f"({facts['collections']} collections, {facts['counterparties']} counterparties)."
            )
            details = {"role": role, "payment_kind": kind, "trades": len(trades), "total": str(total),
                       "amounts": [str(t.price) for t in trades], "threshold": str(line),
                       "floor": str(line * config.near_fraction), "window_hours": config.window_hours,
                       "signals": evidence.signals, **facts}
            counterparties = [t.seller_id if role == "buyer" else t.buyer_id for t in trades]
            alert = self.alert(trade, evidence.score, reason, details, trades, key=role,
                               accounts=[account] + counterparties)
            alerts.append(self.episodes.extend(key, trade.t, alert))
        return alerts

    def _splitting(self, trades, role: str, line: Decimal, busy: int) -> tuple[Evidence | None, dict]:
        """The evidence that these near-line amounts are one sum split, or None when there is none.

        An account making more than `busy_trades` paid trades in the role within the window is
        trading, not splitting one sum: repeated counterparties and several collections are what its
        volume brings, so only amounts packed against the line count."""
        config = self.config
        near = float(config.near_fraction)
        packing = sum((float(t.price / line) - near) / (1.0 - near) for t in trades) / len(trades)
        tight = all(t.price >= line * config.tight_fraction for t in trades)
        counterparties = {t.seller_id if role == "buyer" else t.buyer_id for t in trades}
        collections = {t.collection_id for t in trades}
        legs = len(trades)
        spread = (len(collections) - 1) / (legs - 1)
        repeated = (legs - len(counterparties)) / (legs - 1)
        facts = {"collections": len(collections), "counterparties": len(counterparties), "packed": tight,
                 "trades_in_window": busy}
        if busy > config.busy_trades:
            spread = repeated = 0.0
        if not (tight or spread > 0 or repeated > 0):
            return None, facts
        weights = config.weights
        evidence = Evidence(config.base)
        evidence.add("packing", weights[0], packing)
        evidence.add("spread_over_collections", weights[1], spread)
        evidence.add("repeated_counterparty", weights[2], repeated)
        evidence.add("legs", weights[3], (legs - config.min_trades) / 2)
        return evidence, facts

    def evict(self, now: float) -> None:
        self.window.evict(now)
        self.activity.evict(now)
        self.episodes.evict(now)
