"""What the alert, account and collection pages show, read from the store.

PII never leaves this module in clear: the contract carries names, national
IDs, phones and cards only as hashes, and the console shows short prefixes of
them (`short`), enough to see that two accounts share a national ID without
showing the hash whole. Device ids and IP addresses, which the contract carries
in clear, are shown the same way as a prefix of their own SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

import orjson
from sqlalchemy import Connection, func, or_, select, union_all

from amlwatch.console.schema import (account_events, account_links, alert_trades, alerts, case_episodes, cases,
                                     collection_events, episode_accounts, episodes, trades)

PREFIX = 8
LINK_KINDS = {"national_id": "shared national ID", "card": "shared bank card", "phone": "shared phone",
              "device": "shared device"}
LINK_NAMES = {"national_id": "national ID", "card": "card", "phone": "phone", "device": "device"}
EDGE_ORDER = ("national_id", "card", "phone", "device", "trade")
"""One edge per pair of accounts, drawn as its strongest link."""
MAX_SHARED = 50
"""Accounts shown per shared attribute: a public device or card reader may be shared by thousands."""
MAX_COUNTERPARTIES = 30
REGISTRY_FIELDS = ("kyc_level", "name_hash", "id_hash", "birth_year", "phone_hash", "bank_card_hashes",
                   "device_id", "ip", "region")
HASHED = {"name_hash", "id_hash", "phone_hash", "bank_card_hashes"}
IN_CLEAR = {"device_id", "ip"}


def short(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ", ".join(short(v) for v in value) or "-"
    return str(value)[:PREFIX] + "…" if len(str(value)) > PREFIX else str(value)


@dataclass
class AlertView:
    alert: dict
    raw: str
    episode: object
    versions: list
    trades: list
    token_history: dict[str, list]
    cases: list
    open_cases: list


def alert_view(conn: Connection, alert_id: str) -> AlertView | None:
    row = conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
    if row is None:
        return None
    alert = orjson.loads(row.raw)
    episode = conn.execute(select(episodes).where(episodes.c.episode_id == row.episode_id)).first()
    versions = conn.execute(select(alerts.c.alert_id, alerts.c.episode_seq, alerts.c.ts, alerts.c.score,
                                   alerts.c.severity).where(alerts.c.episode_id == row.episode_id)
                            .order_by(alerts.c.episode_seq)).all()
    listed = conn.execute(select(trades).where(trades.c.trade_id.in_(
        select(alert_trades.c.trade_id).where(alert_trades.c.alert_id == alert_id))).order_by(trades.c.event_time)).all()
    tokens = list(dict.fromkeys(alert.get("token_ids") or [t.token_id for t in listed]))
    history = {token: conn.execute(select(trades).where(trades.c.token_id == token).order_by(trades.c.event_time)
                                   .limit(500)).all() for token in tokens[:10]}
    linked_cases = conn.execute(select(cases).join(case_episodes, case_episodes.c.case_id == cases.c.id)
                                .where(case_episodes.c.episode_id == row.episode_id)).all()
    raw = orjson.dumps(alert, option=orjson.OPT_INDENT_2).decode()
    alert.setdefault("episode_id", row.episode_id)
    alert.setdefault("episode_seq", row.episode_seq)
    open_cases = conn.execute(select(cases.c.id, cases.c.title, cases.c.version)
                              .where(cases.c.status.in_(("open", "needs_info")))
                              .order_by(cases.c.updated_at.desc()).limit(50)).all()
    return AlertView(alert, raw, episode, versions, listed, history, linked_cases, open_cases)


def evidence_rows(evidence: dict, prefix: str = "") -> list[tuple[str, str, dict | None]]:
    """The evidence object flattened to (label, readable value, table rows or None) for a person.

    Nested objects become "outer / inner" labels; lists of objects become a small table."""
    rows = []
    for key, value in evidence.items():
        label = f"{prefix}{key.replace('_', ' ')}"
        if isinstance(value, dict):
            rows += evidence_rows(value, f"{label} / ")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for item in value for k in item))
            rows.append((label, "", {"columns": columns,
                                     "rows": [[_readable(item[c]) if c in item else "" for c in columns]
                                              for item in value]}))
        elif isinstance(value, list):
            rows.append((label, ", ".join(_readable(v) for v in value) if value else "none", None))
        else:
            rows.append((label, _readable(value), None))
    return rows


def _readable(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_readable(v)}" for k, v in value.items())
    return str(value)


def price_series(history: dict[str, list], listed: list[str] = ()) -> list[dict]:
    """Chart.js datasets: one line per token, x = event time (ms), y = price in CNY; gifts at 0.

    `listed` (the alert's trade ids) marks the points the alert is about."""
    listed = set(listed)
    return [{"label": token, "data": [{"x": int(t.event_time * 1000), "y": float(Decimal(t.price)), "trade": t.trade_id,
                                       "kind": t.kind, "listed": t.trade_id in listed} for t in rows]}
            for token, rows in history.items()]


@dataclass
class AccountView:
    account_id: str
    registry: dict
    history: list[dict]
    trades: list
    episodes: list
    cases: list
    links: dict[str, int]


def registry_state(events: list) -> dict:
    """The account's current record: later events update earlier ones (docs/EVENTS.md)."""
    state: dict = {"status": "active", "last_event": None}
    for event in events:
        for name in REGISTRY_FIELDS:
            value = getattr(event, name)
            if value is not None:
                state[name] = orjson.loads(value) if name == "bank_card_hashes" else value
        state["status"] = {"freeze": "frozen", "close": "closed", "unfreeze": "active"}.get(
            event.action, state["status"])
        state["last_event"] = event.ts
    return state


def pseudonym(value: str) -> str:
    return "#" + hashlib.sha256(value.encode()).hexdigest()[:PREFIX]


def shown(name: str, value):
    if name in HASHED:
        return short(value)
    if name in IN_CLEAR and value is not None:
        return pseudonym(str(value))
    return value


def account_view(conn: Connection, account_id: str, *, trade_limit: int = 200) -> AccountView:
    events = conn.execute(select(account_events).where(account_events.c.account_id == account_id)
                          .order_by(account_events.c.event_time)).all()
    registry = {k: shown(k, v) for k, v in registry_state(events).items()} if events else {}
    history = [{"ts": e.ts, "action": e.action} | {k: shown(k, getattr(e, k) if k != "bank_card_hashes" or
                                                                 e.bank_card_hashes is None
                                                                 else orjson.loads(e.bank_card_hashes))
                                                   for k in REGISTRY_FIELDS if getattr(e, k) is not None}
               for e in events]
    listed = conn.execute(select(trades).where(or_(trades.c.buyer_id == account_id, trades.c.seller_id == account_id))
                          .order_by(trades.c.event_time.desc()).limit(trade_limit)).all()
    eps = conn.execute(select(episodes).join(episode_accounts, episode_accounts.c.episode_id == episodes.c.episode_id)
                       .where(episode_accounts.c.account_id == account_id).order_by(episodes.c.event_time.desc())
                       .limit(200)).all()
    linked_cases = conn.execute(select(cases).distinct().join(case_episodes, case_episodes.c.case_id == cases.c.id)
                                .join(episode_accounts, episode_accounts.c.episode_id == case_episodes.c.episode_id)
                                .where(episode_accounts.c.account_id == account_id)).all()
    mine, theirs = account_links.alias("mine"), account_links.alias("theirs")
    links = dict(conn.execute(select(mine.c.kind, func.count(theirs.c.account_id.distinct()))
                              .join(theirs, (theirs.c.kind == mine.c.kind) & (theirs.c.value == mine.c.value))
                              .where(mine.c.account_id == account_id, theirs.c.account_id != account_id)
                              .group_by(mine.c.kind)).all())
    return AccountView(account_id, registry, history, listed, eps, linked_cases, links)


def neighbours(conn: Connection, account_id: str) -> dict:
    """One hop of the entity graph around `account_id`, as Cytoscape elements.

    One edge per linked account, listing every link: a shared national ID, card,
    phone or device (from the registry) and the number of trades between them."""
    mine = account_links.alias("mine")
    theirs = account_links.alias("theirs")
    shared = conn.execute(select(theirs.c.account_id, mine.c.kind, mine.c.value)
                          .join(theirs, (theirs.c.kind == mine.c.kind) & (theirs.c.value == mine.c.value))
                          .where(mine.c.account_id == account_id, theirs.c.account_id != account_id)
                          .limit(MAX_SHARED * 4)).all()
    sold = select(trades.c.buyer_id.label("other"), trades.c.trade_id).where(trades.c.seller_id == account_id)
    bought = select(trades.c.seller_id.label("other"), trades.c.trade_id).where(trades.c.buyer_id == account_id)
    both = union_all(sold, bought).subquery()
    counter = conn.execute(select(both.c.other, func.count()).where(both.c.other != account_id)
                           .group_by(both.c.other).order_by(func.count().desc()).limit(MAX_COUNTERPARTIES)).all()
    flagged = set(conn.execute(select(episode_accounts.c.account_id).distinct().where(
        episode_accounts.c.account_id.in_([r[0] for r in shared] + [r[0] for r in counter] + [account_id]))).scalars())
    nodes = {account_id: {"data": {"id": account_id, "label": account_id, "flagged": account_id in flagged}}}
    links: dict[str, list[tuple[str, str]]] = {}
    for other, kind, value in shared:
        links.setdefault(other, []).append(
            (kind, f"{LINK_NAMES[kind]} {pseudonym(value) if kind == 'device' else short(value)}"))
    for other, count in counter:
        links.setdefault(other, []).append(("trade", f"{count} trade{'s' if count != 1 else ''}"))
    edges = []
    for other, found in links.items():
        nodes.setdefault(other, {"data": {"id": other, "label": other, "flagged": other in flagged}})
        found.sort(key=lambda item: EDGE_ORDER.index(item[0]))
        edges.append({"data": {"id": f"{min(account_id, other)}|{max(account_id, other)}", "source": account_id,
                               "target": other, "kind": found[0][0], "kinds": sorted({k for k, _ in found}),
                               "label": ", ".join(label for _, label in found)}})
    return {"center": account_id, "elements": list(nodes.values()) + edges,
            "truncated": len(shared) >= MAX_SHARED * 4 or len(counter) >= MAX_COUNTERPARTIES}


def collection_view(conn: Connection, collection_id: str) -> dict:
    events = conn.execute(select(collection_events).where(collection_events.c.collection_id == collection_id)
                          .order_by(collection_events.c.event_time)).all()
    recent = conn.execute(select(trades).where(trades.c.collection_id == collection_id)
                          .order_by(trades.c.event_time.desc()).limit(100)).all()
    count = conn.execute(select(func.count()).select_from(trades)
                         .where(trades.c.collection_id == collection_id)).scalar_one()
    eps = conn.execute(select(episodes).where(episodes.c.collection_id == collection_id)
                       .order_by(episodes.c.event_time.desc()).limit(100)).all()
    return {"collection_id": collection_id, "events": events, "trades": recent, "trade_count": count, "episodes": eps}
