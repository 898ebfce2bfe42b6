"""Risk ratings from the Kafka workers equal the replay's, and are archived.

Two workers on the shared broker, the rating stage (one partition) on one of them. The stream goes in
three steps, each once the workers have taken the one before, as in the large-value test: the stream,
trades dated 12 to 42 hours back (late in the worker as at the end of the replayed file), the
far-future heartbeat.
"""

from __future__ import annotations

import socket
import time

import pytest
from support.reporting import HEARTBEAT, late_trades, replay_ratings
from support.service import Worker, collect, kafka_env, read_to_end
from support.streamgen import make_stream

from amlwatch.config import load_config
from amlwatch.reporting.pipeline import archived_records
from amlwatch.streams.produce import produce
from amlwatch.streams.topics import create_topics, report_topics

pytestmark = pytest.mark.kafka


def _by_subject(records: list[dict]) -> dict[str, list[dict]]:
    """Each subject's ratings once, in the order first published (a copy after a failover repeats one)."""
    seen, out = set(), {}
    for record in records:
        if record["rating_id"] not in seen:
            seen.add(record["rating_id"])
            out.setdefault(record["subject"], []).append(record)
    return out


def _archived(tmp_path, worker: Worker | None = None) -> dict[str, dict]:
    """The ratings in the workers' record archives (or one worker's: its directory is host-pid) by id."""
    archived = {}
    for directory in sorted(p for p in (tmp_path / "records").iterdir() if p.is_dir()):
        if worker is None or directory.name == f"{socket.gethostname()}-{worker.proc.pid}":
            archived.update((r["rating_id"], r) for r in archived_records(directory, "risk_rating"))
    return archived


@pytest.mark.slow
@pytest.mark.parametrize("kill", [False, True], ids=["clean", "sigkill"])
def test_workers_give_the_replay_ratings_and_archive_them(kafka_bootstrap, tmp_path, kill):
    """With `kill`, the worker holding the rating partition is SIGKILLed after the stream was rated: the
    survivor restores the stage from its snapshot and rates the late trades and the heartbeat as replay."""
    env = kafka_env(kafka_bootstrap, partitions=3)
    config = load_config(None, env=env)
    lines = make_stream(seed=5, trades=900, hours=120)
    late = late_trades(lines)
    on_time = {r["rating_id"] for r in replay_ratings(lines, config)}
    want = replay_ratings(lines + late + [HEARTBEAT], config)
    ids = {r["rating_id"] for r in want}
    assert len(ids) == len(want) and ids - on_time

    create_topics(config.kafka, extra=report_topics(config))
    produce(lines, config.kafka)
    workers = [Worker(env, tmp_path / f"w{i}", f"w{i}") for i in range(2)]
    topic = config.risk.topic
    try:
        got = collect(kafka_bootstrap, topic, lambda rs: on_time <= {r["rating_id"] for r in rs}, 150)
        assert on_time <= {r["rating_id"] for r in got}, workers[0].output()[-3000:]
        time.sleep(3)                       # every input partition caught up (idle) and said so
        if kill:                            # the rating stage's holder: its archive has ratings
            victim = next((w for w in workers if _archived(tmp_path, w)), workers[0])
            victim.kill()                   # no goodbye, no final commit
            time.sleep(10)                  # the survivor is assigned the partitions and restores them
        produce(late, config.kafka)
        time.sleep(5)
        produce([HEARTBEAT], config.kafka)
        got = collect(kafka_bootstrap, topic, lambda rs: ids <= {r["rating_id"] for r in rs}, 180)
        assert ids <= {r["rating_id"] for r in got}, (len(ids - {r["rating_id"] for r in got}),
                                                      workers[-1].output()[-3000:])
        time.sleep(3)                       # anything extra would come now
        got = read_to_end(kafka_bootstrap, topic)
    finally:
        for worker in workers:
            worker.stop()
    assert _by_subject(got) == _by_subject(want), "each subject's change log, in order"
    # (the rating partition may have moved between the workers at their start: order per archive only)
    archived, by_id = _archived(tmp_path), {r["rating_id"]: r for r in want}
    if kill:                                # the killed worker's last uncommitted ratings may be missing
        assert archived.items() <= by_id.items() and ids - on_time <= archived.keys()
    else:
        assert archived == by_id, "every rating sent is in a worker's record archive"
