"""Wash trading: buyer and seller are one person, or a token goes round in circles."""

from __future__ import annotations

from sys import intern

from amlwatch.alerts import Alert, Episodes
from amlwatch.config import DAY, HOUR, LinkConfig, WashConfig

from .base import Detector, TradeView, money
from .evidence import Evidence, falling, young
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
        score = link_strength(found)
        names = ", ".join(name.replace("_", " ") for name in found)
        reason = (
            f"Buyer {trade.buyer_id} and seller {trade.seller_id} are linked ({names}) "
            f"yet traded {trade.token_id} for {money(trade.price)}."
        )
        return [self.alert(trade, score, reason, {"links": found, "price": str(trade.price)})]

    def find_links(self, view: TradeView) -> dict[str, float]:
        return find_links(view, self.links)


def find_links(view: TradeView, links: LinkConfig) -> dict[str, float]:
    """What ties a trade's buyer and seller to one person, with each link's strength."""
    trade, buyer, seller = view.trade, view.buyer, view.seller
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
    if _share_device(view):
        found["shared_device"] = links.shared_device
    return found


def link_strength(found: dict[str, float]) -> float:
    """Links combine as independent evidence: 1 - prod(1 - strength)."""
    doubt = 1.0
    for strength in found.values():
        doubt *= 1.0 - strength
    return 1.0 - doubt


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


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


class RoundTripDetector(Detector):
    """A token coming back to an account that owned it within the window.

    A cycle alone is weak evidence: collectors buy back what they sold, often
    at a higher price in a rising market, and a dealer buying much of a
    collection meets the same tokens again. Wash cycles move the token round
    at one price, fast, among linked or new accounts, so the score weighs
    price symmetry, speed, links and account age (docs/DETECTORS.md) and a
    cycle scoring under `round_trip_min_score` raises nothing.
    """

    name = "wash.round_trip"
    typology = "wash_trading"

    def __init__(self, config: WashConfig, ledger: TokenLedger, links: LinkConfig | None = None):
        self.config = config
        self.ledger = ledger
        self.links = links or LinkConfig()
        self.episodes = Episodes(config.window_days * DAY)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        history = self.ledger.history(trade.token_id, trade.t)
        if not history:
            return []
        config = self.config
        start = None
        oldest = max(0, len(history) - config.cycle_max_length + 1)
        for index in range(len(history) - 1, oldest - 1, -1):
            if history[index][1].seller_id == trade.buyer_id:
                start = index
                break
        if start is None:
            return []
        legs = [entry[1] for entry in history[start:]] + [trade]
        paid = [leg for leg in legs if leg.paid]
        if not paid:
            return []
        path, gaps = true_path(legs)
        hours = (trade.t - legs[0].t) / HOUR
        prices = [float(leg.price) for leg in paid]
        spread = max(prices) / min(prices)
        links = find_links(view, self.links)
        # Chance brings tokens back too: to a dealer trading a large share of the collection, or
        # through it to their earlier owners, and among accounts that trade with many others. A wash
        # ring's accounts trade mostly within the ring, so the cycle's shape (one price, fast) counts
        # only as far as the ring is its members' trading ("isolation"), and not at all with a dealer.
        dealers, isolation = self._members(trade, legs, path)
        shape = 0.0 if dealers else isolation
        evidence = Evidence(config.round_trip_base)
        evidence.add("price_symmetry", config.round_trip_weights[0],
                     shape * falling(spread, 1.0 + config.symmetric_within, 1.0 + config.asymmetric_at))
        evidence.add("speed", config.round_trip_weights[1],
                     shape * falling(max(hours, 1e-3), config.fast_hours, config.slow_days * 24))
        evidence.add("links", config.round_trip_weights[2], link_strength(links))
        evidence.add("young_accounts", config.round_trip_weights[3],
                     max(young(_registered(view.buyer), trade.t, config.young_days),
                         young(_registered(view.seller), trade.t, config.young_days)))
        evidence.add("ring", config.round_trip_weights[4], min(1.0, len(set(path)) - 2.0))
        score = evidence.score
        if score < config.round_trip_min_score:
            return []
        reason = (
            f"Token {trade.token_id} went round {' -> '.join(path)} in {len(legs)} trades "
            f"over {hours / 24:.1f} days, back to {trade.buyer_id}; prices within {(spread - 1) * 100:.0f}% "
            f"of each other."
        )
        details = {
            "path": path,
            "legs": len(legs),
            "unrecorded_transfers": gaps,
            "days": round(hours / 24, 3),
            "prices": [str(leg.price) for leg in legs],
            "price_spread": round(spread, 3),
            "links": links,
            "dealers": dealers,
            "isolation": round(isolation, 3),
            "signals": evidence.signals,
            "window_days": config.window_days,
        }
        alert = self.alert(trade, score, reason, details, legs, accounts=path)
        return [self.episodes.extend(trade.token_id, trade.t, alert)]

    def evict(self, now: float) -> None:
        self.episodes.evict(now)


    def _members(self, trade, legs, path) -> tuple[dict, float]:
        """Dealers among the cycle's accounts, and the mean share of each account's paid trades in the
        collection (this one included) that are legs of the cycle."""
        config = self.config
        dealers, shares = {}, []
        for owner in dict.fromkeys(path):
            count, share = self.ledger.share(trade.collection_id, owner, trade.t)
            if count >= config.dealer_min_trades and share >= config.dealer_share:
                dealers[owner] = {"trades": count, "share": round(share, 4)}
            in_ring = sum(1 for leg in legs if leg.paid and owner in (leg.buyer_id, leg.seller_id))
            current = 1 if trade.paid and owner in (trade.buyer_id, trade.seller_id) else 0
            shares.append(min(1.0, in_ring / (count + current)) if count + current else 1.0)
        return dealers, sum(shares) / len(shares)


def true_path(legs) -> tuple[list[str], int]:
    """Every owner in order, the first seller to the last buyer; a leg whose seller is not the previous
    leg's buyer (the token moved without a recorded trade) still names that seller, and is counted."""
    path = [legs[0].seller_id]
    gaps = 0
    for leg in legs:
        if leg.seller_id != path[-1]:
            path.append(leg.seller_id)
            gaps += 1
        path.append(leg.buyer_id)
    return path, gaps


def _registered(state) -> float | None:
    return state.registered_t if state is not None else None


class PairRepeatDetector(Detector):
    """The same two accounts trading back and forth in one collection, a large share of what each trades.

    Collection-scoped (stage 1 sees every trade of the collection, so each
    account's whole activity there): both directions must carry at least
    `pair_min_each_way` trades and the smaller at least `pair_min_balance` of
    the pair's trades (a bulk sweep with one trade back is not a pair trading
    back and forth), and the pair must be at least `pair_min_share` of each
    account's paid trades in the collection (a market maker's many
    counterparties are not wash partners). A growing pair extends one episode.
    """

    name = "wash.pair_repeat"
    typology = "wash_trading"
    scope = "collection"

    def __init__(self, config: WashConfig, ledger: TokenLedger):
        self.config = config
        horizon = config.window_days * DAY
        self.ledger = ledger
        """Counts each account's paid trades per collection; the monitor records each trade after the
        detectors have seen it."""
        self.window: KeyedWindow = KeyedWindow(horizon, config.max_trades_per_token)
        self.episodes = Episodes(horizon)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        if not trade.paid or trade.buyer_id == trade.seller_id:
            return []
        config = self.config
        entry = self.ledger.entry(trade)
        collection = intern(trade.collection_id)
        pair = _pair(entry[1].buyer_id, entry[1].seller_id)
        key = (collection, *pair)
        recent = self.window.push(key, entry)
        if len(recent) < config.pair_repeat_min:
            return []
        trades = [entry[1] for entry in recent]
        forward = sum(1 for t in trades if t.seller_id == pair[0])
        backward = len(trades) - forward
        minority = min(forward, backward)
        if minority < config.pair_min_each_way or minority / len(trades) < config.pair_min_balance:
            return []
        shares = {a: len(trades) / max(self.ledger.activity.count((collection, a), trade.t) + 1, len(trades))
                  for a in pair}
        if min(shares.values()) < config.pair_min_share:
            return []
        prices = [float(t.price) for t in trades]
        spread = max(prices) / min(prices)
        days = (trade.t - trades[0].t) / DAY
        evidence = Evidence(config.pair_base)
        weights = config.pair_weights
        evidence.add("balance", weights[0], minority / (len(trades) / 2))
        evidence.add("concentration", weights[1], min(shares.values()))
        evidence.add("repeats", weights[2], (len(trades) - config.pair_repeat_min + 1) / 3)
        evidence.add("price_symmetry", weights[3],
                     falling(spread, 1.0 + config.symmetric_within, 1.0 + config.asymmetric_at))
        evidence.add("young_accounts", weights[4],
                     max(young(_registered(view.buyer), trade.t, config.young_days),
                         young(_registered(view.seller), trade.t, config.young_days)))
        total = sum(t.price for t in trades)
        reason = (
            f"Accounts {pair[0]} and {pair[1]} traded with each other {len(trades)} times in "
            f"{collection} within {days:.1f} days, {forward} one way and {backward} the other, "
            f"{money(total)} in all; the pair is {min(shares.values()) * 100:.0f}% or more of each "
            f"one's trades there."
        )
        details = {"trades": len(trades), "directions": {f"{pair[0]}->{pair[1]}": forward,
                                                          f"{pair[1]}->{pair[0]}": backward},
                   "total": str(total), "share_of_activity": {a: round(v, 3) for a, v in shares.items()},
                   "price_spread": round(spread, 3), "signals": evidence.signals,
                   "min_trades": config.pair_repeat_min, "min_each_way": config.pair_min_each_way}
        alert = self.alert(trade, evidence.score, reason, details, trades, accounts=list(pair))
        return [self.episodes.extend(key, trade.t, alert)]

    def evict(self, now: float) -> None:
        self.window.evict(now)
        self.episodes.evict(now)


class RepeatBuyerDetector(Detector):
    """One account buying the same token again and again: it must keep coming back."""

    name = "wash.repeat_buyer"
    typology = "wash_trading"

    def __init__(self, config: WashConfig, ledger: TokenLedger):
        self.config = config
        self.ledger = ledger
        self.window: KeyedWindow = KeyedWindow(config.window_days * DAY, config.rebuy_min * 4)
        self.episodes = Episodes(config.window_days * DAY)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        if not trade.paid:
            return []
        entry = self.ledger.entry(trade)
        key = (entry[1].buyer_id, entry[1].token_id)
        buys = self.window.push(key, entry)
        if len(buys) < self.config.rebuy_min:
            return []
        config = self.config
        trades_there, share = self.ledger.share(trade.collection_id, trade.buyer_id, trade.t)
        if trades_there >= config.dealer_min_trades and share >= config.dealer_share:
            return []  # a dealer buying a large share of the collection meets the same token again
        first = buys[0][0]
        between = [entry[1] for entry in self.ledger.history(trade.token_id, trade.t) if entry[0] >= first]
        path, _ = true_path(between + [trade])
        prices = [float(entry[1].price) for entry in buys]
        spread = max(prices) / min(prices)
        evidence = Evidence(config.rebuy_base)
        evidence.add("repeats", config.rebuy_weights[0], (len(buys) - config.rebuy_min + 1) / 2)
        evidence.add("price_symmetry", config.rebuy_weights[1],
                     falling(spread, 1.0 + config.symmetric_within, 1.0 + config.asymmetric_at))
        reason = (
            f"Account {trade.buyer_id} bought token {trade.token_id} {len(buys)} times within "
            f"{config.window_days:g} days ({' -> '.join(path)})."
        )
        details = {"buys": len(buys), "min_buys": config.rebuy_min, "path": path,
                   "prices": [str(entry[1].price) for entry in buys], "signals": evidence.signals}
        alert = self.alert(trade, evidence.score, reason, details, between)
        return [self.episodes.extend(key, trade.t, alert)]

    def evict(self, now: float) -> None:
        self.window.evict(now)
        self.episodes.evict(now)
