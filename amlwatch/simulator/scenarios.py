"""The labelled scenarios: laundering typologies the rules must catch, and hard negatives they must not.

Injected typologies carry labels for exactly the trades the rules should
flag, evidence trades included (an alert names every leg of a cycle, the
acquisition behind a flip, every trade of a pump), so `amlwatch.evaluation`
scores recall and precision per typology. Hard negatives look suspicious but
are honest; they are listed in negatives.jsonl.

Each scenario places itself against the configured thresholds read by
`World` (registry grace, structuring band, pump window): an off-market price
(spike, flip, crypto) is kept `World.odd_spacing` from any other in its
collection, and only the `premium` collections, traded by scenarios alone,
see prices from the structuring band up. Structuring legs and their hard
negatives pay in digital RMB, the payment the cash reporting line applies to.
"""

from __future__ import annotations

from .world import DAY, FOREVER, HOUR, MINUTE, SECOND, Account, Collection, Token, World

CASH = "digital_rmb"


def run(w: World) -> None:
    hard_negatives(w)
    wash_trading(w)
    speculation(w)
    identity_mismatch(w)
    prohibited_settlement(w)
    prohibited_asset(w)
    structuring(w)


def hard_negatives(w: World) -> None:
    rng = w.rng
    # Campus NAT: distinct people behind one public IP buying and selling among themselves.
    for _ in range(w.count(6)):
        start = w.instant(2, 4)
        ip = w.new_ip()
        group = [w.new_account(start - rng.randint(HOUR, DAY), ip=ip) for _ in range(rng.randint(3, 5))]
        collection = w.pick_collection(start, needed=len(group))
        held = [(member, w.buy_unsold(collection, member, start + rng.randrange(HOUR))[0]) for member in group]
        for n, (seller, token) in enumerate(held):
            buyer = group[(n + 1) % len(group)]
            ms = token.acquired_ms + rng.randint(DAY, 3 * DAY)
            trade_id = w.trade(ms, collection, token, "secondary", seller, buyer, w.market_cents(collection, ms),
                                  buyer_ip=ip)
            w.negative(trade_id, "shared_public_ip")
    # Households: gifts between family members on one IP, after any lock.
    for _ in range(w.count(8)):
        start = w.instant(3, 3)
        ip = w.new_ip()
        family = [w.new_account(start - rng.randint(HOUR, DAY), ip=ip) for _ in range(rng.randint(2, 4))]
        room_days = (w.end - start) // DAY - 1
        collection = w.pick_collection(start, locked=None, needed=len(family), max_lock=min(7, room_days))
        giver = family[0]
        for receiver in family[1:]:
            token, _ = w.buy_unsold(collection, giver, start + rng.randrange(HOUR))
            unlocked = token.acquired_ms + collection.lock_days * DAY
            ms = unlocked + rng.randint(HOUR, max(2 * HOUR, min(2 * DAY, w.end - unlocked - HOUR)))
            w.negative(w.trade(ms, collection, token, "gift", giver, receiver, 0), "family_gifts")
    # Buyers whose registry events arrive minutes after their first trade.
    for _ in range(w.count(25)):
        ms = w.instant(1, 0.1)
        collection = w.pick_collection(ms, locked=None)
        buyer = w.new_account(ms, emit=False)
        _, trade_id = w.buy_unsold(collection, buyer, ms)
        registered = ms + rng.randint(1 * MINUTE, 4 * MINUTE)
        gap = rng.randint(5 * SECOND, 50 * SECOND)
        w.register(buyer, registered + gap, gap_ms=gap)
        w.negative(trade_id, "late_registry")
    # Resale within hours at a small markup, under the flip markup.
    for _ in range(w.count(15)):
        start, ms, collection = w.odd_moment(2, 1, (HOUR, 5 * HOUR))
        buyer, next_buyer = w.new_account(start - HOUR), w.new_account(start - HOUR)
        token, _ = w.buy_unsold(collection, buyer, start)
        cents = round(collection.issue * rng.uniform(1.03, 1.3))
        w.negative(w.trade(ms, collection, token, "secondary", buyer, next_buyer, cents), "quick_small_resale")
    # Resale just after the transfer lock ends.
    for _ in range(w.count(15)):
        collection = w.pick_collection(w.instant(3, 1), locked=True, max_lock=7 if w.days < 20 else 14)
        lock = collection.lock_days * DAY
        if collection.launch_ms + DAY + lock + 2 * HOUR >= w.end:
            continue
        bought = rng.randrange(collection.launch_ms + DAY, w.end - lock - 2 * HOUR)
        holder, next_holder = w.new_account(bought - HOUR), w.new_account(bought - HOUR)
        token, _ = w.buy_unsold(collection, holder, bought)
        ms = bought + lock + rng.randint(MINUTE, 2 * HOUR)
        w.negative(w.trade(ms, collection, token, "secondary", holder, next_holder,
                                 w.market_cents(collection, ms)), "lock_respected")
    # High value: one large trade, and near-threshold trades spaced more than a day apart.
    for _ in range(w.count(10)):
        ms = w.instant(3, 0.1)
        collection = rng.choice(w.premium)
        seller, buyer = w.new_account(ms - 3 * DAY), w.new_account(ms - DAY)
        token, _ = w.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
        cents = rng.randint(w.near_band[1], w.near_band[1] * 3 // 2)
        w.negative(w.trade(ms, collection, token, "secondary", seller, buyer, cents, method=CASH),
                   "large_single_trade")
    for _ in range(w.count(6)):
        trades = rng.randint(2, 3)
        ms = w.instant(3, 1.7 * trades)
        buyer = w.new_account(ms - DAY)
        for _ in range(trades):
            collection = rng.choice(w.premium)
            seller = w.new_account(ms - 3 * DAY)
            token, _ = w.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
            w.negative(w.trade(ms, collection, token, "secondary", seller, buyer, w.near_threshold(), method=CASH),
                          "spaced_high_value")
            ms += rng.randint(25 * HOUR, 40 * HOUR)


def wash_trading(w: World) -> None:
    rng = w.rng

    def linked(scenario: str, links_for, **payment_for):
        """A seller and a buyer tied by `links_for(seller)` (attributes the buyer shares)."""
        for _ in range(w.count(3)):
            start = w.instant(3, 4)
            collection = w.pick_collection(start, needed=4)
            seller = w.new_account(start - DAY, kyc=3)
            buyer = w.new_account(start - DAY, emit=False)
            for name, value in links_for(seller).items():
                setattr(buyer, name, value)
            w.register(buyer, buyer.ready_ms)
            if buyer.id_hash == seller.id_hash:
                seller.taint = buyer.taint = ("shared_national_id", "always", buyer.ready_ms, FOREVER)
            for _ in range(rng.randint(1, 2)):
                token, _ = w.buy_unsold(collection, seller, start + rng.randrange(DAY))
                ms = token.acquired_ms + rng.randint(DAY, 2 * DAY)
                payment = {k: v(seller) for k, v in payment_for.items()}
                trade_id = w.trade(ms, collection, token, "secondary", seller, buyer,
                                      w.market_cents(collection, ms), **payment)
                w.label(trade_id, "wash_trading", scenario)

    linked("same_national_id", lambda s: {"id_hash": s.id_hash})
    linked("shared_bank_card", lambda s: {"cards": [s.cards[0]] + [w.digest("card-own", s.idx)], "kyc": 3})
    linked("shared_phone", lambda s: {"phone_hash": s.phone_hash})
    linked("shared_device", lambda s: {"device": s.device})
    linked("seller_funded", lambda s: {}, payer=lambda s: s.name_hash, instrument=lambda s: s.cards[0])

    def legs(scenario: str, path: list[Account], collection: Collection, token: Token, start: int) -> list[str]:
        ids, ms = [], start
        for seller, buyer in zip(path, path[1:]):
            ms += rng.randint(8 * HOUR, 2 * DAY)
            ids.append(w.trade(ms, collection, token, "secondary", seller, buyer, w.market_cents(collection, ms)))
        for trade_id in ids:
            w.label(trade_id, "wash_trading", scenario)
        return ids

    for cycle, base in ((2, 4), (3, 3)):
        for _ in range(w.count(base)):
            start = w.instant(2, 2 * (cycle + 1))
            ring = [w.new_account(start - DAY) for _ in range(cycle)]
            collection = w.pick_collection(start)
            token, _ = w.buy_unsold(collection, ring[0], start)
            legs(f"round_trip_{cycle}_legs", ring + [ring[0]], collection, token, start)
    for _ in range(w.count(3)):
        start = w.instant(2, 8)
        a, b = w.new_account(start - DAY), w.new_account(start - DAY)
        collection = w.pick_collection(start, needed=4)
        ms = start
        for seller, buyer in ((a, b), (b, a), (a, b), (b, a))[: rng.randint(3, 4)]:
            token, _ = w.buy_unsold(collection, seller, ms)
            ms += rng.randint(8 * HOUR, 2 * DAY)
            w.label(w.trade(ms, collection, token, "secondary", seller, buyer,
                                  w.market_cents(collection, ms)), "wash_trading", "pair_repeat")
    for _ in range(w.count(2)):
        start = w.instant(2, 10)
        buyer, first, second = (w.new_account(start - DAY) for _ in range(3))
        collection = w.pick_collection(start)
        token, primary = w.buy_unsold(collection, buyer, start)
        w.label(primary, "wash_trading", "repeat_buyer")
        legs("repeat_buyer", [buyer, first, buyer, second, buyer], collection, token, start)

def speculation(w: World) -> None:
    rng = w.rng
    # Price far above anything the collection's market explains: the token has only its flat mint
    # price, so no own price; it sells for many times the rarest recent sale and beyond the tail of
    # rarity premiums over the floor (honest rare tokens reach RARITY_CAP x noise, under 100x).
    for _ in range(w.count(6)):
        for _ in range(20):
            ms = w.instant(3, 0.1)
            collection = w.pick_collection(ms, roles=("honest", "sellout"), lead=3 * DAY)
            recent = [c for t, c in collection.secondary if ms - 7 * DAY <= t < ms]
            if len(recent) >= 8 and w.claim_odd(collection, ms):
                break
        else:
            continue
        ranked = sorted(recent)
        floor, highest = ranked[len(ranked) // 10], ranked[-1]
        cents = round(max(highest * rng.uniform(12, 20), floor * rng.uniform(120, 200)))
        if cents >= w.near_band[0]:
            continue
        seller, buyer = w.new_account(ms - 2 * DAY), w.new_account(ms - DAY)
        token, _ = w.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
        w.label(w.trade(ms, collection, token, "secondary", seller, buyer, cents), "speculation",
                   "spike_over_median")
    reserved = [c for c in w.collections if c.role == "reserved"]
    rng.shuffle(reserved)
    # A fresh collection with no market yet: price far above the issue price, beyond any rarity premium
    # (honest rare tokens' first resales reach tens of times the flat issue price).
    for collection in reserved[: len(reserved) // 2]:
        ms = rng.randint(collection.launch_ms + 2 * DAY, collection.launch_ms + 5 * DAY)
        for _ in range(rng.randint(1, 2)):
            seller, buyer = w.new_account(ms - 2 * DAY), w.new_account(ms - DAY)
            token, _ = w.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
            cents = round(collection.issue * rng.uniform(120, 200))
            w.label(w.trade(ms, collection, token, "secondary", seller, buyer, cents), "speculation",
                    "spike_over_issue")
            ms += rng.randint(3 * HOUR, DAY)
    # Pumps: a collection's price level driven up within the pump window, either in a few steep
    # steps or in many small ones (each under 10%: the level rises, not any one step).
    for n, collection in enumerate(reserved[len(reserved) // 2:]):
        ms = rng.randint(collection.launch_ms + 2 * DAY, collection.launch_ms + 5 * DAY)
        cents = collection.issue * rng.uniform(0.95, 1.1)
        steep = n % 2 == 0
        for _ in range(rng.randint(6, 8) if steep else rng.randint(12, 14)):
            seller, buyer = w.new_account(ms - 2 * DAY), w.new_account(ms - DAY)
            token, _ = w.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
            w.label(w.trade(ms, collection, token, "secondary", seller, buyer, round(cents)), "speculation",
                    "pump" if steep else "pump_small_steps")
            ms += rng.randint(6 * MINUTE, 15 * MINUTE) if steep else rng.randint(5 * MINUTE, 9 * MINUTE)
            cents *= rng.uniform(1.2, 1.35) if steep else rng.uniform(1.06, 1.09)
    # Rapid flips: bought at the drop, resold within hours at a large markup.
    for _ in range(w.count(8)):
        ms, flip_ms, collection = w.odd_moment(2, 0.5, (HOUR, 5 * HOUR))
        flipper, buyer = w.new_account(ms - DAY), w.new_account(ms - DAY)
        token, primary = w.buy_unsold(collection, flipper, ms)
        cents = round(collection.issue * rng.uniform(1.7, 3.0))
        w.label(primary, "speculation", "rapid_flip")
        w.label(w.trade(flip_ms, collection, token, "secondary", flipper, buyer, cents), "speculation",
                   "rapid_flip")
    # Transfer locks broken by a resale or a gift.
    for _ in range(w.count(8)):
        ms = w.instant(2, 6)
        collection = w.pick_collection(ms, locked=True, max_lock=180)
        holder, receiver = w.new_account(ms - DAY), w.new_account(ms - DAY)
        token, primary = w.buy_unsold(collection, holder, ms)
        sold = ms + rng.randint(12 * HOUR, min(collection.lock_days * DAY - HOUR, 5 * DAY))
        gift = rng.random() < 0.3
        trade_id = w.trade(sold, collection, token, "gift" if gift else "secondary", holder, receiver,
                              0 if gift else w.market_cents(collection, sold))
        w.label(primary, "speculation", "transfer_lock")
        w.label(trade_id, "speculation", "transfer_lock_gift" if gift else "transfer_lock")

def identity_mismatch(w: World) -> None:
    rng = w.rng

    def buys(account: Account, start: int, count: int, **payment) -> None:
        for n in range(count):
            ms = start + n * rng.randint(2 * HOUR, DAY)
            w.buy_unsold(w.pick_collection(ms, locked=None), account, ms, **payment)

    for _ in range(w.count(5)):
        start = w.instant(2, 3)
        account = w.new_account(start - DAY, kyc=1)
        account.taint = ("kyc_below_2", "always", 0, FOREVER)
        buys(account, start, rng.randint(2, 3))
    for _ in range(w.count(10)):
        start = w.instant(2, 1)
        account = w.new_account(start - DAY)
        stranger = w.digest("stranger", account.idx)
        _, trade_id = w.buy_unsold(w.pick_collection(start, locked=None), account, start, payer=stranger,
                                      instrument=w.digest("stranger-card", account.idx))
        w.label(trade_id, "identity_mismatch", "payer_mismatch")
    for _ in range(w.count(5)):
        start = w.instant(2, 3)
        account = w.new_account(start - DAY, birth_year=rng.randint(2009, 2011))
        account.taint = ("minor_buyer", "buyer", 0, FOREVER)
        buys(account, start, rng.randint(2, 3))
    for _ in range(w.count(4)):
        start = w.instant(2, 3)
        holder = w.new_account(start - 2 * DAY)
        holder.taint = ("shared_national_id", "always", start - DAY, FOREVER)
        for _ in range(rng.randint(1, 2)):
            other = w.new_account(start - DAY, emit=False)
            other.id_hash = holder.id_hash
            other.taint = holder.taint
            w.register(other, start - DAY)
            buys(other, start, rng.randint(1, 2))
        buys(holder, start, rng.randint(1, 2))
    for _ in range(w.count(5)):
        start = w.instant(1, 2)
        ghost = w.new_account(start, emit=False, prefix="ghost")
        ghost.taint = ("never_registered", "always", 0, FOREVER)
        buys(ghost, start, rng.randint(1, 2))
    for _ in range(w.count(4)):
        start = w.instant(1, 1)
        late = w.new_account(start, emit=False)
        late.taint = ("registered_after_grace", "always", 0, start + 1)
        buys(late, start, 1)
        w.register(late, start + rng.randint(w.grace_ms + 5 * MINUTE, 2 * HOUR), gap_ms=30 * SECOND)
    for _ in range(w.count(4)):
        start = w.instant(2, 3)
        account = w.new_account(start - DAY)
        frozen_until = start + 2 * DAY
        account.taint = ("frozen_account", "always", start - HOUR, frozen_until)
        w.add_account_event(start - HOUR, account, "freeze")
        w.add_account_event(frozen_until, account, "unfreeze")
        buys(account, start, 2)

def prohibited_settlement(w: World) -> None:
    rng = w.rng
    for currency, method, base in (("USDT", "crypto", 14), ("USD", "bank_card", 8), ("CNY", "crypto", 10)):
        for _ in range(w.count(base)):
            ms = w.instant(1, 0.1)
            collection = w.pick_collection(ms, locked=None)
            buyer = w.new_account(ms - DAY)
            cents = collection.issue if currency == "CNY" else max(1, round(collection.issue / 7.2))
            crypto = method == "crypto"
            token = Token(collection.unsold.pop(), collection, buyer, ms, cents)
            w.trade(ms, collection, token, "primary", collection.issuer, buyer, cents, currency=currency,
                       method=method, payer=None if crypto else "buyer",
                       instrument=buyer.wallet if crypto else None)
    for _ in range(w.count(8)):
        _, ms, collection = w.odd_moment(3, 0.1, lead=3 * DAY)
        seller, buyer = w.new_account(ms - 3 * DAY), w.new_account(ms - DAY)
        token, _ = w.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
        w.trade(ms, collection, token, "secondary", seller, buyer,
                   max(1, round(collection.market(ms) / 7.2)), currency="USDT", method="crypto", payer=None,
                   instrument=buyer.wallet)

def prohibited_asset(w: World) -> None:
    rng = w.rng
    # Prohibited collections were launched and traded by the honest market (labelled there);
    # here a collection that never launched is traded.
    for n in range(w.count(3)):
        ms = w.instant(1, 0.1)
        issuer = rng.choice(w.issuers)
        buyer = w.new_account(ms - DAY)
        token_id = f"col-unlaunched-{w.seed}-{n}-{rng.randint(1, 500):05d}"
        w.trade(ms, None, token_id, "primary", issuer, buyer, w.issue_price())
        w.label(f"tr-{w.trades:08d}", "prohibited_asset", "unlaunched_collection")

def structuring(w: World) -> None:
    """One sum split into amounts just under the cash line within a day, with the evidence of
    splitting a launderer leaves: legs spread over collections (independent markets do not agree on a
    price just under the line), or one counterparty on every leg."""
    rng = w.rng
    for n in range(w.count(12)):
        ms = w.instant(3, 1)
        buyer = w.new_account(ms - DAY)
        legs = rng.randint(2, 4)
        same_counterparty = n % 3 == 2
        if same_counterparty:
            seller = w.new_account(ms - 3 * DAY)
            collections = [rng.choice(w.premium)] * legs
        else:
            collections = rng.sample(w.premium, legs)
        for collection in collections:
            if not same_counterparty:
                seller = w.new_account(ms - 3 * DAY)
            token, _ = w.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
            w.label(w.trade(ms, collection, token, "secondary", seller, buyer, w.near_threshold(), method=CASH),
                    "structuring", "split_same_counterparty" if same_counterparty else "split_purchases")
            ms += rng.randint(HOUR, 7 * HOUR)
    for _ in range(w.count(8)):
        ms = w.instant(3, 1)
        seller = w.new_account(ms - 3 * DAY)
        for collection in rng.sample(w.premium, rng.randint(2, 3)):
            buyer = w.new_account(ms - DAY)
            token, _ = w.buy_unsold(collection, seller, ms - rng.randint(DAY, 2 * DAY))
            w.label(w.trade(ms, collection, token, "secondary", seller, buyer, w.near_threshold(), method=CASH),
                    "structuring", "split_sales")
            ms += rng.randint(HOUR, 7 * HOUR)
