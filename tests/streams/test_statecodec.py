"""Worker state snapshots never run code they name, refuse other code's state cleanly, and restore exactly."""

from __future__ import annotations

import os
import pickle
import struct
import zlib

import orjson
import pytest
from support.streamgen import make_stream

from amlwatch.config import Config
from amlwatch.detectors.speculation import PriceSpikeDetector
from amlwatch.streams import statecodec
from amlwatch.streams.codecs import encode_event, encode_marker
from amlwatch.streams.processors import KeyedProcessor, WorkProcessor, build_stage_monitor
from amlwatch.streams.statecodec import StateMismatch, StateRefused

KEY = b"k" * 32
STREAM = make_stream(trades=400)


def new_processor(config: Config = Config()) -> WorkProcessor:
    return WorkProcessor(0, build_stage_monitor(config, 1, False), ["in:0"], "keyed", 2)


def feed(proc, lines, start: int = 0) -> list:
    alerts = []
    for offset, raw in enumerate(lines, start):
        a, _ = proc.handle(offset, encode_event("in:0", offset, raw))
        alerts.extend(a)
        a, _ = proc.drain()
        alerts.extend(a)
    return alerts


def finish(proc) -> list:
    alerts, _ = proc.handle(100_000, encode_marker("in:0", 4102444800.0, True))
    more, _ = proc.drain()
    return alerts + more + proc.monitor.flush()


def _content(alert) -> dict:
    return {k: v for k, v in alert.to_dict().items() if k != "detected_at"}


def fed_processor() -> WorkProcessor:
    proc = new_processor()
    feed(proc, STREAM[:200])
    return proc


class SystemCall:
    """What an attacker writes to the changelog: unpickling it calls os.system."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _envelope(payload: bytes, header: dict, key: bytes | None = None) -> bytes:
    """An envelope around any pickle, as someone who knows the format (but maybe not the key) writes it."""
    head = orjson.dumps(header)
    body = struct.pack(">4sBBI", b"AMLS", statecodec.FORMAT, 1 if key else 0, len(head)) + head + zlib.compress(payload)
    if key:
        import hashlib
        import hmac
        body += hmac.digest(key, body, hashlib.sha256)
    return body


def _restore(blob: bytes):
    return WorkProcessor.restore(blob, build_stage_monitor(Config(), 1, False))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "the payload ran"


def test_the_crafted_os_system_payload_of_the_old_format_is_refused_and_not_run(marker, monkeypatch):
    monkeypatch.delenv(statecodec.KEY_ENV, raising=False)
    old_format = zlib.compress(pickle.dumps(SystemCall(f"touch {marker}"), protocol=5))
    pickle.loads(zlib.decompress(old_format))        # the payload is live: the old restore ran it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(StateRefused, match="not an amlwatch state envelope"):
        _restore(old_format)


def test_the_payload_inside_a_well_formed_envelope_is_refused_by_the_allow_list(marker, monkeypatch, caplog):
    monkeypatch.delenv(statecodec.KEY_ENV, raising=False)
    blob = _envelope(pickle.dumps(SystemCall(f"touch {marker}"), protocol=5),
                     {"schema": statecodec.STATE_SCHEMA, "layout": {}, "config": Config().hash})
    with pytest.raises(StateRefused, match="posix.system|os.system"):
        _restore(blob)
    refused = [r for r in caplog.records if r.getMessage() == "state snapshot refused"]
    assert refused and refused[0].field == "class"


def test_with_a_state_key_a_forged_envelope_is_refused_before_its_payload_is_read(marker, monkeypatch):
    monkeypatch.setenv(statecodec.KEY_ENV, KEY.decode())
    payload = pickle.dumps(SystemCall(f"touch {marker}"), protocol=5)
    header = {"schema": statecodec.STATE_SCHEMA, "layout": {}, "config": Config().hash}
    for forged in (_envelope(payload, header), _envelope(payload, header, key=b"x" * 32)):
        with pytest.raises(StateRefused, match="MAC|requires a MAC"):
            _restore(forged)


@pytest.mark.parametrize("module, name", [
    ("builtins", "eval"), ("subprocess", "Popen"), ("amlwatch.cli", "main"),
    ("amlwatch.detectors.monitor", "rule_detectors"),        # a function inside an allowed module
    ("amlwatch.detectors.monitor", "Monitor.observe"),       # a dotted attribute of an allowed class
    ("amlwatch.records.retention", "Retention"), ("amlwatch.eventsx", "TradeEvent"),
    ("numpy", "load"),
])
def test_only_state_classes_are_handed_out(module, name):
    with pytest.raises(StateRefused, match="not a state class"):
        statecodec._find_state_class(module, name)


def test_a_genuine_snapshot_and_authentic_restore_give_the_same_alerts_as_no_restart(monkeypatch):
    monkeypatch.setenv(statecodec.KEY_ENV, KEY.decode())
    uninterrupted = new_processor()
    expected = feed(uninterrupted, STREAM) + finish(uninterrupted)

    first = new_processor()
    got = feed(first, STREAM[:200])
    restored = _restore(first.snapshot())
    got += feed(restored, STREAM[200:], start=200) + finish(restored)
    assert expected, "the stream raises alerts"
    assert [a.alert_id for a in got] == [a.alert_id for a in expected]
    assert [_content(a) for a in got] == [_content(a) for a in expected]


def test_stage_two_round_trips_too(monkeypatch):
    monkeypatch.delenv(statecodec.KEY_ENV, raising=False)
    proc = KeyedProcessor(1, 2, build_stage_monitor(Config(), 2, False), ["w0"])
    proc.last_seq["w0"] = 41
    restored = KeyedProcessor.restore(proc.snapshot(), build_stage_monitor(Config(), 2, False))
    assert restored.last_seq == {"w0": 41} and restored.partitions == 2
    with pytest.raises(StateRefused, match="not a WorkProcessor"):
        WorkProcessor.restore(proc.snapshot(), build_stage_monitor(Config(), 2, False))


def test_a_detector_that_gained_an_attribute_refuses_old_state_cleanly(monkeypatch):
    blob = fed_processor().snapshot()
    original = PriceSpikeDetector.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.new_window = {}

    monkeypatch.setattr(PriceSpikeDetector, "__init__", init)
    with pytest.raises(StateMismatch, match="PriceSpikeDetector lacks \\['new_window'\\]"):
        _restore(blob)


def test_a_bumped_state_version_refuses_old_state(monkeypatch):
    blob = fed_processor().snapshot()
    monkeypatch.setattr(PriceSpikeDetector, "state_version", 2, raising=False)
    with pytest.raises(StateMismatch, match="PriceSpikeDetector state_version 0 -> 2"):
        _restore(blob)


def test_a_class_that_is_gone_or_whose_fields_changed_is_a_mismatch_not_an_import_error(monkeypatch):
    blob = fed_processor().snapshot()
    header, _ = statecodec.read_header(blob)
    assert header["layout"]["amlwatch.events:TradeEvent"]["fields"][:3] == ["event_id", "ts", "t"]
    import amlwatch.detectors.speculation as speculation

    monkeypatch.delattr(speculation, "PriceSpikeDetector")
    with pytest.raises(StateMismatch, match="PriceSpikeDetector is gone"):
        _restore(blob)
    monkeypatch.undo()

    layout = dict(header["layout"])
    layout["amlwatch.events:TradeEvent"] = {"version": 0, "fields": ["event_id", "t", "ts"]}
    raw = zlib.decompress(statecodec.read_header(blob)[1])
    with pytest.raises(StateMismatch, match="TradeEvent fields"):
        _restore(_envelope(raw, {**header, "layout": layout}))


def test_a_snapshot_of_an_older_schema_is_refused(monkeypatch):
    blob = fed_processor().snapshot()
    monkeypatch.setattr(statecodec, "STATE_SCHEMA", statecodec.STATE_SCHEMA + 1)
    with pytest.raises(StateMismatch, match="state schema"):
        _restore(blob)


def test_a_corrupt_or_truncated_snapshot_is_refused():
    blob = fed_processor().snapshot()
    for broken in (blob[:10], blob[:-100], blob[:40] + b"\x00" * 8 + blob[48:]):
        with pytest.raises((StateRefused, StateMismatch)):
            _restore(broken)


def test_a_short_state_key_is_a_typed_error():
    with pytest.raises(statecodec.StateError, match="at least 16 bytes"):
        statecodec.state_key({statecodec.KEY_ENV: "short"})
    assert statecodec.state_key({}) is None


class ListsFromFiles:
    """Stands for a watchlist: its own pickling would read files on restore, and its class is no state class."""

    def __init__(self, source: str):
        self.source = source

    def __reduce__(self):
        return os.system, ("false",)


def test_a_detectors_watchlist_is_supplied_by_the_restoring_worker(monkeypatch):
    monkeypatch.delenv(statecodec.KEY_ENV, raising=False)
    proc = fed_processor()
    screen = _watchlist_detector(proc.monitor)
    screen.watchlist = ListsFromFiles("old")
    fresh = build_stage_monitor(Config(), 1, False)
    _watchlist_detector(fresh).watchlist = ListsFromFiles("current")
    restored = WorkProcessor.restore(proc.snapshot(), fresh)
    assert _watchlist_detector(restored.monitor).watchlist is _watchlist_detector(fresh).watchlist


def _watchlist_detector(monitor):
    return next(d for d in monitor.detectors if d.name == "watchlist.hit")
