"""Replay across processes (`--workers N`, amlwatch/shardedreplay.py) must write what one process writes:
the same alerts in the same order and the same dead letters, whatever the shards' split of collections."""

from __future__ import annotations

import gzip
import io
import os
import random
from datetime import datetime, timezone

import orjson
import pytest

import amlwatch.shardedreplay as sharded
from amlwatch.cli import main
from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.detectors.base import Detector
from amlwatch.detectors.monitor import detector_order
from amlwatch.detectors.shard import ShardMonitor
from amlwatch.engine import build_monitor
from amlwatch.events import parse_event
from amlwatch.replay import replay
from amlwatch.shardedreplay import ReplayWorkersError, ShardFailed, shard_of, sharded_replay
from amlwatch.simulator import simulate
from support.events import WARM_MODEL as WARM
from support.events import account, at, collection, trade, world


@pytest.fixture(scope="module")
def dirty_lines(tmp_path_factory):
    """Ten simulated days with bad lines, exact redeliveries, reused event ids with other content, trades of
    accounts not yet registered (waiting for the registry, some registered within the grace), and a trade
    far ahead of the watermark."""
    out = tmp_path_factory.mktemp("sim")
    simulate(out, seed=5, days=10, accounts=600)
    lines = gzip.decompress((out / "events.jsonl.gz").read_bytes()).splitlines()
    rng = random.Random(9)
    registration = next(orjson.loads(line) for line in lines if b'"type":"account"' in line and b'"id_hash"' in line)
    mixed = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if b'"type":"trade"' in line and rng.random() < 0.01:
            record = orjson.loads(line)
            newcomer = f"newcomer-{rng.randrange(40)}"
            mixed.append(orjson.dumps({**record, "event_id": f"wait-{i}", "trade_id": f"wait-{i}",
                                       "buyer_id": newcomer}))
            if rng.random() < 0.5:
                ts = parse_event(line).t + rng.uniform(0, 900)
                mixed.append(orjson.dumps({**registration, "event_id": f"reg-{i}", "account_id": newcomer,
                                           "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat()}))
    trades = [line for line in lines if b'"type":"trade"' in line]
    for i in rng.sample(range(len(mixed) // 2), 15):        # a buyer paying cash just under the line, twice
        if b'"type":"trade"' not in mixed[i]:
            continue
        record, other = orjson.loads(mixed[i]), orjson.loads(rng.choice(trades))
        split = [{**record, "event_id": f"split-{i}-{n}", "trade_id": f"split-{i}-{n}", "token_id": f"split-{i}-{n}",
                  "kind": "secondary", "price": price, "payment": {**record["payment"], "method": "digital_rmb"},
                  "seller_id": seller, "collection_id": collection_id}
                 for n, (price, seller, collection_id) in enumerate(
                     [("45000.00", record["seller_id"], record["collection_id"]),
                      ("46000.00", other["seller_id"], other["collection_id"])])]
        mixed[i + 1:i + 1] = [orjson.dumps(r) for r in split]
    extra = [b"{not json", b'{"type": "refund", "event_id": "x-2", "ts": "2026-03-01T10:00:00+08:00"}']
    for line in rng.sample(trades, 30):
        record = orjson.loads(line)
        extra.append(line)
        extra.append(orjson.dumps({**record, "price": "1.00"}))
    far = orjson.loads(trades[0])
    extra.append(orjson.dumps({**far, "event_id": "far-1", "trade_id": "far-1", "ts": "2027-06-01T00:00:00+08:00"}))
    for line in extra:
        mixed.insert(rng.randrange(len(mixed) // 10, len(mixed)), line)
    return mixed


def _one_process(lines, config=WARM, *, model=True, since=None, until=None):
    monitor = build_monitor(config, with_model=model)
    alerts: list[bytes] = []
    dead = io.BytesIO()
    summary = replay(enumerate(lines, 1), monitor, lambda found: alerts.extend(a.to_json("x") for a in found),
                     DeadLetterFile(dead), since=since, until=until)
    return alerts, dead.getvalue().splitlines(), summary


def _sharded(lines, shards, config=WARM, *, model=True, since=None, until=None):
    alerts: list[bytes] = []
    dead = io.BytesIO()
    summary = sharded_replay(lambda: enumerate(lines, 1), config,
                             lambda found: alerts.extend(a.to_json("x") for a in found), DeadLetterFile(dead),
                             shards=shards, with_model=model, since=since, until=until)
    return alerts, dead.getvalue().splitlines(), summary


@pytest.mark.parametrize("shards", [2, 3])
def test_sharded_replay_writes_what_one_process_writes(dirty_lines, shards):
    one_alerts, one_dead, one = _one_process(dirty_lines)
    got_alerts, got_dead, got = _sharded(dirty_lines, shards)
    detectors = {orjson.loads(a)["detector"] for a in one_alerts}
    assert {"anomaly.isolation_forest", "identity.unregistered_party", "structuring.near_threshold"} <= detectors
    assert len(detectors) >= 6
    assert any(not orjson.loads(a)["trade_ids"] for a in one_alerts), "a registry-only alert (one national ID)"
    assert got_alerts == one_alerts
    assert got_dead == one_dead
    reasons = {orjson.loads(d)["reason"].split(":")[0] for d in one_dead}
    assert {"duplicate_event_id_conflict", "event_time_skew"} <= reasons
    assert (got.events, got.bad_records, got.duplicates, got.alerts) == \
        (one.events, one.bad_records, one.duplicates, one.alerts)


def test_sharded_replay_keeps_since_and_until(dirty_lines):
    far = next(i for i, line in enumerate(dirty_lines) if b'"far-1"' in line)   # `until` stops the replay there
    since = parse_event(next(line for line in dirty_lines[far // 2:] if b'"type":"trade"' in line)).t
    until = since + 30 * 86400                  # stops at far-1 only
    one_alerts, one_dead, one = _one_process(dirty_lines, since=since, until=until)
    got_alerts, got_dead, got = _sharded(dirty_lines, 2, since=since, until=until)
    assert one_alerts and got_alerts == one_alerts and got_dead == one_dead
    assert one.events == far and one.before_since > 1000
    assert (got.events, got.before_since) == (one.events, one.before_since)


def _lines(records):
    return [orjson.dumps(r) for r in records]


def _collections_on_shards(shards):
    found: dict[int, str] = {}
    for i in range(100):
        found.setdefault(shard_of(f"col-{i}", shards), f"col-{i}")
    return [found[k] for k in range(shards)]


def _waiting_behind_another_shard():
    """late-reg's trade arrives after ghost's, with an earlier deadline, and registers in between."""
    mine, theirs = _collections_on_shards(2)
    grace = Config().identity.registry_grace_minutes
    records = world("acc-a", "acc-b") + [collection(mine, at(hours=-1)), collection(theirs, at(hours=-1))]
    records += [
        trade("acc-a", "ghost", at(hours=2), collection_id=theirs, token_id="t-theirs"),
        trade("acc-b", "late-reg", at(hours=1), collection_id=mine, token_id="t-mine"),
        account("late-reg", at(hours=1, minutes=grace + 1)),
        trade("acc-a", "acc-b", at(hours=4), collection_id=mine, token_id="t-later"),
    ]
    return _lines(records)


def _unregistered(alerts):
    """Which of the two waiting buyers an unregistered-party alert names."""
    found = [orjson.loads(a)["accounts"] for a in alerts if b"identity.unregistered_party" in a]
    return sorted(name for accounts in found for name in accounts if name in ("ghost", "late-reg"))


def test_a_waiting_trade_is_released_where_one_core_releases_it():
    """One core releases waiting trades from the head of one queue: a trade whose deadline passed waits
    behind an earlier arrival with a later deadline, and so sees a registration that came in meanwhile. On
    its own shard it must wait just as long, though the trade it waits behind is another shard's."""
    lines = _waiting_behind_another_shard()
    one_alerts, _, _ = _one_process(lines, Config(), model=False)
    got_alerts, _, _ = _sharded(lines, 2, Config(), model=False)
    assert _unregistered(one_alerts) == ["ghost"], "late-reg's trade waited behind ghost's, saw its registration"
    assert got_alerts == one_alerts


class ShardWithoutPlaces(ShardMonitor):
    """A shard core that lets other shards' trades go by without holding their places."""

    def _hold_place(self, trade):
        pass


def test_a_shard_that_holds_no_places_would_release_too_early(monkeypatch):
    """The test above can fail: without the places, late-reg's trade is judged before its registration."""
    monkeypatch.setattr(sharded, "ShardMonitor", ShardWithoutPlaces)
    got_alerts, _, _ = _sharded(_waiting_behind_another_shard(), 2, Config(), model=False)
    assert _unregistered(got_alerts) == ["ghost", "late-reg"]


class FailingOnSomeTrades(Detector):
    """A collection detector that alerts on every paid trade and fails on some: each shard's faults must be
    dead-lettered where one process puts them."""

    name = "test.failing"
    typology = "anomaly"

    def observe(self, view):
        trade = view.trade
        if trade.trade_id.endswith("3"):
            raise RuntimeError("failed")
        return [self.alert(trade, 0.3, "paid", {})] if trade.paid else []


class FailingOnSomeAccounts(FailingOnSomeTrades):
    """The same, account-scoped: a trade reaches its buyer's and its seller's shard, and one must speak."""

    name = "test.failing_account"
    scope = "account"


def _with_failing(config, **options):
    """The core with the failing detectors after every rule's, as an added detector (the model) goes."""
    monitor = build_monitor(config, **options)
    scopes = options.get("scopes")
    for failing in (FailingOnSomeTrades(), FailingOnSomeAccounts()):
        if scopes is None or failing.scope in scopes:
            monitor.detectors.append(failing)
            monitor.stream_detectors.append(failing)
    monitor._calls(monitor.stream_detectors, monitor.registry_detectors)
    return monitor


def _order_with_failing(config):
    order = detector_order(config)
    return {**order, "test.failing": (False, len(order)), "test.failing_account": (False, len(order) + 1)}


def test_detector_faults_are_dead_lettered_in_one_process_order(dirty_lines, monkeypatch):
    lines = dirty_lines[:8000]
    monitor = _with_failing(WARM, with_model=False)
    one_alerts: list[bytes] = []
    dead = io.BytesIO()
    replay(enumerate(lines, 1), monitor, lambda found: one_alerts.extend(a.to_json("x") for a in found),
           DeadLetterFile(dead))
    one_dead = dead.getvalue().splitlines()
    monkeypatch.setattr(sharded, "build_monitor", _with_failing)
    monkeypatch.setattr(sharded, "detector_order", _order_with_failing)
    got_alerts, got_dead, _ = _sharded(lines, 2, model=False)
    for name in ("test.failing", "test.failing_account"):
        assert any(f"detector:{name}".encode() in d for d in one_dead)
        assert sum(f'"{name}"'.encode() in a for a in one_alerts) > 100
    assert got_alerts == one_alerts
    assert got_dead == one_dead


def test_a_shard_that_dies_fails_the_replay(dirty_lines, monkeypatch):
    real_run = sharded._ShardRun.run

    def dies_on_shard_one(self, records, handle):
        if self.shard == 1:
            os._exit(3)
        return real_run(self, records, handle)

    monkeypatch.setattr(sharded._ShardRun, "run", dies_on_shard_one)
    with pytest.raises(ShardFailed, match="shard 1 .* code 3"):
        _sharded(dirty_lines[:2000], 2, model=False)


@pytest.mark.parametrize("extra", [["-"], ["x.jsonl", "--record", "arch"], ["x.jsonl", "--reports", "r.jsonl"]])
def test_workers_refuse_what_one_pass_must_do(extra, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jsonl").write_bytes(b"")
    assert main(["replay", *extra, "--workers", "2"]) == 2
    assert "--workers" in capsys.readouterr().err
    with pytest.raises(ReplayWorkersError):
        sharded_replay(lambda: iter(()), Config(), lambda found: None, DeadLetterFile(None), shards=1)


def test_the_cli_replays_with_workers(dirty_lines, tmp_path):
    stream = tmp_path / "events.jsonl.gz"
    stream.write_bytes(gzip.compress(b"\n".join(dirty_lines[:6000]) + b"\n"))
    outputs = {}
    for workers in (1, 2):
        out, dead = tmp_path / f"alerts-{workers}.jsonl", tmp_path / f"dead-{workers}.jsonl"
        assert main(["replay", str(stream), "--workers", str(workers), "--alerts-out", str(out),
                     "--dead-letter", str(dead)]) == 0
        alerts = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        for alert in alerts:
            alert.pop("detected_at")
        outputs[workers] = alerts, dead.read_bytes()
    assert outputs[1][0] and outputs[2] == outputs[1]
