"""A running `amlwatch worker` against a real broker: ready, then its /metrics count what it consumed.

Skipped until the streaming work (streams/) gives the CLI its `worker` and
`topics` subcommands; then it needs Kafka like the other `kafka` tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from amlwatch.cli import build_parser



def _has_subcommands(*names: str) -> bool:
    import argparse

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return all(name in action.choices for name in names)
    return False


pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(not _has_subcommands("worker", "topics"),
                       reason="no `amlwatch worker`/`amlwatch topics` yet: the streaming work (streams/) adds them"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


def _wait(check, timeout: float, what: str, worker: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        assert worker.poll() is None, f"worker exited with {worker.returncode} while waiting for {what}"
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def _value(text: str, name: str, **labels: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and labels.items() <= s.labels.items())


@pytest.fixture(scope="module")
def bootstrap():
    from support.kafka_broker import kafka_available, kafka_cluster

    ok, why = kafka_available()
    if not ok:
        pytest.skip(why)
    with kafka_cluster(nodes=1) as servers:
        yield servers


def test_worker_serves_metrics_health_and_readiness(bootstrap, tmp_path):
    from support import events as ef
    from kafka import KafkaProducer

    run = uuid.uuid4().hex[:8]
    port = _free_port()
    env = {**os.environ, "AMLWATCH_KAFKA_BOOTSTRAP": bootstrap,
           "AMLWATCH_KAFKA__APP_ID": f"amlwatch-ops-{run}",
           "AMLWATCH_KAFKA__PARTITIONS": "2",
           **{f"AMLWATCH_KAFKA__{kind.upper()}_TOPIC": f"ops-{run}.{kind}"
              for kind in ("accounts", "collections", "trades", "alerts", "deadletter", "work", "keyed")},
           "AMLWATCH_SERVICE__WORKER_ID": "ops-test-worker",
           "AMLWATCH_SERVICE__METRICS_PORT": str(port),
           "AMLWATCH_SERVICE__DATA_DIR": str(tmp_path / "data"),
           "AMLWATCH_ARCHIVE__DIR": str(tmp_path / "records")}
    subprocess.run([sys.executable, "-m", "amlwatch.cli", "topics", "create"], env=env, check=True, timeout=120)
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "amlwatch.cli", "worker"], env=env, stderr=log,
                              stdout=subprocess.DEVNULL)
    try:
        _wait(lambda: _get(port, "/healthz")[0] == 200, 60, "/healthz", worker)
        _wait(lambda: _get(port, "/readyz")[0] == 200, 120, "/readyz", worker)
        records = [*ef.world("acc-a", "acc-b"),
                   ef.trade("acc-a", "acc-b", ef.at(minutes=1), currency="USDT"),
                   ef.trade("acc-b", "acc-a", ef.at(minutes=2), token_id="tok-2")]
        reused = ef.trade("acc-a", "acc-b", ef.at(minutes=3), token_id="tok-3")
        # Refused by the core and dead-lettered: an event_id reused with other content, a trade 200 days
        # ahead of the watermark (a skew no second event confirms).
        records += [reused, {**reused, "price": "999.00"}, ef.trade("acc-a", "acc-b", ef.at(days=200), token_id="tok-4")]
        topics = {"account": env["AMLWATCH_KAFKA__ACCOUNTS_TOPIC"],
                  "collection": env["AMLWATCH_KAFKA__COLLECTIONS_TOPIC"],
                  "trade": env["AMLWATCH_KAFKA__TRADES_TOPIC"]}
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        for record in records:
            producer.send(topics[record["type"]], orjson.dumps(record))
        producer.send(topics["trade"], b"{not json")
        producer.flush()
        producer.close()
        _wait(lambda: _value(_get(port, "/metrics")[1], "amlwatch_events_total") >= len(records), 120,
              "amlwatch_events_total to count every event", worker)
        # The malformed record may sit on another partition and arrive in a later fetch.
        _wait(lambda: _value(_get(port, "/metrics")[1], "amlwatch_bad_records_total") >= 1, 60,
              "amlwatch_bad_records_total to count the malformed record", worker)
        _wait(lambda: _value(_get(port, "/metrics")[1], "amlwatch_alerts_total") >= 1, 60,
              "the prohibited-settlement alert to be counted", worker)
        for reason in ("duplicate_event_id_conflict", "event_time_skew"):
            _wait(lambda: _value(_get(port, "/metrics")[1], "amlwatch_events_rejected_total", stage="1",
                                 reason=reason) == 1, 60, f"amlwatch_events_rejected_total to count {reason}", worker)
        assert "amlwatch_consumer_lag_messages" in _get(port, "/metrics")[1]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    lines = [orjson.loads(line) for line in (tmp_path / "worker.log").read_bytes().splitlines()
             if line.startswith(b"{")]
    assert lines and all(line["worker_id"] == "ops-test-worker" for line in lines)
