"""Large-value reports from the Kafka workers equal the replay's, late reports included, and are archived.

Two workers on the shared broker. The stream goes in three steps, each once the workers have taken the
one before: the stream, then trades dated 12 to 42 hours back (late in the worker as at the end of the
replayed file: their days closed, some still kept, some not), then the far-future heartbeat that closes
the last days (as the replay's end of file does).
"""

from __future__ import annotations

import time

import pytest
from support.reporting import HEARTBEAT, comparable, late_trades, replay_reports
from support.service import Worker, collect, kafka_env
from support.streamgen import make_stream

from amlwatch.config import load_config
from amlwatch.reporting.pipeline import archived_records
from amlwatch.streams.produce import produce
from amlwatch.streams.topics import create_topics, report_topics

pytestmark = pytest.mark.kafka


def _until(bootstrap: str, topic: str, want: set[str], timeout: float) -> dict[str, dict]:
    """The topic's records by report id (consumers upsert by it), once every id in `want` is there."""
    records = collect(bootstrap, topic, lambda rs: want <= {r["report_id"] for r in rs}, timeout)
    return comparable(records)


@pytest.mark.slow
@pytest.mark.parametrize("kill", [False, True], ids=["clean", "sigkill"])
def test_workers_give_the_replay_large_value_reports_and_archive_them(kafka_bootstrap, tmp_path, kill):
    """With `kill`, one worker is SIGKILLed once the stream's days closed: the survivor restores its
    account partitions' aggregators from their snapshots and the late trades still meet the kept days."""
    env = kafka_env(kafka_bootstrap, partitions=3)
    env.update({"AMLWATCH_LVTR__CASH_THRESHOLD": '"500"', "AMLWATCH_LVTR__INDIVIDUAL_DOMESTIC_THRESHOLD": '"2000"',
                "AMLWATCH_LVTR__LATE_DAYS": "0.5"})
    config = load_config(None, env=env)
    lines = make_stream(seed=5, trades=900, hours=120)
    late = late_trades(lines)
    on_time = comparable(replay_reports(lines, config))
    want = comparable(replay_reports(lines + late + [HEARTBEAT], config))
    closed_by_stream = {k for k, r in on_time.items() if r["closed_by"] == "watermark"}
    after_late = {k for k, r in want.items() if r["record_type"] == "lvtr_late_unassessed" or r.get("late")}
    assert closed_by_stream and after_late and want.keys() - closed_by_stream - after_late

    create_topics(config.kafka, extra=report_topics(config))
    produce(lines, config.kafka)
    workers = [Worker(env, tmp_path / f"w{i}", f"w{i}") for i in range(2)]
    topic = config.lvtr.topic
    try:
        got = _until(kafka_bootstrap, topic, closed_by_stream, 150)
        assert closed_by_stream <= got.keys(), workers[0].output()[-3000:]
        time.sleep(3)                       # every input partition caught up (idle) and said so
        if kill:
            workers[0].kill()               # no goodbye, no final commit
            time.sleep(10)                  # the survivor is assigned its partitions and restores them
        produce(late, config.kafka)
        got = _until(kafka_bootstrap, topic, closed_by_stream | after_late, 180)   # a rebalance after a kill
        assert closed_by_stream | after_late <= got.keys(), (len(after_late - got.keys()),
                                                             workers[-1].output()[-3000:])
        time.sleep(3)
        produce([HEARTBEAT], config.kafka)
        got = _until(kafka_bootstrap, topic, set(want), 180)
        time.sleep(2)                       # anything extra would come now
        got = _until(kafka_bootstrap, topic, set(want), 10)
    finally:
        for worker in workers:
            worker.stop()
    assert got.keys() == want.keys(), (sorted(want.keys() - got.keys())[:3], sorted(got.keys() - want.keys())[:3])
    assert got == want
    archived = {}
    for directory in sorted(p for p in (tmp_path / "records").iterdir() if p.is_dir()):
        archived.update(comparable([*archived_records(directory, "lvtr"),
                                    *archived_records(directory, "lvtr_late_unassessed")]))
    if kill:                                # the killed worker's last uncommitted records may be missing
        assert archived.items() <= want.items() and closed_by_stream <= archived.keys()
    else:
        assert archived == want, "every report sent is in a worker's record archive"
