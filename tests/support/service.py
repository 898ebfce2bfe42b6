"""Helpers for the Kafka tests: isolated topic names, worker subprocesses, collecting alerts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

from amlwatch.config import load_config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.engine import build_monitor
from amlwatch.replay import replay

REPO = Path(__file__).resolve().parents[2]


def kafka_env(bootstrap: str, partitions: int = 4) -> dict[str, str]:
    """Environment naming this test's own app id and topics (nothing shared between tests)."""
    tag = uuid.uuid4().hex[:8]
    env = {"AMLWATCH_KAFKA_BOOTSTRAP": bootstrap, "AMLWATCH_KAFKA__APP_ID": f"t-{tag}",
           "AMLWATCH_KAFKA__PARTITIONS": str(partitions), "AMLWATCH_KAFKA__SNAPSHOT_SECONDS": "0.5",
           "AMLWATCH_ANOMALY__ENABLED": "false"}
    for name in ("accounts", "collections", "trades", "alerts", "deadletter", "work", "keyed", "rating"):
        env[f"AMLWATCH_KAFKA__{name.upper()}_TOPIC"] = f'"{tag}.{name}"'
    env["AMLWATCH_LVTR__TOPIC"] = f'"{tag}.reports"'
    env["AMLWATCH_RISK__TOPIC"] = f'"{tag}.ratings"'
    return env


def kafka_config(env: dict[str, str]):
    return load_config(None, env=env).kafka


class Worker:
    """`python -m amlwatch.cli worker` with a hard stop: SIGTERM, then SIGKILL. Rules only unless `model`
    (then the env must enable `[anomaly]`)."""

    def __init__(self, env: dict[str, str], data_dir: Path, name: str = "w", model: bool = False):
        self.log_path = data_dir.parent / f"{name}.log"
        self.log = open(self.log_path, "wb")
        profile = os.environ.get("AMLWATCH_PROFILE_DIR")
        python = [sys.executable] + (["-m", "cProfile", "-o", f"{profile}/{name}.prof"] if profile else [])
        self.proc = subprocess.Popen(
            python + ["-m", "amlwatch.cli", "worker", *([] if model else ["--no-model"]), "--metrics-port", "0",
                      "--data-dir", str(data_dir), "--loglevel", "INFO"],
            env={"AMLWATCH_ARCHIVE_DIR": str(data_dir.parent / "records"), **os.environ, **env}, cwd=REPO,
            stdout=self.log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, grace: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")


def collect(bootstrap: str, topic: str, until, timeout: float) -> list[dict]:
    """Read `topic` from the start until `until(records)` holds or `timeout` passes."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap.split(","), auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=1000)
    records: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=50).values():
                records.extend(orjson.loads(message.value) for message in batch)
            if until(records):
                break
    finally:
        consumer.close()
    return records


def read_to_end(bootstrap: str, topic: str, timeout: float = 300) -> list[dict]:
    """Every record of `topic` up to its end as of now, however long that takes to read (a time window
    read under load stopped short: a fixed 10 s read of 10,000 alerts took half, seen as 'lost')."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[dict] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, f"{topic} not read to its end within {timeout:g} s"
            for batch in consumer.poll(timeout_ms=500, max_records=2000).values():
                records.extend(orjson.loads(message.value) for message in batch)
        return records
    finally:
        consumer.close()


def replay_ids(lines: list[bytes], env: dict, model: bool = False) -> set[str]:
    """Alert ids of a file replay of `lines` under the config `env` gives (no model unless `model`), to
    compare with workers."""
    alerts = []
    replay(enumerate(lines, 1), build_monitor(load_config(None, env=env), with_model=model), alerts.extend,
           DeadLetterFile(None))
    return {a.alert_id for a in alerts}
