"""The hostile-record corpus (tests/fuzz/corpus/*.json): records a producer bug or an attacker might send,
each with the outcome amlwatch must give it.

A case file holds `records` (raw JSON text, or `records_base64` for bytes that are not UTF-8), an optional
`pad` (`{"record": i, "field": f, "bytes": n}`: field f of record i is filled with n bytes when loaded, so
the half-megabyte cases stay small in git) and `expect`, one per record: `{"outcome": "ok"}`,
`{"outcome": "duplicate"}` or `{"outcome": "dead_letter", "field": ..., "reason": <a part of the reason>}`.

Every case runs between the same small world (two verified accounts, one collection) and a good neighbour
after it (a USDT trade: a settlement alert), which must come out whatever the case did.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

CORPUS = Path(__file__).with_name("corpus")
TS = "2026-03-01T10:00:00+08:00"


def _account(account_id: str) -> dict:
    return {"type": "account", "event_id": f"world-{account_id}", "ts": "2026-03-01T09:00:00+08:00",
            "account_id": account_id, "action": "register", "kyc_level": 3, "name_hash": "n-" + account_id,
            "id_hash": "i-" + account_id, "birth_year": 1990, "bank_card_hashes": ["c-" + account_id]}


WORLD = [json.dumps(r).encode() for r in (
    _account("acc-fs"), _account("acc-fb"),
    {"type": "collection", "event_id": "world-col", "ts": "2026-03-01T09:00:00+08:00", "collection_id": "col-fz",
     "action": "launch", "issuer_id": "acc-fs", "asset_class": "art", "issue_price": "99.00", "currency": "CNY",
     "supply": 100, "transfer_lock_days": 0},
)]
NEIGHBOUR = json.dumps({
    "type": "trade", "event_id": "neighbour", "ts": "2026-03-01T10:05:00+08:00", "trade_id": "neighbour-tr",
    "collection_id": "col-fz", "token_id": "neighbour-tok", "kind": "secondary", "seller_id": "acc-fs",
    "buyer_id": "acc-fb", "price": "100.00", "currency": "USDT", "payment": {"method": "crypto"}}).encode()
NEIGHBOUR_DETECTOR = "settlement.currency"


def load_case(path: Path) -> tuple[list[bytes], list[dict]]:
    case = json.loads(path.read_text())
    if "records_base64" in case:
        records = [base64.b64decode(r) for r in case["records_base64"]]
    else:
        records = [r.encode() for r in case["records"]]
    pad = case.get("pad")
    if pad:
        record = json.loads(records[pad["record"]])
        record[pad["field"]] = "x" * pad["bytes"]
        records[pad["record"]] = json.dumps(record).encode()
    assert len(records) == len(case["expect"]), path.name
    return records, case["expect"]


def cases() -> list[Path]:
    return sorted(CORPUS.glob("*.json"))
