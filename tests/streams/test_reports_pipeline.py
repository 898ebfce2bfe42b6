"""Large-value reports through the two streaming stages (in memory, with crashes) equal the replay's.

Stage 1 puts each party's payment kind and hashes on the forwarded trade, stage 2 aggregates the
accounts it owns and closes days on the low watermark. Late trades are produced after the rest of the
stream was taken (so they are late in the worker as in the replay, where they follow it in the file):
they give the same late reports, supplements and unassessed records.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from support.pipeline import InMemoryPipeline
from support.streamgen import make_stream

from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.engine import build_monitor
from amlwatch.events import BadRecord, parse_event
from amlwatch.replay import replay
from amlwatch.reporting.pipeline import ListSink, ReportingMonitor
from amlwatch.streams.processors import KeyedProcessor, build_stage_monitor

# Low lines so a small stream yields many reports; closed days kept half a day, so trades 12 to 42 hours
# late (within the core's 48-hour dedupe window) give late reports, supplements and unassessed records.
CONFIG = Config.from_mapping({"lvtr": {"cash_threshold": "500", "individual_domestic_threshold": "2000",
                                       "late_days": 0.5}})
HEARTBEAT = orjson.dumps({"type": "account", "event_id": "heartbeat", "ts": "2100-01-01T00:00:00+08:00",
                          "account_id": "amlwatch-heartbeat", "action": "register"})


def late_trades(lines: list[bytes]) -> list[bytes]:
    """Copies of the stream's last paid trades dated 12 to 42 hours before its end, in steps of 3 hours, on
    one token: they reach the worker in the file's order (a supplement's running total depends on it, and
    late trades on different input partitions have no order but their arrival)."""
    events = []
    for raw in lines:
        try:
            events.append((parse_event(raw), raw))
        except BadRecord:
            continue
    last = max(events, key=lambda e: e[0].t)[0]
    trades = [orjson.loads(raw) for event, raw in events if event.type == "trade" and event.paid]
    out = []
    token = {"collection_id": trades[-1]["collection_id"], "token_id": trades[-1]["token_id"]}
    for n, record in enumerate(trades[-11:]):
        ts = datetime.fromisoformat(last.ts) - timedelta(hours=12 + 3 * n)
        record.update(event_id=f"late-{n}", trade_id=f"late-{n}", ts=ts.isoformat(timespec="milliseconds"),
                      price="1500.00", **token)
        out.append(orjson.dumps(record))
    return out


def replay_reports(lines: list[bytes]) -> list[dict]:
    sink = ListSink()
    monitor = ReportingMonitor(build_monitor(CONFIG, with_model=False), CONFIG, sink, ratings=False)
    replay(enumerate(lines, 1), monitor, lambda alerts: None, DeadLetterFile(None))
    return sink.records


def comparable(records: list[dict]) -> dict[str, dict]:
    """By report id (consumers upsert by it); `watermark` says where the emitting process was, which is
    replay's latest event time and a partition's low watermark in the worker."""
    return {r["report_id"]: {k: v for k, v in r.items() if k != "watermark"} for r in records}


def take_all(pipeline: InMemoryPipeline, crashes: bool = True) -> None:
    """Everything produced (or to be read again) so far through both stages, with crashes on the way if
    `crashes` (`run` without its final crashes, which assume the stream ended with the heartbeat)."""
    while pipeline.step_router() or any(pipeline.queues.values()):
        for _ in range(3):
            pipeline.step_worker(restart=crashes and pipeline.rng.random() < 0.05)
    pipeline.drain_all()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_worker_stages_give_the_replay_reports_including_late_ones(seed):
    lines = make_stream(seed=seed, trades=900, hours=120)
    late = late_trades(lines)
    want = comparable(replay_reports(lines + late + [HEARTBEAT]))
    pipeline = InMemoryPipeline(CONFIG, input_partitions=3, work_partitions=4, seed=seed)
    pipeline.produce(lines)
    take_all(pipeline)
    pipeline.produce(late)
    take_all(pipeline)
    # Only then the heartbeat: produced with the late trades, it could pass them (a caught-up source does
    # not hold the others back) and close their days first, which a replay of the file does not.
    pipeline.produce([HEARTBEAT])
    pipeline.run()
    take_all(pipeline, crashes=False)         # what the routers' last crashes left to read again
    got = comparable(pipeline.reports)
    assert got.keys() == want.keys(), (sorted(want.keys() - got.keys())[:3], sorted(got.keys() - want.keys())[:3])
    assert got == want
    kinds = {(r["record_type"], r["message_kind"] if "message_kind" in r else "", r.get("late"))
             for r in want.values()}
    assert ("lvtr", "normal", False) in kinds and ("lvtr", "supplement", True) in kinds
    assert ("lvtr_late_unassessed", "", None) in kinds
    assert len(pipeline.reports) > len(want), "crashes raised some reports again, under the same ids"


def test_a_keyed_partition_snapshot_keeps_its_open_days():
    """The aggregator's totals travel in the stage-2 snapshot: a restored partition closes the same days."""
    lines = make_stream(seed=4, trades=400, hours=60)
    pipeline = InMemoryPipeline(CONFIG, input_partitions=2, work_partitions=2, seed=4)
    pipeline.saving = False
    pipeline.produce(lines)
    while pipeline.step_router() or any(pipeline.queues.values()):
        for name in list(pipeline.queues):
            pipeline.step_worker(restart=False)
    proc = pipeline.procs[("keyed", 0)]
    assert proc.lvtr.open, "open days to carry over"
    restored = KeyedProcessor.restore(proc.snapshot(), build_stage_monitor(CONFIG, 2, False))
    assert restored.lvtr.open.keys() == proc.lvtr.open.keys()
    assert restored.lvtr.watermark == proc.lvtr.watermark
    assert restored.lvtr.owns("x") == proc.lvtr.owns("x")
    assert restored.lvtr.config is CONFIG.lvtr, "the restoring worker's config, not the snapshot's copy"
    assert comparable(restored.lvtr.flush()) == comparable(proc.lvtr.flush())
