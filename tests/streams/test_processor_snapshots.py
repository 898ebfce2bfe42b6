"""A work partition's snapshot: its state by value, the config and the anomaly model by reference."""

from __future__ import annotations

import dataclasses
import pickle
import zlib

import pytest
from support.streamgen import make_stream

from amlwatch.config import Config
from amlwatch.streams.codecs import encode_event, encode_marker
from amlwatch.streams.processors import StateMismatch, WorkProcessor, build_stage_monitor
from amlwatch.streams.statecodec import read_header


def fed_processor(config: Config, with_model: bool) -> WorkProcessor:
    proc = WorkProcessor(0, build_stage_monitor(config, 1, with_model), ["in:0"], "keyed", 2)
    for offset, raw in enumerate(make_stream(trades=300)):
        proc.handle(offset, encode_event("in:0", offset, raw))
    proc.handle(10_000, encode_marker("in:0", 4102444800.0, True))
    proc.drain()
    return proc


def test_restore_takes_the_config_and_model_of_the_restoring_worker():
    config = Config()
    proc = fed_processor(config, with_model=True)
    model = next(d.model for d in proc.monitor.detectors if getattr(d, "model", None) is not None)
    blob = proc.snapshot()
    assert b"AnomalyModel" not in zlib.decompress(read_header(blob)[1]), "the model (over 1 MB) is not copied into every snapshot"

    fresh = build_stage_monitor(config, 1, with_model=True)
    restored = WorkProcessor.restore(blob, fresh)
    fresh_model = next(d.model for d in fresh.detectors if getattr(d, "model", None) is not None)
    assert restored.monitor.config is fresh.config
    assert next(d.model for d in restored.monitor.detectors if getattr(d, "model", None) is not None) is fresh_model
    assert fresh_model is not model
    assert restored.events == proc.events and restored.offset == proc.offset
    assert restored.last_seq == proc.last_seq and restored.forwarded == proc.forwarded


def test_a_snapshot_of_another_detection_config_is_refused():
    proc = fed_processor(Config(), with_model=False)
    stricter = dataclasses.replace(Config(), structuring=dataclasses.replace(Config().structuring, min_trades=3))
    with pytest.raises(StateMismatch, match="new \\[kafka\\] app_id"):
        WorkProcessor.restore(proc.snapshot(), build_stage_monitor(stricter, 1, with_model=False))


def test_other_objects_of_the_config_type_are_kept_by_value():
    proc = fed_processor(Config(), with_model=False)
    proc.note = Config(kafka=dataclasses.replace(Config().kafka, app_id="elsewhere"))
    restored = WorkProcessor.restore(proc.snapshot(), build_stage_monitor(Config(), 1, with_model=False))
    assert restored.note.kafka.app_id == "elsewhere"
    assert pickle.loads(pickle.dumps(restored.note)) == proc.note


def test_a_snapshot_taken_in_a_forked_child_restores_like_one_taken_inline():
    import asyncio

    from amlwatch.streams.snapshots import snapshot_in_child

    proc = fed_processor(Config(), with_model=False)
    blob = asyncio.run(snapshot_in_child(proc))
    restored = WorkProcessor.restore(blob, build_stage_monitor(Config(), 1, with_model=False))
    assert (restored.offset, restored.events, restored.last_seq) == (proc.offset, proc.events, proc.last_seq)
    assert restored.monitor.watermark == proc.monitor.watermark


def test_a_child_that_cannot_pickle_the_state_is_reported():
    import asyncio

    from amlwatch.streams.snapshots import SnapshotFailed, snapshot_in_child

    class Unpicklable:
        def snapshot(self) -> bytes:
            raise RuntimeError("cannot")

    with pytest.raises(SnapshotFailed):
        asyncio.run(snapshot_in_child(Unpicklable()))
