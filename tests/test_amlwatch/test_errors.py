"""One root error: every error amlwatch raises on purpose is an AmlwatchError and keeps its old base,
and the CLI reports any of them as one line naming the field, exit status 2."""

from __future__ import annotations

import pytest

import amlwatch.streams.topics as topics
from amlwatch.cli import main
from amlwatch.config import ConfigError
from amlwatch.detectors.base import DetectorScopeError
from amlwatch.errors import AmlwatchError
from amlwatch.events import BadRecord, EventError
from amlwatch.models.artifact import ModelError
from amlwatch.records.archive import ArchiveBusy, ArchiveError, RecordFormatError
from amlwatch.streams.codecs import CodecError
from amlwatch.streams.processors import StateMismatch
from amlwatch.streams.snapshots import SnapshotFailed
from amlwatch.streams.topics import TopicError

OLD_BASES = {ConfigError: ValueError, EventError: ValueError, BadRecord: ValueError, ModelError: ValueError,
             CodecError: ValueError, RecordFormatError: ValueError, DetectorScopeError: ValueError,
             ArchiveError: RuntimeError, ArchiveBusy: RuntimeError, StateMismatch: RuntimeError,
             TopicError: RuntimeError, SnapshotFailed: RuntimeError}


@pytest.mark.parametrize("error, base", OLD_BASES.items(), ids=lambda e: getattr(e, "__name__", ""))
def test_every_error_has_the_root_and_keeps_its_old_base(error, base):
    assert issubclass(error, AmlwatchError) and issubclass(error, base)


def test_a_topic_error_is_one_line_naming_the_topic_not_a_traceback(monkeypatch, capsys):
    def missing(kafka, timeout=60.0, extra=()):
        raise TopicError("topic shop.trades not found", "shop.trades")

    monkeypatch.setattr(topics, "create_topics", missing)
    assert main(["topics", "create"]) == 2
    err = capsys.readouterr().err
    assert err == "amlwatch: error: topic shop.trades not found\n"


def test_the_field_leads_the_line_when_the_message_does_not_say_it(monkeypatch, capsys):
    def unreachable(kafka, timeout=60.0, extra=()):
        raise TopicError("no Kafka broker answered at 127.0.0.1:1", "kafka.bootstrap")

    monkeypatch.setattr(topics, "create_topics", unreachable)
    assert main(["topics", "create"]) == 2
    assert capsys.readouterr().err == "amlwatch: error: kafka.bootstrap: no Kafka broker answered at 127.0.0.1:1\n"
    assert AmlwatchError("x").describe() == "x"
    assert ConfigError("kafka.partitions", "must be positive").describe() == "config kafka.partitions: must be positive"


def test_a_bad_config_value_exits_2_naming_the_key(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[wash]\nwindow_days = \"soon\"\n")
    assert main(["config", "show", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wash.window_days" in err
