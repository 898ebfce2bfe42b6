"""prohibited_asset: financial asset classes, fractional tokens, unknown collections (docs/DETECTORS.md)."""

from __future__ import annotations

import pytest
from support.events import COLLECTION, ISSUER, at, collection, none_of, one, primary, run, trade, world

FINANCIAL = "asset.financial"
UNREGISTERED = "asset.unregistered_collection"

FINANCIAL_CLASSES = ["security", "insurance", "loan", "precious_metal", "fund_share"]
PERMITTED_CLASSES = ["art", "music", "video", "ticket", "game_item", "ip_license", "cultural_relic"]


def _split(alerts):
    launch = [a for a in alerts if a.detector == FINANCIAL and not a.trade_ids]
    trades = [a for a in alerts if a.detector == FINANCIAL and a.trade_ids]
    return launch, trades


@pytest.mark.parametrize("asset_class", FINANCIAL_CLASSES)
def test_financial_asset_class_is_critical(asset_class):
    events = world("acc-b", asset_class=asset_class)
    sale = primary("acc-b", at(minutes=1))
    launch, trades = _split(run(events + [sale]))
    assert len(launch) == 1 and len(trades) == 1
    alert = trades[0]
    assert alert.typology == "prohibited_asset"
    assert alert.severity == "critical"
    assert alert.trade_ids == [sale["trade_id"]]
    assert alert.collection_id == COLLECTION
    assert f"asset class {asset_class}" in alert.reason and COLLECTION in alert.reason
    assert alert.evidence["asset_class"] == asset_class
    # The launch itself is reported once, with no trades.
    assert launch[0].severity == "critical"
    assert launch[0].token_ids == [] and launch[0].accounts == [ISSUER]
    assert launch[0].collection_id == COLLECTION
    assert f"asset class {asset_class}" in launch[0].reason


def test_fractional_collection_is_critical():
    events = world("acc-b", fractional=True)
    sale = primary("acc-b", at(minutes=1))
    launch, trades = _split(run(events + [sale]))
    assert len(launch) == 1 and len(trades) == 1
    assert trades[0].severity == "critical"
    assert trades[0].trade_ids == [sale["trade_id"]]
    assert "fractional shares" in trades[0].reason
    assert "asset class" not in trades[0].reason
    assert trades[0].evidence["fractional"] is True


def test_collection_updated_to_a_financial_class_is_flagged_on_trade_not_relaunch():
    events = world("acc-b") + [collection(t=at(minutes=-5), action="update", asset_class="loan")]
    sale = primary("acc-b", at(minutes=1))
    launch, trades = _split(run(events + [sale]))
    assert launch == []
    assert [a.trade_ids for a in trades] == [[sale["trade_id"]]]


@pytest.mark.parametrize("asset_class", PERMITTED_CLASSES)
def test_non_financial_whole_tokens_are_fine(asset_class):
    events = world("acc-b", asset_class=asset_class)
    sale = primary("acc-b", at(minutes=1))
    assert run(events + [sale]) == []


def test_trade_in_unregistered_collection_is_low():
    sale = trade("acc-s", "acc-b", at(minutes=1), collection_id="col-mystery", token_id="tok-m")
    alert = one(run(world("acc-s", "acc-b") + [sale]), UNREGISTERED)
    assert alert.typology == "prohibited_asset"
    assert alert.severity == "low"
    assert alert.trade_ids == [sale["trade_id"]]
    assert alert.collection_id == "col-mystery"
    assert "col-mystery" in alert.reason
    none_of(run(world("acc-s", "acc-b") + [sale]), "identity")


def test_collection_launched_within_grace_is_not_unregistered():
    sale = trade("acc-s", "acc-b", at(minutes=1), collection_id="col-late", token_id="tok-m")
    late = collection("col-late", at(minutes=6))
    assert run(world("acc-s", "acc-b") + [sale, late]) == []


def test_late_collection_launch_that_is_financial_still_flags_the_trade():
    sale = trade("acc-s", "acc-b", at(minutes=1), collection_id="col-late", token_id="tok-m")
    late = collection("col-late", at(minutes=6), asset_class="security")
    launch, trades = _split(run(world("acc-s", "acc-b") + [sale, late]))
    assert len(launch) == 1
    assert [a.trade_ids for a in trades] == [[sale["trade_id"]]]
