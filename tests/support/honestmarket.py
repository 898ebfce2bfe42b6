"""An honest marketplace with real market structure and no laundering at all, to keep the rules quiet on it.

What real collectible markets show and the rules must not mistake for
laundering (issue 12): heavy-tailed prices (a floor most tokens sit on, rare
tokens at up to hundreds of times it), markets rising, falling, booming and
busting, one market whose floor sits just under the 50,000 CNY cash line with
a third of payments in digital RMB, six market makers buying 30% of all
trades from and selling to everyone, busy evening hours at eight times the
rate, bulk sweeps of twenty floor tokens in minutes, and honest buy-backs
5-10 days later at the market price. Seeded, in event-time order, contract
shaped (docs/EVENTS.md).
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 1, tzinfo=CST)
PAY = ("alipay", "alipay", "wechat_pay", "bank_card", "digital_rmb", "digital_rmb")
MARKETS = ((300, 0.04), (2000, -0.02), (45000, 0.0), (800, 0.0))
"""Floor in CNY and daily drift per collection; the last one booms for 12 days, then busts."""


def honest_market(seed: int, *, days: int = 30, accounts: int = 1500, rate: float = 40.0,
                  tokens_per_collection: int = 600) -> list[dict]:
    """Events of an honest market; `rate` is trades per hour outside the busy hours."""
    rng = random.Random(seed)
    events: list[tuple[float, int, dict]] = []

    def add(hours: float, record: dict) -> None:
        record["ts"] = (T0 + timedelta(hours=hours)).isoformat(timespec="milliseconds")
        record["event_id"] = f"e{len(events):07d}"
        events.append((hours, len(events), record))

    ids = [f"a{i:05d}" for i in range(accounts)]
    for a in ids:
        add(-200 + rng.random() * 100, {"type": "account", "account_id": a, "action": "register", "kyc_level": 3,
                                        "name_hash": "n" + a, "id_hash": "i" + a, "birth_year": 1985,
                                        "phone_hash": "p" + a, "bank_card_hashes": ["c" + a], "device_id": "d" + a,
                                        "ip": "10.0.0.1"})
    makers, sweepers, public = ids[:6], ids[6:10], ids[10:-1]
    collections = []
    for c, (floor, drift) in enumerate(MARKETS):
        cid = f"col{c}"
        add(-150, {"type": "collection", "collection_id": cid, "action": "launch", "issuer_id": ids[-1],
                   "asset_class": "game_item", "fractional": False, "issue_price": f"{floor:.2f}", "currency": "CNY",
                   "supply": 5000, "transfer_lock_days": 0})
        tokens = {}
        for k in range(tokens_per_collection):
            rarity = 1.0 if rng.random() < 0.7 else math.exp(rng.gauss(0.8, 1.2))
            tokens[f"{cid}-{k}"] = [rarity, rng.choice(public), None]
        collections.append((cid, floor, drift, tokens))

    def level(collection, hours: float) -> float:
        cid, floor, drift, _ = collection
        day = hours / 24
        if cid == f"col{len(MARKETS) - 1}":
            return floor * (1.06 ** min(day, 12)) * (0.95 ** max(0, day - 12))
        return floor * (1 + drift) ** day

    count = 0

    def sell(hours: float, collection, token: str, buyer: str, price: float) -> None:
        nonlocal count
        cid, _, _, tokens = collection
        rarity, owner, _ = tokens[token]
        if owner == buyer:
            return
        count += 1
        add(hours, {"type": "trade", "trade_id": f"t{count:07d}", "collection_id": cid, "token_id": token,
                    "kind": "secondary", "seller_id": owner, "buyer_id": buyer, "price": f"{price:.2f}",
                    "currency": "CNY", "payment": {"method": rng.choice(PAY), "payer_name_hash": "n" + buyer,
                                                   "instrument_hash": "c" + buyer}})
        tokens[token] = [rarity, buyer, (hours, owner, price)]

    hours = 0.0
    while hours < days * 24:
        busy = 8 if int(hours) % 24 in (20, 21) else 1
        hours += rng.expovariate(rate * busy)
        collection = rng.choice(collections)
        tokens = collection[3]
        token = rng.choice(list(tokens))
        price = level(collection, hours) * tokens[token][0] * rng.uniform(0.93, 1.08)
        buyer = rng.choice(makers) if rng.random() < 0.3 else rng.choice(public)
        sell(hours, collection, token, buyer, price)
        if rng.random() < 0.003:
            sweeper = rng.choice(sweepers)
            floor = rng.sample([t for t, v in tokens.items() if v[0] == 1.0 and v[1] not in sweepers + makers], 20)
            for n, swept in enumerate(floor):
                sell(hours + n * 0.02, collection, swept, sweeper, level(collection, hours) * rng.uniform(0.97, 1.02))
            hours += 0.5
        if rng.random() < 0.01 and tokens[token][2]:
            # The earlier owner buys it back later at the market; the generator moves the token at
            # once, so trades in between name a seller who no longer holds it (unrecorded transfers).
            later = hours + rng.uniform(5, 10) * 24
            previous = tokens[token][2][1]
            sell(later, collection, token, previous, level(collection, later) * tokens[token][0] * rng.uniform(0.95, 1.05))
    events.sort(key=lambda e: (e[0], e[1]))
    return [record for _, _, record in events]
