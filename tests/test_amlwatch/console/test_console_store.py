"""The store on SQLite and on a real PostgreSQL: migrations, idempotent ingest, episodes, malformed input."""

from __future__ import annotations

import gzip

import orjson
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from support.console import alert_line, event_lines
from sqlalchemy import func, select

from amlwatch.console import ingest
from amlwatch.console.db import migrate
from amlwatch.console.schema import (account_links, alert_trades, alerts, episode_accounts, episodes, ingest_errors,
                                     metadata, trades)


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_migrated_schema_is_the_metadata_and_migrating_again_changes_nothing(engine):
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    migrate(engine)
    from alembic.script import ScriptDirectory

    from amlwatch.console.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head == "0002"


def test_a_store_from_the_first_release_upgrades_keeping_its_trades(tmp_path):
    """0002 adds the trades' instrument hash; trades stored before it keep everything else (the hash unknown)."""
    from sqlalchemy import text

    from amlwatch.console.db import open_engine
    from amlwatch.console.schema import trades

    engine = open_engine(str(tmp_path / "old.db"), migrate_now=False)
    migrate(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO trades (trade_id, event_id, ts, event_time, collection_id, token_id, kind, "
                          "seller_id, buyer_id, price, currency, payment_method) VALUES ('tr-old', 'e', "
                          "'2026-01-01T00:00:00+08:00', 0, 'c', 't', 'secondary', 's', 'b', '1.00', 'CNY', 'alipay')"))
    migrate(engine)
    with engine.connect() as conn:
        row = conn.execute(select(trades)).one()
    assert (row.trade_id, row.payment_method, row.instrument_hash) == ("tr-old", "alipay", None)
    engine.dispose()


def test_an_alert_is_stored_once_however_often_it_arrives(engine):
    with engine.begin() as conn:
        first = ingest.store_alerts(conn, [("1", alert_line("al-1")), ("2", alert_line("al-1"))], "s")
    with engine.begin() as conn:
        again = ingest.store_alerts(conn, [("1", alert_line("al-1"))], "s")
    assert (first.new, first.duplicate, again.new, again.duplicate) == (1, 1, 0, 1)
    assert count(engine, alerts) == 1 and count(engine, alert_trades) == 2 and count(engine, episodes) == 1


def test_alerts_without_an_episode_are_their_own_episode(engine):
    with engine.begin() as conn:
        ingest.store_alerts(conn, [("1", alert_line("al-1")), ("2", alert_line("al-2"))], "s")
    with engine.connect() as conn:
        rows = conn.execute(select(episodes.c.episode_id, episodes.c.latest_alert_id)).all()
    assert sorted(rows) == [("al-1", "al-1"), ("al-2", "al-2")]


def test_an_episode_shows_its_latest_update_whatever_order_they_arrive_in(engine):
    update = lambda i, seq, score: alert_line(f"al-{i}", episode_id="ep-1", episode_seq=seq, score=score,  # noqa: E731
                                              accounts=["acc-1", f"acc-{i}"])
    with engine.begin() as conn:
        ingest.store_alerts(conn, [("1", update(2, 2, 0.9))], "s")
    with engine.begin() as conn:
        ingest.store_alerts(conn, [("2", update(1, 1, 0.6)), ("3", update(3, 3, 0.95))], "s")
    with engine.begin() as conn:
        ingest.store_alerts(conn, [("4", update(3, 3, 0.95))], "s")
    with engine.connect() as conn:
        episode = conn.execute(select(episodes)).one()
        linked = set(conn.execute(select(episode_accounts.c.account_id)).scalars())
    assert (episode.latest_alert_id, episode.latest_seq, episode.alert_count, episode.score) == ("al-3", 3, 3, 0.95)
    assert linked == {"acc-1", "acc-2", "acc-3"}


def test_malformed_alerts_are_kept_with_their_reason_and_counted(engine):
    bad = [("1", b"{not json"), ("2", b"[1]"), ("3", orjson.dumps({"alert_id": "x"})),
           ("4", alert_line("al-9", score=3)), ("5", alert_line("al-8", ts="yesterday")),
           ("6", alert_line("al-7", severity="urgent")), ("7", alert_line("al-6", episode_seq=0))]
    with engine.begin() as conn:
        result = ingest.store_alerts(conn, bad + [("8", alert_line("al-1"))], "topic")
    with engine.begin() as conn:
        ingest.store_alerts(conn, bad, "topic")
    assert (result.new, result.malformed) == (1, 7)
    assert result.by_field == {"<json>": 1, "<record>": 1, "detector": 1, "score": 1, "ts": 1, "severity": 1,
                               "episode_seq": 1}
    with engine.connect() as conn:
        kept = conn.execute(select(ingest_errors).order_by(ingest_errors.c.position)).all()
    assert len(kept) == 7
    assert kept[0].raw == b"{not json" and kept[0].field == "<json>" and kept[0].kind == "alert"


def test_file_ingest_resumes_after_the_last_committed_line(engine, tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b"\n".join(alert_line(f"al-{i}") for i in range(5)) + b"\n")
    assert ingest.ingest_alert_file(engine, path, batch=2).new == 5
    with path.open("ab") as out:
        out.write(alert_line("al-5") + b"\n" + b"garbage\n")
    again = ingest.ingest_alert_file(engine, path, batch=2)
    assert (again.read, again.new, again.malformed) == (2, 1, 1)
    everything = ingest.ingest_alert_file(engine, path, from_start=True)
    assert (everything.new, everything.duplicate) == (0, 6)
    assert count(engine, alerts) == 6 and count(engine, ingest_errors) == 1


def test_events_give_trades_and_registry_links_and_a_rerun_adds_nothing(engine, tmp_path):
    path = tmp_path / "events.jsonl.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"\n".join(event_lines() + [b'{"type": "trade", "event_id": "bad", "ts": "x"}']) + b"\n")
    first = ingest.ingest_event_file(engine, path)
    again = ingest.ingest_event_file(engine, path, from_start=True)
    assert (first.new, first.malformed, again.new) == (8, 1, 0)
    assert count(engine, trades) == 3
    with engine.connect() as conn:
        shared = conn.execute(select(account_links.c.account_id).where(account_links.c.kind == "national_id",
                                                                       account_links.c.value == "a" * 64)).scalars()
        assert sorted(shared) == ["acc-1", "acc-2"]
        assert conn.execute(select(ingest_errors.c.field, ingest_errors.c.kind)).one() == ("ts", "event")


def test_events_from_a_record_archive(engine, tmp_path):
    from amlwatch.records.archive import RecordArchive

    lines = event_lines()
    with RecordArchive(tmp_path / "records") as archive:
        for i, line in enumerate(lines, 1):
            archive.append_event(line, source={"file": "x", "line": i})
    result = ingest.ingest_event_archive(engine, tmp_path / "records")
    assert result.new == len(lines) and count(engine, trades) == 3
