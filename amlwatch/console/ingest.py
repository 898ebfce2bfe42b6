"""Alerts and events into the console's store: idempotent, restartable, nothing lost.

An alert is stored once by `alert_id` (a redelivery or a second run over the same
file changes nothing) and joins its episode (`episode_id`, or its own id when the
alert has none, docs/ALERTS.md): the episode row points at the alert with the
highest `episode_seq`. A malformed alert or event is kept whole in
`ingest_errors` with the field and reason, in the same transaction as the good
records of its batch; only after that commit does a Kafka consumer commit its
offsets, so a crash at any point re-reads at most one batch, which the
idempotency absorbs.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import orjson
from sqlalchemy import Connection, Engine, select

from amlwatch.alerts import SEVERITIES
from amlwatch.console import audit, counts
from amlwatch.console.db import analyze, insert_ignoring_duplicates
from amlwatch.console.schema import (account_events, account_links, alert_trades, alerts, collection_events,
                                     episode_accounts, episodes, ingest_errors, ingest_sources, trades)
from amlwatch.events import AccountEvent, BadRecord, CollectionEvent, TradeEvent, parse_event, parse_time

BATCH = 2000
ANALYZE_EVERY = 100_000
"""New records after which ingest refreshes the planner's statistics (db.analyze)."""
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


class BadAlert(ValueError):
    """An alert that violates the alert contract; `field` names where."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _text(obj: dict, name: str, *, optional: bool = False) -> str | None:
    value = obj.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise BadAlert(name, "missing" if value is None else f"expected a non-empty string, got {type(value).__name__}")
    if len(value) > 128 and name not in ("reason", "ts"):
        raise BadAlert(name, "longer than 128 characters")
    return value


def _strings(obj: dict, name: str) -> list[str]:
    value = obj.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v and len(v) <= 128 for v in value):
        raise BadAlert(name, "expected a list of ids")
    return value


def parse_alert(raw: bytes | str) -> dict:
    """The alert as a dict, checked against docs/ALERTS.md, with `episode_id`/`episode_seq` filled in."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadAlert("<json>", f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BadAlert("<record>", f"expected a JSON object, got {type(obj).__name__}")
    alert_id = _text(obj, "alert_id")
    for name in ("detector", "typology", "reason"):
        _text(obj, name)
    if obj.get("severity") not in SEVERITY_RANK:
        raise BadAlert("severity", f"expected one of {', '.join(SEVERITIES)}")
    score = obj.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not (0 <= score <= 1) or math.isnan(score):
        raise BadAlert("score", "expected a number from 0 to 1")
    try:
        obj["_t"] = parse_time(_text(obj, "ts")).timestamp()
    except BadRecord as exc:
        raise BadAlert("ts", exc.reason) from None
    _text(obj, "collection_id", optional=True)
    for name in ("accounts", "token_ids", "trade_ids"):
        _strings(obj, name)
    if not isinstance(obj.get("evidence", {}), dict):
        raise BadAlert("evidence", "expected an object")
    episode_id = _text(obj, "episode_id", optional=True) or alert_id
    seq = obj.get("episode_seq", 1)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise BadAlert("episode_seq", "expected an integer >= 1")
    obj["episode_id"], obj["episode_seq"] = episode_id, seq
    return obj


@dataclass
class IngestResult:
    read: int = 0
    new: int = 0
    duplicate: int = 0
    malformed: int = 0
    by_field: dict[str, int] = field(default_factory=dict)

    def add(self, other: "IngestResult") -> None:
        self.read += other.read
        self.new += other.new
        self.duplicate += other.duplicate
        self.malformed += other.malformed
        for key, count in other.by_field.items():
            self.by_field[key] = self.by_field.get(key, 0) + count

    def line(self, what: str = "alerts") -> str:
        bad = f" ({', '.join(f'{k} {v}' for k, v in sorted(self.by_field.items()))})" if self.by_field else ""
        return (f"{what}: {self.read:,} read, {self.new:,} new, {self.duplicate:,} already stored, "
                f"{self.malformed:,} malformed{bad}")


def _error_row(kind: str, source: str, position: str, error, raw: bytes, now: float) -> dict:
    return {"kind": kind, "source": source[:300], "position": position, "field": error.field[:100],
            "reason": error.reason, "raw": raw, "at": now}


def store_alerts(conn: Connection, batch: list[tuple[str, bytes]], source: str, now: float | None = None) -> IngestResult:
    """Store one batch of `(position, raw bytes)` inside the caller's transaction."""
    now = time.time() if now is None else now
    result, parsed, errors = IngestResult(read=len(batch)), {}, []
    for position, raw in batch:
        try:
            alert = parse_alert(raw)
        except BadAlert as error:
            errors.append(_error_row("alert", source, position, error, raw, now))
            result.malformed += 1
            result.by_field[error.field] = result.by_field.get(error.field, 0) + 1
            continue
        if alert["alert_id"] in parsed:
            result.duplicate += 1
        else:
            parsed[alert["alert_id"]] = (alert, raw)
    insert_ignoring_duplicates(conn, ingest_errors, errors, ["source", "position"])
    known = set(conn.execute(select(alerts.c.alert_id).where(alerts.c.alert_id.in_(list(parsed)))).scalars()) \
        if parsed else set()
    result.duplicate += len(known)
    fresh = [a for key, (a, _) in parsed.items() if key not in known]
    result.new = len(fresh)
    if not fresh:
        return result
    conn.execute(alerts.insert(), [{
        "alert_id": a["alert_id"], "episode_id": a["episode_id"], "episode_seq": a["episode_seq"],
        "detector": a["detector"], "typology": a["typology"], "severity": a["severity"], "score": float(a["score"]),
        "ts": a["ts"], "event_time": a["_t"], "collection_id": a.get("collection_id"), "reason": a["reason"],
        "raw": parsed[a["alert_id"]][1].decode("utf-8", "replace"), "source": source[:300], "ingested_at": now,
    } for a in fresh])
    links = [{"alert_id": a["alert_id"], "trade_id": t} for a in fresh for t in dict.fromkeys(a.get("trade_ids", []))]
    if links:
        conn.execute(alert_trades.insert(), links)
    _merge_episodes(conn, fresh)
    return result


def _episode_row(alert: dict) -> dict:
    return {"latest_alert_id": alert["alert_id"], "latest_seq": alert["episode_seq"], "detector": alert["detector"],
            "typology": alert["typology"], "severity": alert["severity"],
            "severity_rank": SEVERITY_RANK[alert["severity"]], "score": float(alert["score"]), "event_time": alert["_t"],
            "collection_id": alert.get("collection_id"), "reason": alert["reason"]}


def _merge_episodes(conn: Connection, fresh: list[dict]) -> None:
    grouped: dict[str, list[dict]] = {}
    for alert in fresh:
        grouped.setdefault(alert["episode_id"], []).append(alert)
    existing = {row.episode_id: row for row in conn.execute(
        select(episodes).where(episodes.c.episode_id.in_(list(grouped))))}
    inserts, shifts = [], []
    for episode_id, members in grouped.items():
        latest = max(members, key=lambda a: a["episode_seq"])
        row = existing.get(episode_id)
        if row is None:
            inserts.append(_episode_row(latest) | {"episode_id": episode_id, "alert_count": len(members),
                                                   "first_event_time": min(a["_t"] for a in members), "status": "open",
                                                   "case_id": None})
            continue
        values = {"alert_count": row.alert_count + len(members),
                  "first_event_time": min([row.first_event_time] + [a["_t"] for a in members])}
        if latest["episode_seq"] > row.latest_seq:
            values |= _episode_row(latest)
            if row.status == "closed":
                values |= {"status": "open", "case_id": None}
                audit.append(conn, "ingest", "episode.reopened", f"episode:{episode_id}",
                             {"alert_id": latest["alert_id"], "closed_case": row.case_id})
            shifts += [((row.detector, row.typology, row.severity_rank, row.status), -1),
                       ((values["detector"], values["typology"], values["severity_rank"],
                         values.get("status", row.status)), 1)]
        conn.execute(episodes.update().where(episodes.c.episode_id == episode_id).values(**values))
    if inserts:
        conn.execute(episodes.insert(), inserts)
        shifts += [((r["detector"], r["typology"], r["severity_rank"], "open"), 1) for r in inserts]
    counts.shift(conn, shifts)
    accounts = [{"episode_id": a["episode_id"], "account_id": acc} for a in fresh for acc in a.get("accounts", [])]
    insert_ignoring_duplicates(conn, episode_accounts, list({(r["episode_id"], r["account_id"]): r
                                                             for r in accounts}.values()),
                               ["episode_id", "account_id"])


def _batches(records: Iterable[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _file_records(path, skip_to: int) -> Iterator[tuple[str, bytes]]:
    from amlwatch.sources import read_lines

    for number, line in read_lines(path):
        if number > skip_to and line.strip():
            yield str(number), line


def _resume_point(engine: Engine, source: str, from_start: bool) -> int:
    if from_start:
        return 0
    with engine.connect() as conn:
        return conn.execute(select(ingest_sources.c.position).where(ingest_sources.c.source == source)).scalar() or 0


def _mark(conn: Connection, source: str, position: int, now: float) -> None:
    if conn.execute(ingest_sources.update().where(ingest_sources.c.source == source)
                    .values(position=position, updated_at=now)).rowcount == 0:
        conn.execute(ingest_sources.insert().values(source=source, position=position, updated_at=now))


def _ingest_file(engine: Engine, path, kind: str, store, from_start: bool, batch: int) -> IngestResult:
    source = f"{kind}-file:{path}"
    total = IngestResult()
    for chunk in _batches(_file_records(path, _resume_point(engine, source, from_start)), batch):
        with engine.begin() as conn:
            total.add(store(conn, chunk, source))
            _mark(conn, source, int(chunk[-1][0]), time.time())
    if total.new:
        analyze(engine)
    return total


def ingest_alert_file(engine: Engine, path, *, from_start: bool = False, batch: int = BATCH) -> IngestResult:
    """Alerts from a JSON Lines file (plain or .gz); a rerun resumes after the last committed line."""
    return _ingest_file(engine, path, "alerts", store_alerts, from_start, batch)


def ingest_alert_topic(engine: Engine, kafka, *, group: str, topic: str | None = None,
                       idle_timeout: float | None = None, max_records: int | None = None,
                       stop=lambda: False, batch: int = BATCH) -> IngestResult:
    """Follow the alert topic in consumer group `group`; offsets are committed only after the store commits."""
    from kafka import KafkaConsumer

    topic = topic or kafka.alerts_topic
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka.bootstrap.split(","), group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    total, idle_since = IngestResult(), time.monotonic()
    try:
        while not stop():
            polled = consumer.poll(timeout_ms=500, max_records=batch)
            chunk = [(f"{m.partition}:{m.offset}", m.value if m.value is not None else b"")
                     for messages in polled.values() for m in messages]
            if not chunk:
                if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                    break
                continue
            idle_since = time.monotonic()
            before = total.new
            with engine.begin() as conn:
                total.add(store_alerts(conn, chunk, f"kafka:{topic}"))
            consumer.commit()
            if total.new // ANALYZE_EVERY > before // ANALYZE_EVERY:
                analyze(engine)
            if max_records is not None and total.read >= max_records:
                break
    finally:
        consumer.close(autocommit=False)
    return total


def _event_rows(event) -> tuple[str, dict, list[dict]]:
    if isinstance(event, TradeEvent):
        return "trade", {"trade_id": event.trade_id, "event_id": event.event_id, "ts": event.ts, "event_time": event.t,
                         "collection_id": event.collection_id, "token_id": event.token_id, "kind": event.kind,
                         "seller_id": event.seller_id, "buyer_id": event.buyer_id, "price": str(event.price),
                         "currency": event.currency, "payment_method": event.payment_method,
                         "instrument_hash": event.instrument_hash}, []
    if isinstance(event, CollectionEvent):
        return "collection", {"event_id": event.event_id, "collection_id": event.collection_id, "ts": event.ts,
                              "event_time": event.t, "action": event.action, "issuer_id": event.issuer_id,
                              "asset_class": event.asset_class, "fractional": event.fractional,
                              "issue_price": None if event.issue_price is None else str(event.issue_price),
                              "currency": event.currency, "supply": event.supply,
                              "transfer_lock_days": event.transfer_lock_days}, []
    assert isinstance(event, AccountEvent)
    cards = list(event.bank_card_hashes or ())
    links = [(kind, value) for kind, value in (("national_id", event.id_hash), ("phone", event.phone_hash),
                                               ("device", event.device_id)) if value]
    links += [("card", card) for card in cards]
    return "account", {"event_id": event.event_id, "account_id": event.account_id, "ts": event.ts, "event_time": event.t,
                       "action": event.action, "kyc_level": event.kyc_level, "name_hash": event.name_hash,
                       "id_hash": event.id_hash, "birth_year": event.birth_year, "phone_hash": event.phone_hash,
                       "bank_card_hashes": orjson.dumps(cards).decode() if event.bank_card_hashes is not None else None,
                       "device_id": event.device_id, "ip": event.ip, "region": event.region}, \
        [{"kind": k, "value": v, "account_id": event.account_id} for k, v in links]


_EVENT_TABLES = {"trade": (trades, ["trade_id"]), "collection": (collection_events, ["event_id"]),
                 "account": (account_events, ["event_id"])}


def store_events(conn: Connection, batch: list[tuple[str, bytes]], source: str, now: float | None = None) -> IngestResult:
    now = time.time() if now is None else now
    result = IngestResult(read=len(batch))
    rows: dict[str, dict[str, dict]] = {kind: {} for kind in _EVENT_TABLES}
    links, errors = {}, []
    for position, raw in batch:
        try:
            kind, row, event_links = _event_rows(parse_event(raw))
        except BadRecord as error:
            errors.append(_error_row("event", source, position, error, raw, now))
            result.malformed += 1
            result.by_field[error.field] = result.by_field.get(error.field, 0) + 1
            continue
        key = row[_EVENT_TABLES[kind][1][0]]
        if key in rows[kind]:
            result.duplicate += 1
        rows[kind][key] = row
        links.update({(r["kind"], r["value"], r["account_id"]): r for r in event_links})
    insert_ignoring_duplicates(conn, ingest_errors, errors, ["source", "position"])
    for kind, (table, keys) in _EVENT_TABLES.items():
        inserted = insert_ignoring_duplicates(conn, table, list(rows[kind].values()), keys)
        result.new += inserted
        result.duplicate += len(rows[kind]) - inserted
    insert_ignoring_duplicates(conn, account_links, list(links.values()), ["kind", "value", "account_id"])
    return result


def ingest_event_file(engine: Engine, path, *, from_start: bool = False, batch: int = BATCH) -> IngestResult:
    """Events (accounts, collections, trades) from a recorded stream, to show alongside the alerts."""
    return _ingest_file(engine, path, "events", store_events, from_start, batch)


def ingest_event_archive(engine: Engine, directory, *, batch: int = BATCH) -> IngestResult:
    """Events from a record archive (amlwatch/records); idempotent, so a rerun only adds what is new."""
    from amlwatch.records.replay import iter_archived_events

    source = f"archive:{directory}"
    total = IngestResult()
    records = ((f"{number}:{hashlib.sha256(raw).hexdigest()[:16]}", raw) for number, raw in iter_archived_events(directory))
    for chunk in _batches(records, batch):
        with engine.begin() as conn:
            total.add(store_events(conn, chunk, source))
    if total.new:
        analyze(engine)
    return total
