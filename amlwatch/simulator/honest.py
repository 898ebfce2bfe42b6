"""Honest traffic: the issuers' drops and a secondary market shaped like a real one.

A real collectible market is not a crowd of strangers each trading once at
one price. Here:
- each token carries a rarity premium (most none, the rest Pareto-tailed), so
  most trades cluster on the collection's floor and a few sell far above it;
- the floor follows regimes of rising, flat and falling markets (`World.floor_path`);
- dealers buy many tokens and resell them days later a little above the market;
- bulk sweepers buy a run of floor listings from many owners within an hour;
- market makers trade with many counterparties in both directions, a few of
  them more than once, each a small share of the maker's trading;
- an owner sometimes buys back a token it sold at least five days before,
  once the market has moved 30% either way, at the market price of the day.

The guarantees the labelled scenarios rely on still hold: honest accounts
share no identity attribute; nobody resells within the transfer lock; honest
holders other than market makers and dealers keep a token at least 12 hours;
no honest trade paid in cash or digital RMB falls in the structuring band;
and a token returns to an earlier owner only by a buy-back at the market.
"""

from __future__ import annotations

from .world import DAY, HOUR, MINUTE, Account, Collection, Token, World

GIFT_SHARE = 0.08
BUYBACK_SHARE = 0.012
BUYBACK_AFTER = 5 * DAY
BUYBACK_MOVE = 1.3
"""An owner buys back what it sold once the market has moved this much either way (regret, or a bargain)."""
DEALER_SHARE = 0.12
DEALER_MARKUP = (1.0, 1.1)
MAKER_SHARE = 0.12
MAKER_SPREAD = (0.97, 1.0, 1.04)
"""A market maker buys up to 3% under the market and sells up to 4% over it."""
MAKER_REPEAT = 0.25
"""Share of a market maker's sales to one of its earlier counterparties."""
MAKER_COLLECTIONS = 0.35
"""Share of unlocked collections a market maker quotes in."""
SWEEP_CHANCE = 0.3
SWEEP_SIZE = (6, 20)
SWEEP_STEP = 1.01
"""Each next floor listing a sweeper takes costs up to 1% more than the last."""
CASH_METHODS = ("digital_rmb",)


class Traders:
    """The honest market's professionals: dealers and market makers, drawn from the early population."""

    def __init__(self, w: World):
        rng = w.rng
        early = [a for a in w.pool if a.ready_ms <= DAY]
        self.dealers: list[Account] = rng.sample(early, min(len(early) // 4, w.count(20)))
        rest = [a for a in early if a not in set(self.dealers)]
        self.makers: list[Account] = rng.sample(rest, min(len(rest) // 4, w.count(4)))
        self.kind: dict[int, str] = {a.idx: "dealer" for a in self.dealers}
        self.kind.update({a.idx: "maker" for a in self.makers})
        self.counterparties: dict[int, list[Account]] = {a.idx: [] for a in self.makers}


def run(w: World) -> None:
    for collection in list(w.collections):
        primary_drop(w, collection)
    traders = Traders(w)
    for collection in list(w.collections):
        if collection.role in ("honest", "sellout", "runup", "prohibited"):
            secondary_market(w, collection, traders)
    honest_updates(w)


def primary_drop(w: World, collection: Collection) -> None:
    """The issuer's drop: sellouts go in minutes, others sell part of the supply over hours or days."""
    rng = w.rng
    ids = [f"{collection.collection_id}-{n:05d}" for n in range(1, collection.supply + 1)]
    if collection.role in ("reserved", "premium"):
        collection.unsold = ids[::-1]
        return
    start = collection.launch_ms + rng.randint(10 * MINUTE, 2 * HOUR)
    sellout = collection.role == "sellout"
    sold = len(ids) if sellout else int(len(ids) * rng.uniform(0.55, 0.85))
    span = rng.randint(3 * MINUTE, 12 * MINUTE) if sellout else rng.randint(6 * HOUR, 3 * DAY)
    times = sorted(start + rng.randrange(span) for _ in range(sold))
    for token_id, ms in zip(ids, times):
        buyer = w.honest_buyer(ms)
        if buyer is None or ms >= w.end:
            continue
        token = Token(token_id, collection, buyer, ms, collection.issue)
        token.rarity = w.rarity()
        trade_id = w.trade(ms, collection, token, "primary", collection.issuer, buyer, collection.issue)
        collection.tokens.append(token)
        if sellout:
            w.negative(trade_id, "fast_sellout")
    taken = {t.token_id for t in collection.tokens}
    collection.unsold = [i for i in reversed(ids) if i not in taken]


def secondary_market(w: World, collection: Collection, traders: Traders) -> None:
    """Resales, gifts, buy-backs, dealers, market makers and sweeps, in event-time order."""
    rng = w.rng
    tokens = collection.tokens
    if not tokens:
        return
    rate = len(tokens) * rng.uniform(0.16, 0.32) / DAY
    min_hold = max(collection.lock_days * DAY, 12 * HOUR)
    maker = None
    if collection.lock_days == 0 and traders.makers and rng.random() < MAKER_COLLECTIONS:
        maker = rng.choice(traders.makers)
    sweep_ms = None
    if len(tokens) >= 30 and rng.random() < SWEEP_CHANCE:
        sweep_ms = rng.randint(collection.launch_ms + 2 * DAY, max(collection.launch_ms + 2 * DAY + 1, w.end - HOUR))
    runup = collection.role == "runup"
    ms = tokens[-1].acquired_ms + int(rng.expovariate(rate))
    while ms < w.end:
        if sweep_ms is not None and ms >= sweep_ms:
            ms = sweep(w, collection, ms, min_hold, traders)
            sweep_ms = None
            continue
        token = tokens[rng.randrange(len(tokens))]
        if token.rarity > 1.0 and rng.random() < 0.5:
            token = tokens[rng.randrange(len(tokens))]
        seller = token.owner
        kind = traders.kind.get(seller.idx)
        hold = (collection.lock_days * DAY + rng.randint(HOUR, 6 * HOUR) if kind == "maker"
                else min_hold + rng.randrange(DAY if kind == "dealer" else 2 * DAY))
        if ms - token.acquired_ms >= hold:
            resale(w, collection, token, ms, traders, maker, runup)
        ms += max(1, int(rng.expovariate(rate)))


def resale(w: World, collection: Collection, token: Token, ms: int, traders: Traders, maker: Account | None,
           runup: bool) -> None:
    """One honest resale (or gift) of `token` at `ms`: who buys decides the price and the negative label."""
    rng = w.rng
    seller = token.owner
    seller_kind = traders.kind.get(seller.idx)
    scenario = "gradual_runup" if runup else None
    factor = 1.0
    buyer = None
    draw = rng.random()
    if seller_kind == "maker":
        factor = rng.uniform(MAKER_SPREAD[1], MAKER_SPREAD[2])
        earlier = [a for a in traders.counterparties[seller.idx][-50:]
                   if a.idx not in token.owners and a.ready_ms < ms - MINUTE]
        if earlier and rng.random() < MAKER_REPEAT:
            buyer = rng.choice(earlier)
            scenario = scenario or "market_maker"
    elif seller_kind == "dealer":
        factor = rng.uniform(*DEALER_MARKUP)
    if buyer is None and draw < BUYBACK_SHARE and seller_kind is None and len(token.owners) >= 2 \
            and ms - token.acquired_ms >= BUYBACK_AFTER and moved(collection, token.acquired_ms, ms):
        previous = w.accounts[token.owners[-1]]
        if previous.idx in traders.kind or previous is seller:
            previous = None
        if previous is not None:
            buyer, scenario = previous, scenario or "honest_buyback"
    elif buyer is None and draw < BUYBACK_SHARE + DEALER_SHARE and traders.dealers:
        dealer = rng.choice(traders.dealers)
        if dealer is not seller and dealer.idx not in token.owners and dealer.ready_ms < ms:
            buyer = dealer
            factor = rng.uniform(0.92, 1.0)
    elif buyer is None and maker is not None and draw < BUYBACK_SHARE + DEALER_SHARE + MAKER_SHARE:
        if maker is not seller and maker.idx not in token.owners:
            buyer = maker
            factor = rng.uniform(MAKER_SPREAD[0], MAKER_SPREAD[1])
            traders.counterparties[maker.idx].append(seller)
    if buyer is None:
        buyer = w.honest_buyer(ms, seller, token.owners)
        if buyer is None:
            return
    if seller_kind == "maker":
        traders.counterparties[seller.idx].append(buyer)
    if seller_kind is None and buyer.idx not in traders.kind and scenario != "honest_buyback" \
            and rng.random() < GIFT_SHARE:
        w.trade(ms, collection, token, "gift", seller, buyer, 0)
        return
    cents = max(1, round(w.token_cents(token, ms) * factor))
    trade_id = w.trade(ms, collection, token, "secondary", seller, buyer, cents, method=honest_method(w, cents))
    if scenario and not collection.prohibited():
        w.negative(trade_id, scenario)


def moved(collection: Collection, then: int, now: int) -> bool:
    ratio = collection.market(now) / collection.market(then)
    return ratio >= BUYBACK_MOVE or ratio <= 1 / BUYBACK_MOVE


def sweep(w: World, collection: Collection, ms: int, min_hold: int, traders: Traders) -> int:
    """One buyer takes a run of floor listings from distinct owners within an hour or so; returns the end."""
    rng = w.rng
    sweeper = rng.choice(traders.dealers) if traders.dealers and rng.random() < 0.5 else w.honest_buyer(ms)
    if sweeper is None:
        return ms + HOUR
    candidates = [t for t in collection.tokens if t.rarity == 1.0 and ms - t.acquired_ms >= min_hold
                  and t.owner is not sweeper and sweeper.idx not in t.owners and t.owner.idx not in traders.kind]
    rng.shuffle(candidates)
    sellers: set[int] = set()
    step = 1.0
    for token in candidates[: rng.randint(*SWEEP_SIZE) * 2]:
        if token.owner.idx in sellers or len(sellers) >= SWEEP_SIZE[1]:
            continue
        sellers.add(token.owner.idx)
        cents = max(1, round(w.market_cents(collection, ms) * step))
        trade_id = w.trade(ms, collection, token, "secondary", token.owner, sweeper, cents,
                           method=honest_method(w, cents))
        if not collection.prohibited():
            w.negative(trade_id, "bulk_sweep")
        step *= rng.uniform(1.0, SWEEP_STEP)
        ms += rng.randint(20, 6 * 60) * 1000
    return ms


def honest_method(w: World, cents: int) -> str:
    """A payment method; a payment in the structuring band goes by card, never cash-like, when honest."""
    method = w.rng.choice(w.pay_methods)
    if method in CASH_METHODS and w.near_band[0] <= cents < w.near_band[1]:
        return "bank_card"
    return method


def honest_updates(w: World) -> None:
    """Real-name accounts changing device or IP or binding another card (only new, unshared values)."""
    rng = w.rng
    for account in rng.sample(w.pool, len(w.pool) // 10):
        ms = rng.randrange(account.ready_ms + HOUR, w.end) if account.ready_ms + HOUR < w.end else None
        if ms is None:
            continue
        change = rng.random()
        if change < 0.4:
            w.add_account_event(ms, account, "update", device_id=f"dev-{w.digest('device2', account.idx)[:16]}",
                                ip=w.new_ip())
        elif change < 0.7 or account.kyc < 3:
            w.add_account_event(ms, account, "update", ip=w.new_ip())
        else:
            account.cards = account.cards + [w.digest("card3", account.idx)]
            w.add_account_event(ms, account, "update", bank_card_hashes=list(account.cards))
