"""The streaming service on a real Kafka broker: parity with file replay, failover, recovery, dead letters.

Workers run as subprocesses (`python -m amlwatch.cli worker`) and are
stopped with SIGTERM then SIGKILL. Streams are finite, so each is produced
with a final far-future heartbeat account event (`amlwatch produce
--heartbeat`): it ends every trade's grace as a replay's end of file does,
and raises no alert itself.
"""

from __future__ import annotations

import base64
import time

import orjson
import pytest
from support.service import Worker, collect, kafka_config, kafka_env, replay_ids
from support.streamgen import make_stream

from amlwatch.simulator import simulate
from amlwatch.sources import read_lines
from amlwatch.streams.produce import produce
from amlwatch.streams.topics import create_topics

pytestmark = pytest.mark.kafka


BAD_LINES = [b"{not json", b"[1, 2, 3]", b'{"type": "refund", "event_id": "x-2", "ts": "2026-03-01T10:00:00+08:00"}',
             b'{"type": "trade", "event_id": "x-1", "ts": "2026-03-02T10:00:00+08:00"}', b"\xff\xfe not utf-8"]


def stream_lines(tmp_path) -> list[bytes]:
    """A short simulated marketplace stream, every typology in it, with bad lines spread through it."""
    simulate(tmp_path / "sim", seed=5, days=5, accounts=300)
    lines = [raw for _, raw in read_lines(tmp_path / "sim" / "events.jsonl.gz")]
    step = len(lines) // (len(BAD_LINES) + 1)
    for i, bad in reversed(list(enumerate(BAD_LINES, 1))):
        lines.insert(i * step, bad)
    return lines


def wait_for(bootstrap: str, topic: str, want: set[str], timeout: float) -> set[str]:
    records = collect(bootstrap, topic, lambda rs: want <= {r["alert_id"] for r in rs}, timeout)
    return {r["alert_id"] for r in records}


@pytest.mark.slow
def test_workers_give_the_replay_alert_ids_and_dead_letter_bad_records(kafka_bootstrap, tmp_path):
    env = kafka_env(kafka_bootstrap)
    kafka = kafka_config(env)
    lines = stream_lines(tmp_path)
    want = replay_ids(lines, env)
    create_topics(kafka)
    produce(lines, kafka, heartbeat=True)
    workers = [Worker(env, tmp_path / f"w{i}", f"w{i}") for i in range(2)]
    try:
        got = wait_for(kafka_bootstrap, kafka.alerts_topic, want, timeout=150)
        assert got == want, (len(want - got), len(got - want), workers[0].output()[-3000:])
        good = _good(lines)
        bad = [raw for raw in lines if raw not in good]
        dead = _by_source(collect(kafka_bootstrap, kafka.deadletter_topic,
                                  lambda rs: len(_by_source(rs)) >= len(bad), 30))
        assert sorted(base64.b64decode(r["raw_base64"]) for r in dead.values()) == sorted(bad)
        for record in dead.values():
            assert record["reason"] and record["field"]
    finally:
        for worker in workers:
            worker.stop()
    archived, alerts = _archived(tmp_path / "records")
    assert len(archived) == len(lines) + 1, "every input message (and the heartbeat) is kept in the record archive"
    assert sum(1 for outcome in archived.values() if outcome != "ok") == len(bad)
    assert want <= alerts


def _archived(root) -> tuple[dict, set[str]]:
    """Every worker's archive verified; input records by source, and the alert ids kept."""
    from amlwatch.records.archive import ArchiveReader
    from amlwatch.records.verify import verify_archive

    events, alerts = {}, set()
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        assert verify_archive(directory).ok, directory
        for record in ArchiveReader(directory).records(kinds=("event", "alert")):
            if record["kind"] == "event":
                source = record["source"]
                events[(source["topic"], source["partition"], source["offset"])] = record["outcome"]
            else:
                alerts.add(record["alert"]["alert_id"])
    return events, alerts


def _by_source(dead_letters: list[dict]) -> dict[tuple, dict]:
    """Dead letters deduplicated as a consumer does, by their key (the source coordinates): at least once."""
    return {(r["source"]["topic"], r["source"]["partition"], r["source"]["offset"]): r for r in dead_letters}


def _good(lines: list[bytes]) -> set[bytes]:
    from amlwatch.events import BadRecord, parse_event

    good = set()
    for raw in lines:
        try:
            parse_event(raw)
            good.add(raw)
        except BadRecord:
            pass
    return good


@pytest.mark.slow
def test_a_worker_killed_mid_stream_loses_no_alert(kafka_bootstrap, tmp_path):
    env = kafka_env(kafka_bootstrap)
    kafka = kafka_config(env)
    lines = make_stream(seed=6, trades=6000, accounts=200, hours=120)
    want = replay_ids(lines, env)
    create_topics(kafka)
    produce(lines, kafka, heartbeat=True)
    workers = [Worker(env, tmp_path / f"w{i}", f"w{i}") for i in range(2)]
    try:
        seen = collect(kafka_bootstrap, kafka.alerts_topic, lambda rs: len(rs) >= 10, 90)
        workers[0].kill()                  # SIGKILL mid-stream: no goodbye, no final commit
        assert len({r["alert_id"] for r in seen}) < len(want), "the stream was over before the kill"
        got = wait_for(kafka_bootstrap, kafka.alerts_topic, want, timeout=150)
        assert got == want, (len(want - got), len(got - want), workers[1].output()[-3000:])
    finally:
        for worker in workers:
            worker.stop()


def test_old_events_are_kept_by_arrival_not_deleted_by_their_event_time(kafka_bootstrap):
    """A backfill dated months back must survive the 7-day retention until workers read it."""
    from kafka import KafkaConsumer
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    kafka = kafka_config(kafka_env(kafka_bootstrap))
    create_topics(kafka)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, kafka.trades_topic)])
    finally:
        admin.close()
    [configs] = [topics[kafka.trades_topic] for topics in described.values()]
    assert "LogAppendTime" in str(configs["message.timestamp.type"])
    old = make_stream(seed=2, trades=20)[-3:]          # dated 2026-03, far beyond the retention
    produce(old, kafka)
    consumer = KafkaConsumer(kafka.trades_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=5000)
    try:
        stamps = [message.timestamp / 1000 for message in consumer]
    finally:
        consumer.close()
    assert stamps and all(abs(stamp - time.time()) < 600 for stamp in stamps)


def _json(record: dict) -> bytes:
    return orjson.dumps(record)


def test_a_restarted_worker_recovers_detector_state_from_its_tables(kafka_bootstrap, tmp_path):
    """The first two legs of a round trip before a SIGKILL, the last after: still a round trip."""
    from support.streamgen import _h, _ts

    env = kafka_env(kafka_bootstrap, partitions=2)
    kafka = kafka_config(env)
    create_topics(kafka)

    def account(a, t):
        return {"type": "account", "event_id": f"acc-{a}", "ts": _ts(t), "account_id": a, "action": "register",
                "kyc_level": 3, "name_hash": _h("name", a), "id_hash": _h("id", a),
                "bank_card_hashes": [_h("card", a)]}

    def trade(n, seller, buyer, t, currency="CNY"):
        return {"type": "trade", "event_id": f"tr-{n}", "ts": _ts(t), "trade_id": f"tr-{n}",
                "collection_id": "col-r", "token_id": "tok-r", "kind": "secondary", "seller_id": seller,
                "buyer_id": buyer, "price": "300.00", "currency": currency,
                "payment": {"method": "alipay", "payer_name_hash": _h("name", buyer),
                            "instrument_hash": _h("card", buyer)}}

    first = [_json(account(a, 1)) for a in ("A", "B", "C")] + [
        _json({"type": "collection", "event_id": "col-r", "ts": _ts(2), "collection_id": "col-r",
               "action": "launch", "issuer_id": "A", "asset_class": "art", "issue_price": "99.00"}),
        _json(trade(1, "A", "B", 3600)), _json(trade(2, "B", "C", 7200, currency="USD")),
        _json(account("D", 9000))]
    produce(first, kafka)
    worker = Worker(env, tmp_path / "w1", "w1")
    try:
        got = collect(kafka_bootstrap, kafka.alerts_topic,
                      lambda rs: any(r["detector"] == "settlement.currency" for r in rs), 90)
        assert any(r["detector"] == "settlement.currency" for r in got), worker.output()[-3000:]
        time.sleep(3)                       # a snapshot covering them is written, offsets committed
    finally:
        worker.kill()
        worker.stop()
    produce([_json(trade(3, "C", "A", 10800))], kafka, heartbeat=True)
    worker = Worker(env, tmp_path / "w2", "w2")
    try:
        got = collect(kafka_bootstrap, kafka.alerts_topic,
                      lambda rs: any(r["detector"] == "wash.round_trip" for r in rs), 90)
        trips = [r for r in got if r["detector"] == "wash.round_trip"]
        assert trips and trips[0]["trade_ids"] == ["tr-1", "tr-2", "tr-3"], worker.output()[-3000:]
        assert "restored partition state" in worker.output()
    finally:
        worker.stop()


@pytest.mark.slow
def test_a_broker_restart_mid_stream_loses_nothing(own_kafka, tmp_path):
    """The whole stream is in Kafka first (a backfill, where parity is exact: docs/STREAMING.md), and
    the broker restarts while the worker is still working through it."""
    bootstrap = own_kafka.bootstrap
    env = kafka_env(bootstrap)
    kafka = kafka_config(env)
    lines = make_stream(seed=8, trades=40_000, accounts=400, collections=40, hours=480)
    want = replay_ids(lines, env)
    create_topics(kafka)
    produce(lines, kafka, heartbeat=True)
    worker = Worker(env, tmp_path / "w1", "w1")
    try:
        collect(bootstrap, kafka.alerts_topic, lambda rs: len(rs) >= 10, 90)
        own_kafka.restart_node(0)
        restarted = time.time()
        records = collect(bootstrap, kafka.alerts_topic, lambda rs: want <= {r["alert_id"] for r in rs}, 240)
        got = {r["alert_id"] for r in records}
        assert got == want, (len(want - got), len(got - want), worker.output()[-3000:])
        first: dict[str, float] = {}
        for r in records:
            first[r["alert_id"]] = min(first.get(r["alert_id"], float("inf")), _epoch(r["detected_at"]))
        assert any(t > restarted for t in first.values()), "the worker was done before the restart"
    finally:
        worker.stop()


@pytest.mark.slow
def test_a_broker_lost_from_three_mid_stream_loses_nothing(own_kafka_cluster, tmp_path):
    """Replication 3, two in sync: a broker killed (SIGKILL, not restarted) while the worker works
    through a backfill; leaders and the group coordinator move to the other two."""
    bootstrap = own_kafka_cluster.bootstrap
    env = {**kafka_env(bootstrap), "AMLWATCH_KAFKA__REPLICATION": "3", "AMLWATCH_KAFKA__MIN_INSYNC_REPLICAS": "2"}
    kafka = kafka_config(env)
    lines = make_stream(seed=9, trades=20_000, accounts=300, collections=30, hours=240)
    want = replay_ids(lines, env)
    create_topics(kafka)
    produce(lines, kafka, heartbeat=True)
    worker = Worker(env, tmp_path / "w1", "w1")
    try:
        collect(bootstrap, kafka.alerts_topic, lambda rs: len(rs) >= 10, 90)
        own_kafka_cluster.kill_node(0)
        lost = time.time()
        records = collect(bootstrap, kafka.alerts_topic, lambda rs: want <= {r["alert_id"] for r in rs}, 240)
        got = {r["alert_id"] for r in records}
        assert got == want, (len(want - got), len(got - want), worker.output()[-3000:])
        assert any(_epoch(r["detected_at"]) > lost for r in records), "the worker was done before the loss"
    finally:
        worker.stop()


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
