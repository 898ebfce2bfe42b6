"""Speculation: prices far above the market, pumps, quick flips, locks broken.

Primary sales never count: a drop selling out at its issue price is normal.
Real collections are heavy-tailed: a rare token sells for many times the
floor, and keeps doing so. So a price is judged against the highest level
the collection's recent market shows (an upper quantile) and the token's own
last price, never against the median alone; a pump is a rise of the
collection's level, not of one token.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from amlwatch.alerts import Alert, Episodes
from amlwatch.config import DAY, HOUR, SpeculationConfig

from .base import Detector, TradeView, money
from .evidence import Evidence, falling, rising, young
from .ledger import TokenLedger
from .windows import KeyedWindow, SortedWindow


class PriceSpikeDetector(Detector):
    """A resale far above anything the collection's market or the token's own history explains.

    The reference is the larger of the collection's `spike_quantile` price over
    the last `median_window_days` and the token's own last paid price: a rarity
    premium sits inside both. Too thin a market for a quantile falls back to
    the issue price.
    """

    name = "speculation.price_spike"
    typology = "speculation"

    def __init__(self, config: SpeculationConfig, ledger: TokenLedger | None = None,
                 history_days: int = 200):
        self.config = config
        self.ledger = ledger
        self.prices = SortedWindow(config.median_window_days * DAY, config.median_max_samples)
        self.levels = LevelHistory(history_days)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        if trade.kind != "secondary" or not trade.paid:
            return []
        config = self.config
        price = float(trade.price)
        recent = self.prices.recent(trade.collection_id, trade.t)
        level = quantile(recent, 0.5) if len(recent) >= config.median_min_samples else None
        if level:
            self.levels.record(trade.collection_id, trade.t, level)
        own = self._own_price(trade, level)
        alerts = []
        if len(recent) >= config.median_min_samples:
            # A token seen before carries its own level; one that is not may be the rarest yet, so it is
            # held against the most the collection fetched, and by a wider margin.
            top = quantile(recent, config.spike_quantile) if own else recent[-1]
            floor = quantile(recent, config.floor_quantile)
            reference = max(top, own or 0.0)
            over = config.spike_over_reference if own else config.spike_over_unseen
            beyond_rarity = own or price >= config.spike_unseen_over_floor * floor
            if reference > 0 and price >= over * reference and beyond_rarity:
                ratio = price / reference
                evidence = Evidence(config.spike_base)
                evidence.add("over_reference", config.spike_weights[0], rising(ratio, over, over * 4))
                evidence.add("over_floor", config.spike_weights[1], rising(price / floor, 10, 100) if floor else 0)
                evidence.add("young_accounts", config.spike_weights[2], _young(view, trade, config.young_days))
                what = ("its own last price" if own and own >= top else
                        f"the collection's top {100 - config.spike_quantile * 100:.0f}% level" if own else
                        "the collection's highest price")
                reason = (
                    f"{trade.token_id} sold for {money(trade.price)}, {ratio:.1f}x {what} of {money(reference)} "
                    f"and {price / floor:.0f}x the floor of {money(floor)} over the last "
                    f"{config.median_window_days:g} days ({len(recent)} trades)."
                )
                details = {"price": str(trade.price), "reference": round(reference, 2), "ratio": round(ratio, 3),
                           "collection_top": round(top, 2), "floor": round(floor, 2),
                           "median": round(quantile(recent, 0.5), 2),
                           "token_last_price": round(own, 2) if own else None, "samples": len(recent),
                           "threshold": over, "signals": evidence.signals}
                alerts.append(self.alert(trade, evidence.score, reason, details))
        elif view.collection is not None and view.collection.issue_price:
            issue = float(view.collection.issue_price)
            reference = max(issue, own or 0.0)
            # A token without a resale price of its own may be the rarest of the drop: the flat issue price
            # is then the floor it is held against, by the margin rarity premiums never reach.
            over = config.spike_over_issue if own else config.spike_unseen_over_floor
            if price >= over * reference:
                ratio = price / issue
                evidence = Evidence(config.spike_base)
                evidence.add("over_reference", config.spike_weights[0],
                             rising(price / reference, over, over * 4))
                evidence.add("young_accounts", config.spike_weights[2], _young(view, trade, config.young_days))
                reason = (
                    f"{trade.token_id} sold for {money(trade.price)}, {ratio:.1f}x its issue price of "
                    f"{money(issue)}, with too few recent trades for a market level."
                )
                details = {"price": str(trade.price), "issue_price": str(view.collection.issue_price),
                           "ratio": round(ratio, 3), "samples": len(recent),
                           "token_last_price": round(own, 2) if own else None,
                           "threshold": over, "signals": evidence.signals}
                alerts.append(self.alert(trade, evidence.score, reason, details))
        self.prices.add(trade.collection_id, trade.t, price)
        return alerts

    def _own_price(self, trade, level: float | None) -> float | None:
        """The token's last paid price, raised by the collection's rise since (when both levels are known).

        Only a rise moves it: a heavy-tailed collection's median also swings with what happens to
        trade, and a fall must not make an old price look like a spike."""
        last = _last_paid_sale(self.ledger, trade)
        if last is None:
            return None
        own = float(last.price)
        then = self.levels.at(trade.collection_id, last.t) if level else None
        if level and then and level > then:
            own *= level / then
        return own

    def evict(self, now: float) -> None:
        self.prices.evict(now)
        self.levels.evict(now)


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of values already in ascending order (linear between neighbours)."""
    if not values:
        return 0.0
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def _last_paid(ledger: TokenLedger | None, trade) -> float | None:
    last = _last_paid_sale(ledger, trade)
    return float(last.price) if last is not None else None


def _last_paid_sale(ledger: TokenLedger | None, trade):
    """The token's last paid resale before this trade: from its recent transfers, else its last
    transfer (kept for the holding horizon, months), if that was a paid resale.

    A primary sale is not the token's own price: a drop sells every token at one flat issue price,
    so a rare token's first resale at its rarity premium is price discovery, not a rise."""
    if ledger is None:
        return None
    for _, earlier in reversed(ledger.history(trade.token_id, trade.t)):
        if earlier.paid and earlier.kind == "secondary":
            return earlier
        if earlier.kind == "primary":
            return None
    last = ledger.last_transfer.recent(trade.token_id, trade.t)
    if last and last[-1][1].paid and last[-1][1].kind == "secondary":
        return last[-1][1]
    return None


class LevelHistory:
    """A collection's market level (its rolling median) per event-time day, for the holding horizon:
    a token's old price is compared after the market's rise since, not as it was."""

    __slots__ = ("days", "_levels", "_evicted_day")

    def __init__(self, days: int):
        self.days = days
        self._levels: dict[str, dict[int, float]] = {}
        self._evicted_day: int | None = None

    def record(self, collection_id: str, t: float, level: float) -> None:
        self._levels.setdefault(collection_id, {})[int(t // DAY)] = level

    def at(self, collection_id: str, t: float) -> float | None:
        """The level of the latest recorded day at or before `t`'s day (within a week), else None."""
        levels = self._levels.get(collection_id)
        if not levels:
            return None
        day = int(t // DAY)
        for back in range(8):
            level = levels.get(day - back)
            if level is not None:
                return level
        return None

    def evict(self, now: float) -> None:
        oldest = int(now // DAY) - self.days
        if oldest == self._evicted_day:
            return  # days only leave once a day
        self._evicted_day = oldest
        for collection_id in list(self._levels):
            levels = self._levels[collection_id]
            for day in [d for d in levels if d < oldest]:
                del levels[day]
            if not levels:
                del self._levels[collection_id]

    def __len__(self) -> int:
        return len(self._levels)


def _young(view: TradeView, trade, days: float) -> float:
    return max(young(view.buyer.registered_t if view.buyer else None, trade.t, days),
               young(view.seller.registered_t if view.seller else None, trade.t, days))


class PumpDetector(Detector):
    """A sharp rise of a collection's price level over hours, whatever the step of each trade.

    Over the collection's secondary trades of the last `pump_window_hours`, a
    run of at least `pump_min_trades` trades ending now is a pump when its
    prices trend up (Kendall's tau >= `pump_min_trend`: most pairs of trades
    rise with time), its level (median of three trades, so one rare token does
    not make a level) rises `pump_level_rise` times from its start to now, and
    the last three trades sell at a median `pump_total_rise` times what those
    tokens last sold for: unrelated honest trades of a busy hour have no trend
    and sell near their own last prices, and a rare token's premium is in its
    own last price too. A pump going on extends one episode per collection.
    """

    name = "speculation.pump"
    typology = "speculation"

    def __init__(self, config: SpeculationConfig, ledger: TokenLedger | None = None):
        self.config = config
        self.ledger = ledger
        self.trades: KeyedWindow = KeyedWindow(config.pump_window_hours * HOUR, config.pump_max_trades)
        self.prices = SortedWindow(config.median_window_days * DAY, config.median_max_samples)
        self.episodes = Episodes(config.pump_window_hours * HOUR)

    def observe(self, view: TradeView) -> list[Alert]:
        trade = view.trade
        if trade.kind != "secondary" or not trade.paid:
            return []
        config = self.config
        price = float(trade.price)
        own = _last_paid(self.ledger, trade)
        self.trades.add(trade.collection_id, trade.t, (trade, price, price / own if own else None))
        recent = self.trades.recent(trade.collection_id, trade.t)
        self.prices.add(trade.collection_id, trade.t, price)
        market = self.prices.recent(trade.collection_id, trade.t)
        run = _pump_run(recent, config, lambda: _established_level(market, recent, config))
        if run is None:
            return []
        trades = [entry[1][0] for entry in run]
        prices = [entry[1][1] for entry in run]
        start, end = _median3(prices[:3]), _median3(prices[-3:])
        rise = end / start
        minutes = (trade.t - trades[0].t) / 60
        steps = [b / a for a, b in zip(prices, prices[1:]) if a > 0]
        accounts = list(dict.fromkeys(a for t in trades for a in (t.seller_id, t.buyer_id)))
        evidence = Evidence(config.pump_base)
        evidence.add("rise", config.pump_weights[0], rising(rise, config.pump_level_rise, config.pump_level_rise * 4))
        evidence.add("trend", config.pump_weights[1], _tau([p for p in prices]))
        evidence.add("length", config.pump_weights[2], (len(run) - config.pump_min_trades) / 5)
        evidence.add("few_accounts", config.pump_weights[3], 1.0 - len(accounts) / (2.0 * len(trades)))
        reason = (
            f"{trade.collection_id}'s price level rose {rise:.1f}x over {len(run)} trades within "
            f"{minutes:.0f} minutes, from {money(start)} to {money(end)} (median step "
            f"{(sorted(steps)[len(steps) // 2] - 1) * 100:+.0f}%)."
        )
        details = {"trades": len(run), "rise": round(rise, 3), "minutes": round(minutes, 1),
                   "prices": [str(t.price) for t in trades], "min_trades": config.pump_min_trades,
                   "min_level_rise": config.pump_level_rise, "min_rise_over_own": config.pump_total_rise, "trend": round(_tau(prices), 3),
                   "signals": evidence.signals}
        alert = self.alert(trade, evidence.score, reason, details, trades, accounts=accounts)
        return [self.episodes.extend(trade.collection_id, trade.t, alert)]

    def evict(self, now: float) -> None:
        self.trades.evict(now)
        self.prices.evict(now)
        self.episodes.evict(now)


def _median3(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _tau(values: list[float]) -> float:
    """Kendall's tau of values against their order: 1 when every later value is higher."""
    concordant = discordant = 0
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            if b > a:
                concordant += 1
            elif b < a:
                discordant += 1
    pairs = len(values) * (len(values) - 1) / 2
    return (concordant - discordant) / pairs if pairs else 0.0


def _established_level(market: list[float], recent, config: SpeculationConfig) -> float | None:
    """The collection's `pump_baseline_quantile` price before the pump window, if it had a market then.

    In a heavy-tailed market many trades sell well above the floor, so a run of them in a row is no
    rise; the floor has risen when it sits above where the market's rarest tenth used to trade."""
    prior = list(market)
    for entry in recent:  # the market as it stood before the pump window
        i = bisect_left(prior, entry[1][1])
        if i < len(prior) and prior[i] == entry[1][1]:
            del prior[i]
    if len(prior) < config.median_min_samples:
        return None
    return quantile(prior, config.pump_baseline_quantile)


def _pump_bounds(recent, config: SpeculationConfig) -> tuple[int, int] | None:
    """(fewest trades, trades of the closing floor) of a pump ending now, or None if none can."""
    if len(recent) < config.pump_min_trades:
        return None
    relative = [entry[1][2] for entry in recent[-3:] if entry[1][2] is not None]
    if relative and _median3(relative) < config.pump_total_rise:
        return None
    # Tokens that sold before show the rise in their own prices; tokens on their first resale (after a
    # flat mint) show only the market's order and floor, so the run needs more of both.
    if len(relative) == 3:
        return config.pump_min_trades, 3
    return config.pump_unseen_min_trades, config.pump_floor_trades


def _pump_run(recent, config: SpeculationConfig, established=lambda: None):
    """The longest run of recent trades ending now that is a pump, or None.

    Runs grow backwards from the newest trade; Kendall's concordance is kept
    incrementally, each earlier trade's pairs counted by bisecting the later prices, kept sorted (a busy
    collection's 48 trades cost 47 bisections, not 1,128 comparisons). The
    level is judged twice: its median of three (what the run trades at) and
    its floor of three (the cheapest of three trades), since a few rare tokens
    in a row lift a median but only a rise of the whole market lifts a floor."""
    bounds = _pump_bounds(recent, config)
    if bounds is None:
        return None
    min_trades, floor_trades = bounds
    n = len(recent)
    prices = [entry[1][1] for entry in recent]
    later_prices = [prices[-1]]   # the prices after `start`, ascending
    best = None
    score = 0
    level: float | None = None
    level_known = False
    for start in range(n - 2, -1, -1):
        first = prices[start]
        # later prices above `first` less those below it: the pairs this start adds, counted by bisection
        score += len(later_prices) - bisect_right(later_prices, first) - bisect_left(later_prices, first)
        insort(later_prices, first)
        length = n - start
        if length < min_trades:
            continue
        if score / (length * (length - 1) / 2) < config.pump_min_trend:
            continue
        opening = prices[start:start + 3]
        if _median3(prices[max(start, n - 3):]) < config.pump_level_rise * _median3(opening):
            continue
        closing_floor = min(prices[max(start, n - floor_trades):])
        if closing_floor < config.pump_level_rise * min(opening):
            continue
        if not level_known:
            level, level_known = established(), True
        if level is not None and closing_floor < config.pump_level_rise * level:
            continue
        best = recent[start:]
    return best


class RapidFlipDetector(Detector):
    """A token resold within hours of being bought, at a large markup, above the market.

    Buying under the market and reselling at it within hours is honest
    arbitrage (a mispriced listing sniped); a flip is a resale above what the
    collection trades at, once its market is known.
    """

    name = "speculation.rapid_flip"
    typology = "speculation"

    def __init__(self, config: SpeculationConfig):
        self.config = config
        self.prices = SortedWindow(config.median_window_days * DAY, config.median_max_samples)

    def observe(self, view: TradeView) -> list[Alert]:
        trade, bought = view.trade, view.acquisition
        config = self.config
        market = None
        if trade.kind == "secondary" and trade.paid:
            recent = self.prices.recent(trade.collection_id, trade.t)
            if len(recent) >= config.median_min_samples:
                market = quantile(recent, 0.5)
            self.prices.add(trade.collection_id, trade.t, float(trade.price))
        if bought is None or not trade.paid or not bought.paid:
            return []
        held = trade.t - bought.t
        if held > config.flip_window_hours * HOUR:
            return []
        markup = float(trade.price / bought.price) - 1.0
        # Bought at the flat mint price before the collection has a market: the floor opens above the issue
        # price as the market forms, so the markup over the mint needs a wider margin than over a resale.
        from_mint = bought.kind == "primary" and market is None
        if markup < (config.flip_markup_over_mint if from_mint else config.flip_markup):
            return []
        over_market = float(trade.price) / market if market else None
        if over_market is not None and over_market < config.flip_over_market:
            return []
        evidence = Evidence(config.flip_base)
        evidence.add("markup", config.flip_weights[0], rising(1.0 + markup, 1.0 + config.flip_markup, 4.0))
        evidence.add("speed", config.flip_weights[1], falling(max(held / HOUR, 0.01), 1.0, config.flip_window_hours))
        evidence.add("over_market", config.flip_weights[2],
                     rising(over_market, config.flip_over_market, 4.0) if over_market else 0.0)
        evidence.add("young_accounts", config.flip_weights[3], _young(view, trade, config.young_days))
        reason = (
            f"{trade.seller_id} resold {trade.token_id} {held / HOUR:.1f} hours after buying it, "
            f"for {money(trade.price)} against {money(bought.price)} paid ({markup * 100:.0f}% markup"
            + (f", {over_market:.1f}x the collection's median)." if over_market else ").")
        )
        details = {"held_hours": round(held / HOUR, 3), "markup": round(markup, 4),
                   "bought_for": str(bought.price), "sold_for": str(trade.price),
                   "market_median": round(market, 2) if market else None,
                   "window_hours": config.flip_window_hours, "min_markup": config.flip_markup,
                   "signals": evidence.signals}
        return [self.alert(trade, evidence.score, reason, details, [bought])]

    def evict(self, now: float) -> None:
        self.prices.evict(now)


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
