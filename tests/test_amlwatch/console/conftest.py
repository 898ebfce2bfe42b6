"""Console fixtures: a store on SQLite and on a real PostgreSQL, users, and a logged-in test client.

The PostgreSQL tests skip with one line when the server binaries are missing,
and fail instead under CI=true, where .ci/run installs them.
"""

from __future__ import annotations

import itertools
import os

import pytest
from support.console import add_users, alert_line, event_lines, sqlite_engine  # noqa: F401 (a fixture)
from support.postgres_server import URL_ENV, LocalPostgres, new_database, postgres_available
_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_admin_url():
    ok, why = postgres_available()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {why}")
        pytest.skip(why)
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    server = LocalPostgres()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'console.db'}"
    admin = request.getfixturevalue("postgres_admin_url")
    return new_database(admin, f"console_test_{os.getpid()}_{next(_names)}")


@pytest.fixture
def engine(db_url):
    from amlwatch.console.db import open_engine

    engine = open_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def console(engine):
    """(app, engine) with users ana/bob (analysts), sue/sam (supervisors), ada (admin), alerts and events."""
    from amlwatch.console.app import create_app
    from amlwatch.console.ingest import store_alerts, store_events

    add_users(engine)
    with engine.begin() as conn:
        store_events(conn, [(str(i), line) for i, line in enumerate(event_lines(), 1)], "test-events")
        store_alerts(conn, [("1", alert_line("al-1")),
                            ("2", alert_line("al-2", typology="structuring", detector="structuring.split_payments",
                                             severity="critical", score=0.95, accounts=["acc-3"],
                                             trade_ids=["tr-1"], ts="2026-03-02T10:00:00+08:00"))], "test-alerts")
    return create_app(engine), engine
