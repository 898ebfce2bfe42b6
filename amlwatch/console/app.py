"""The console's ASGI application (Starlette): routes, security headers, error pages.

Server-rendered pages with little JavaScript (the graph and the price chart),
all of it served from the package: the Content-Security-Policy allows scripts,
styles and connections to this origin only, so nothing is loaded from the
internet and an injected script would not run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from amlwatch.console.views import admin, cases, inbox, investigate, login, reports, session
from amlwatch.console.web import Settings, error_response

log = logging.getLogger("amlwatch.console")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]


class SecurityHeaders:
    """Adds the headers to every response; pages and API answers are never cached (they carry PII hashes)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope["path"].startswith("/static/")

        async def sending(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + SECURITY_HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)


async def _not_found(request: Request, exc):
    return error_response(request, 404, "path", f"no page {request.url.path}")


async def _server_error(request: Request, exc):
    log.exception("console request failed", extra={"path": request.url.path})
    return error_response(request, 500, "server", "the console failed on this request; it is logged")


async def healthz(request: Request):
    return PlainTextResponse("ok")


async def home(request: Request):
    return RedirectResponse("/inbox", status_code=303)


def create_app(engine: Engine, settings: Settings | None = None) -> Starlette:
    routes = [
        Route("/", home),
        Route("/healthz", healthz),
        Route("/login", login.login, methods=["GET", "POST"]),
        Route("/logout", session.logout, methods=["POST"]),
        Route("/inbox", inbox.inbox),
        Route("/api/inbox", inbox.inbox_api),
        Route("/alerts/{alert_id}", investigate.alert),
        Route("/api/alerts/{alert_id}", investigate.alert_raw),
        Route("/accounts/{account_id}", investigate.account),
        Route("/api/accounts/{account_id}/graph", investigate.account_graph),
        Route("/collections/{collection_id}", investigate.collection),
        Route("/cases", cases.case_list),
        Route("/cases", cases.case_create, methods=["POST"]),
        Route("/cases/{case_id:int}", cases.case_page),
        Route("/cases/{case_id:int}/comment", cases.case_comment, methods=["POST"]),
        Route("/cases/{case_id:int}/attach", cases.case_attach, methods=["POST"]),
        Route("/cases/{case_id:int}/assign", cases.case_assign, methods=["POST"]),
        Route("/cases/{case_id:int}/add", cases.case_add, methods=["POST"]),
        Route("/cases/{case_id:int}/dispose", cases.case_dispose, methods=["POST"]),
        Route("/cases/{case_id:int}/approve", cases.case_approve, methods=["POST"]),
        Route("/cases/{case_id:int}/reject", cases.case_reject, methods=["POST"]),
        Route("/cases/{case_id:int}/attachments/{file_id:int}", cases.attachment),
        Route("/cases/{case_id:int}/report", cases.case_report, methods=["POST"]),
        Route("/reports", reports.reports_page),
        Route("/reports/lvtr", reports.lvtr_download, methods=["POST"]),
        Route("/ingest", admin.ingest_status),
        Route("/audit", admin.audit_page),
        Route("/users", admin.user_list),
        Mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 500: _server_error})
    app.state.engine = engine
    app.state.settings = settings or Settings()
    app.add_middleware(SecurityHeaders)
    return app
