"""Log-in, sessions, CSRF, roles and the throttle, driven through the app in-process."""

from __future__ import annotations

import re

import pytest
from support.console import PASSWORD, Browser
from sqlalchemy import select

from amlwatch.console.auth import MAX_FAILURES_PER_USER, AuthError, add_user
from amlwatch.console.schema import sessions, users

PAGES = ["/inbox", "/api/inbox", "/alerts/al-1", "/api/alerts/al-1", "/accounts/acc-1", "/api/accounts/acc-1/graph",
         "/collections/col-1", "/cases", "/cases/1", "/ingest", "/audit", "/users", "/cases/1/attachments/1"]
FORMS = ["/cases", "/cases/1/comment", "/cases/1/dispose", "/cases/1/approve", "/logout"]


def test_no_page_or_api_without_log_in(console):
    app, _ = console
    anonymous = Browser(app)
    for path in PAGES:
        response = anonymous.get(path, follow_redirects=False)
        if path.startswith("/api/"):
            assert response.status_code == 401, path
        else:
            assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), path
    for path in FORMS:
        assert anonymous.post(path, {"csrf_token": "x"}, csrf=None).status_code in (303, 401), path
    assert anonymous.get("/healthz").text == "ok"


def test_passwords_are_stored_as_argon2_hashes_only(console):
    _, engine = console
    with engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash).where(users.c.username == "ana")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_short_passwords_and_unknown_roles_are_refused(engine):
    with engine.begin() as conn, pytest.raises(AuthError, match="password"):
        add_user(conn, "zed", "short", "analyst")
    with engine.begin() as conn, pytest.raises(AuthError, match="role"):
        add_user(conn, "zed", PASSWORD, "root")


def test_log_in_sets_an_httponly_session_whose_token_is_not_stored(console):
    app, engine = console
    browser = Browser(app)
    response = browser.login("ana")
    assert response.status_code == 303 and response.headers["location"] == "/inbox"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    token = re.search(r"amlwatch_console_session=([^;]+)", cookie).group(1)
    with engine.connect() as conn:
        assert token not in set(conn.execute(select(sessions.c.token_hash)).scalars())
    assert browser.get("/inbox").status_code == 200


def test_wrong_password_and_unknown_user_get_the_same_answer(console):
    app, _ = console
    browser = Browser(app)
    wrong = browser.login("ana", "not the password")
    unknown = browser.login("nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong user name or password" in wrong.text.lower() and "wrong user name or password" in unknown.text.lower()


def test_log_in_is_throttled_after_repeated_failures_even_with_the_right_password(console):
    app, _ = console
    browser = Browser(app)
    for _ in range(MAX_FAILURES_PER_USER):
        assert browser.login("bob", "guess guess guess").status_code == 401
    throttled = browser.login("bob")
    assert throttled.status_code == 429 and "too many failed log-ins" in throttled.text.lower()
    assert Browser(app).login("ana").status_code == 303  # other users are not locked out


def test_log_in_form_needs_its_own_csrf_token(console):
    app, _ = console
    browser = Browser(app)
    browser.get("/login")
    response = browser.client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": "forged"},
                                   follow_redirects=False)
    assert response.status_code == 403 and "expired" in response.text


def test_a_forged_or_missing_csrf_token_is_refused_and_changes_nothing(console):
    app, _ = console
    ana = Browser(app, "ana")
    for csrf in (None, "forged-token", Browser(app, "bob").csrf):
        response = ana.post("/cases", {"title": "x", "episode_id": "al-1"}, csrf=csrf)
        assert response.status_code == 403 and "security token" in response.text
    assert "No cases" in ana.get("/cases").text
    api = ana.client.post("/cases", data={"title": "x", "episode_id": "al-1"}, headers={"X-CSRF-Token": ana.csrf},
                          follow_redirects=False)
    assert api.status_code == 303


def test_log_out_ends_the_session_on_the_server(console):
    app, _ = console
    ana = Browser(app, "ana")
    cookie = ana.client.cookies.get("amlwatch_console_session")
    assert ana.post("/logout").status_code == 303
    replay = Browser(app)
    replay.client.cookies.set("amlwatch_console_session", cookie)
    assert replay.get("/inbox", follow_redirects=False).status_code == 303


def test_roles_gate_pages(console):
    app, _ = console
    ana, sue, ada = Browser(app, "ana"), Browser(app, "sue"), Browser(app, "ada")
    denied = ana.get("/audit")
    assert denied.status_code == 403 and "supervisor role" in denied.text
    assert sue.get("/audit").status_code == 200 and sue.get("/users").status_code == 403
    assert ada.get("/users").status_code == 200


def test_open_redirects_after_log_in_are_refused(console):
    app, _ = console
    browser = Browser(app)
    page = browser.get("/login?next=//evil.example/x")
    assert 'name="next" value="/inbox"' in page.text


def test_security_headers(console):
    app, _ = console
    response = Browser(app, "ana").get("/inbox")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"
