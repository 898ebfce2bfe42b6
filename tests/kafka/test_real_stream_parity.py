"""Real-shaped trading through the Kafka service gives the replay's alerts, ids and contents alike.

Two streams: a deterministic one shaped like the real Axie sales
(tests/support/axielike.py: one collection, so every trade is on one work
partition, years of sparse bursts, pairs trading back and forth across the
account stage), which always runs; and the real file itself, which lives
outside the repository (/work/shared/real, or $AMLWATCH_REAL_AXIE) and is
skipped with a reason where it is absent. Both run with the anomaly model,
as `amlwatch replay` does by default. Alerts are compared whole, except
`detected_at` (wall clock): the service is at least once, so every copy of an
alert id must carry the replay's contents.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from support.axielike import make_axie_like
from support.service import Worker, collect, kafka_config, kafka_env

from amlwatch.config import load_config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.engine import build_monitor
from amlwatch.replay import replay
from amlwatch.sources import read_lines
from amlwatch.streams.produce import produce
from amlwatch.streams.topics import create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REAL = Path(os.environ.get("AMLWATCH_REAL_AXIE", "/work/shared/real/axie-sales.jsonl.gz"))


def _lines(name: str) -> list[bytes]:
    if name == "axie-like":
        return make_axie_like()
    if not REAL.exists():
        pytest.skip(f"the real Axie stream is not on this machine ({REAL}; set AMLWATCH_REAL_AXIE)")
    return [raw for _, raw in read_lines(REAL)]


def _contents(alert: dict) -> bytes:
    return orjson.dumps({k: v for k, v in alert.items() if k != "detected_at"}, option=orjson.OPT_SORT_KEYS)


def _replayed(lines: list[bytes], env: dict) -> dict[str, bytes]:
    alerts = []
    replay(enumerate(lines, 1), build_monitor(load_config(None, env=env), with_model=True), alerts.extend,
           DeadLetterFile(None))
    return {a.alert_id: _contents(a.to_dict()) for a in alerts}


@pytest.mark.parametrize("name", ["axie-like", "axie-real"])
def test_the_service_gives_the_replays_alerts_on_real_shaped_trading(kafka_bootstrap, tmp_path, name):
    lines = _lines(name)
    env = {**kafka_env(kafka_bootstrap), "AMLWATCH_ANOMALY__ENABLED": "true"}
    kafka = kafka_config(env)
    want = _replayed(lines, env)
    assert len(want) >= 20, "the stream must alert enough to compare"
    create_topics(kafka)
    produce(lines, kafka, heartbeat=True)
    worker = Worker(env, tmp_path / "w", "w", model=True)
    try:
        records = collect(kafka_bootstrap, kafka.alerts_topic,
                          lambda rs: set(want) <= {r["alert_id"] for r in rs}, timeout=240)
    finally:
        worker.stop()
    got: dict[str, set[bytes]] = {}
    for record in records:
        got.setdefault(record["alert_id"], set()).add(_contents(record))
    missing, extra = set(want) - set(got), set(got) - set(want)
    assert not missing and not extra, (len(missing), len(extra), worker.output()[-3000:])
    differing = [alert_id for alert_id, copies in got.items() if copies != {want[alert_id]}]
    assert not differing, (len(differing), sorted(got[differing[0]]), want[differing[0]])
