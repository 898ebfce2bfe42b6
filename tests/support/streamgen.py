"""A small hand-made marketplace stream for the streaming tests: tiny, fast, and dense in cross-partition cases.

Seeded and in event-time order; it holds what the streaming stages must get
right across partitions: structuring and back-and-forth pairs spread over
several collections, round trips, late and missing registry data, crypto
settlement, a prohibited collection, one shared national ID, and bad lines.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

CST = timezone(timedelta(hours=8))
BASE = datetime(2026, 3, 1, 9, 0, tzinfo=CST)


def _h(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _ts(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def make_stream(seed: int = 3, accounts: int = 60, collections: int = 8, trades: int = 900,
                hours: float = 48.0) -> list[bytes]:
    """JSON lines (bytes), event-time order, a few bad lines among them."""
    rng = random.Random(seed)
    span = hours * 3600.0
    events: list[tuple[float, dict]] = []
    seq = 0

    def add(t: float, record: dict) -> None:
        nonlocal seq
        seq += 1
        record["event_id"] = f"ev-{seq:06d}"
        record["ts"] = _ts(t)
        events.append((t, record))

    ids = [f"acc-{i:03d}" for i in range(accounts)]
    late = set(ids[-6:])           # register after their first trades (some within grace, some after)
    ghosts = {"acc-ghost-1", "acc-ghost-2"}
    for i, a in enumerate(ids):
        person = ids[1] if a == ids[2] else a   # acc-002 verifies with acc-001's national ID
        t = rng.uniform(0, 600) if a not in late else None
        record = {"type": "account", "account_id": a, "action": "register", "kyc_level": 1 if i % 17 == 16 else 3,
                  "name_hash": _h("name", person), "id_hash": _h("id", person), "birth_year": 1990 - i % 30,
                  "phone_hash": _h("phone", a), "bank_card_hashes": [_h("card", a)],
                  "device_id": f"dev-{a}", "ip": "10.0.0.1"}
        if t is not None:
            add(t, record)
        else:
            late_record = record
            late_record["_late"] = True
            events.append((-1.0, late_record))
    cols = [f"col-{i}" for i in range(collections)]
    for i, c in enumerate(cols):
        add(rng.uniform(0, 600), {"type": "collection", "collection_id": c, "action": "launch",
                                  "issuer_id": ids[0], "asset_class": "security" if i == 5 else "art",
                                  "fractional": False, "issue_price": "99.00", "currency": "CNY",
                                  "supply": 1000, "transfer_lock_days": 1 if i == 3 else 0})
    owner: dict[str, str] = {}
    last_price: dict[str, float] = {}
    token_col: dict[str, str] = {}
    t = 700.0
    first_trade: dict[str, float] = {}

    def trade(t: float, col: str, token: str, seller: str, buyer: str, price: str, kind: str = "secondary",
              **extra) -> None:
        record = {"type": "trade", "trade_id": f"tr-{seq + 1:06d}", "collection_id": col, "token_id": token,
                  "kind": kind, "seller_id": seller, "buyer_id": buyer, "price": price, "currency": "CNY",
                  "payment": {"method": "alipay", "payer_name_hash": _h("name", buyer),
                              "instrument_hash": _h("card", buyer)},
                  "buyer_device_id": f"dev-{buyer}", "seller_device_id": f"dev-{seller}"}
        record.update(extra)
        add(t, record)
        owner[token] = buyer
        first_trade.setdefault(buyer, t)
        first_trade.setdefault(seller, t)

    step = span / trades
    for n in range(trades):
        t += rng.uniform(0.2, 1.8) * step
        col = rng.choice(cols)
        roll = rng.random()
        if roll < 0.35 or not owner:
            token = f"tok-{col}-{n}"
            token_col[token] = col
            buyer = rng.choice(ids[1:] + list(ghosts) if rng.random() < 0.01 else ids[1:])
            trade(t, col, token, ids[0], buyer, "99.00", kind="primary")
            last_price[token] = 99.0
            continue
        token = rng.choice(list(owner))
        col = token_col[token]
        seller = owner[token]
        buyer = rng.choice([a for a in ids[1:] if a != seller])
        price = last_price[token] * rng.choice([0.9, 1.0, 1.1, 1.2, 1.6, 3.0])
        extra = {}
        if rng.random() < 0.01:
            extra = {"currency": "USDT", "payment": {"method": "crypto"}}
        if rng.random() < 0.02:
            trade(t, col, token, seller, buyer, "0", kind="gift")
        else:
            trade(t, col, token, seller, buyer, f"{price:.2f}", **extra)
            last_price[token] = price
    # Cross-partition patterns: structuring by one buyer over collections, a pair trading back and forth.
    s_buyer, p_a, p_b = ids[7], ids[8], ids[9]
    for k, col in enumerate(cols[:4]):
        token = f"tok-struct-{k}"
        token_col[token] = col
        trade(span / 2 + k * 600, col, token, ids[10 + k], s_buyer, f"{45000 + k * 100}.00",
              payment={"method": "digital_rmb"})  # cash: the 50,000 line applies
    for k in range(4):
        col = cols[0]  # wash.pair_repeat weighs a pair within one collection
        token = f"tok-pair-{k}"
        token_col[token] = col
        seller, buyer = (p_a, p_b) if k % 2 else (p_b, p_a)
        trade(span / 3 + k * 900, col, token, seller, buyer, "500.00")
    # Late registrations: 3 within the 10-minute grace of their first trade, 3 after it.
    for k, (_, record) in enumerate([e for e in events if e[0] == -1.0]):
        a = record.pop("_late")
        del a
        first = first_trade.get(record["account_id"], 800.0)
        add(first + (240 if k < 3 else 1800), record)
    events = [e for e in events if e[0] >= 0]
    events.sort(key=lambda e: e[0])
    lines = [orjson.dumps(record) for _, record in events]
    bad = [b'{"type": "trade", "event_id": "bad-1", "ts": "2026-03-01T12:00:00+08:00", "price": 12}',
           b"not json at all", b'{"type": "account", "event_id": "bad-2", "ts": "yesterday"}',
           b'{"type": "refund", "event_id": "bad-3", "ts": "2026-03-01T12:00:00+08:00"}', b"\xff\xfe\x00"]
    for k, line in enumerate(bad):
        lines.insert(len(lines) * (k + 1) // (len(bad) + 1), line)
    return lines


def write_stream(path: Path, **kw) -> Path:
    lines = make_stream(**kw)
    data = b"\n".join(lines) + b"\n"
    if str(path).endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path
