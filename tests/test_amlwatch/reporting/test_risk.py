"""Customer risk rating: inputs, levels, dispositions, linked accounts, peers, watchlist, explanations."""

from __future__ import annotations

import orjson
import pytest
from support.reporting import reporting_run
from support.events import account, at, id_of, trade, world

from amlwatch.config import Config
from amlwatch.errors import AmlwatchError
from amlwatch.reporting.risk import Dispositions, LabelsError


def _latest(records, kind="account"):
    latest = {}
    for r in records:
        if r["record_type"] == "risk_rating" and r["subject_kind"] == kind:
            latest[r["subject"]] = r
    return latest


def _rules(rating):
    return {r["rule"] for r in rating["reasons"]}


def _run(events, **kw):
    return reporting_run(events, ratings=True, detectors=True, **kw)


def test_verified_honest_accounts_are_low_and_unverified_ones_say_why():
    events = world("acc-s", "acc-b") + [account("acc-new", at(), kyc_level=1),
                                        trade("acc-s", "acc-b", at(hours=1))]
    ratings = _latest(_run(events)[0])
    assert ratings["acc-b"]["level"] == "low" and ratings["acc-b"]["reasons"] == []
    assert ratings["acc-new"]["level"] == "low" and _rules(ratings["acc-new"]) == {"kyc.unverified"}
    assert ratings["acc-b"]["ruleset"] == "2026.1"


def _structuring(buyer="acc-b"):
    """Cash-like (digital RMB) legs packed just under the 50,000 CNY cash line, one repeated counterparty."""
    return [trade("acc-s", buyer, at(hours=h), token_id=f"t{h}", price=p, method="digital_rmb")
            for h, p in ((1, "48500"), (2, "49200"), (3, "48900"))]


def test_alerts_raise_the_rating_and_every_rating_explains_itself():
    records, _, alerts = _run(world("acc-s", "acc-b") + _structuring())
    assert any(a.typology == "structuring" for a in alerts)
    rating = _latest(records)["acc-b"]
    assert "alerts.structuring" in _rules(rating)
    reason = next(r for r in rating["reasons"] if r["rule"] == "alerts.structuring")
    assert reason["points"] > 0 and "structuring alert" in reason["detail"]
    assert rating["score"] == sum(r["points"] for r in rating["reasons"])


def test_dismissed_alerts_count_nothing_and_confirmed_ones_count_double(tmp_path):
    events = world("acc-s", "acc-b") + _structuring()
    _, _, alerts = _run(events)
    trade_ids = {t for a in alerts if a.typology == "structuring" for t in a.trade_ids}
    dismissed, confirmed = tmp_path / "dismissed.jsonl", tmp_path / "labels.jsonl"
    dismissed.write_bytes(b"".join(orjson.dumps({"trade_id": t, "typology": "structuring",
                                                 "disposition": "false_positive"}) + b"\n" for t in trade_ids))
    confirmed.write_bytes(b"".join(orjson.dumps({"trade_id": t, "typology": "structuring"}) + b"\n" for t in trade_ids))
    open_points = _points(_latest(_run(events)[0])["acc-b"])
    assert "alerts.structuring" not in _rules(_latest(_run(events, dispositions=Dispositions.load(dismissed))[0])["acc-b"])
    confirmed_rating = _latest(_run(events, dispositions=Dispositions.load(confirmed))[0])["acc-b"]
    assert _points(confirmed_rating) == 2 * open_points and "confirmed" in _detail(confirmed_rating)


def _points(rating, rule="alerts.structuring"):
    return sum(r["points"] for r in rating["reasons"] if r["rule"] == rule)


def _detail(rating, rule="alerts.structuring"):
    return next(r["detail"] for r in rating["reasons"] if r["rule"] == rule)


def test_a_watchlist_block_makes_the_account_and_its_person_high(tmp_path):
    lists = tmp_path / "lists.jsonl"
    lists.write_bytes(orjson.dumps({"op": "add", "list": "block", "kind": "account", "value": "acc-b"}) + b"\n")
    config = Config.from_mapping({"watchlist": {"files": [str(lists)]}})
    records, _, _ = _run(world("acc-s", "acc-b") + [trade("acc-s", "acc-b", at(hours=1))], config=config)
    assert _latest(records)["acc-b"]["level"] == "high" and "watchlist.block" in _rules(_latest(records)["acc-b"])
    assert _latest(records, "person")[id_of("acc-b")]["level"] == "high"
    assert _latest(records)["acc-s"]["level"] == "low"


def test_linked_accounts_share_risk_through_the_national_id_and_the_person_is_the_worst():
    twin = account("acc-twin", at(minutes=1), id_hash=id_of("acc-b"))
    events = world("acc-s", "acc-b") + [twin] + _structuring("acc-b") + [trade("acc-s", "acc-twin", at(hours=5), token_id="z")]
    config = Config.from_mapping({"risk": {"alert_points": {"structuring": 30}}})
    records, _, _ = _run(events, config=config)
    accounts = _latest(records)
    assert accounts["acc-b"]["level"] == "high"
    assert {"linked.high"} <= _rules(accounts["acc-twin"]) and accounts["acc-twin"]["level"] == "medium"
    person = _latest(records, "person")[id_of("acc-b")]
    assert person["level"] == "high" and set(person["accounts"]) == {"acc-b", "acc-twin"}
    assert all(r["detail"].startswith("account acc-b:") for r in person["reasons"])


def test_activity_far_above_peers_is_a_reason_and_ordinary_activity_is_not():
    peers = [f"acc-p{n}" for n in range(25)]
    events = world("acc-s", "acc-big", *peers, t=at(days=-1))
    events += [trade("acc-s", p, at(hours=n * 0.1), token_id=f"p{n}", price="100") for n, p in enumerate(peers)]
    events += [trade("acc-s", "acc-big", at(hours=3), token_id="big", price="30000")]
    events += [account("acc-tick", at(days=1, hours=1)), trade("acc-s", "acc-big", at(days=1, hours=2), token_id="b2", price="10")]
    ratings = _latest(_run(events)[0])
    assert "activity.peers" in _rules(ratings["acc-big"])
    assert "activity.peers" not in _rules(ratings["acc-p3"])


def test_a_rating_is_published_only_when_it_changes():
    events = world("acc-s", "acc-b") + [trade("acc-s", "acc-b", at(hours=h), token_id=f"t{h}") for h in range(1, 6)]
    records, _, _ = _run(events)
    of_b = [r for r in records if r["record_type"] == "risk_rating" and r["subject"] == "acc-b"]
    assert len(of_b) == 1


def test_the_ruleset_version_and_thresholds_come_from_config():
    config = Config.from_mapping({"risk": {"version": "test-9", "kyc_unverified": 30, "medium_at": 25}})
    records, _, _ = _run([account("acc-new", at(), kyc_level=1)], config=config)
    rating = _latest(records)["acc-new"]
    assert rating["ruleset"] == "test-9" and rating["level"] == "medium"


@pytest.mark.parametrize("line, field", [("{oops", "<json>"), ("[1]", "<record>"), ('{"trade_id": "t-1"}', "typology"),
                                         ('{"typology": "wash_trading", "trade_id": 7}', "trade_id")])
def test_a_malformed_labels_line_is_refused_by_field_file_and_line(tmp_path, line, field):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"trade_id": "t-0", "typology": "wash_trading"}\n' + line + "\n")
    with pytest.raises(LabelsError) as caught:
        Dispositions.load(path)
    assert caught.value.field == field and caught.value.source == f"{path}:2"
    assert isinstance(caught.value, AmlwatchError) and isinstance(caught.value, ValueError)


def test_an_unreadable_labels_file_is_refused_by_name(tmp_path):
    with pytest.raises(LabelsError) as caught:
        Dispositions.load(tmp_path / "absent.jsonl")
    assert caught.value.field == "risk.labels" and caught.value.source == str(tmp_path / "absent.jsonl")
