"""Speculation: prices far above the market, pumps, quick flips, locks broken.

Primary sales never count: a drop selling out at its issue price is normal.
"""

from __future__ import annotations

import math

from amlwatch.alerts import Alert
from amlwatch.config import DAY, HOUR, SpeculationConfig

from .base import Detector, TradeView, money
from .windows import KeyedWindow, SortedWindow


def _ratio_score(ratio: float, threshold: float) -> float:
    """0.7 at the threshold, rising with each doubling beyond it, capped below 1."""
    return min(0.95, 0.7 + 0.1 * math.log2(max(ratio / threshold, 1.0)))


class PriceSpikeDetector(Detector):
    name = "speculation.price_spike"
    typology = "speculation"

    def __init__(self, config: SpeculationConfig):
        self.config = config
        self.prices = SortedWindow(config.median_window_days * DAY, config.median_max_samples)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        if trade.kind != "secondary" or not trade.paid:
            return []
        config = self.config
        price = float(trade.price)
        recent = self.prices.recent(trade.collection_id, trade.t)
        alerts = []
        if len(recent) >= config.median_min_samples:
            median = _median(recent)
            if median > 0 and price >= config.spike_over_median * median:
                ratio = price / median
                reason = (
                    f"{trade.token_id} sold for {money(trade.price)}, {ratio:.1f}x the collection's "
                    f"{config.median_window_days:g}-day median of {money(median)} over {len(recent)} trades."
                )
                evidence = {"price": str(trade.price), "median": round(median, 2), "ratio": round(ratio, 3),
                            "samples": len(recent), "threshold": config.spike_over_median}
                alerts.append(self.alert(trade, _ratio_score(ratio, config.spike_over_median), reason, evidence))
        elif view.collection is not None and view.collection.issue_price:
            issue = float(view.collection.issue_price)
            if price >= config.spike_over_issue * issue:
                ratio = price / issue
                reason = (
                    f"{trade.token_id} sold for {money(trade.price)}, {ratio:.1f}x its issue price of "
                    f"{money(issue)}, with too few recent trades for a market median."
                )
                evidence = {"price": str(trade.price), "issue_price": str(view.collection.issue_price),
                            "ratio": round(ratio, 3), "samples": len(recent),
                            "threshold": config.spike_over_issue}
                alerts.append(self.alert(trade, _ratio_score(ratio, config.spike_over_issue), reason, evidence))
        self.prices.add(trade.collection_id, trade.t, price)
        return alerts

    def evict(self, now: float) -> None:
        self.prices.evict(now)


def _median(values: list[float]) -> float:
    """Median of values already in ascending order."""
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


class PumpDetector(Detector):
    """A run of secondary trades in one collection, each priced a step above the last."""

    name = "speculation.pump"
    typology = "speculation"

    def __init__(self, config: SpeculationConfig):
        self.config = config
        self.trades: KeyedWindow = KeyedWindow(config.pump_window_hours * HOUR, 64)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        if trade.kind != "secondary" or not trade.paid:
            return []
        config = self.config
        self.trades.add(trade.collection_id, trade.t, trade)
        recent = self.trades.recent(trade.collection_id, trade.t)
        if len(recent) < config.pump_min_trades:
            return []
        run = [trade]
        for index in range(len(recent) - 2, -1, -1):
            earlier = recent[index][1]
            if float(earlier.price) * config.pump_step > float(run[-1].price):
                break
            run.append(earlier)
        if len(run) < config.pump_min_trades:
            return []
        run.reverse()
        rise = float(trade.price) / float(run[0].price)
        if rise < config.pump_total_rise:
            return []
        minutes = (trade.t - run[0].t) / 60
        reason = (
            f"{len(run)} trades in {trade.collection_id} within {minutes:.0f} minutes each priced at least "
            f"{(config.pump_step - 1) * 100:.0f}% above the last, rising {rise:.1f}x from "
            f"{money(run[0].price)} to {money(trade.price)}."
        )
        evidence = {"trades": len(run), "rise": round(rise, 3), "minutes": round(minutes, 1),
                    "prices": [str(t.price) for t in run], "min_trades": config.pump_min_trades,
                    "step": config.pump_step}
        score = min(0.95, 0.75 + 0.05 * (len(run) - config.pump_min_trades))
        return [self.alert(trade, score, reason, evidence, run, accounts=_accounts(run))]

    def evict(self, now: float) -> None:
        self.trades.evict(now)


def _accounts(trades) -> list[str]:
    return list(dict.fromkeys(a for t in trades for a in (t.seller_id, t.buyer_id)))


class RapidFlipDetector(Detector):
    """A token resold within hours of being bought, at a large markup."""

    name = "speculation.rapid_flip"
    typology = "speculation"

    def __init__(self, config: SpeculationConfig):
        self.config = config

    def observe(self, view: TradeView) -> list[Alert]:
        trade, bought = view.trade, view.acquisition
        if bought is None or not trade.paid or not bought.paid:
            return []
        config = self.config
        held = trade.t - bought.t
        if held > config.flip_window_hours * HOUR:
            return []
        markup = float(trade.price / bought.price) - 1.0
        if markup < config.flip_markup:
            return []
        reason = (
            f"{trade.seller_id} resold {trade.token_id} {held / HOUR:.1f} hours after buying it, "
            f"for {money(trade.price)} against {money(bought.price)} paid ({markup * 100:.0f}% markup)."
        )
        evidence = {"held_hours": round(held / HOUR, 3), "markup": round(markup, 4),
                    "bought_for": str(bought.price), "sold_for": str(trade.price),
                    "window_hours": config.flip_window_hours, "min_markup": config.flip_markup}
        score = _ratio_score(1.0 + markup, 1.0 + config.flip_markup)
        return [self.alert(trade, score, reason, evidence, [bought])]


class TransferLockDetector(Detector):
    """A resale or gift before the collection's holding period is over."""

    name = "speculation.transfer_lock"
    typology = "speculation"
    needs_registry = True

    def observe(self, view: TradeView) -> list[Alert]:
        trade, bought, collection = view.trade, view.acquisition, view.collection
        if trade.kind == "primary" or bought is None or collection is None:
            return []
        lock_days = collection.transfer_lock_days or 0
        held_days = (trade.t - bought.t) / DAY
        if lock_days <= 0 or held_days >= lock_days:
            return []
        verb = "gave away" if trade.kind == "gift" else "resold"
        reason = (
            f"{trade.seller_id} {verb} {trade.token_id} after {held_days:.1f} days; "
            f"{trade.collection_id} requires holding it {lock_days} days."
        )
        evidence = {"held_days": round(held_days, 3), "transfer_lock_days": lock_days}
        return [self.alert(trade, 0.85, reason, evidence, [bought])]
