"""The inbox: episodes to triage, filtered and counted (amlwatch.console.inbox), as HTML and JSON."""

from __future__ import annotations

import time

from starlette.responses import JSONResponse

from amlwatch.alerts import SEVERITIES, TYPOLOGIES
from amlwatch.console.inbox import PAGE_SIZES, SORTS, STATUSES, FilterError, InboxFilter, detectors, inbox_page
from amlwatch.console.web import ViewError, page, render

DETECTORS_TTL = 60.0


def _detectors(request, conn) -> list[str]:
    cached = getattr(request.app.state, "detectors", None)
    if cached is None or time.monotonic() - cached[0] > DETECTORS_TTL:
        cached = request.app.state.detectors = (time.monotonic(), detectors(conn))
    return cached[1]


def _page(request, ctx):
    try:
        f = InboxFilter.from_params(request.query_params)
    except FilterError as error:
        raise ViewError(400, error.field, error.reason) from None
    with ctx.engine.connect() as conn:
        return f, inbox_page(conn, f), _detectors(request, conn)


@page()
def inbox(request, ctx):
    f, result, names = _page(request, ctx)
    return render(request, "inbox.html", {"f": f, "page": result, "detectors": names, "typologies": TYPOLOGIES,
                                          "severities": SEVERITIES, "statuses": STATUSES, "sorts": list(SORTS),
                                          "page_sizes": PAGE_SIZES})


@page()
def inbox_api(request, ctx):
    f, result, _ = _page(request, ctx)
    return JSONResponse({
        "total": result.total, "page": f.page, "pages": result.pages, "per_page": f.per_page,
        "by_typology": result.by_typology, "by_severity": result.by_severity,
        "episodes": [{"episode_id": r.episode_id, "alert_id": r.latest_alert_id, "episode_seq": r.latest_seq,
                      "alerts": r.alert_count, "detector": r.detector, "typology": r.typology,
                      "severity": r.severity, "score": r.score, "event_time": r.event_time, "collection_id": r.collection_id,
                      "status": r.status, "case_id": r.case_id, "reason": r.reason} for r in result.rows]})
