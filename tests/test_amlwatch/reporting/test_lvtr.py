"""Large-value reports: each line one fen under and at, the +08:00 day, late events, directions."""

from __future__ import annotations

import pytest
from support.reporting import lvtr_of, reporting_run
from support.events import account, trade, world

from amlwatch.config import Config

DAY1 = "2026-03-01"


def ts(day: int, clock: str) -> str:
    return f"2026-03-{day:02d}T{clock}+08:00"


def next_day_tick(day: int = 2, clock: str = "00:30:00.000") -> dict:
    """A registry event that moves the watermark past the previous day's close."""
    return account("acc-tick", ts(day, clock))


ORG = Config.from_mapping({"payment_kind": {"organisation_accounts": ["acc-org"]}})

CASES = [  # (line, buyer, method, registry overrides, amount at the line)
    ("cash", "acc-b", "digital_rmb", {}, "50000"),
    ("individual_domestic", "acc-b", "alipay", {}, "500000"),
    ("individual_cross_border", "acc-b", "bank_card", {"region": "CN-HK"}, "200000"),
    ("organisation", "acc-org", "wechat_pay", {}, "2000000"),
]


def _fen_under(amount: str) -> str:
    from decimal import Decimal

    return str(Decimal(amount) - Decimal("0.01"))


def _stream(buyer, method, overrides, amounts):
    events = world("acc-s", t=ts(1, "08:00:00.000")) + [account(buyer, ts(1, "08:00:00.000"), **overrides)]
    for n, price in enumerate(amounts):
        events.append(trade("acc-s", buyer, ts(1, f"1{n}:00:00.000"), token_id=f"tok-{n}", price=price, method=method))
    return events + [next_day_tick()]


@pytest.mark.parametrize("kind, buyer, method, overrides, line", CASES)
def test_one_fen_under_the_line_is_not_reported(kind, buyer, method, overrides, line):
    records, _, _ = reporting_run(_stream(buyer, method, overrides, [_fen_under(line)]), ORG)
    assert [r for r in lvtr_of(records) if r["customer"] == buyer] == []


@pytest.mark.parametrize("kind, buyer, method, overrides, line", CASES)
def test_at_the_line_is_reported_for_its_kind(kind, buyer, method, overrides, line):
    records, _, _ = reporting_run(_stream(buyer, method, overrides, [line]), ORG)
    paid = [r for r in lvtr_of(records) if r["customer"] == buyer]
    assert len(paid) == 1
    report = paid[0]
    assert (report["payment_kind"], report["direction"], report["total"], report["day"]) == (kind, "pay", line, DAY1)
    assert report["threshold"] == line and report["message_kind"] == "normal" and not report["late"]
    assert report["closed_by"] == "watermark"


def test_the_day_accumulates_several_trades_and_the_seller_has_its_own_receive_line():
    records, _, _ = reporting_run(_stream("acc-b", "digital_rmb", {}, ["20000", "20000", "9999.99", "0.01"]))
    reports = lvtr_of(records)
    assert {(r["customer"], r["direction"], r["total"], r["trade_count"]) for r in reports} == {
        ("acc-b", "pay", "50000.00", 4), ("acc-s", "receive", "50000.00", 4)}


def test_kinds_are_not_added_together():
    events = world("acc-s", "acc-b", t=ts(1, "08:00:00.000"))
    events += [trade("acc-s", "acc-b", ts(1, "10:00:00.000"), token_id="t1", price="49999.99", method="digital_rmb"),
               trade("acc-s", "acc-b", ts(1, "11:00:00.000"), token_id="t2", price="400000", method="alipay"),
               next_day_tick()]
    assert lvtr_of(reporting_run(events)[0]) == []


def test_day_boundary_is_midnight_in_plus_eight():
    events = world("acc-s", "acc-b", t=ts(1, "08:00:00.000"))
    events += [trade("acc-s", "acc-b", ts(1, "23:59:59.999"), token_id="t1", price="30000", method="digital_rmb"),
               trade("acc-s", "acc-b", ts(2, "00:00:00.000"), token_id="t2", price="30000", method="digital_rmb"),
               next_day_tick(3)]
    assert lvtr_of(reporting_run(events)[0]) == []
    # The same two trades in one +08:00 day (16:00 UTC is midnight in Shanghai) reach the line.
    same_day = world("acc-s", "acc-b", t=ts(1, "08:00:00.000"))
    same_day += [trade("acc-s", "acc-b", "2026-03-01T15:59:59.000Z", token_id="t1", price="30000", method="digital_rmb"),
                 trade("acc-s", "acc-b", ts(1, "00:00:00.000"), token_id="t2", price="30000", method="digital_rmb"),
                 next_day_tick(3)]
    reports = lvtr_of(reporting_run(same_day)[0])
    assert {r["day"] for r in reports} == {DAY1} and len(reports) == 2


def test_the_day_offset_is_configurable():
    utc = Config.from_mapping({"lvtr": {"day_offset": "+00:00"}})
    events = world("acc-s", "acc-b", t=ts(1, "08:00:00.000"))
    events += [trade("acc-s", "acc-b", ts(1, "23:59:59.999"), token_id="t1", price="30000", method="digital_rmb"),
               trade("acc-s", "acc-b", ts(2, "00:00:00.000"), token_id="t2", price="30000", method="digital_rmb"),
               next_day_tick(3)]
    reports = lvtr_of(reporting_run(events, utc)[0])
    assert {r["day"] for r in reports} == {DAY1} and {r["day_offset"] for r in reports} == {"+00:00"}


def test_a_day_stays_open_until_the_watermark_passes_its_end_plus_the_close_delay():
    events = _stream("acc-b", "digital_rmb", {}, ["50000"])[:-1]
    events.append(account("acc-tick", ts(2, "00:09:59.999")))
    assert lvtr_of(reporting_run(events)[0]) == []
    events.append(account("acc-tick2", ts(2, "00:10:00.000")))
    assert len(lvtr_of(reporting_run(events)[0])) == 2


def test_a_late_trade_before_the_close_joins_its_day():
    events = _stream("acc-b", "digital_rmb", {}, ["30000"])[:-1]
    events.append(account("acc-tick", ts(2, "00:05:00.000")))  # day 1 ended, not yet closed
    events.append(trade("acc-s", "acc-b", ts(1, "23:00:00.000"), token_id="late", price="20000", method="digital_rmb"))
    events.append(next_day_tick())
    reports = [r for r in lvtr_of(reporting_run(events)[0]) if r["customer"] == "acc-b"]
    assert len(reports) == 1 and reports[0]["total"] == "50000" and not reports[0]["late"]
    assert reports[0]["message_kind"] == "normal" and reports[0]["trade_count"] == 2


def test_a_report_lists_its_trades_by_event_time_whatever_their_arrival():
    """Replay takes trades in file order, a worker's restored partition in event-time order: the listing
    must not depend on it."""
    events = _stream("acc-b", "digital_rmb", {}, ["30000"])[:-1]
    events.append(trade("acc-s", "acc-b", ts(1, "09:00:00.000"), token_id="earlier", price="20000",
                        method="digital_rmb"))
    events.append(next_day_tick())
    (report,) = [r for r in lvtr_of(reporting_run(events)[0]) if r["customer"] == "acc-b"]
    assert [t["token_id"] for t in report["trades"]] == ["earlier", "tok-0"]


def test_a_late_trade_after_the_close_raises_a_late_report_when_it_reaches_the_line():
    events = _stream("acc-b", "digital_rmb", {}, ["30000"])  # closed without a report
    events.append(trade("acc-s", "acc-b", ts(1, "23:00:00.000"), token_id="late", price="20000", method="digital_rmb"))
    reports = [r for r in lvtr_of(reporting_run(events)[0]) if r["customer"] == "acc-b"]
    assert len(reports) == 1
    assert reports[0]["late"] and reports[0]["message_kind"] == "normal" and reports[0]["total"] == "50000"
    assert reports[0]["closed_by"] == "late_trade"


def test_a_late_trade_after_a_report_is_a_supplement_referring_to_it():
    events = _stream("acc-b", "digital_rmb", {}, ["50000"])
    events.append(trade("acc-s", "acc-b", ts(1, "23:00:00.000"), token_id="late", price="100", method="digital_rmb"))
    reports = [r for r in lvtr_of(reporting_run(events)[0]) if r["customer"] == "acc-b"]
    assert [r["message_kind"] for r in reports] == ["normal", "supplement"]
    original, supplement = reports
    assert supplement["original_report_id"] == original["report_id"] != supplement["report_id"]
    assert [t["amount"] for t in supplement["trades"]] == ["100"] and supplement["total"] == "50100"


def test_a_closed_day_keeps_the_trades_a_late_report_lists_and_only_those():
    """A closed day keeps per customer its total and count; the trades only of customers not reported yet,
    packed, and a late trade that pushes one over the line lists them all, in their order, with the late
    trades that came before it; a reported customer's supplement lists the late trade alone."""
    events = _stream("acc-b", "digital_rmb", {}, ["20000", "10000"])       # acc-b pays 30,000: not reported
    events.insert(-1, trade("acc-s", "acc-r", ts(1, "15:00:00.000"), token_id="big", price="60000",
                            method="digital_rmb"))                         # acc-r and acc-s reach the line
    events.append(trade("acc-s", "acc-b", ts(1, "22:00:00.000"), token_id="late-1", price="5000",
                        method="digital_rmb"))
    events.append(trade("acc-s", "acc-b", ts(1, "23:00:00.000"), token_id="late-2", price="15000",
                        method="digital_rmb"))
    records, monitor, _ = reporting_run(events)
    late = [r for r in lvtr_of(records) if r["customer"] == "acc-b"]
    assert len(late) == 1 and late[0]["late"] and late[0]["total"] == "50000" and late[0]["trade_count"] == 4
    assert [t["token_id"] for t in late[0]["trades"]] == ["tok-0", "tok-1", "late-1", "late-2"]
    supplements = [r for r in lvtr_of(records) if r["message_kind"] == "supplement" and r["customer"] == "acc-s"]
    assert [(len(r["trades"]), r["trade_count"]) for r in supplements] == [(1, 4), (1, 5)]   # 3 at the close
    aggregator = reporting_run(events[:-2])[1].lvtr                         # closed, before the late trades
    (day,) = aggregator.closed
    assert aggregator.state_size()["trade_entries"] == 0, "reported buckets keep no trades, the others' are packed"
    assert [e[7] for e in aggregator._unpack(day, ("acc-b", "cash", "pay"))] == ["tok-0", "tok-1"]
    assert aggregator._unpack(day, ("acc-s", "cash", "receive")) == []
    assert aggregator.closed[day][("acc-s", "cash", "receive")].count == 3


def _late_in_both_orders(amounts: list[str], late: list[tuple[str, str]]) -> list[list[dict]]:
    """acc-b's records when its day-1 trades of `amounts` are followed, after the close, by the late
    trades `late` ((clock, price) each), in the given order and reversed: late trades on different input
    partitions reach the worker in either order."""
    runs = []
    for order in (late, late[::-1]):
        events = _stream("acc-b", "digital_rmb", {}, amounts)
        events += [trade("acc-s", "acc-b", ts(1, clock), token_id=f"late-{clock}", price=price, method="digital_rmb",
                         trade_id=f"late-{clock}", event_id=f"late-{clock}") for clock, price in order]
        runs.append([r for r in lvtr_of(reporting_run(events)[0]) if r["customer"] == "acc-b"])
    return runs


def test_supplements_follow_the_arrival_order_and_the_last_carries_the_days_total():
    """Which supplement carries which running total depends on the order late trades arrive in; their ids
    do not, and the last one always carries the day's total of every trade known (docs/REPORTING.md)."""
    first, second = _late_in_both_orders(["50000"], [("21:00:00.000", "100"), ("22:00:00.000", "200")])
    assert [r["message_kind"] for r in first] == [r["message_kind"] for r in second] == ["normal", "supplement",
                                                                                        "supplement"]
    assert {r["report_id"] for r in first} == {r["report_id"] for r in second}
    assert [r["total"] for r in first] == ["50000", "50100", "50300"]
    assert [r["total"] for r in second] == ["50000", "50200", "50300"]


def test_late_trades_that_reach_the_line_together_report_the_same_trades_under_the_last_ones_id():
    """Neither late trade reaches the line alone: the one arriving second raises the late report, listing
    both; total and trades agree whatever the order, the report id names the trade that arrived last."""
    first, second = _late_in_both_orders(["30000"], [("21:00:00.000", "15000"), ("22:00:00.000", "10000")])
    assert [(r["message_kind"], r["late"], r["total"]) for r in first + second] == [("normal", True, "55000")] * 2
    for run in (first, second):   # listed by event time, whatever the arrival
        assert [t["token_id"] for t in run[0]["trades"]] == ["tok-0", "late-21:00:00.000", "late-22:00:00.000"]
    assert first[0]["report_id"] != second[0]["report_id"]


def test_a_trade_too_late_to_assess_is_listed_not_dropped():
    # A dedupe window longer than the days kept: else the core refuses the trade first (next test).
    config = Config.from_mapping({"lvtr": {"late_days": 1}, "monitor": {"dedupe_window_hours": 240}})
    events = _stream("acc-b", "digital_rmb", {}, ["50000"])
    events.append(account("acc-tick3", ts(5, "00:30:00.000")))
    events.append(trade("acc-s", "acc-b", ts(1, "23:00:00.000"), token_id="late", price="100", method="digital_rmb"))
    records, monitor, _ = reporting_run(events, config)
    late = [r for r in records if r["record_type"] == "lvtr_late_unassessed"]
    assert {r["customer"] for r in late} == {"acc-b", "acc-s"} and late[0]["trade"]["amount"] == "100"
    assert monitor.lvtr.late_unassessed == 2


def test_a_trade_the_core_refuses_is_a_dead_letter_not_report_data():
    """Beyond the dedupe window the core refuses a trade (its id may be forgotten): it is dead-lettered,
    and the reports take it no more than the worker's stage 1 forwards it."""
    config = Config.from_mapping({"lvtr": {"late_days": 1}})
    events = _stream("acc-b", "digital_rmb", {}, ["50000"])
    events.append(account("acc-tick3", ts(5, "00:30:00.000")))
    events.append(trade("acc-s", "acc-b", ts(1, "23:00:00.000"), token_id="late", price="100", method="digital_rmb"))
    records, monitor, _ = reporting_run(events, config)
    assert [r.reason.split(":")[0] for r in monitor.rejected] == ["late_beyond_dedupe_window"]
    assert not [r for r in records if r["record_type"] == "lvtr_late_unassessed"]
    assert monitor.lvtr.late_unassessed == 0 and {r["direction"] for r in lvtr_of(records)} == {"pay", "receive"}


def test_gifts_and_duplicates_add_nothing():
    events = _stream("acc-b", "digital_rmb", {}, ["49999.99"])
    duplicate = dict(events[-2])
    events.insert(-1, duplicate)
    events.insert(-1, trade("acc-s", "acc-b", ts(1, "20:00:00.000"), token_id="g", price="0", kind="gift", method="none"))
    assert lvtr_of(reporting_run(events)[0]) == []


def test_end_of_stream_closes_the_open_days():
    events = _stream("acc-b", "digital_rmb", {}, ["50000"])[:-1]
    records, _, _ = reporting_run(events, flush=True)
    assert {r["closed_by"] for r in lvtr_of(records)} == {"end_of_stream"}


def test_thresholds_come_from_config():
    config = Config.from_mapping({"lvtr": {"cash_threshold": "10000"}})
    reports = lvtr_of(reporting_run(_stream("acc-b", "digital_rmb", {}, ["10000"]), config)[0])
    assert {r["threshold"] for r in reports} == {"10000"}
