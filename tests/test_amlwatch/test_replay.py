"""File replay end to end on simulated streams: determinism, bad input, periods, recall and precision."""

from __future__ import annotations

import gzip
import random
import subprocess
import sys

import orjson
import pytest

from amlwatch.cli import main as cli_main
from amlwatch.evaluation import evaluate, load_alerts, load_labels, load_negatives
from amlwatch.simulator import simulate


@pytest.fixture(scope="module")
def small_stream(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    simulate(out, seed=5, days=10, accounts=600)
    return out


def _replay(path, tmp_path, name, *extra):
    alerts = tmp_path / f"{name}.alerts.jsonl"
    dead = tmp_path / f"{name}.dead.jsonl"
    code = cli_main(["replay", str(path), "--alerts-out", str(alerts), "--dead-letter", str(dead), "--no-model", *extra])
    assert code == 0
    return [orjson.loads(line) for line in alerts.read_bytes().splitlines()], [
        orjson.loads(line) for line in dead.read_bytes().splitlines()]


def _without_wall_clock(alerts):
    return [{k: v for k, v in a.items() if k != "detected_at"} for a in alerts]


def test_replaying_twice_gives_identical_alerts(small_stream, tmp_path):
    first, _ = _replay(small_stream / "events.jsonl.gz", tmp_path, "a")
    second, _ = _replay(small_stream / "events.jsonl.gz", tmp_path, "b")
    assert first, "the simulated stream must raise alerts"
    assert _without_wall_clock(first) == _without_wall_clock(second)
    assert len({a["alert_id"] for a in first}) == len(first)


def test_malformed_lines_go_to_dead_letters_and_change_nothing_else(small_stream, tmp_path):
    lines = gzip.decompress((small_stream / "events.jsonl.gz").read_bytes()).splitlines()
    rng = random.Random(3)
    bad_lines = [
        b"{not json",
        b"[1, 2, 3]",
        b'{"type": "trade", "event_id": "x-1", "ts": "2026-03-01T10:00:00+08:00"}',
        b'{"type": "refund", "event_id": "x-2", "ts": "2026-03-01T10:00:00+08:00"}',
        b'{"type": "account", "event_id": "x-3", "ts": "yesterday", "account_id": "a", "action": "register"}',
        b"\xff\xfe not utf-8",
    ]
    mixed = list(lines)
    for bad in bad_lines * 5:
        mixed.insert(rng.randrange(len(mixed)), bad)
    dirty = tmp_path / "dirty.jsonl"
    dirty.write_bytes(b"\n".join(mixed) + b"\n")
    clean_alerts, clean_dead = _replay(small_stream / "events.jsonl.gz", tmp_path, "clean")
    dirty_alerts, dirty_dead = _replay(dirty, tmp_path, "dirty")
    assert clean_dead == []
    assert len(dirty_dead) == len(bad_lines) * 5
    assert all(d["reason"] and d["field"] and d["source"]["line"] for d in dirty_dead)
    assert {d["field"] for d in dirty_dead} >= {"<json>", "<record>", "trade_id", "type", "ts"}
    assert any("raw_base64" in d for d in dirty_dead)
    assert _without_wall_clock(dirty_alerts) == _without_wall_clock(clean_alerts)


def test_since_until_select_a_period_with_state_warmed_before_it(small_stream, tmp_path):
    everything, _ = _replay(small_stream / "events.jsonl.gz", tmp_path, "all")
    since, until = "2026-03-04T00:00:00+08:00", "2026-03-07T00:00:00+08:00"
    period, _ = _replay(small_stream / "events.jsonl.gz", tmp_path, "period", "--since", since, "--until", until)
    assert period
    assert all(since <= a["ts"] <= until for a in period)
    # Trades in the last grace minutes before `until` are judged at the end of the
    # period with the registry as it stood then, so they are left out of the comparison.
    settled = "2026-03-06T23:45:00+08:00"
    expected = {a["alert_id"] for a in everything if since <= a["ts"] < settled}
    assert {a["alert_id"] for a in period if a["ts"] < settled} == expected


def test_replay_reads_stdin(small_stream, tmp_path):
    data = (small_stream / "events.jsonl.gz").read_bytes()
    result = subprocess.run([sys.executable, "-m", "amlwatch.cli", "replay", "-", "--no-model"], input=data,
                            capture_output=True, check=True)
    from_stdin = [orjson.loads(line) for line in result.stdout.splitlines()]
    from_file, _ = _replay(small_stream / "events.jsonl.gz", tmp_path, "file")
    assert _without_wall_clock(from_stdin) == _without_wall_clock(from_file)
    assert b"events read" in result.stderr


@pytest.mark.parametrize("seed", [1001, 2002, 3003])
def test_rules_reach_recall_and_precision_targets_on_unseen_seeds(seed, tmp_path):
    """Seeds never used while tuning the detectors (those were 5, 7, 11)."""
    simulate(tmp_path, seed=seed, days=30, accounts=2000)
    alerts, _ = _replay(tmp_path / "events.jsonl.gz", tmp_path, "eval")
    result = evaluate(load_labels(tmp_path / "labels.jsonl"), alerts, load_negatives(tmp_path / "negatives.jsonl"))
    print(f"\nseed {seed}\n{result.table()}")
    for row in result.rows:
        assert row.labelled >= 20, row
        assert row.recall >= 0.95, (row.typology, row.recall, result.missed.get(row.typology, [])[:10])
        assert row.precision >= 0.95, (row.typology, row.precision)
    assert sum(result.false_positives_by_negative.values()) <= 0.003 * sum(result.negatives.values())


@pytest.mark.parametrize("seed, days", [(41, 4), (3, 5), (43, 7)])
def test_short_small_streams_are_labelled_as_the_rules_judge_them(seed, days, tmp_path):
    """Short streams (the Kafka tests use them) push injected trades past the nominal end."""
    simulate(tmp_path, seed=seed, days=days, accounts=300)
    alerts, _ = _replay(tmp_path / "events.jsonl.gz", tmp_path, "short")
    result = evaluate(load_labels(tmp_path / "labels.jsonl"), alerts, load_negatives(tmp_path / "negatives.jsonl"))
    for row in result.rows:
        assert row.labelled and row.recall == 1.0 and row.precision == 1.0, (row, result.table())
