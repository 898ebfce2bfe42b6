"""Large-value reports through the two streaming stages (in memory, with crashes) equal the replay's.

Stage 1 puts each party's payment kind and hashes on the forwarded trade, stage 2 aggregates the
accounts it owns and closes days on the low watermark. Late trades are produced after the rest of the
stream was taken (so they are late in the worker as in the replay, where they follow it in the file):
they give the same late reports, supplements and unassessed records.
"""

from __future__ import annotations

import orjson
import pytest
from support.pipeline import InMemoryPipeline
from support.reporting import HEARTBEAT, comparable, late_trades, replay_reports
from support.streamgen import make_stream

from amlwatch.config import Config
from amlwatch.streams.processors import KeyedProcessor, build_stage_monitor

# Low lines so a small stream yields many reports; closed days kept half a day, so trades 12 to 42 hours
# late (within the core's 48-hour dedupe window) give late reports, supplements and unassessed records.
LVTR = {"cash_threshold": "500", "individual_domestic_threshold": "2000", "late_days": 0.5}
CONFIG = Config.from_mapping({"lvtr": LVTR})


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_worker_stages_give_the_replay_reports_including_late_ones(seed):
    lines = make_stream(seed=seed, trades=900, hours=120)
    late = late_trades(lines)
    want = comparable(replay_reports(lines + late + [HEARTBEAT], CONFIG))
    pipeline = InMemoryPipeline(CONFIG, input_partitions=3, work_partitions=4, seed=seed)
    pipeline.run_in_steps(lines, late, HEARTBEAT)   # the heartbeat last, or it could close the late days first
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
    assert proc.lvtr.packed and restored.lvtr.packed == proc.lvtr.packed, "closed days' trades, packed"
    assert restored.lvtr.watermark == proc.lvtr.watermark
    assert restored.lvtr.owns("x") == proc.lvtr.owns("x")
    assert restored.lvtr.config is CONFIG.lvtr, "the restoring worker's config, not the snapshot's copy"
    assert comparable(restored.lvtr.flush()) == comparable(proc.lvtr.flush())


def far_future_trade(lines: list[bytes]) -> bytes:
    """A copy of the stream's first paid trade dated 2150 (a mistyped year): the core refuses it for skew."""
    record = next(orjson.loads(raw) for raw in lines if b'"trade_id"' in raw and b'"price"' in raw)
    record.update(event_id="far-future", trade_id="far-future", ts="2150-01-01T00:00:00.000+08:00")
    return orjson.dumps(record)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_far_future_trade_leaves_the_reports_equal_to_the_replays(seed):
    """The refused trade moves no progress marker: its input partition goes on holding the others back
    (else its later trades arrive behind what the others released, and are late) and the days stay open
    until the stream passes them, as in replay."""
    lines = make_stream(seed=seed, trades=900, hours=120)
    half = len(lines) // 4
    stream = lines[:half] + [far_future_trade(lines)] + lines[half:]
    config = Config.from_mapping({"lvtr": LVTR, "kafka": {"deadletter_topic": "dead"}})
    want = comparable(replay_reports(stream + [HEARTBEAT], config))
    pipeline = InMemoryPipeline(config, input_partitions=3, work_partitions=4, seed=seed)
    pipeline.produce(stream)
    pipeline.take_all()
    pipeline.produce([HEARTBEAT])
    pipeline.run()
    pipeline.take_all(crashes=False)
    got = comparable(pipeline.reports)
    assert not any(r.get("late") for r in want.values()), "an ordered stream: no late report in replay"
    assert got == want
    refused = [orjson.loads(out.value) for out in pipeline.dead if b"far-future" in out.value]
    assert refused and all("event_time_skew" in r["reason"] for r in refused)
