"""Helpers shared by the console tests: hand-made alerts and events, users, a logged-in client."""

from __future__ import annotations

import re

import orjson
import pytest

PASSWORD = "correct horse battery"


def make_alert(alert_id: str, **fields) -> dict:
    """A contract-shaped alert (docs/ALERTS.md); keyword arguments override fields."""
    alert = {"alert_id": alert_id, "detector": "wash.round_trip", "typology": "wash_trading", "severity": "high",
             "score": 0.8, "ts": "2026-03-01T10:00:00+08:00", "detected_at": "2026-03-01T02:00:01+00:00",
             "accounts": ["acc-1", "acc-2"], "collection_id": "col-1", "token_ids": ["tok-1"],
             "trade_ids": ["tr-1", "tr-2"], "reason": "Token tok-1 went acc-1 -> acc-2 -> acc-1 within 2 days.",
             "evidence": {"cycle": ["acc-1", "acc-2", "acc-1"], "hours": 30.5},
             "versions": {"monitor": "0.1.0", "config": "sha256:0", "model": None}}
    alert.update(fields)
    return alert


def alert_line(alert_id: str, **fields) -> bytes:
    return orjson.dumps(make_alert(alert_id, **fields))


def event_lines() -> list[bytes]:
    """Two accounts sharing a national ID and a card, a third trading with them, a collection and trades."""
    id1, card = "a" * 64, "c" * 64
    events = [
        {"type": "account", "event_id": "e-a1", "ts": "2026-02-01T09:00:00+08:00", "account_id": "acc-1",
         "action": "register", "kyc_level": 1, "phone_hash": "p1" * 32, "device_id": "dev-1"},
        {"type": "account", "event_id": "e-a1v", "ts": "2026-02-02T09:00:00+08:00", "account_id": "acc-1",
         "action": "verify", "kyc_level": 3, "name_hash": "n1" * 32, "id_hash": id1, "bank_card_hashes": [card]},
        {"type": "account", "event_id": "e-a2", "ts": "2026-02-03T09:00:00+08:00", "account_id": "acc-2",
         "action": "register", "kyc_level": 2, "name_hash": "n2" * 32, "id_hash": id1, "bank_card_hashes": [card],
         "device_id": "dev-2"},
        {"type": "account", "event_id": "e-a3", "ts": "2026-02-03T10:00:00+08:00", "account_id": "acc-3",
         "action": "register", "kyc_level": 2, "name_hash": "n3" * 32, "id_hash": "b" * 64, "device_id": "dev-3"},
        {"type": "collection", "event_id": "e-c1", "ts": "2026-02-04T09:00:00+08:00", "collection_id": "col-1",
         "action": "launch", "issuer_id": "acc-3", "asset_class": "art", "fractional": False, "issue_price": "99.00",
         "currency": "CNY", "supply": 100, "transfer_lock_days": 0},
    ]
    for i, (seller, buyer, price, day) in enumerate([("acc-3", "acc-1", "99.00", 5), ("acc-1", "acc-2", "300.00", 6),
                                                     ("acc-2", "acc-1", "320.00", 7)], start=1):
        events.append({"type": "trade", "event_id": f"e-t{i}", "ts": f"2026-02-{day:02d}T12:00:00+08:00",
                       "trade_id": f"tr-{i}", "collection_id": "col-1", "token_id": "tok-1",
                       "kind": "primary" if i == 1 else "secondary", "seller_id": seller, "buyer_id": buyer,
                       "price": price, "currency": "CNY",
                       "payment": {"method": "alipay", "instrument_hash": f"{i}f" * 32}})
    return [orjson.dumps(e) for e in events]


def add_users(engine) -> None:
    from amlwatch.console.auth import add_user

    with engine.begin() as conn:
        for name, role in (("ana", "analyst"), ("bob", "analyst"), ("sue", "supervisor"), ("sam", "supervisor"),
                           ("ada", "admin")):
            add_user(conn, name, PASSWORD, role)


class Browser:
    """An in-process client logged in as one user, that sends its CSRF token on every form."""

    def __init__(self, app, username: str | None = None, password: str = PASSWORD):
        from starlette.testclient import TestClient

        self.client = TestClient(app, raise_server_exceptions=True)
        self.csrf = None
        if username:
            response = self.login(username, password)
            assert response.status_code == 303, response.text

    def login(self, username: str, password: str = PASSWORD):
        page = self.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = self.client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                                    "next": "/inbox"}, follow_redirects=False)
        if response.status_code == 303:
            self.csrf = self.token_from(self.client.get("/inbox").text)
        return response

    @staticmethod
    def token_from(html: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)

    def post(self, path: str, data=None, *, csrf: str | None = "session", **kw):
        data = dict(data or {})
        if csrf == "session":
            data["csrf_token"] = self.csrf
        elif csrf is not None:
            data["csrf_token"] = csrf
        return self.client.post(path, data=data, follow_redirects=False, **kw)


@pytest.fixture
def sqlite_engine(tmp_path):
    from amlwatch.console.db import open_engine

    engine = open_engine(str(tmp_path / "console.db"))
    yield engine
    engine.dispose()
