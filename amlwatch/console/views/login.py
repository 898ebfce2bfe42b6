"""Log-in and log-out: the only pages served without a session.

The log-in form carries its own CSRF token (double-submit: a random cookie and
the same value in the form), so another site cannot log a browser in as
someone else. Failures are counted (auth.authenticate) and logged in the audit
trail; the message never says whether the user name exists.
"""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from amlwatch.console import audit
from amlwatch.console.auth import AuthError, LoginThrottled, authenticate, new_session, same_token
from amlwatch.console.web import LOGIN_CSRF_COOKIE, SESSION_COOKIE, render


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/inbox"


def _form_page(request: Request, error: str = "", status: int = 200, username: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"login_csrf": token, "error": error, "username": username,
                                              "next": _safe_next(request.query_params.get("next"))}, status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.app.state.settings.secure_cookies, path="/login")
    return response


async def login(request: Request) -> Response:
    if request.method == "GET":
        return _form_page(request)
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    if not same_token(str(form.get("csrf_token", "")), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _form_page(request, "The log-in form expired: please try again.", 403, username)
    client = request.client.host if request.client else "unknown"
    engine = request.app.state.engine

    def attempt():
        with engine.begin() as conn:
            try:
                user = authenticate(conn, username, password, client)
            except LoginThrottled as error:
                audit.append(conn, username[:64] or "-", "login.throttled", f"client:{client}", {})
                return None, error.reason, 429
            except AuthError as error:
                audit.append(conn, username[:64] or "-", "login.failed", f"client:{client}", {})
                return None, error.reason, 401
            token = new_session(conn, user)
            audit.append(conn, user.username, "login", f"user:{user.username}", {"client": client})
            return token, "", 303

    token, error, status = await run_in_threadpool(attempt)
    if token is None:
        return _form_page(request, error[:1].upper() + error[1:] + ".", status, username)
    response = RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=request.app.state.settings.secure_cookies, max_age=8 * 3600)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response
