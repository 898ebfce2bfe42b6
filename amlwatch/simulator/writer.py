"""Rendering the simulated world to files: the event stream, its labels and its hard negatives.

Events are sorted by (event time, creation order) and rendered in chunks;
the gzip header carries no name or time, so one seed gives the same bytes.
"""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson

from .world import DAY, HOUR, MINUTE, SECOND, START, World

WRITE_CHUNK = 20_000


def write(w: World, out: Path) -> dict:
    """Write events.jsonl.gz, labels.jsonl and negatives.jsonl, byte for byte the same for one seed."""
    out.mkdir(parents=True, exist_ok=True)
    events = w.events
    events.sort()
    last_day = events[-1][0] // DAY if events else 0
    day_text = [(START + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(last_day + 1)]
    dumps = orjson.dumps
    with open(out / "events.jsonl.gz", "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as stream:
        chunk: list[bytes] = []
        for number, (ms, _, kind, payload) in enumerate(events, 1):
            day, rest = divmod(ms, DAY)
            hours, rest = divmod(rest, HOUR)
            minutes, rest = divmod(rest, MINUTE)
            seconds, millis = divmod(rest, SECOND)
            ts = f"{day_text[day]}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}+08:00"
            if kind == 2:
                record = _trade_record(payload)
            else:
                record = payload
            chunk.append(dumps({"type": record.pop("type"), "event_id": f"ev-{number:08d}", "ts": ts,
                                "platform": "sim", **record}))
            if len(chunk) >= WRITE_CHUNK:
                stream.write(b"\n".join(chunk) + b"\n")
                chunk.clear()
        if chunk:
            stream.write(b"\n".join(chunk) + b"\n")
    labels = sorted(set(w.labels))
    (out / "labels.jsonl").write_bytes(b"".join(
        dumps({"trade_id": t, "typology": typology, "scenario": s}) + b"\n" for t, typology, s in labels))
    negatives = sorted(w.negatives)
    (out / "negatives.jsonl").write_bytes(b"".join(
        dumps({"trade_id": t, "scenario": s}) + b"\n" for t, s in negatives))
    labelled = Counter()
    for typology, trade_ids in _by_typology(labels).items():
        labelled[typology] = len(trade_ids)
    return {
        "events": len(events),
        "trades": w.trades,
        "accounts": len(w.accounts),
        "collections": len(w.collections),
        "labelled trades": dict(sorted(labelled.items())),
        "hard negatives": dict(sorted(Counter(s for _, s in negatives).items())),
    }



def _by_typology(labels) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for trade_id, typology, _ in labels:
        found.setdefault(typology, set()).add(trade_id)
    return found


def _trade_record(payload: tuple) -> dict:
    (trade_id, collection_id, token_id, kind, seller_id, buyer_id, price, currency, method, payer, instrument,
     buyer_device, buyer_ip, seller_device, seller_ip) = payload
    payment = {"method": method}
    if payer:
        payment["payer_name_hash"] = payer
    if instrument:
        payment["instrument_hash"] = instrument
    return {"type": "trade", "trade_id": trade_id, "collection_id": collection_id, "token_id": token_id,
            "kind": kind, "seller_id": seller_id, "buyer_id": buyer_id, "price": price, "currency": currency,
            "payment": payment, "buyer_device_id": buyer_device, "buyer_ip": buyer_ip,
            "seller_device_id": seller_device, "seller_ip": seller_ip}

