"""Users, roles, passwords, sessions and the log-in throttle.

Passwords are hashed with Argon2id (argon2-cffi, its default parameters).
A session is a random token in an HttpOnly cookie; only its SHA-256 is stored,
so a copy of the database does not let anyone log in. Each session carries its
own CSRF token, which every state-changing request must echo. Failed log-ins
are counted per user name and per client address over a window; past the limit
the log-in is refused before the password is checked, so guessing stays slow
whatever the client does.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, func, select

from amlwatch.console.schema import login_failures, sessions, users

ROLES = ("analyst", "supervisor", "admin")
"""Each role may do everything the roles before it may."""
MIN_PASSWORD = 10
SESSION_SECONDS = 8 * 3600
FAILURE_WINDOW = 15 * 60
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_CLIENT = 20

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password, for constant time")


class AuthError(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class LoginThrottled(AuthError):
    pass


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str

    def has_role(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError("password", f"must be at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def add_user(conn: Connection, username: str, password: str, role: str) -> User:
    username = username.strip()
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-@" for c in username):
        raise AuthError("username", "1-64 letters, digits or ._-@")
    if role not in ROLES:
        raise AuthError("role", f"one of {', '.join(ROLES)}")
    if conn.execute(select(users.c.id).where(users.c.username == username)).first():
        raise AuthError("username", f"{username!r} exists already")
    result = conn.execute(users.insert().values(username=username, password_hash=hash_password(password), role=role,
                                                active=True, created_at=time.time()))
    return User(result.inserted_primary_key[0], username, role)


def _failures(conn: Connection, key: str, now: float) -> int:
    return conn.execute(select(func.count()).select_from(login_failures).where(
        login_failures.c.key == key, login_failures.c.at > now - FAILURE_WINDOW)).scalar_one()


def authenticate(conn: Connection, username: str, password: str, client: str, now: float | None = None) -> User:
    """The user, or AuthError (wrong name or password: one message for both) / LoginThrottled."""
    now = time.time() if now is None else now
    user_key, client_key = f"user:{username.strip().lower()}", f"client:{client}"
    if (_failures(conn, user_key, now) >= MAX_FAILURES_PER_USER
            or _failures(conn, client_key, now) >= MAX_FAILURES_PER_CLIENT):
        raise LoginThrottled("login", f"too many failed log-ins: try again in {FAILURE_WINDOW // 60} minutes")
    row = conn.execute(select(users).where(users.c.username == username.strip())).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
        ok = row is not None and row.active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        conn.execute(login_failures.insert(), [{"key": user_key, "at": now}, {"key": client_key, "at": now}])
        conn.execute(delete(login_failures).where(login_failures.c.at < now - FAILURE_WINDOW))
        raise AuthError("login", "wrong user name or password")
    conn.execute(delete(login_failures).where(login_failures.c.key == user_key))
    if _hasher.check_needs_rehash(row.password_hash):
        conn.execute(users.update().where(users.c.id == row.id).values(password_hash=_hasher.hash(password)))
    return User(row.id, row.username, row.role)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_session(conn: Connection, user: User, now: float | None = None) -> str:
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    conn.execute(sessions.insert().values(token_hash=_token_hash(token), user_id=user.id,
                                          csrf_token=secrets.token_urlsafe(32), created_at=now,
                                          expires_at=now + SESSION_SECONDS))
    conn.execute(delete(sessions).where(sessions.c.expires_at < now))
    return token


def load_session(conn: Connection, token: str | None, now: float | None = None) -> tuple[User, str] | None:
    """(user, csrf token) of a live session, or None."""
    if not token:
        return None
    now = time.time() if now is None else now
    row = conn.execute(select(users.c.id, users.c.username, users.c.role, users.c.active, sessions.c.csrf_token,
                              sessions.c.expires_at).join(users, users.c.id == sessions.c.user_id)
                       .where(sessions.c.token_hash == _token_hash(token))).first()
    if row is None or row.expires_at < now or not row.active:
        return None
    return User(row.id, row.username, row.role), row.csrf_token


def end_session(conn: Connection, token: str | None) -> None:
    if token:
        conn.execute(delete(sessions).where(sessions.c.token_hash == _token_hash(token)))


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and secrets.compare_digest(a, b)
