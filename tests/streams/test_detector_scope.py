"""Detectors declare their scope; the streaming stages route by it, with no list of names in streams/.

A new account-scoped detector added to the rule list runs in the account-keyed stage and raises each
alert once, on its owner's partition, giving the replay's alerts, with nothing changed in streams/.
"""

from __future__ import annotations

import pytest
from support.pipeline import InMemoryPipeline, replay_ids
from support.streamgen import make_stream

import amlwatch.detectors.monitor as monitor_module
from amlwatch.config import Config
from amlwatch.detectors.base import Detector, DetectorScopeError
from amlwatch.detectors.monitor import Monitor
from amlwatch.detectors.windows import KeyedWindow
from amlwatch.streams.processors import build_stage_monitor


class ManyCollectionsBuyer(Detector):
    """An account buying in several collections within a day: its state is keyed by the buyer's own
    trades across collections, which no single collection-keyed partition sees."""

    name = "test.many_collections_buyer"
    typology = "speculation"
    scope = "account"

    def __init__(self):
        self.window = KeyedWindow(86_400.0, 64)

    def observe(self, view):
        trade = view.trade
        if not trade.paid:
            return []
        self.window.add(trade.buyer_id, trade.t, trade)
        trades = [entry[1] for entry in self.window.recent(trade.buyer_id, trade.t)]
        if len({t.collection_id for t in trades}) < 3:
            return []
        return [self.alert(trade, 0.5, f"{trade.buyer_id} bought in 3 collections in a day", {}, trades,
                           accounts=[trade.buyer_id])]

    def evict(self, now):
        self.window.evict(now)


@pytest.fixture
def with_new_detector(monkeypatch):
    rules = monitor_module.rule_detectors
    monkeypatch.setattr(monitor_module, "rule_detectors",
                        lambda *args: rules(*args) + [ManyCollectionsBuyer()])


def names(monitor) -> set[str]:
    return {d.name for d in monitor.detectors}


def test_each_stage_runs_the_detectors_of_its_scopes():
    config = Config()
    one, two = names(build_stage_monitor(config, 1, False)), names(build_stage_monitor(config, 2, False))
    # Pair repeat weighs a pair against each account's trades in the collection: stage 1 sees those.
    assert two == {"structuring.near_threshold"}
    assert "wash.pair_repeat" in one
    assert not one & two and one | two == names(Monitor(config))


def test_only_a_stage_with_collection_scoped_detectors_keeps_the_token_ledger():
    """The account stage sees a token's trades only where its accounts trade: a ledger there would be a
    partial history nothing reads, costing every trade a record and every snapshot a month of them."""
    from amlwatch.events import BadRecord, parse_event

    config = Config()
    stages = {stage: build_stage_monitor(config, stage, False) for stage in (1, 2, 3)}
    trades = []
    for line in make_stream(seed=5, trades=300, hours=48):
        try:
            trades.append(parse_event(line))
        except BadRecord:            # the stream's deliberate bad records
            continue
    for monitor in stages.values():
        for event in trades:
            monitor.observe(event)
    assert stages[1].ledger.transfers.entries() > 0 and len(stages[1].ledger.activity) > 0
    for stage in (2, 3):
        ledger = stages[stage].ledger
        assert (len(ledger.transfers), len(ledger.last_transfer), len(ledger.activity)) == (0, 0, 0), stage


def test_a_new_account_scoped_detector_lands_in_the_account_stage(with_new_detector):
    config = Config()
    assert ManyCollectionsBuyer.name in names(build_stage_monitor(config, 2, False))
    assert ManyCollectionsBuyer.name not in names(build_stage_monitor(config, 1, False))
    lines = make_stream(seed=4, trades=700, hours=120)
    pipeline = InMemoryPipeline(config, input_partitions=3, work_partitions=4, seed=4)
    pipeline.saving = False                 # no snapshots: the detector's state format is not the point
    pipeline.produce(lines + [_heartbeat()])
    got = pipeline.run()
    want = replay_ids(lines, config)
    raised = [a for a in pipeline.alerts if a.detector == ManyCollectionsBuyer.name]
    assert raised, "the stream has buyers in several collections"
    assert len(raised) == len({a.alert_id for a in raised}), "raised once, on the owner's partition"
    assert got == want


def test_a_scope_no_stage_can_serve_is_refused_at_start(monkeypatch):
    class RegistryAccountDetector(ManyCollectionsBuyer):
        name = "test.registry_account"
        needs_registry = True

    rules = monitor_module.rule_detectors
    monkeypatch.setattr(monitor_module, "rule_detectors", lambda *args: rules(*args) + [RegistryAccountDetector()])
    with pytest.raises(DetectorScopeError, match="needs_registry") as error:
        Monitor(Config())
    assert error.value.field == "test.registry_account"


def _heartbeat() -> bytes:
    import orjson

    return orjson.dumps({"type": "account", "event_id": "heartbeat", "ts": "2100-01-01T00:00:00+08:00",
                         "account_id": "amlwatch-heartbeat", "action": "register"})
