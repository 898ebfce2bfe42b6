"""The simulator: deterministic bytes, contract-valid events in event-time order, every scenario present."""

from __future__ import annotations

import gzip

import orjson
import pytest

from amlwatch.events import TradeEvent, parse_event
from amlwatch.simulator import simulate

TYPOLOGIES = {"wash_trading", "speculation", "identity_mismatch", "prohibited_settlement", "prohibited_asset",
              "structuring"}
HARD_NEGATIVES = {"shared_public_ip", "family_gifts", "fast_sellout", "gradual_runup", "late_registry",
                  "large_single_trade", "spaced_high_value", "quick_small_resale", "lock_respected"}
FILES = ("events.jsonl.gz", "labels.jsonl", "negatives.jsonl")


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    summary = simulate(out, seed=5, days=10, accounts=600)
    return out, summary


def _events(out):
    return [parse_event(line) for line in gzip.decompress((out / "events.jsonl.gz").read_bytes()).splitlines()]


def _records(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(stream, tmp_path):
    out, summary = stream
    assert simulate(tmp_path / "again", seed=5, days=10, accounts=600) == summary
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    simulate(tmp_path / "other", seed=6, days=10, accounts=600)
    assert (tmp_path / "other" / "events.jsonl.gz").read_bytes() != (out / "events.jsonl.gz").read_bytes()


def test_every_line_parses_in_event_time_order_with_unique_ids(stream):
    out, summary = stream
    events = _events(out)
    assert len(events) == summary["events"]
    assert all(a.t <= b.t for a, b in zip(events, events[1:]))
    assert len({e.event_id for e in events}) == len(events)
    assert {e.type for e in events} == {"account", "collection", "trade"}
    assert all(e.ts.endswith("+08:00") and len(e.ts) == len("2026-03-01T00:00:00.000+08:00") for e in events)
    trades = [e for e in events if isinstance(e, TradeEvent)]
    assert len(trades) == summary["trades"]
    assert len({t.trade_id for t in trades}) == len(trades)


def test_the_three_event_types_are_interleaved(stream):
    out, _ = stream
    kinds = [e.type for e in _events(out)]
    first_trade = kinds.index("trade")
    assert "account" in kinds[first_trade:] and "collection" in kinds[first_trade:]


def test_every_typology_and_hard_negative_is_present_and_refers_to_real_trades(stream):
    out, summary = stream
    trade_ids = {e.trade_id for e in _events(out) if isinstance(e, TradeEvent)}
    labels = _records(out / "labels.jsonl")
    negatives = _records(out / "negatives.jsonl")
    assert {r["typology"] for r in labels} == TYPOLOGIES
    assert {r["scenario"] for r in negatives} == HARD_NEGATIVES
    assert {r["trade_id"] for r in labels} <= trade_ids
    assert {r["trade_id"] for r in negatives} <= trade_ids
    assert not {r["trade_id"] for r in labels} & {r["trade_id"] for r in negatives}
    assert set(summary["labelled trades"]) == TYPOLOGIES
    assert set(summary["hard negatives"]) == HARD_NEGATIVES


def test_default_size_has_forty_labelled_trades_per_typology(tmp_path):
    summary = simulate(tmp_path, seed=9, days=30, accounts=2000)
    assert all(count >= 40 for count in summary["labelled trades"].values()), summary["labelled trades"]
    assert summary["events"] >= 50_000
