"""Hand-made input records and a small archive for the record-archive tests."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from amlwatch.records.archive import RecordArchive
from amlwatch.records.commands import add_commands

BASE = datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def raw_trade(line: int) -> bytes:
    """A minimal valid trade, numbered (archive tests that need many distinct records)."""
    return (b'{"type":"trade","event_id":"e%d","ts":"2026-03-01T10:00:00+08:00","trade_id":"t%d",'
            b'"collection_id":"c","token_id":"k%d","kind":"secondary","seller_id":"s","buyer_id":"b",'
            b'"price":"1.00","currency":"CNY"}' % (line, line, line))


def ts(minutes: float = 0, base: datetime = BASE) -> str:
    return (base + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")


def account(eid: str, when: str, account_id: str, action: str = "register", kyc: int = 3, **extra) -> bytes:
    record = {"type": "account", "event_id": eid, "ts": when, "account_id": account_id, "action": action,
              "kyc_level": kyc, **extra}
    return orjson.dumps(record)


def collection(eid: str, when: str, collection_id: str, issuer: str, price: str = "99.00", **extra) -> bytes:
    record = {"type": "collection", "event_id": eid, "ts": when, "collection_id": collection_id,
              "action": "launch", "issuer_id": issuer, "asset_class": "art", "fractional": False,
              "issue_price": price, "currency": "CNY", "supply": 1000, "transfer_lock_days": 0, **extra}
    return orjson.dumps(record)


def trade(eid: str, when: str, trade_id: str, buyer: str, seller: str, price: str = "99.00",
          collection_id: str = "col-1", token: str | None = None, kind: str = "secondary", **extra) -> bytes:
    record = {"type": "trade", "event_id": eid, "ts": when, "trade_id": trade_id,
              "collection_id": collection_id, "token_id": token or f"tok-{trade_id}", "kind": kind,
              "seller_id": seller, "buyer_id": buyer, "price": price, "currency": "CNY",
              "payment": {"method": "alipay"}, **extra}
    return orjson.dumps(record)


def build_archive(root: Path, days: int = 3, per_day: int = 12, open_records: int = 6,
                  day0: datetime = datetime(2026, 3, 1, tzinfo=timezone.utc)) -> Path:
    """`days` sealed days of events (and an alert per day), then an open segment of `open_records`."""
    with RecordArchive(root) as archive:
        n = 0
        for d in range(days + 1):
            count = per_day if d < days else open_records
            for i in range(count):
                n += 1
                when = ts(i * 30, day0 + timedelta(days=d))
                raw = trade(f"e{n}", when, f"t{n}", f"buyer-{n % 5}", f"seller-{n % 3}", price=f"{n}.00")
                archive.append_event(raw, {"file": "fixture", "line": n})
            if d < days:
                archive.append_alert({"alert_id": f"al-{d}", "detector": "x.y", "typology": "anomaly",
                                      "ts": ts(0, day0 + timedelta(days=d)), "accounts": [f"buyer-{d}"],
                                      "trade_ids": [], "reason": "r"})
            archive.commit()
    return root


def run_cli(argv: list[str]) -> int:
    """The commands as `amlwatch.cli.main` runs them (errors it reports as one line: exit 2)."""
    parser = argparse.ArgumentParser(prog="amlwatch")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"amlwatch: error: {error}", file=sys.stderr)
        return 2


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path
