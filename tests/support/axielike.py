"""A deterministic stream shaped like the real Axie sales stream (/work/shared/real/axie-sales.jsonl.gz).

The real file lives outside the repository, so the tests cannot rely on it.
This one has its shape (its README): one `game_item` collection with no issue
price and no lock, every wallet a KYC-3 account with its own identifiers,
registered 7 days before its first trade, secondary sales in CNY paid by the
buyer's own bank card over years of sparse, bursty trading (quiet gaps of
days), heavy-tailed prices with spikes, tokens resold, a few pairs trading
back and forth, and one zero-price gift. Everything lands on one work
partition (one collection), behind registry events copied to every
partition: the opposite of the simulated streams' spread.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta, timezone

import orjson

START = datetime(2018, 3, 31, 13, 58, 26, tzinfo=timezone.utc)


def _h(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _ts(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def make_axie_like(seed: int = 7, trades: int = 3000, wallets: int = 500, days: float = 1000.0) -> list[bytes]:
    """JSON lines (bytes) in event-time order."""
    rng = random.Random(seed)
    names = [f"0x{rng.getrandbits(160):040x}" for _ in range(wallets)]
    pairs = [(names[i], names[i + 1]) for i in range(0, 20, 2)]
    times, t = [], START
    for _ in range(trades):
        # Bursts of minutes inside quiet stretches of hours to days.
        t += timedelta(seconds=rng.expovariate(1 / 600) if rng.random() < 0.7 else rng.expovariate(1 / (days * 86400 / trades / 0.3)))
        times.append(t)
    tokens = list(range(1000, 1000 + trades // 2))
    owner: dict[int, str] = {}
    sales = []
    for n, when in enumerate(times):
        if n % 10 < 2:
            # A pair trading back and forth (wash.pair_repeat on the real stream).
            seller, buyer = pairs[(n // 40) % len(pairs)]
            if n % 20 < 10:
                seller, buyer = buyer, seller
            token = rng.choice(tokens)
        else:
            token = rng.choice(tokens)
            seller = owner.get(token) or rng.choice(names)
            buyer = rng.choice(names)
            if buyer == seller:
                buyer = names[(names.index(seller) + 1) % wallets]
        owner[token] = buyer
        price = round(rng.lognormvariate(7.0, 0.8) * (6 if rng.random() < 0.06 else 1), 2)
        sales.append((when, token, seller, buyer, price, n == trades // 2))
    first: dict[str, datetime] = {}
    for when, _, seller, buyer, _, _ in sales:
        first.setdefault(seller, when)
        first.setdefault(buyer, when)
    events = [(START - timedelta(days=7, hours=1), 0, {
        "type": "collection", "event_id": "axie-launch", "platform": "realdata", "collection_id": "axie",
        "action": "launch", "issuer_id": "axie-issuer", "asset_class": "game_item", "fractional": False,
        "currency": "CNY", "transfer_lock_days": 0})]
    for account, when in first.items():
        events.append((when - timedelta(days=7), 1, {
            "type": "account", "event_id": f"axie-acct-{account}", "platform": "realdata", "account_id": account,
            "action": "register", "kyc_level": 3, "name_hash": _h("name", account), "id_hash": _h("id", account),
            "phone_hash": _h("phone", account), "bank_card_hashes": [_h("card", account)]}))
    for when, token, seller, buyer, price, gift in sales:
        trade_id = f"axie-{token}-{when:%Y%m%dT%H%M%S}-{seller[2:10]}-{buyer[2:10]}"
        payment = {"method": "none"} if gift else {
            "method": "bank_card", "payer_name_hash": _h("name", buyer), "instrument_hash": _h("card", buyer)}
        events.append((when, 2, {
            "type": "trade", "event_id": f"ev-{trade_id}", "platform": "realdata", "trade_id": trade_id,
            "collection_id": "axie", "token_id": f"axie-{token}", "kind": "gift" if gift else "secondary",
            "seller_id": seller, "buyer_id": buyer, "price": "0" if gift else f"{price:.2f}", "currency": "CNY",
            "payment": payment}))
    events.sort(key=lambda e: (e[0], e[1]))
    lines = []
    for when, _, record in events:
        record = {"type": record["type"], "event_id": record["event_id"], "ts": _ts(when),
                  **{k: v for k, v in record.items() if k not in ("type", "event_id")}}
        lines.append(orjson.dumps(record))
    return lines
