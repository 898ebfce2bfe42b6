"""The console's database: engine, migrations and the one portable upsert it needs.

SQLite is the embedded default (a file beside the user, WAL so the ingest and
the web app can share it); PostgreSQL serves a team. The schema is only ever
changed by Alembic migrations (`migrate`), never by `create_all`, so a team's
database and a fresh one always have the same history.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from amlwatch.console.schema import metadata

DB_ENV = "AMLWATCH_CONSOLE_DB"
DEFAULT_URL = "sqlite:///console.db"
MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(explicit: str | None = None) -> str:
    """`explicit`, else $AMLWATCH_CONSOLE_DB, else ./console.db; a bare path means SQLite."""
    url = explicit or os.environ.get(DB_ENV) or DEFAULT_URL
    if "://" not in url:
        url = f"sqlite:///{url}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def open_engine(url: str | None = None, *, migrate_now: bool = True) -> Engine:
    url = database_url(url)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):  # pragma: no cover - trivial
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    if migrate_now:
        migrate(engine)
    return engine


def alembic_config(engine: Engine):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent: an up-to-date database is left alone)."""
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def insert_ignoring_duplicates(engine_or_conn, table, rows: list[dict], keys: list[str]) -> int:
    """INSERT rows whose `keys` are not there yet; rows already present are left as they are.

    Uses each dialect's own ON CONFLICT DO NOTHING construct from SQLAlchemy. Returns rows inserted."""
    if not rows:
        return 0
    dialect = engine_or_conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise ValueError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")
    # RETURNING counts what was inserted on both dialects (executemany's rowcount is -1 on psycopg).
    statement = insert(table).on_conflict_do_nothing(index_elements=keys).returning(table.c[keys[0]])
    return len(engine_or_conn.execute(statement, rows).all())


def analyze(engine: Engine) -> None:
    """Refresh the query planner's statistics (plain ANALYZE, the same statement on SQLite and PostgreSQL).

    SQLite keeps none unless asked, and without them it may walk the wrong inbox index; ingest calls this
    after loading a file and every 100,000 alerts from the topic (PostgreSQL's autovacuum does it too)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def redacted(url: str) -> str:
    return make_url(database_url(url)).render_as_string(hide_password=True)


__all__ = ["metadata", "open_engine", "migrate", "database_url", "insert_ignoring_duplicates", "redacted"]
