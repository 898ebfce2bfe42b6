"""Pages about the logged-in user's own session."""

from __future__ import annotations

from starlette.responses import RedirectResponse

from amlwatch.console import audit
from amlwatch.console.auth import end_session
from amlwatch.console.web import SESSION_COOKIE, page


@page()
def logout(request, ctx):
    with ctx.engine.begin() as conn:
        end_session(conn, request.cookies.get(SESSION_COOKIE))
        audit.append(conn, ctx.user.username, "logout", f"user:{ctx.user.username}", {})
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
