"""The console's tables, as SQLAlchemy Core metadata.

One schema serves SQLite (the embedded default) and PostgreSQL: only portable
types are used, and the migrations under `migrations/` are generated from this
metadata (a test checks that a migrated database matches it). Alerts are kept
whole (`raw`) and are never changed after ingest; the inbox works on
`episodes`, one row per pattern instance pointing at its latest alert, so a
page is an indexed scan of one narrow table however many updates an episode had.
"""

from __future__ import annotations

from sqlalchemy import (Boolean, Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Table,
                        Text, UniqueConstraint)

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

ID = String(128)
HASH = String(128)

alerts = Table(
    "alerts", metadata,
    Column("alert_id", ID, primary_key=True),
    Column("episode_id", ID, nullable=False, index=True),
    Column("episode_seq", Integer, nullable=False),
    Column("detector", String(80), nullable=False),
    Column("typology", String(40), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("score", Float, nullable=False),
    Column("ts", String(40), nullable=False),
    Column("event_time", Float, nullable=False, doc="epoch seconds"),
    Column("collection_id", ID),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False, doc="the alert as received, JSON"),
    Column("source", String(300), nullable=False),
    Column("ingested_at", Float, nullable=False),
)

alert_trades = Table(
    "alert_trades", metadata,
    Column("alert_id", ID, ForeignKey("alerts.alert_id"), primary_key=True),
    Column("trade_id", ID, primary_key=True),
    Index("ix_alert_trades_trade_id", "trade_id"),
)

episodes = Table(
    "episodes", metadata,
    Column("episode_id", ID, primary_key=True),
    Column("latest_alert_id", ID, nullable=False),
    Column("latest_seq", Integer, nullable=False),
    Column("alert_count", Integer, nullable=False),
    Column("detector", String(80), nullable=False),
    Column("typology", String(40), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("severity_rank", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("event_time", Float, nullable=False),
    Column("first_event_time", Float, nullable=False),
    Column("collection_id", ID),
    Column("reason", Text, nullable=False),
    Column("status", String(20), nullable=False, doc="open | in_case | closed"),
    Column("case_id", Integer),
    # Every filter with each sort order, the episode id last so a page is an index walk with no sort.
    Index("ix_episodes_event_time", "event_time", "episode_id"),
    Index("ix_episodes_score", "score", "event_time", "episode_id"),
    # counts a time window's facets from the index alone
    Index("ix_episodes_event_time_facets", "event_time", "typology", "severity_rank", "status"),
    *(Index(f"ix_episodes_{column}_{order}", column, *by, "episode_id")
      for column in ("status", "typology", "severity_rank", "detector", "collection_id")
      for order, by in (("event_time", ("event_time",)), ("score", ("score", "event_time")))),
    Index("ix_episodes_case_id", "case_id"),
)

episode_counts = Table(
    "episode_counts", metadata,
    Column("detector", String(80), primary_key=True),
    Column("typology", String(40), primary_key=True),
    Column("severity_rank", Integer, primary_key=True),
    Column("status", String(20), primary_key=True),
    Column("n", Integer, nullable=False),
    comment="episodes per detector, typology, severity and status, kept by counts.shift in the transaction that changes them",
)

episode_accounts = Table(
    "episode_accounts", metadata,
    Column("episode_id", ID, ForeignKey("episodes.episode_id"), primary_key=True),
    Column("account_id", ID, primary_key=True),
    Index("ix_episode_accounts_account_id", "account_id"),
)

ingest_errors = Table(
    "ingest_errors", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False, doc="alert | event"),
    Column("source", String(300), nullable=False),
    Column("position", String(100), nullable=False, doc="line number or partition:offset"),
    Column("field", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("at", Float, nullable=False),
    UniqueConstraint("source", "position"),
)

account_events = Table(
    "account_events", metadata,
    Column("event_id", ID, primary_key=True),
    Column("account_id", ID, nullable=False),
    Column("ts", String(40), nullable=False),
    Column("event_time", Float, nullable=False),
    Column("action", String(20), nullable=False),
    Column("kyc_level", Integer),
    Column("name_hash", HASH),
    Column("id_hash", HASH),
    Column("birth_year", Integer),
    Column("phone_hash", HASH),
    Column("bank_card_hashes", Text, doc="JSON list"),
    Column("device_id", ID),
    Column("ip", String(64)),
    Column("region", String(20)),
    Index("ix_account_events_account_id_event_time", "account_id", "event_time"),
)

account_links = Table(
    "account_links", metadata,
    Column("kind", String(20), primary_key=True, doc="national_id | card | phone | device"),
    Column("value", HASH, primary_key=True),
    Column("account_id", ID, primary_key=True),
    Index("ix_account_links_account_id", "account_id"),
)

collection_events = Table(
    "collection_events", metadata,
    Column("event_id", ID, primary_key=True),
    Column("collection_id", ID, nullable=False),
    Column("ts", String(40), nullable=False),
    Column("event_time", Float, nullable=False),
    Column("action", String(20), nullable=False),
    Column("issuer_id", ID),
    Column("asset_class", String(40)),
    Column("fractional", Boolean),
    Column("issue_price", String(40)),
    Column("currency", String(10)),
    Column("supply", Integer),
    Column("transfer_lock_days", Integer),
    Index("ix_collection_events_collection_id_event_time", "collection_id", "event_time"),
)

trades = Table(
    "trades", metadata,
    Column("trade_id", ID, primary_key=True),
    Column("event_id", ID, nullable=False),
    Column("ts", String(40), nullable=False),
    Column("event_time", Float, nullable=False),
    Column("collection_id", ID, nullable=False),
    Column("token_id", ID, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("seller_id", ID, nullable=False),
    Column("buyer_id", ID, nullable=False),
    Column("price", String(40), nullable=False, doc="decimal text, as in the contract"),
    Column("currency", String(10), nullable=False),
    Column("payment_method", String(20)),
    Column("instrument_hash", HASH, doc="payment.instrument_hash: the paying card or account, for report drafts"),
    Index("ix_trades_token_id_event_time", "token_id", "event_time"),
    Index("ix_trades_seller_id_event_time", "seller_id", "event_time"),
    Index("ix_trades_buyer_id_event_time", "buyer_id", "event_time"),
    Index("ix_trades_collection_id_event_time", "collection_id", "event_time"),
)

ingest_sources = Table(
    "ingest_sources", metadata,
    Column("source", String(300), primary_key=True),
    Column("position", Integer, nullable=False, doc="last line committed, for files"),
    Column("updated_at", Float, nullable=False),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(20), nullable=False, doc="analyst | supervisor | admin"),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True, doc="SHA-256 of the cookie's token; the token is never stored"),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_sessions_user_id", "user_id"),
)

login_failures = Table(
    "login_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, doc="username or client address"),
    Column("at", Float, nullable=False),
    Index("ix_login_failures_key_at", "key", "at"),
)

cases = Table(
    "cases", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(200), nullable=False),
    Column("status", String(20), nullable=False, doc="open | needs_info | pending_approval | closed"),
    Column("disposition", String(30), doc="false_positive | needs_information | confirmed_suspicious"),
    Column("assignee_id", Integer, ForeignKey("users.id")),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("proposed_by", Integer, ForeignKey("users.id"), doc="who asked to close as confirmed"),
    Column("approved_by", Integer, ForeignKey("users.id")),
    Column("version", Integer, nullable=False, doc="bumped by every change; a form from an older version is stale"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("closed_at", Float),
    Index("ix_cases_status_updated_at", "status", "updated_at"),
)

case_episodes = Table(
    "case_episodes", metadata,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True),
    Column("episode_id", ID, ForeignKey("episodes.episode_id"), primary_key=True),
    Index("ix_case_episodes_episode_id", "episode_id"),
)

case_comments = Table(
    "case_comments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False, index=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

case_attachments = Table(
    "case_attachments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False, index=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", String(200), nullable=False),
    Column("detail", Text, nullable=False, doc="canonical JSON"),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
