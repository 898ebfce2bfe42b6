"""Watchlists on a compacted topic of the real broker: published, read back, reloaded, removed."""

from __future__ import annotations

import uuid

import pytest

from amlwatch.cli import main
from amlwatch.reporting.watchlist import Watchlist, WatchlistError
from amlwatch.reporting.watchlist_topic import ensure_topic, read_topic_entries

pytestmark = pytest.mark.kafka


def test_add_and_remove_through_the_topic_and_a_reload_sees_them(kafka_bootstrap, tmp_path):
    bootstrap = kafka_bootstrap
    topic = f"test.watchlist.{uuid.uuid4().hex[:8]}"
    common = ["--kind", "account", "--topic", topic, "--bootstrap", bootstrap]
    assert main(["watchlist", "add", "acc-1", *common, "--effective", "2026-03-01T00:00:00+08:00",
                 "--reason", "fraud ring"]) == 0
    watchlist = Watchlist(topic=(bootstrap, topic))
    assert watchlist.reload(force=True) and watchlist.lookup("account", "acc-1", 1.8e9)
    assert main(["watchlist", "add", "acc-2", *common, "--list", "watch"]) == 0
    assert watchlist.reload() and len(watchlist) == 2
    assert main(["watchlist", "remove", "acc-1", *common, "--effective", "2026-03-02T00:00:00+08:00"]) == 0
    entries = {e.value: e for e in read_topic_entries(bootstrap, topic)}
    assert entries["acc-1"].reason == "fraud ring" and entries["acc-1"].until < float("inf")
    assert watchlist.reload() and not watchlist.lookup("account", "acc-1", 1.8e9)
    assert watchlist.lookup("account", "acc-1", entries["acc-1"].since + 60)  # still in force before its removal
    assert not watchlist.reload()


def test_a_remove_of_nothing_and_a_missing_topic_are_clear_errors(kafka_bootstrap, capsys):
    bootstrap = kafka_bootstrap
    topic = f"test.watchlist.{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, topic)
    assert main(["watchlist", "remove", "acc-9", "--kind", "account", "--topic", topic, "--bootstrap", bootstrap]) == 2
    assert "no block account entry" in capsys.readouterr().err
    with pytest.raises(WatchlistError) as error:
        read_topic_entries(bootstrap, f"test.watchlist.absent.{uuid.uuid4().hex[:8]}", timeout=5)
    assert error.value.field == "topic"
