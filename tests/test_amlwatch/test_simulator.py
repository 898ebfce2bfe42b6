"""The simulator: deterministic bytes, contract-valid events in event-time order, every scenario present."""

from __future__ import annotations

import dataclasses
import gzip

import orjson
import pytest

from collections import Counter, defaultdict
from decimal import Decimal

from amlwatch.config import Config, IdentityConfig, StructuringConfig
from amlwatch.events import TradeEvent, parse_event
from amlwatch.simulator import simulate

TYPOLOGIES = {"wash_trading", "speculation", "identity_mismatch", "prohibited_settlement", "prohibited_asset",
              "structuring"}
HARD_NEGATIVES = {"shared_public_ip", "family_gifts", "fast_sellout", "gradual_runup", "late_registry",
                  "large_single_trade", "spaced_high_value", "quick_small_resale", "lock_respected",
                  "bulk_sweep", "honest_buyback", "market_maker"}
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


def _honest_secondary(out):
    labelled = {r["trade_id"] for r in _records(out / "labels.jsonl")}
    return [e for e in _events(out) if isinstance(e, TradeEvent) and e.kind == "secondary" and e.paid
            and e.trade_id not in labelled]


def test_honest_prices_cluster_on_a_floor_with_a_heavy_tail_of_rarity_premiums(stream):
    out, _ = stream
    by_collection = defaultdict(list)
    for trade in _honest_secondary(out):
        by_collection[trade.collection_id].append(float(trade.price))
    ratios = []
    for prices in by_collection.values():
        for i, price in enumerate(prices):
            near = sorted(prices[max(0, i - 20): i + 20])
            ratios.append(price / near[len(near) // 10])
    near_floor = sum(r < 1.15 for r in ratios) / len(ratios)
    assert 0.55 < near_floor < 0.9, near_floor
    assert sum(r > 5 for r in ratios) / len(ratios) > 0.01


def test_collections_rise_and_fall(stream):
    out, _ = stream
    moves = []
    by_collection = defaultdict(list)
    for trade in _honest_secondary(out):
        by_collection[trade.collection_id].append((trade.t, float(trade.price)))
    for trades in by_collection.values():
        if len(trades) < 60:
            continue
        head = sorted(p for _, p in trades[:20])[2]
        tail = sorted(p for _, p in trades[-20:])[2]
        moves.append(tail / head)
    assert any(m > 1.25 for m in moves) and any(m < 0.8 for m in moves), sorted(moves)


def test_market_makers_trade_with_many_counterparties_both_ways(stream):
    out, _ = stream
    counterparties = defaultdict(set)
    directions = defaultdict(set)
    for trade in _honest_secondary(out):
        counterparties[trade.buyer_id].add(trade.seller_id)
        counterparties[trade.seller_id].add(trade.buyer_id)
        directions[frozenset((trade.buyer_id, trade.seller_id))].add(trade.buyer_id)
    busiest = max(len(c) for c in counterparties.values())
    assert busiest >= 50
    assert sum(len(d) == 2 for d in directions.values()) >= 10


def test_honest_buybacks_return_a_token_to_its_earlier_owner(stream):
    out, _ = stream
    buybacks = {r["trade_id"] for r in _records(out / "negatives.jsonl") if r["scenario"] == "honest_buyback"}
    owners = defaultdict(list)
    returned = 0
    for trade in (e for e in _events(out) if isinstance(e, TradeEvent)):
        if trade.trade_id in buybacks and trade.buyer_id in owners[trade.token_id]:
            returned += 1
        owners[trade.token_id].append(trade.seller_id)
    assert buybacks and returned == len(buybacks)


def test_scenarios_follow_the_configured_thresholds(tmp_path):
    """The structuring band and the registry grace come from the config, not a copy of its defaults."""
    config = dataclasses.replace(Config(), structuring=StructuringConfig(reporting_threshold=Decimal("20000")),
                                 identity=IdentityConfig(registry_grace_minutes=60.0))
    simulate(tmp_path, seed=3, days=6, accounts=300, config=config)
    prices = {e.trade_id: float(e.price) for e in _events(tmp_path) if isinstance(e, TradeEvent)}
    split = [prices[r["trade_id"]] for r in _records(tmp_path / "labels.jsonl") if r["scenario"] == "split_purchases"]
    assert split and all(16_000 <= p < 20_000 for p in split), split


def test_structuring_legs_pay_in_digital_rmb(stream):
    out, _ = stream
    split = {r["trade_id"] for r in _records(out / "labels.jsonl") if r["typology"] == "structuring"}
    methods = Counter(e.payment_method for e in _events(out) if isinstance(e, TradeEvent) and e.trade_id in split)
    assert set(methods) == {"digital_rmb"}
