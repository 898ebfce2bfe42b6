"""Operational pages: what was ingested (and what was malformed), the audit trail, the users."""

from __future__ import annotations

from sqlalchemy import func, select

from amlwatch.console import audit
from amlwatch.console.schema import (account_events, alerts, audit_log, episodes, ingest_errors, ingest_sources,
                                     trades, users)
from amlwatch.console.web import page, render


@page()
def ingest_status(request, ctx):
    with ctx.engine.connect() as conn:
        counts = {name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                  for name, table in (("alerts", alerts), ("episodes", episodes), ("trades", trades),
                                      ("account events", account_events))}
        sources = conn.execute(select(ingest_sources).order_by(ingest_sources.c.source)).all()
        by_reason = conn.execute(select(ingest_errors.c.kind, ingest_errors.c.source, ingest_errors.c.field,
                                        func.count()).group_by(ingest_errors.c.kind, ingest_errors.c.source,
                                                               ingest_errors.c.field)).all()
        latest = conn.execute(select(ingest_errors).order_by(ingest_errors.c.id.desc()).limit(50)).all()
    return render(request, "ingest.html", {"counts": counts, "sources": sources, "by_reason": by_reason,
                                           "errors": latest})


@page("supervisor")
def audit_page(request, ctx):
    with ctx.engine.connect() as conn:
        report = audit.verify(conn)
        entries = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(200)).all()
    return render(request, "audit.html", {"report": report, "entries": entries})


@page("admin")
def user_list(request, ctx):
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(users.c.username, users.c.role, users.c.active, users.c.created_at)
                            .order_by(users.c.username)).all()
    return render(request, "users.html", {"users": rows})
