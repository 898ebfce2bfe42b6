"""Backtest two configurations, and replay from the archive (what `replay --record` / `--archive` wire up)."""

from __future__ import annotations

import io

import orjson
import pytest

from amlwatch.engine import build_monitor
from amlwatch.config import load_config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.records.archive import ArchiveReader
from amlwatch.records.backtest import backtest
from amlwatch.records.replay import archive_replay, iter_archived_events
from amlwatch.records.verify import verify_archive
from amlwatch.replay import replay
from amlwatch.sources import read_lines
from support.records import account, collection, run_cli, trade, ts, write_lines

# Structuring under A (reporting threshold 50,000: "just under" from 40,000) and B (55,000: from 44,000):
#   u1 pays 41,000 + 42,000  -> A alerts, B does not       (vanished)
#   u2 pays 45,000 + 46,000  -> both alert, other figures  (changed: the reason names the threshold)
#   u3 pays 51,000 + 52,000  -> B alerts, A does not       (appeared)
PAYMENTS = [("u1", "s1", "41000.00"), ("u1", "s2", "42000.00"), ("u2", "s3", "45000.00"),
            ("u2", "s4", "46000.00"), ("u3", "s5", "51000.00"), ("u3", "s6", "52000.00")]
LABELS = [{"trade_id": "tr3", "typology": "structuring"}, {"trade_id": "tr5", "typology": "structuring"}]


def _stream() -> list[bytes]:
    lines = [account(f"r{i}", ts(i * 0.1), name, birth_year=1990)
             for i, name in enumerate(["iss", "u1", "u2", "u3", "s1", "s2", "s3", "s4", "s5", "s6"])]
    lines += [collection(f"c{n}", ts(2), f"col-{n}", "iss", price="40000.00") for n in (1, 2)]
    # Digital RMB (the 50,000 cash line), each buyer's two legs in two collections (evidence of splitting).
    lines += [trade(f"x{i}", ts(10 + i * 10), f"tr{i}", b, s, price=p, collection_id=f"col-{i % 2 + 1}",
                    payment={"method": "digital_rmb"}) for i, (b, s, p) in enumerate(PAYMENTS)]
    lines.append(b'{"type":"trade","event_id":"bad1","ts":"' + ts(100).encode() + b'","price":"x"}')
    return lines


@pytest.fixture
def files(tmp_path):
    events = write_lines(tmp_path / "events.jsonl", _stream())
    a = tmp_path / "a.toml"
    a.write_text("[anomaly]\nenabled = false\n")
    b = tmp_path / "b.toml"
    b.write_text('[anomaly]\nenabled = false\n[structuring]\nreporting_threshold = "55000"\n')
    labels = write_lines(tmp_path / "labels.jsonl", [orjson.dumps(x) for x in LABELS])
    return events, a, b, labels


def test_backtest_shows_appeared_vanished_changed(files):
    events, a, b, _ = files
    result = backtest(lambda: read_lines(events), load_config(a), load_config(b))
    assert [x["accounts"][0] for x in result.appeared] == ["u3"]
    assert [x["accounts"][0] for x in result.vanished] == ["u1"]
    assert len(result.changed) == 1
    change = result.changed[0]
    # The score weighs how close the amounts sit to the line, so it moves with the line too.
    assert change["detector"] == "structuring.near_threshold" and set(change["changes"]) == {"reason", "score"}
    assert "50,000.00" in change["changes"]["reason"][0] and "55,000.00" in change["changes"]["reason"][1]
    counts = result.per_detector["structuring.near_threshold"]
    assert (counts["A"], counts["B"], counts["appeared"], counts["vanished"], counts["changed"]) == (2, 2, 1, 1, 1)
    assert result.a.bad_records == 1


def test_backtest_across_processes_gives_the_same_diff(files, capsys, monkeypatch):
    """`--workers 2` replays each config across two processes; the diff is the one of one process each."""
    import amlwatch.shardedreplay as sharded

    events, a, b, labels = files
    shards_asked = []
    real = sharded.sharded_replay
    monkeypatch.setattr(sharded, "sharded_replay", lambda *args, **kw: shards_asked.append(kw["shards"]) or
                        real(*args, **kw))
    outputs = []
    for workers in ("1", "2"):
        assert run_cli(["backtest", "--events", str(events), "--config", str(a), "--config", str(b),
                        "--labels", str(labels), "--json", "--workers", workers]) == 0
        outputs.append(orjson.loads(capsys.readouterr().out))
    assert outputs[0]["appeared"] and outputs[0]["vanished"] and outputs[0]["changed"]
    assert outputs[1] == outputs[0]
    assert shards_asked == [2, 2]


def test_backtest_same_config_changes_nothing(files):
    events, a, _, _ = files
    result = backtest(lambda: read_lines(events), load_config(a), load_config(a))
    assert not (result.appeared or result.vanished or result.changed) and result.unchanged == 2


def test_backtest_cli_with_labels_and_period(files, capsys):
    events, a, b, labels = files
    assert run_cli(["backtest", "--events", str(events), "--config", str(a), "--config", str(b),
                    "--labels", str(labels)]) == 0
    out = capsys.readouterr().out
    assert "appeared (B only):" in out and "vanished (A only):" in out and "changed:" in out
    row = next(line for line in out.splitlines() if line.startswith("structuring "))
    assert row.split()[1:] == ["1", "3", "1", "2", "2", "0"]  # A: TP 1 FP 3 FN 1; B: TP 2 FP 2 FN 0
    assert run_cli(["backtest", "--events", str(events), "--config", str(a), "--config", str(b), "--json",
                    "--labels", str(labels), "--since", ts(35)]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data["counts"] == {"appeared": 1, "vanished": 0, "changed": 1, "unchanged": 0}  # u1's alert is before
    assert data["labels_in_period"] == 2
    assert run_cli(["backtest", "--events", str(events), "--config", str(a)]) == 2


def test_archive_replay_then_replay_from_archive(files, tmp_path, capsys):
    events, a, b, _ = files
    config = load_config(a)
    root = tmp_path / "rec"
    out, dead = io.BytesIO(), io.BytesIO()
    summary = archive_replay(read_lines(events), build_monitor(config), root, out, DeadLetterFile(dead),
                             source=str(events), commit_every=5)
    written = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert summary.events == len(_stream()) and summary.bad_records == 1 and len(written) == 2
    assert verify_archive(root).ok
    reader = ArchiveReader(root)
    archived_events = list(reader.iter_stream("events/p0"))
    assert [e["raw"].encode() for e in archived_events] == _stream()  # every record, as received
    assert [e["outcome"] for e in archived_events[:-1]] == ["ok"] * (len(archived_events) - 1)
    assert archived_events[-1]["outcome"] == "missing required field" and archived_events[-1]["field"] == "trade_id"
    assert [r["alert"] for r in reader.iter_stream("alerts/p0")] == written  # same detected_at too
    assert all(s.sealed for s in reader.segments("events/p0"))

    alerts, dead_again = [], io.BytesIO()
    again = replay(iter_archived_events(root), build_monitor(config), alerts.extend, DeadLetterFile(dead_again),
                   source=str(events))
    assert sorted(x.alert_id for x in alerts) == sorted(x["alert_id"] for x in written)
    assert again.bad_records == 1 and dead_again.getvalue() == dead.getvalue()  # same dead letters, same lines

    assert run_cli(["backtest", "--archive", str(root), "--config", str(a), "--config", str(b)]) == 0
    assert "appeared 1, vanished 1, changed 1" in capsys.readouterr().out

    from amlwatch.cli import main

    replayed = {}
    for workers in ("1", "2"):
        alerts_out, dead_out = tmp_path / f"alerts-{workers}.jsonl", tmp_path / f"dead-{workers}.jsonl"
        assert main(["replay", "--archive", str(root), "--config", str(a), "--workers", workers,
                     "--alerts-out", str(alerts_out), "--dead-letter", str(dead_out)]) == 0
        lines = [orjson.loads(line) for line in alerts_out.read_bytes().splitlines()]
        replayed[workers] = [{**x, "detected_at": None} for x in lines], dead_out.read_bytes()
    assert len(replayed["1"][0]) == 2 and replayed["1"][1].count(b"\n") == 1
    assert replayed["2"] == replayed["1"]             # the archive read by each shard, the same output
