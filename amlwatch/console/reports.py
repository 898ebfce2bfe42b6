"""Report drafts from the console's store: a case's suspicious transaction report, a day's large-value reports.

The store holds what `amlwatch report` otherwise reads from files: each alert as received (`alerts.raw`)
and the events field by field. `case_export` turns a case into the `--case-file` shape (`case_id`,
`disposition`, `notes`, `alert_ids`) and `store_context` turns the stored events back into contract
records for `StrContext.from_events`, so `amlwatch report str --case ID` and the case page's download
run the same `parse_alerts`, `parse_case` and `build_str` as a case export file with the alerts and
events it came from, and give the same draft.

Only a case closed as confirmed suspicious with a second user's approval is reported; any other case
raises `CaseNotReportable` unless the caller asks for a draft anyway (a false positive never is).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from amlwatch.console.schema import (account_events, alerts, audit_log, case_comments, case_episodes, cases,
                                     trades)
from amlwatch.reporting.str_draft import (ReportRequestError, StrContext, StrRequest, build_str, parse_alerts,
                                          parse_case)

CHUNK = 500
"""Ids per IN list (well under SQLite's and PostgreSQL's parameter limits)."""


class CaseUnknown(ReportRequestError):
    """No case with that id in the console's store."""


class CaseNotReportable(ReportRequestError):
    """The case is not closed as confirmed suspicious with a second user's approval."""


def parse_case_id(text) -> int:
    value = str(text).strip()
    if value.startswith("case-"):
        value = value[5:]
    if not value.isdigit():
        raise CaseUnknown("--case", f"console case ids are numbers (as on /cases/N), got {text!r}")
    return int(value)


def reportable(case) -> bool:
    return case.status == "closed" and case.disposition == "confirmed_suspicious" and case.approved_by is not None


def _state(case) -> str:
    if case.status == "pending_approval":
        return "proposed as confirmed suspicious, waiting for a second user's approval"
    if case.status == "closed":
        return f"closed as {(case.disposition or 'unknown').replace('_', ' ')}"
    return case.status.replace("_", " ")


def load_case(conn: Connection, case_id: int, *, draft_anyway: bool = False):
    case = conn.execute(select(cases).where(cases.c.id == case_id)).first()
    if case is None:
        raise CaseUnknown("--case", f"no case {case_id} in the console's store")
    if not reportable(case) and (not draft_anyway or case.disposition == "false_positive"):
        hint = ("; a false positive is never reported" if case.disposition == "false_positive" else
                "; draft it anyway for review with --draft-anyway (a supervisor's preview in the console)")
        raise CaseNotReportable("case.status", f"case {case_id} is {_state(case)}: a suspicious transaction report "
                                               f"is drafted from a case closed as confirmed suspicious with a second "
                                               f"user's approval{hint}")
    return case


def _disposition(case) -> str:
    if reportable(case):
        return "confirmed_suspicious"
    return f"{case.disposition or 'none'} (not approved: case {_state(case)})"


def _audit_note(conn: Connection, case_id: int, action: str) -> str:
    import orjson

    row = conn.execute(select(audit_log.c.detail).where(audit_log.c.target == f"case:{case_id}",
                                                        audit_log.c.action == action)
                       .order_by(audit_log.c.seq.desc()).limit(1)).first()
    return (orjson.loads(row.detail).get("note") or "") if row else ""


def case_alert_lines(conn: Connection, case) -> list[tuple[int, bytes]]:
    """The case's alerts as received, as JSON Lines `(number, bytes)`: those of its episodes stored by the time
    it closed (a later update of an episode belongs to whichever case takes it next)."""
    query = (select(alerts.c.raw).join(case_episodes, case_episodes.c.episode_id == alerts.c.episode_id)
             .where(case_episodes.c.case_id == case.id).order_by(alerts.c.event_time, alerts.c.alert_id))
    if case.closed_at is not None:
        query = query.where(alerts.c.ingested_at <= case.closed_at)
    return [(n, raw.encode("utf-8")) for n, raw in enumerate(conn.execute(query).scalars(), 1)]


def case_export(conn: Connection, case, alert_lines: list[tuple[int, bytes]]) -> dict:
    """The case as `amlwatch report str --case-file` reads it: the comments, then the disposition's notes."""
    import orjson

    notes = list(conn.execute(select(case_comments.c.body).where(case_comments.c.case_id == case.id)
                              .order_by(case_comments.c.id)).scalars())
    for action, label in (("case.propose_confirmed", "Proposed as confirmed suspicious"),
                          ("case.approve_confirmed", "Approved")):
        note = _audit_note(conn, case.id, action)
        if note:
            notes.append(f"{label}: {note}")
    ids = [orjson.loads(line)["alert_id"] for _, line in alert_lines]
    return {"case_id": str(case.id), "disposition": _disposition(case), "notes": notes, "alert_ids": ids}


def _chunks(values: list):
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _account_record(row) -> dict:
    import orjson

    record = {"type": "account", "event_id": row.event_id, "ts": row.ts, "account_id": row.account_id,
              "action": row.action, "kyc_level": row.kyc_level, "name_hash": row.name_hash, "id_hash": row.id_hash,
              "birth_year": row.birth_year, "phone_hash": row.phone_hash,
              "bank_card_hashes": None if row.bank_card_hashes is None else orjson.loads(row.bank_card_hashes),
              "device_id": row.device_id, "ip": row.ip, "region": row.region}
    return {k: v for k, v in record.items() if v is not None}


def _trade_record(row) -> dict:
    payment = {k: v for k, v in (("method", row.payment_method), ("instrument_hash", row.instrument_hash)) if v}
    return {"type": "trade", "event_id": row.event_id, "ts": row.ts, "trade_id": row.trade_id,
            "collection_id": row.collection_id, "token_id": row.token_id, "kind": row.kind, "seller_id": row.seller_id,
            "buyer_id": row.buyer_id, "price": row.price, "currency": row.currency, "payment": payment}


def account_records(conn: Connection, accounts, before: float | None = None) -> list[tuple[float, dict]]:
    """The stored account events of `accounts` (before `before`), as `(event time, contract record)`."""
    out = []
    for chunk in _chunks(sorted(set(accounts))):
        query = select(account_events).where(account_events.c.account_id.in_(chunk))
        if before is not None:
            query = query.where(account_events.c.event_time < before)
        out += [(row.event_time, _account_record(row)) for row in conn.execute(query)]
    return out


def store_context(conn: Connection, alert_list: list[dict]) -> StrContext:
    """The registry and trades the alerts need, rebuilt from the stored events in event-time order."""
    trade_ids = sorted({t for a in alert_list for t in a["trade_ids"]})
    rows = [row for chunk in _chunks(trade_ids) for row in conn.execute(select(trades).where(trades.c.trade_id.in_(chunk)))]
    parties = {acc for a in alert_list for acc in a["accounts"]} | {x for r in rows for x in (r.buyer_id, r.seller_id)}
    records = account_records(conn, parties) + [(r.event_time, _trade_record(r)) for r in rows]
    records.sort(key=lambda r: (r[0], r[1]["type"] != "account", r[1]["event_id"]))
    return StrContext.from_events(enumerate((record for _, record in records), 1), set(trade_ids))


def case_str(conn: Connection, case_id: int, *, config, message_kind: str = "normal", original: str | None = None,
             draft_anyway: bool = False, context: StrContext | None = None) -> dict:
    """The draft of one case (see the module docstring); `context` overrides the store's events."""
    case = load_case(conn, case_id, draft_anyway=draft_anyway)
    lines = case_alert_lines(conn, case)
    source = f"case {case_id} alerts"
    given = parse_alerts(lines, source)
    chosen_case, chosen = parse_case(case_export(conn, case, lines), {a["alert_id"]: a for a in given},
                                     f"case {case_id}")
    request = StrRequest(chosen, message_kind, original, chosen_case)
    return build_str(request, context if context is not None else store_context(conn, chosen), config)


def day_records(conn: Connection, start: float, end: float) -> list[tuple[int, bytes]]:
    """The trades of [start, end) and their parties' account events before `end`, as an event-time-ordered
    stream `(number, bytes)` for the reporting replay."""
    import orjson

    rows = conn.execute(select(trades).where(trades.c.event_time >= start, trades.c.event_time < end)).all()
    parties = {x for r in rows for x in (r.buyer_id, r.seller_id)}
    records = account_records(conn, parties, before=end) + [(r.event_time, _trade_record(r)) for r in rows]
    records.sort(key=lambda r: (r[0], r[1]["type"] != "account", r[1]["event_id"]))
    return [(n, orjson.dumps(record)) for n, (_, record) in enumerate(records, 1)]


def day_lvtr(conn: Connection, day: str, config) -> list[dict]:
    """The large-value reports of reporting day `day` (YYYY-MM-DD in `[lvtr] day_offset`) from the stored events.

    The store holds events by event time, so every trade counts in its own day (none is late)."""
    from datetime import datetime

    from amlwatch.reporting.commands import run_reporting
    from amlwatch.reporting.lvtr import DAY, LargeValueAggregator

    try:
        datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        raise ReportRequestError("day", f"expected YYYY-MM-DD, got {day!r}") from None
    days = LargeValueAggregator(config.lvtr, config.payment_kind)
    end = days.day_end(days.day_number(day))
    records, _ = run_reporting(day_records(conn, end - DAY, end), config, lvtr=True, ratings=False,
                               with_detectors=False)
    return [r for r in records if r.get("record_type") == "lvtr" and r["day"] == day]
