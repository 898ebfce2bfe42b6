"""Cases: alerts grouped for investigation, their dispositions and the four-eyes rule.

A case moves open -> (needs_info <-> open) -> closed, or, to close as confirmed
suspicious, open -> pending_approval -> closed once a supervisor *other than
the one who proposed it* approves. Every change checks the case's `version`
(the form's hidden field), so a form opened before someone else's change is
refused as stale rather than silently undoing it, and every change appends to
the audit log in the same transaction.
"""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import Connection, select

from amlwatch.console import audit, counts
from amlwatch.console.auth import User
from amlwatch.console.schema import audit_log, case_attachments, case_comments, case_episodes, cases, episodes, users

DISPOSITIONS = {"false_positive": "false positive", "needs_information": "needs information",
                "confirmed_suspicious": "confirmed suspicious (to be reported)"}
MAX_ATTACHMENT = 10 * 1024 * 1024


class CaseError(ValueError):
    status = 400

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class CaseNotFound(CaseError):
    status = 404


class NotPermitted(CaseError):
    status = 403


class StaleForm(CaseError):
    status = 409


def get_case(conn: Connection, case_id: int):
    row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
    if row is None:
        raise CaseNotFound("case", f"no case {case_id}")
    return row


def _change(conn: Connection, user: User, case_id: int, version: int, action: str, detail: dict, **values) -> None:
    """Apply `values` if the case is still at `version`; bump the version and audit the action."""
    now = time.time()
    done = conn.execute(cases.update().where(cases.c.id == case_id, cases.c.version == version)
                        .values(version=version + 1, updated_at=now, **values)).rowcount
    if not done:
        current = get_case(conn, case_id)
        raise StaleForm("version", f"case {case_id} changed since this page was loaded (now version "
                                   f"{current.version}, the form had {version}): reload and try again")
    audit.append(conn, user.username, action, f"case:{case_id}", detail, at=now)


def _take_episodes(conn: Connection, case_id: int, episode_ids: list[str]) -> None:
    episode_ids = list(dict.fromkeys(e for e in episode_ids if e))
    rows = {r.episode_id: r for r in conn.execute(select(episodes.c.episode_id, episodes.c.status, episodes.c.case_id)
                                                   .where(episodes.c.episode_id.in_(episode_ids)))}
    for episode_id in episode_ids:
        row = rows.get(episode_id)
        if row is None:
            raise CaseError("episode_ids", f"no alert episode {episode_id}")
        if row.status != "open":
            raise CaseError("episode_ids", f"episode {episode_id} is already {row.status.replace('_', ' ')}"
                                           + (f" (case {row.case_id})" if row.case_id else ""))
    conn.execute(case_episodes.insert(), [{"case_id": case_id, "episode_id": e} for e in episode_ids])
    counts.move_status(conn, episode_ids, "in_case")
    conn.execute(episodes.update().where(episodes.c.episode_id.in_(episode_ids)).values(status="in_case",
                                                                                         case_id=case_id))


def create_case(conn: Connection, user: User, title: str, episode_ids: list[str]) -> int:
    title = title.strip()
    if not title:
        raise CaseError("title", "a case needs a title")
    if not episode_ids:
        raise CaseError("episode_ids", "select at least one alert")
    now = time.time()
    case_id = conn.execute(cases.insert().values(title=title[:200], status="open", assignee_id=user.id,
                                                 created_by=user.id, version=1, created_at=now,
                                                 updated_at=now)).inserted_primary_key[0]
    _take_episodes(conn, case_id, episode_ids)
    audit.append(conn, user.username, "case.create", f"case:{case_id}", {"title": title, "episodes": episode_ids},
                 at=now)
    return case_id


def add_episodes(conn: Connection, user: User, case_id: int, version: int, episode_ids: list[str]) -> None:
    case = get_case(conn, case_id)
    _require_open(case)
    _change(conn, user, case_id, version, "case.add_alerts", {"episodes": episode_ids})
    _take_episodes(conn, case_id, episode_ids)


def _require_open(case) -> None:
    if case.status not in ("open", "needs_info"):
        raise CaseError("status", f"case {case.id} is {case.status.replace('_', ' ')}")


def assign(conn: Connection, user: User, case_id: int, version: int, username: str) -> None:
    case = get_case(conn, case_id)
    _require_open(case)
    target = conn.execute(select(users.c.id, users.c.username).where(users.c.username == username,
                                                                     users.c.active.is_(True))).first()
    if target is None:
        raise CaseError("assignee", f"no active user {username!r}")
    if target.id != user.id and not user.has_role("supervisor"):
        raise NotPermitted("role", "only a supervisor assigns a case to someone else")
    _change(conn, user, case_id, version, "case.assign", {"assignee": target.username}, assignee_id=target.id)


def comment(conn: Connection, user: User, case_id: int, body: str) -> None:
    body = body.strip()
    if not body:
        raise CaseError("body", "empty comment")
    get_case(conn, case_id)
    now = time.time()
    conn.execute(case_comments.insert().values(case_id=case_id, user_id=user.id, body=body[:20000], created_at=now))
    audit.append(conn, user.username, "case.comment", f"case:{case_id}",
                 {"sha256": hashlib.sha256(body.encode()).hexdigest(), "chars": len(body)}, at=now)


def attach(conn: Connection, user: User, case_id: int, filename: str, content_type: str, data: bytes) -> int:
    get_case(conn, case_id)
    if not data:
        raise CaseError("file", "empty file")
    if len(data) > MAX_ATTACHMENT:
        raise CaseError("file", f"larger than {MAX_ATTACHMENT // (1024 * 1024)} MiB")
    name = "".join(c for c in (filename or "evidence").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
                   if c.isprintable())[:255] or "evidence"
    digest = hashlib.sha256(data).hexdigest()
    now = time.time()
    attachment_id = conn.execute(case_attachments.insert().values(
        case_id=case_id, user_id=user.id, filename=name, content_type=(content_type or "application/octet-stream")[:100],
        size=len(data), sha256=digest, data=data, created_at=now)).inserted_primary_key[0]
    audit.append(conn, user.username, "case.attach", f"case:{case_id}",
                 {"attachment": attachment_id, "filename": name, "sha256": digest, "size": len(data)}, at=now)
    return attachment_id


def dispose(conn: Connection, user: User, case_id: int, version: int, disposition: str, note: str = "") -> None:
    """Record a disposition; confirmed suspicious only proposes the close (four-eyes)."""
    if disposition not in DISPOSITIONS:
        raise CaseError("disposition", f"one of {', '.join(DISPOSITIONS)}")
    case = get_case(conn, case_id)
    _require_open(case)
    detail = {"disposition": disposition, "note": note.strip()[:2000]}
    now = time.time()
    if disposition == "false_positive":
        _change(conn, user, case_id, version, "case.close", detail, status="closed", disposition=disposition,
                closed_at=now, approved_by=None, proposed_by=user.id)
        _close_episodes(conn, case_id)
    elif disposition == "needs_information":
        _change(conn, user, case_id, version, "case.needs_information", detail, status="needs_info",
                disposition=disposition)
    else:
        _change(conn, user, case_id, version, "case.propose_confirmed", detail, status="pending_approval",
                disposition=disposition, proposed_by=user.id)


def _close_episodes(conn: Connection, case_id: int) -> None:
    """Close the case's episodes (those a later update reopened into another case are not its own any more)."""
    ids = list(conn.execute(select(episodes.c.episode_id).where(episodes.c.case_id == case_id)).scalars())
    counts.move_status(conn, ids, "closed")
    conn.execute(episodes.update().where(episodes.c.episode_id.in_(ids)).values(status="closed"))


def approve(conn: Connection, user: User, case_id: int, version: int, note: str = "") -> None:
    """The second pair of eyes: a supervisor who did not propose it closes the case as confirmed."""
    if not user.has_role("supervisor"):
        raise NotPermitted("role", "approving a confirmed disposition needs the supervisor role")
    case = get_case(conn, case_id)
    if case.status != "pending_approval":
        raise CaseError("status", f"case {case_id} is not waiting for approval")
    if case.proposed_by == user.id:
        raise NotPermitted("approver", "four-eyes: the user who proposed a confirmed disposition cannot approve it")
    _change(conn, user, case_id, version, "case.approve_confirmed", {"note": note.strip()[:2000]},
            status="closed", approved_by=user.id, closed_at=time.time())
    _close_episodes(conn, case_id)


def reject(conn: Connection, user: User, case_id: int, version: int, note: str = "") -> None:
    """Send a proposed confirmed disposition back: a supervisor, or the proposer withdrawing it."""
    case = get_case(conn, case_id)
    if case.status != "pending_approval":
        raise CaseError("status", f"case {case_id} is not waiting for approval")
    if case.proposed_by != user.id and not user.has_role("supervisor"):
        raise NotPermitted("role", "only a supervisor or the proposer may send it back")
    _change(conn, user, case_id, version, "case.reject_confirmed", {"note": note.strip()[:2000]},
            status="open", disposition=None, proposed_by=None)


def case_detail(conn: Connection, case_id: int) -> dict:
    case = get_case(conn, case_id)
    names = dict(conn.execute(select(users.c.id, users.c.username)).all())
    eps = conn.execute(select(episodes).join(case_episodes, case_episodes.c.episode_id == episodes.c.episode_id)
                       .where(case_episodes.c.case_id == case_id).order_by(episodes.c.event_time)).all()
    comments = conn.execute(select(case_comments).where(case_comments.c.case_id == case_id)
                            .order_by(case_comments.c.id)).all()
    files = conn.execute(select(case_attachments.c.id, case_attachments.c.filename, case_attachments.c.size,
                                case_attachments.c.sha256, case_attachments.c.user_id, case_attachments.c.created_at)
                         .where(case_attachments.c.case_id == case_id).order_by(case_attachments.c.id)).all()
    history = conn.execute(select(audit_log).where(audit_log.c.target == f"case:{case_id}")
                           .order_by(audit_log.c.seq)).all()
    return {"case": case, "names": names, "episodes": eps, "comments": comments, "attachments": files,
            "history": history}


def case_list(conn: Connection, status: str = "") -> list:
    query = select(cases).order_by(cases.c.updated_at.desc()).limit(500)
    if status:
        query = query.where(cases.c.status == status)
    return conn.execute(query).all()
