"""Export every archived event and alert touching one account (a regulator's request).

Touching: account events with its `account_id`, collection events with it as
`issuer_id`, trades with it as buyer or seller, alerts listing it in
`accounts`. Bad input records count too when their JSON names the account
(a record of unknown type is searched for all four fields).

Counterparties' data is pseudonymised: in a trade, the other party's IP and
device (and, for a seller's export, the buyer's payment hashes) are replaced by
`pseudonym:<16 hex>`, an HMAC under a key drawn for this export alone. One
export still shows that two trades came from the same counterparty device; two
exports cannot be joined, and an IPv4 address cannot be recovered by trying
all 2^32. `raw` is then the pseudonymised record, `raw_sha256` the original's
digest (to match it to the archive). Docs: docs/RECORDS.md, "Personal data by output".
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import os
from typing import BinaryIO

import orjson

from .archive import ArchiveReader, record_raw, utc_iso

CSV_COLUMNS = (
    "record", "stream", "seq", "time_utc", "roles", "outcome", "type", "action", "event_id", "ts",
    "trade_id", "collection_id", "token_id", "kind", "buyer_id", "seller_id", "price", "currency",
    "payment_method", "alert_id", "detector", "typology", "severity", "score", "alert_accounts", "trade_ids",
    "reason", "received_utc", "source", "hash", "raw",
)


_ROLE_FIELDS = {"account": (("account_id", "account"),), "collection": (("issuer_id", "issuer"),),
                "trade": (("buyer_id", "buyer"), ("seller_id", "seller"))}
_ANY_FIELDS = (("account_id", "account"), ("issuer_id", "issuer"), ("buyer_id", "buyer"), ("seller_id", "seller"))


PARTY_FIELDS = {
    "buyer": ("buyer_ip", "buyer_device_id", "payment.payer_name_hash", "payment.instrument_hash"),
    "seller": ("seller_ip", "seller_device_id"),
}
"""What in a trade is one party's own personal data beyond their account id."""


class Pseudonymiser:
    """Counterparty values to stable, unlinkable stand-ins, under a key that lives as long as one export."""

    def __init__(self, key: bytes | None = None):
        self.key = key or os.urandom(32)

    def __call__(self, value: str) -> str:
        return "pseudonym:" + hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()[:16]

    def redact(self, obj: dict, roles: list[str]) -> bool:
        """Pseudonymise, in place, the fields of every trade party `roles` does not name; True if any was."""
        changed = False
        for party, fields in PARTY_FIELDS.items():
            if party in roles:
                continue
            for field in fields:
                holder, _, name = field.rpartition(".")
                target = obj.get(holder) if holder else obj
                if isinstance(target, dict) and isinstance(target.get(name), str):
                    target[name] = self(target[name])
                    changed = True
        return changed


def _roles(obj, account: str) -> list[str]:
    """How an input record involves the account (the same fields as `event_accounts`)."""
    if not isinstance(obj, dict):
        return []
    kind = obj.get("type")
    pairs = _ROLE_FIELDS.get(kind, _ANY_FIELDS) if isinstance(kind, str) else _ANY_FIELDS
    return [role for name, role in pairs if obj.get(name) == account]


def iter_account_records(root: str | os.PathLike, account: str, since: float | None = None,
                         until: float | None = None):
    """(record, decoded input object or None, roles) for every event and alert touching `account`, in time order."""
    needle = account
    for record in ArchiveReader(root).records(kinds=("event", "alert"), since=since, until=until):
        if record["kind"] == "alert":
            accounts = (record.get("alert") or {}).get("accounts") or []
            if account in accounts:
                yield record, None, ["alert"]
            continue
        raw_text = record.get("raw")
        if raw_text is not None and needle not in raw_text and "\\" not in raw_text:
            continue  # cheap rejection before decoding (unless JSON escapes could hide the id)
        try:
            obj = orjson.loads(record_raw(record))
        except orjson.JSONDecodeError:
            continue
        roles = _roles(obj, account)
        if roles:
            yield record, obj, roles


def export_account(root: str | os.PathLike, account: str, out: BinaryIO, *, since: float | None = None,
                   until: float | None = None, fmt: str = "jsonl") -> int:
    """Write the account's records to `out` as JSON Lines or CSV; returns how many."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
    count = 0
    writer = None
    text = None
    pseudonymise = Pseudonymiser()
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
    try:
        for record, obj, roles in iter_account_records(root, account, since, until):
            row = _row(record, obj, roles, pseudonymise)
            if writer is not None:
                writer.writerow(_csv_row(row))
            else:
                out.write(orjson.dumps(row) + b"\n")
            count += 1
    finally:
        if text is not None:
            text.flush()
            text.detach()
    return count


def _row(record: dict, obj, roles: list[str], pseudonymise: Pseudonymiser) -> dict:
    row = {"record": record["kind"], "stream": record["_stream"], "seq": record["seq"], "hash": record["hash"],
           "time_utc": utc_iso(record.get("t")), "roles": roles}
    if record["kind"] == "alert":
        row["alert"] = record["alert"]
        return row
    row.update({"received_utc": utc_iso(record.get("received")), "source": record.get("source"),
                "outcome": record.get("outcome")})
    if "field" in record:
        row["field"] = record["field"]
    row["event"] = obj
    if isinstance(obj, dict) and obj.get("type") not in ("account", "collection") and pseudonymise.redact(obj, roles):
        row["raw"] = orjson.dumps(obj).decode()
        row["raw_sha256"] = hashlib.sha256(record_raw(record)).hexdigest()
        row["raw_pseudonymised"] = True
    elif "raw" in record:
        row["raw"] = record["raw"]
    else:
        row["raw_base64"] = record["raw_base64"]
    return row


def _csv_row(row: dict) -> dict:
    out = {k: row.get(k) for k in ("record", "stream", "seq", "time_utc", "outcome", "received_utc", "hash")}
    out["roles"] = ";".join(row["roles"])
    if row["record"] == "alert":
        alert = row["alert"]
        out.update({k: alert.get(k) for k in ("alert_id", "detector", "typology", "severity", "score", "reason",
                                              "ts", "collection_id")})
        out["alert_accounts"] = ";".join(alert.get("accounts") or [])
        out["trade_ids"] = ";".join(alert.get("trade_ids") or [])
        out["token_id"] = ";".join(alert.get("token_ids") or [])
        out["raw"] = orjson.dumps(alert).decode()
        return out
    event = row.get("event") if isinstance(row.get("event"), dict) else {}
    for key in ("type", "action", "event_id", "ts", "trade_id", "collection_id", "token_id", "kind", "buyer_id",
                "seller_id", "price", "currency"):
        value = event.get(key)
        out[key] = value if isinstance(value, (str, int, float)) or value is None else orjson.dumps(value).decode()
    payment = event.get("payment")
    out["payment_method"] = payment.get("method") if isinstance(payment, dict) else None
    out["source"] = orjson.dumps(row.get("source")).decode()
    out["raw"] = row.get("raw") if "raw" in row else "base64:" + row["raw_base64"]
    return out

