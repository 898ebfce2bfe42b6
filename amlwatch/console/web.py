"""Request plumbing shared by the views: log-in required, roles, CSRF, rendering, errors.

Every route but /login, /healthz and /static goes through `page`, which loads
the session (no session: a redirect to /login for a page, 401 for /api), checks
the role, and for any state-changing method checks the CSRF token (a form's
`csrf_token` field or the `X-CSRF-Token` header) against the session's own,
before the handler runs. Handlers are plain functions run in a worker thread,
so database work never blocks the event loop.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import jinja2
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from amlwatch.console.auth import ROLES, User, load_session, same_token

SESSION_COOKIE = "amlwatch_console_session"
LOGIN_CSRF_COOKIE = "amlwatch_console_login"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Settings:
    audit_pii_views: bool = False
    """Record every view of an account's registry page in the audit log."""
    secure_cookies: bool = False
    """Mark cookies Secure: set it when the console is served over HTTPS (behind a TLS proxy)."""
    config: object = None
    """The amlwatch `Config` whose `[str_report]`, `[lvtr]` and `[payment_kind]` shape the report drafts
    (None: `load_config()`, i.e. $AMLWATCH_CONFIG or the defaults)."""

    def report_config(self):
        if self.config is None:
            from amlwatch.config import load_config

            self.config = load_config()
        return self.config


@dataclass
class Context:
    user: User
    csrf: str
    form: dict
    files: dict
    engine: Engine
    settings: Settings


class ViewError(Exception):
    """A request the console refuses, with the HTTP status and a message for the person."""

    def __init__(self, status: int, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.status, self.field, self.reason = status, field, reason


def _when(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["when"] = _when
    env.filters["url"] = lambda value: quote(str(value), safe="")
    return Jinja2Templates(env=env)


templates = make_templates()


def render(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
    ctx: Context | None = getattr(request.state, "ctx", None)
    base = {"user": ctx.user if ctx else None, "csrf": ctx.csrf if ctx else "", "roles": ROLES}
    return templates.TemplateResponse(request, name, base | context, status_code=status)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(request: Request, status: int, field: str, reason: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": reason, "field": field}, status_code=status)
    return render(request, "error.html", {"status": status, "field": field, "reason": reason}, status)


def page(role: str = "analyst"):
    """Decorate a sync handler `(request, ctx) -> Response` with log-in, role and CSRF checks."""
    def wrap(handler):
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            engine: Engine = request.app.state.engine
            settings: Settings = request.app.state.settings
            token = request.cookies.get(SESSION_COOKIE)
            with engine.connect() as conn:
                found = await run_in_threadpool(load_session, conn, token)
            if found is None:
                if wants_json(request):
                    return JSONResponse({"error": "log in first", "field": "session"}, status_code=401)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            user, csrf = found
            request.state.ctx = ctx = Context(user, csrf, {}, {}, engine, settings)
            if request.method in UNSAFE:
                form = await request.form(max_part_size=11 * 1024 * 1024)
                for key, value in form.multi_items():
                    if hasattr(value, "read"):
                        ctx.files[key] = (value.filename, value.content_type, await value.read())
                    else:
                        ctx.form.setdefault(key, []).append(value)
                sent = request.headers.get("x-csrf-token") or (ctx.form.get("csrf_token") or [None])[0]
                if not same_token(sent, csrf):
                    return error_response(request, 403, "csrf_token",
                                          "this form's security token is missing or wrong (the page may be from "
                                          "an old session): reload the page and try again")
            if not user.has_role(role):
                return error_response(request, 403, "role", f"this needs the {role} role; you are {user.role}")
            for attempt in range(3):
                try:
                    return await run_in_threadpool(handler, request, ctx)
                except ViewError as error:
                    return error_response(request, error.status, error.field, error.reason)
                except IntegrityError:
                    if request.method not in UNSAFE or attempt == 2:
                        raise
                    time.sleep(0.05 * (attempt + 1))
        return endpoint
    return wrap


def one(ctx: Context, name: str, default: str = "") -> str:
    values = ctx.form.get(name)
    return values[0] if values else default


def version_of(ctx: Context) -> int:
    try:
        return int(one(ctx, "version"))
    except ValueError:
        raise ViewError(400, "version", "the form lacks the case version: reload the page") from None
