"""Alert, account and collection pages, and the entity graph's JSON."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from amlwatch.console import audit
from amlwatch.console.investigate import (LINK_KINDS, account_view, alert_view, collection_view, evidence_rows,
                                          neighbours, price_series)
from amlwatch.console.web import ViewError, page, render


def _alert(request, ctx):
    with ctx.engine.connect() as conn:
        view = alert_view(conn, request.path_params["alert_id"])
    if view is None:
        raise ViewError(404, "alert_id", f"no alert {request.path_params['alert_id']}")
    return view


@page()
def alert(request, ctx):
    view = _alert(request, ctx)
    return render(request, "alert.html", {"v": view, "a": view.alert,
                                          "evidence": evidence_rows(view.alert.get("evidence") or {}),
                                          "series": price_series(view.token_history, view.alert.get("trade_ids") or [])})


@page()
def alert_raw(request, ctx):
    return Response(_alert(request, ctx).raw, media_type="application/json")


@page()
def account(request, ctx):
    account_id = request.path_params["account_id"]
    if ctx.settings.audit_pii_views:
        with ctx.engine.begin() as conn:
            audit.append(conn, ctx.user.username, "account.view", f"account:{account_id}", {})
    with ctx.engine.connect() as conn:
        view = account_view(conn, account_id)
    if not view.history and not view.trades and not view.episodes:
        raise ViewError(404, "account_id", f"nothing is known about account {account_id}")
    return render(request, "account.html", {"v": view, "link_kinds": LINK_KINDS})


@page()
def account_graph(request, ctx):
    with ctx.engine.connect() as conn:
        return JSONResponse(neighbours(conn, request.path_params["account_id"]))


@page()
def collection(request, ctx):
    with ctx.engine.connect() as conn:
        view = collection_view(conn, request.path_params["collection_id"])
    if not view["events"] and not view["trades"] and not view["episodes"]:
        raise ViewError(404, "collection_id", f"nothing is known about collection {view['collection_id']}")
    return render(request, "collection.html", {"v": view})
