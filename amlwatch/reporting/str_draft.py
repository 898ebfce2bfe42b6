"""Suspicious transaction report drafts from a set of alerts or a case export.

`build_str(request, context, config)` is pure: the request (alerts, an optional case, the message
kind and the original report it refers to), the context (the registry and the trades the alerts
name, built from a stream by `StrContext.from_events`) and `[str_report]` give one draft dict, which
`xml.bstr_xml` writes as BSTR and `json` as is.

Invariants:

* Subjects and counterparties carry hashes only, plus the platform's own account ids, which the
  platform maps back to people itself.
* A malformed request raises `ReportRequestError` naming the field before anything is written.
* The report id is deterministic (kind, alerts, case, original), so drafting twice gives one id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

import orjson

from amlwatch.alerts import SEVERITIES, TYPOLOGIES
from amlwatch.events import AccountEvent, BadRecord, CollectionEvent, TradeEvent, parse_event
from amlwatch.reporting.errors import ReportingError
from amlwatch.reporting.settings import SuspiciousReportConfig

MESSAGE_KINDS = ("normal", "supplement", "correction", "delete", "resend")
NEEDS_ORIGINAL = frozenset({"supplement", "correction", "delete", "resend"})
NOT_REPORTED = frozenset({"dismissed", "false_positive", "benign", "closed_no_action"})


class ReportRequestError(ReportingError):
    """A malformed report request; `field` names what is wrong."""


@dataclass
class StrRequest:
    alerts: list[dict]
    message_kind: str = "normal"
    original_report_id: str | None = None
    case: dict | None = None


@dataclass
class StrContext:
    """What the registry knew, and the trades the alerts name (from a stream or an archive)."""

    registry: object = None
    trades: dict[str, TradeEvent] = field(default_factory=dict)

    @classmethod
    def from_events(cls, records, trade_ids: set[str]) -> "StrContext":
        from amlwatch.detectors.registry import Registry

        registry, trades = Registry(), {}
        for _, raw in records:
            try:
                event = parse_event(raw)
            except BadRecord:
                continue  # bad input was dead-lettered when it was judged; a draft reads the good events
            if isinstance(event, AccountEvent):
                registry.apply_account(event)
            elif isinstance(event, CollectionEvent):
                registry.apply_collection(event)
            elif event.trade_id in trade_ids:
                trades[event.trade_id] = event
        return cls(registry, trades)


def parse_alerts(lines, source: str = "alerts") -> list[dict]:
    """Alerts (contract dicts) from JSON Lines `(number, bytes)`; each checked for what a report needs."""
    alerts = []
    for number, line in lines:
        where = f"{source}:{number}"
        try:
            alert = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise ReportRequestError(where, f"invalid JSON: {error}") from None
        check_alert(alert, where)
        alerts.append(alert)
    return alerts


def check_alert(alert, where: str) -> None:
    if not isinstance(alert, dict):
        raise ReportRequestError(where, "an alert must be a JSON object")
    for name in ("alert_id", "detector", "ts", "reason"):
        if not isinstance(alert.get(name), str) or not alert[name]:
            raise ReportRequestError(f"{where}.{name}", "missing or not a string")
    if alert.get("typology") not in TYPOLOGIES:
        raise ReportRequestError(f"{where}.typology",
                                 f"expected one of {', '.join(TYPOLOGIES)}, got {alert.get('typology')!r}")
    if alert.get("severity") not in SEVERITIES:
        raise ReportRequestError(f"{where}.severity", f"expected one of {', '.join(SEVERITIES)}")
    for name in ("accounts", "trade_ids"):
        value = alert.get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ReportRequestError(f"{where}.{name}", "expected a list of strings")
    if not alert["accounts"]:
        raise ReportRequestError(f"{where}.accounts", "an alert names at least one account")


def parse_case(obj, alerts_by_id: dict[str, dict], source: str = "case") -> tuple[dict, list[dict]]:
    """A case export (`case_id`, `disposition`, `notes`, `alert_ids`) and the alerts it names."""
    if not isinstance(obj, dict):
        raise ReportRequestError(source, "a case export is a JSON object")
    case_id = obj.get("case_id")
    if not isinstance(case_id, str) or not case_id:
        raise ReportRequestError(f"{source}.case_id", "missing or not a string")
    disposition = obj.get("disposition")
    if not isinstance(disposition, str) or not disposition:
        raise ReportRequestError(f"{source}.disposition", "missing or not a string")
    if disposition in NOT_REPORTED:
        raise ReportRequestError(f"{source}.disposition", f"a case closed as {disposition!r} is not reported")
    notes = obj.get("notes", [])
    if isinstance(notes, str):
        notes = [notes]
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ReportRequestError(f"{source}.notes", "expected text or a list of texts")
    ids = obj.get("alert_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ReportRequestError(f"{source}.alert_ids", "expected a non-empty list of alert ids")
    missing = [i for i in ids if i not in alerts_by_id]
    if missing:
        raise ReportRequestError(f"{source}.alert_ids",
                                 f"{len(missing)} alert(s) not in the alerts given, first {missing[0]}")
    case = {"case_id": case_id, "disposition": disposition, "notes": notes}
    return case, [alerts_by_id[i] for i in dict.fromkeys(ids)]


def check_request(request: StrRequest) -> None:
    if request.message_kind not in MESSAGE_KINDS:
        raise ReportRequestError("message_kind",
                                 f"expected one of {', '.join(MESSAGE_KINDS)}, got {request.message_kind!r}")
    if request.message_kind in NEEDS_ORIGINAL and not request.original_report_id:
        raise ReportRequestError("original_report_id",
                                 f"a {request.message_kind} refers to the original report: give its id")
    if request.message_kind == "normal" and request.original_report_id:
        raise ReportRequestError("original_report_id", "a normal report has no original; use supplement or correction")
    if not request.alerts and request.message_kind != "delete":
        raise ReportRequestError("alerts", "a report needs at least one alert")


def build_str(request: StrRequest, context: StrContext | None = None,
              config: SuspiciousReportConfig | None = None) -> dict:
    """The draft dict (see docs/REPORTING.md for its fields)."""
    check_request(request)
    config = config or SuspiciousReportConfig()
    context = context or StrContext()
    alerts = sorted(request.alerts, key=lambda a: (a["ts"], a["alert_id"]))
    subjects = list(dict.fromkeys(a["accounts"][0] for a in alerts))
    trade_ids = list(dict.fromkeys(t for a in alerts for t in a["trade_ids"]))
    transactions = [_transaction(t, context) for t in trade_ids]
    others = [a for alert in alerts for a in alert["accounts"]]
    others += [x for t in transactions for x in (t.get("buyer_id"), t.get("seller_id")) if x]
    counterparties = [a for a in dict.fromkeys(others) if a not in subjects]
    typologies = list(dict.fromkeys(a["typology"] for a in alerts))
    case = request.case
    digest = hashlib.sha256("\x1f".join([request.message_kind, request.original_report_id or "",
                                         (case or {}).get("case_id", ""), *sorted(a["alert_id"] for a in alerts)])
                            .encode()).hexdigest()[:24]
    return {
        "record_type": "str",
        "report_id": f"str-{digest}",
        "message_kind": request.message_kind,
        "original_report_id": request.original_report_id,
        "case_id": (case or {}).get("case_id"),
        "institution_name": config.institution_name,
        "institution_code": config.institution_code,
        "urgency": _urgency(alerts, config),
        "period_start": alerts[0]["ts"] if alerts else None,
        "period_end": alerts[-1]["ts"] if alerts else None,
        "trigger": "; ".join(dict.fromkeys(f"{a['detector']} ({a['typology']})" for a in alerts)),
        "narrative": _narrative(alerts, transactions, subjects),
        "analysis": _analysis(alerts, case),
        "offence_codes": _codes(config.offence_codes, typologies),
        "trait_codes": _codes(config.trait_codes, typologies),
        "typologies": typologies,
        "subjects": [_party(a, context) for a in subjects],
        "counterparties": [_party(a, context) for a in counterparties],
        "transactions": transactions,
        "alerts": [{k: a[k] for k in ("alert_id", "detector", "typology", "severity", "ts", "reason")} for a in alerts],
        "draft": True,
    }


def _codes(mapping: dict[str, str], typologies: list[str]) -> list[str]:
    """The codes the typologies map to, each once, in typology order (unmapped ones give none)."""
    return list(dict.fromkeys(mapping[t] for t in typologies if mapping.get(t)))


def _urgency(alerts: list[dict], config: SuspiciousReportConfig) -> str:
    floor = SEVERITIES.index(config.urgent_severity) if config.urgent_severity in SEVERITIES else len(SEVERITIES)
    for alert in alerts:
        if alert["typology"] in config.urgent_typologies or SEVERITIES.index(alert["severity"]) >= floor:
            return "urgent"
        if alert["detector"] == "watchlist.hit" and any(
                h.get("list") == "block" for h in (alert.get("evidence") or {}).get("hits", [])):
            return "urgent"
    return "normal"


def _party(account: str, context: StrContext) -> dict:
    state = context.registry.accounts.get(account) if context.registry is not None else None
    if state is None:
        return {"account_id": account, "registered": False}
    return {"account_id": account, "registered": True, "kyc_level": state.kyc_level, "id_hash": state.id_hash,
            "name_hash": state.name_hash, "phone_hash": state.phone_hash, "card_hashes": sorted(state.cards),
            "region": getattr(state, "region", None)}


def _transaction(trade_id: str, context: StrContext) -> dict:
    trade = context.trades.get(trade_id)
    if trade is None:
        return {"trade_id": trade_id, "resolved": False}
    return {"trade_id": trade_id, "resolved": True, "ts": trade.ts, "amount": str(trade.price),
            "currency": trade.currency, "payment_method": trade.payment_method,
            "instrument_hash": trade.instrument_hash,
            "buyer_id": trade.buyer_id, "seller_id": trade.seller_id, "collection_id": trade.collection_id,
            "token_id": trade.token_id, "kind": trade.kind}


def _evidence_text(evidence) -> str:
    if not isinstance(evidence, dict):
        return ""
    parts = []
    for key in sorted(evidence):
        value = evidence[key]
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            parts.append(f"{key} {value}")
        elif isinstance(value, list) and value and all(isinstance(v, (str, int, float)) for v in value):
            shown = ", ".join(str(v) for v in value[:6]) + (f" and {len(value) - 6} more" if len(value) > 6 else "")
            parts.append(f"{key} [{shown}]")
    return "; ".join(parts)


def _narrative(alerts: list[dict], transactions: list[dict], subjects: list[str]) -> str:
    resolved = [t for t in transactions if t.get("resolved")]
    total = sum((Decimal(t["amount"]) for t in resolved), Decimal(0))
    lines = [f"Subject account(s) {', '.join(subjects)}: {len(alerts)} alert(s) between {alerts[0]['ts']} and "
             f"{alerts[-1]['ts']} over {len(transactions)} transaction(s)"
             + (f", {total:,.2f} CNY in the {len(resolved)} resolved" if resolved else "") + "."] if alerts else []
    for alert in alerts:
        evidence = _evidence_text(alert.get("evidence"))
        lines.append(f"{alert['ts']} {alert['detector']}: {alert['reason']}"
                     + (f" Evidence: {evidence}." if evidence else ""))
    return "\n".join(lines)


def _analysis(alerts: list[dict], case: dict | None) -> str:
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert["typology"]] = counts.get(alert["typology"], 0) + 1
    text = "Patterns: " + ", ".join(f"{t} ({n} alert{'s' if n > 1 else ''})" for t, n in counts.items()) + "."
    if case:
        text += f" Case {case['case_id']} disposition: {case['disposition']}."
        for note in case["notes"]:
            text += f" Analyst note: {note}"
    return text + " Draft generated by amlwatch for review by the compliance officer; not a filing."
