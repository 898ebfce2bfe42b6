"""Wash trading: buyer and seller are one person, or a token goes round in circles."""

from __future__ import annotations

from amlwatch.alerts import Alert
from amlwatch.config import DAY, LinkConfig, WashConfig

from .base import Detector, TradeView, money
from .ledger import TokenLedger
from .windows import KeyedWindow


class LinkedPartiesDetector(Detector):
    """Paid trades between accounts that share identity, money or hardware.

    Links combine as independent evidence (1 - prod(1 - strength)). A shared
    public IP is not a link: campus NAT and households share them honestly,
    and gifts move no money, so neither is looked at.
    """

    name = "wash.linked_parties"
    typology = "wash_trading"
    needs_registry = True

    def __init__(self, links: LinkConfig):
        self.links = links

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        if not trade.paid:
            return []
        found = self.find_links(view)
        if not found:
            return []
        doubt = 1.0
        for strength in found.values():
            doubt *= 1.0 - strength
        score = 1.0 - doubt
        names = ", ".join(name.replace("_", " ") for name in found)
        reason = (
            f"Buyer {trade.buyer_id} and seller {trade.seller_id} are linked ({names}) "
            f"yet traded {trade.token_id} for {money(trade.price)}."
        )
        return [self.alert(trade, score, reason, {"links": found, "price": str(trade.price)})]

    def find_links(self, view: TradeView) -> dict[str, float]:
        trade, buyer, seller, links = view.trade, view.buyer, view.seller, self.links
        found: dict[str, float] = {}
        if trade.buyer_id == trade.seller_id:
            found["same_account"] = 1.0
        if buyer and seller and buyer.id_hash and buyer.id_hash == seller.id_hash:
            found["same_national_id"] = links.same_national_id
        if seller is not None and (
            (trade.instrument_hash and trade.instrument_hash in seller.cards
             and not (buyer and trade.instrument_hash in buyer.cards))
            or (trade.payer_name_hash and trade.payer_name_hash == seller.name_hash
                and not (buyer and buyer.name_hash == seller.name_hash))
        ):
            found["seller_funds_buyer"] = links.seller_funds_buyer
        if buyer and seller and buyer.cards and not buyer.cards.isdisjoint(seller.cards):
            found["shared_bank_card"] = links.shared_bank_card
        if buyer and seller and buyer.phone_hash and buyer.phone_hash == seller.phone_hash:
            found["shared_phone"] = links.shared_phone
        if self._share_device(view):
            found["shared_device"] = links.shared_device
        return found

    @staticmethod
    def _share_device(view: TradeView) -> bool:
        trade, buyer, seller = view.trade, view.buyer, view.seller
        buyer_devices = buyer.devices if buyer else ()
        seller_devices = seller.devices if seller else ()
        at_buyer, at_seller = trade.buyer_device_id, trade.seller_device_id
        if at_buyer and (at_buyer == at_seller or at_buyer in seller_devices):
            return True
        if at_seller and at_seller in buyer_devices:
            return True
        # Registry histories hold a few devices each: a nested scan beats building sets on every trade.
        return any(device in seller_devices for device in buyer_devices)


class RoundTripDetector(Detector):
    """A token coming back to an account that owned it within the window."""

    name = "wash.round_trip"
    typology = "wash_trading"

    def __init__(self, config: WashConfig, ledger: TokenLedger):
        self.config = config
        self.ledger = ledger

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        history = self.ledger.history(trade.token_id, trade.t)
        if not history:
            return []
        start = None
        oldest = max(0, len(history) - self.config.cycle_max_length + 1)
        for index in range(len(history) - 1, oldest - 1, -1):
            if history[index][1].seller_id == trade.buyer_id:
                start = index
                break
        if start is None:
            return []
        legs = [entry[1] for entry in list(history)[start:]] + [trade]
        if not any(leg.paid for leg in legs):
            return []
        owners = [legs[0].seller_id] + [leg.buyer_id for leg in legs]
        days = (trade.t - legs[0].t) / DAY
        score = 0.8 if len(legs) == 2 else 0.9
        reason = (
            f"Token {trade.token_id} went round {' -> '.join(owners)} in {len(legs)} trades "
            f"over {days:.1f} days, back to {trade.buyer_id}."
        )
        evidence = {
            "path": owners,
            "legs": len(legs),
            "days": round(days, 3),
            "prices": [str(leg.price) for leg in legs],
            "window_days": self.config.window_days,
        }
        return [self.alert(trade, score, reason, evidence, legs)]


class PairRepeatDetector(Detector):
    """The same two accounts trading back and forth."""

    name = "wash.pair_repeat"
    typology = "wash_trading"
    scope = "pair"

    def __init__(self, config: WashConfig):
        self.config = config
        self.window: KeyedWindow = KeyedWindow(config.window_days * DAY, config.max_trades_per_token)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        if not trade.paid or trade.buyer_id == trade.seller_id:
            return []
        pair = (trade.buyer_id, trade.seller_id) if trade.buyer_id < trade.seller_id else (trade.seller_id, trade.buyer_id)
        self.window.add(pair, trade.t, trade)
        recent = self.window.recent(pair, trade.t)
        if len(recent) < self.config.pair_repeat_min:
            return []
        trades = [entry[1] for entry in recent]
        if len({t.seller_id for t in trades}) < 2:
            return []
        total = sum(t.price for t in trades)
        reason = (
            f"Accounts {pair[0]} and {pair[1]} traded with each other {len(trades)} times in both "
            f"directions within {self.config.window_days:g} days, {money(total)} in all."
        )
        evidence = {"trades": len(trades), "total": str(total), "min_trades": self.config.pair_repeat_min}
        return [self.alert(trade, 0.8, reason, evidence, trades)]

    def evict(self, now: float) -> None:
        self.window.evict(now)


class RepeatBuyerDetector(Detector):
    """One account buying the same token again and again: it must keep coming back."""

    name = "wash.repeat_buyer"
    typology = "wash_trading"

    def __init__(self, config: WashConfig, ledger: TokenLedger):
        self.config = config
        self.ledger = ledger
        self.window: KeyedWindow = KeyedWindow(config.window_days * DAY, config.rebuy_min * 4)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        if not trade.paid:
            return []
        key = (trade.buyer_id, trade.token_id)
        self.window.add(key, trade.t, trade)
        buys = self.window.recent(key, trade.t)
        if len(buys) < self.config.rebuy_min:
            return []
        first = buys[0][0]
        between = [entry[1] for entry in self.ledger.history(trade.token_id, trade.t) if entry[0] >= first]
        reason = (
            f"Account {trade.buyer_id} bought token {trade.token_id} {len(buys)} times within "
            f"{self.config.window_days:g} days."
        )
        evidence = {"buys": len(buys), "min_buys": self.config.rebuy_min,
                    "prices": [str(entry[1].price) for entry in buys]}
        return [self.alert(trade, 0.85, reason, evidence, between)]

    def evict(self, now: float) -> None:
        self.window.evict(now)
