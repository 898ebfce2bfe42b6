"""Contract-shaped event builders for the detector tests (docs/EVENTS.md).

Every builder returns a plain dict, exactly what a marketplace would publish,
with clean defaults: verified (KYC 3) accounts whose name/ID/phone/card/device
hashes are derived from the account id (so two accounts share nothing unless a
test says so), yuan prices, alipay paid with the buyer's own bound card, an
`art` collection with no transfer lock. Times are ISO-8601 strings with
`+08:00`, built from `BASE` plus an offset.

A keyword set to `None` removes that field from the record (e.g. an account
below KYC 2 has no `name_hash`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from datetime import datetime, timedelta, timezone

import orjson

from amlwatch.alerts import Alert
from amlwatch.config import Config
from amlwatch.detectors.monitor import Monitor
from amlwatch.engine import build_monitor
from amlwatch.events import parse_event

CST = timezone(timedelta(hours=8))
BASE = datetime(2026, 3, 1, 10, 0, tzinfo=CST)
COLLECTION = "col-art"
ISSUER = "acc-issuer"

_ids = itertools.count(1)

WARM_MODEL = dataclasses.replace(Config(), anomaly=dataclasses.replace(
    Config().anomaly, warmup_trades=40, budget=0.05, threshold=0.0))
"""A short warm-up, a larger budget and no score floor: the anomaly model alerts often on a short stream,
so its alerts' places among the others' are tested on about a hundred of them."""


def at(days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> str:
    """`BASE` plus an offset, as the contract's ISO-8601 text with +08:00."""
    moment = BASE + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return moment.isoformat(timespec="milliseconds")


def event_id(prefix: str = "ev") -> str:
    return f"{prefix}-{next(_ids):07d}"


def digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def name_of(account_id: str) -> str:
    return digest("name", account_id)


def id_of(account_id: str) -> str:
    return digest("national-id", account_id)


def phone_of(account_id: str) -> str:
    return digest("phone", account_id)


def card_of(account_id: str) -> str:
    return digest("card", account_id)


def device_of(account_id: str) -> str:
    return f"dev-{account_id}"


def ip_of(account_id: str) -> str:
    n = int(digest("ip", account_id)[:6], 16)
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def _clean(record: dict, overrides: dict) -> dict:
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def account(account_id: str, t: str | None = None, *, action: str = "register", kyc_level: int = 3,
            birth_year: int | None = 1990, **overrides) -> dict:
    """An account event; KYC >= 2 carries name and national-ID hashes, 3 a bound card."""
    record = {
        "type": "account",
        "event_id": event_id("acc"),
        "ts": t or at(),
        "platform": "test",
        "account_id": account_id,
        "action": action,
        "kyc_level": kyc_level,
        "name_hash": name_of(account_id) if kyc_level >= 2 else None,
        "id_hash": id_of(account_id) if kyc_level >= 2 else None,
        "birth_year": birth_year if kyc_level >= 2 else None,
        "phone_hash": phone_of(account_id),
        "bank_card_hashes": [card_of(account_id)] if kyc_level >= 3 else None,
        "device_id": device_of(account_id),
        "ip": ip_of(account_id),
        "region": "CN-31",
    }
    return _clean(record, overrides)


def collection(collection_id: str = COLLECTION, t: str | None = None, *, action: str = "launch",
               issuer_id: str = ISSUER, asset_class: str = "art", fractional: bool = False,
               issue_price: str = "99.00", currency: str = "CNY", supply: int = 1000,
               transfer_lock_days: int = 0, **overrides) -> dict:
    record = {
        "type": "collection",
        "event_id": event_id("col"),
        "ts": t or at(),
        "platform": "test",
        "collection_id": collection_id,
        "action": action,
        "issuer_id": issuer_id,
        "asset_class": asset_class,
        "fractional": fractional,
        "issue_price": issue_price,
        "currency": currency,
        "supply": supply,
        "transfer_lock_days": transfer_lock_days,
    }
    return _clean(record, overrides)


def trade(seller: str, buyer: str, t: str, *, token_id: str = "tok-1", price: str = "100.00",
          kind: str = "secondary", collection_id: str = COLLECTION, currency: str = "CNY",
          method: str = "alipay", payer_name_hash: str | None = "", instrument_hash: str | None = "",
          trade_id: str | None = None, **overrides) -> dict:
    """A paid trade; the buyer pays with their own bound card unless told otherwise.

    `payer_name_hash` / `instrument_hash` default ("") to the buyer's own; None omits them.
    """
    eid = event_id("tr")
    payment = {
        "method": method,
        "payer_name_hash": name_of(buyer) if payer_name_hash == "" else payer_name_hash,
        "instrument_hash": card_of(buyer) if instrument_hash == "" else instrument_hash,
    }
    record = {
        "type": "trade",
        "event_id": eid,
        "ts": t,
        "platform": "test",
        "trade_id": trade_id or "t" + eid,
        "collection_id": collection_id,
        "token_id": token_id,
        "kind": kind,
        "seller_id": seller,
        "buyer_id": buyer,
        "price": price,
        "currency": currency,
        "payment": {k: v for k, v in payment.items() if v is not None},
        "buyer_device_id": device_of(buyer),
        "buyer_ip": ip_of(buyer),
        "seller_device_id": device_of(seller),
        "seller_ip": ip_of(seller),
    }
    return _clean(record, overrides)


def primary(buyer: str, t: str, *, token_id: str = "tok-1", price: str = "99.00", **kw) -> dict:
    """The issuer's first sale of a token at the issue price."""
    return trade(ISSUER, buyer, t, token_id=token_id, price=price, kind="primary", **kw)


def gift(seller: str, buyer: str, t: str, *, token_id: str = "tok-1", **kw) -> dict:
    """A transfer with no payment."""
    kw.setdefault("method", "none")
    return trade(seller, buyer, t, token_id=token_id, price="0", kind="gift",
                 payer_name_hash=None, instrument_hash=None, **kw)


def world(*account_ids: str, t: str | None = None, **collection_kw) -> list[dict]:
    """Registry events for the issuer, the given verified accounts and one `art` collection."""
    t = t or at(hours=-1)
    events = [account(ISSUER, t)]
    events += [account(a, t) for a in account_ids if a != ISSUER]
    events.append(collection(t=t, **collection_kw))
    return events


def trade_ids(*records: dict) -> list[str]:
    return [r["trade_id"] for r in records]


def monitor_run(events: list[dict], config: Config | None = None) -> tuple[Monitor, list[Alert]]:
    """Feed the events (as JSON bytes, like a stream) to a fresh Monitor (with the configured watchlists,
    as the engine builds it), then flush."""
    monitor = build_monitor(config or Config(), with_model=False)
    alerts: list[Alert] = []
    for record in events:
        alerts.extend(monitor.observe(parse_event(orjson.dumps(record))))
    alerts.extend(monitor.flush())
    return monitor, alerts


def run(events: list[dict], config: Config | None = None) -> list[Alert]:
    return monitor_run(events, config)[1]


def alerts_of(alerts: list[Alert], detector: str) -> list[Alert]:
    return [a for a in alerts if a.detector == detector]


def one(alerts: list[Alert], detector: str) -> Alert:
    """The single alert of `detector`; fails listing what was raised otherwise."""
    found = alerts_of(alerts, detector)
    assert len(found) == 1, f"expected one {detector} alert, got {len(found)}: {[a.reason for a in alerts]}"
    return found[0]


def none_of(alerts: list[Alert], *detectors: str) -> None:
    hits = [a for a in alerts if a.detector in detectors or a.detector.split(".")[0] in detectors]
    assert not hits, [f"{a.detector}: {a.reason}" for a in hits]


def config(**sections: dict) -> Config:
    """Defaults with some section values overridden, e.g. config(structuring={"min_trades": 3})."""
    return Config.from_mapping(sections)
