"""Risk ratings through the three streaming stages (in memory, with crashes) equal the replay's.

Stage 1 sends the rating stage each event it judged with its alerts, stage 2 answers each forwarded trade
with the alerts it owns, and the rating stage rates in stage 1's release order. Late trades are produced
after the rest of the stream was taken (late in the worker as in the replay, where they follow it in the
file), the heartbeat last.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

import orjson
import pytest
from support.pipeline import InMemoryPipeline
from support.reporting import HEARTBEAT, late_trades, replay_ratings
from support.streamgen import make_stream

from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.engine import build_monitor
from amlwatch.events import parse_event
from amlwatch.replay import replay
from amlwatch.reporting.risk import Dispositions
from amlwatch.streams.codecs import encode_event, encode_frame, encode_marker
from amlwatch.streams.processors import RatingProcessor, build_stage_monitor

CONFIG = Config()


def _crash_rating_stage(pipeline: InMemoryPipeline) -> None:
    """Once for sure: the rating stage restores its snapshot and takes what followed it again."""
    if ("rating", 0) in pipeline.saved:
        pipeline.crash(("rating", 0))
        pipeline.take_all()


def run_pipeline(lines: list[bytes], late: list[bytes], seed: int, dispositions=None) -> InMemoryPipeline:
    pipeline = InMemoryPipeline(CONFIG, input_partitions=3, work_partitions=4, seed=seed, ratings=True,
                                dispositions=dispositions)
    pipeline.run_in_steps(lines, late, HEARTBEAT, after_stream=_crash_rating_stage)
    return pipeline


def change_log(records: list[dict]) -> list[dict]:
    """Each rating once, in the order first published (copies after a crash have the same id and content)."""
    first: dict[str, dict] = {}
    for record in records:
        assert first.setdefault(record["rating_id"], record) == record, "a rating id published with other content"
    return list(first.values())


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_worker_stages_give_the_replay_ratings(seed):
    lines = make_stream(seed=seed, trades=900, hours=120)
    late = late_trades(lines)
    want = replay_ratings(lines + late + [HEARTBEAT], CONFIG)
    pipeline = run_pipeline(lines, late, seed)
    assert change_log(pipeline.ratings) == want
    rater = pipeline.procs[("rating", 0)]
    assert rater.released > 0, "alerts of waiting trades reached the rater"
    assert not rater.ready and not rater.answers and not rater.dropped and not rater.waiting
    assert {r["subject_kind"] for r in want} == {"account", "person"}
    assert {r["level"] for r in want} >= {"low", "medium", "high"}
    assert sum(proc.duplicates for proc in pipeline.procs.values()) > 0, "copies of facts were sent and dropped"


def test_dispositions_weigh_alike_in_the_worker():
    """The rating stage reads the same labels as replay's `--labels` (confirmed x2, dismissed 0)."""
    lines = make_stream(seed=7, trades=900, hours=120)
    alerts = []
    replay(enumerate(lines + [HEARTBEAT], 1), build_monitor(CONFIG, with_model=False), alerts.extend,
           DeadLetterFile(None))
    traded = [a for a in alerts if a.trade_ids]
    dispositions = Dispositions(confirmed={(a.trade_ids[0], a.typology) for a in traded[::3]},
                                dismissed={(t, a.typology) for a in traded[1::3] for t in a.trade_ids})
    want = replay_ratings(lines + [HEARTBEAT], CONFIG, dispositions)
    assert want != replay_ratings(lines + [HEARTBEAT], CONFIG), "the labels change some ratings"
    pipeline = run_pipeline(lines, [], 7, dispositions)
    assert change_log(pipeline.ratings) == want


def test_a_restored_rating_stage_publishes_the_same_ratings():
    """The rater's state travels in the stage-3 snapshot: restored and fed the same input again, it publishes
    the same rating ids with the same content, and reads the restoring worker's ruleset and labels."""
    lines = make_stream(seed=4, trades=400, hours=60)
    pipeline = InMemoryPipeline(CONFIG, input_partitions=2, work_partitions=2, seed=4, ratings=True)
    pipeline.saving = False
    pipeline.produce(lines + [HEARTBEAT])
    saved, inputs = None, []
    while pipeline.step_router() or any(pipeline.queues.values()):
        for name in list(pipeline.queues):
            if name[0] == "rating" and saved is None and pipeline.ratings:
                saved = pipeline.procs[name].snapshot()
                inputs = []
            before = list(pipeline.queues[("rating", 0)])
            pipeline.step_worker(restart=False)
            inputs.extend(v for v in before if v not in pipeline.queues[("rating", 0)])
    pipeline.drain_all()
    assert saved is not None
    proc = pipeline.procs[("rating", 0)]
    dispositions = Dispositions()
    restored = RatingProcessor.restore(saved, build_stage_monitor(CONFIG, 3, False), dispositions)
    assert restored.rater.config is CONFIG.risk and restored.rater.dispositions is dispositions
    assert restored.rater.registry is restored.monitor.registry
    again = []
    for value in inputs:
        restored.handle(0, value)
        again.extend(restored.take_records())
    assert again, "the restored stage rated what came after its snapshot"
    published = {r["rating_id"]: r for r in pipeline.ratings}
    assert all(published[r["rating_id"]] == r for r in again)
    assert restored.rater.profiles.keys() == proc.rater.profiles.keys()


def _redelivered(lines: list[bytes], seed: int) -> list[bytes]:
    """The stream with about one event in ten sent again, identical, a few lines later (at-least-once
    producers): replay's core skips the copies, stage 1 forwards paid ones to stage 2 all the same."""
    rng = random.Random(seed)
    out = list(lines)
    for i in range(len(out) - 10, 0, -1):
        if rng.random() < 0.1:
            out.insert(i + rng.randint(1, 8), out[i])
    return out


def test_redelivered_events_are_rated_once():
    """A copy is no rating fact ("x" when stage 2 still answers its forward): the answers to it are taken
    and left unrated, and the ratings equal replay's."""
    lines = _redelivered(make_stream(seed=8, trades=900, hours=120), 8)
    want = replay_ratings(lines + [HEARTBEAT], CONFIG)
    pipeline = run_pipeline(lines, [], 8)
    assert change_log(pipeline.ratings) == want
    assert sum(proc.monitor.duplicates for (stage, _), proc in pipeline.procs.items() if stage == "work") > 0
    rater = pipeline.procs[("rating", 0)]
    assert not rater.ready and not rater.answers and not rater.dropped


def test_an_answer_lost_for_good_holds_ratings_back_one_dedupe_window_only():
    """A paid trade whose stage-2 answer never comes (its forward deleted by retention unread) is rated
    without it once its stage-2 partition has answered trades a dedupe window later (however far stage 1
    ran ahead meanwhile); the answer, should it come after all, is taken and left unrated."""
    trade = next(raw for raw in make_stream(seed=1, trades=50, hours=2)
                 if b'"trade_id"' in raw and parse_event(raw).paid)
    t = parse_event(trade).t

    def at(hours: float, name: str) -> bytes:
        record = orjson.loads(trade)
        record.update(event_id=name, trade_id=name,
                      ts=datetime.fromtimestamp(t + hours * 3600, timezone.utc).isoformat())
        return orjson.dumps(record)

    def frame(*messages):
        return encode_frame([encode_event(source, seq, orjson.dumps(head) + b"\n" + raw)
                             for source, seq, head, raw in messages])

    def trade_fact(seq: int, raw: bytes):
        return "w0", seq, {"k": "e", "key": ["w0", seq], "need": ["a0"], "alerts": []}, raw

    def answer(seq: int, of: int, hours: float):
        return "a0", seq, {"k": "s", "key": ["w0", of], "t": t + hours * 3600, "alerts": []}, b""

    stage = RatingProcessor(build_stage_monitor(CONFIG, 3, False), ["w0"])
    stage.handle(0, frame(trade_fact(1, trade), trade_fact(2, at(1, "t2")), trade_fact(3, at(47, "t3")),
                          trade_fact(4, at(50, "t4"))))
    stage.handle(1, encode_frame([encode_marker("w0", t + 60 * 3600, False)]))
    assert not stage.take_records() and len(stage.ready) == 4, "stage 1 ran far ahead: all wait for answers"
    stage.handle(2, frame(answer(1, 2, 1), answer(2, 3, 47)))
    assert not stage.take_records(), "a0 answered only 47 h on: within the window, the first trade waits"
    stage.handle(3, frame(answer(3, 4, 50)))
    assert parse_event(trade).event_id in {r["event_id"] for r in stage.take_records()}
    assert stage.events == 4 and not stage.ready and stage.unanswered == 1
    stage.handle(4, frame(answer(4, 1, 0)))
    assert not stage.answers and not stage.dropped and not stage.take_records()
