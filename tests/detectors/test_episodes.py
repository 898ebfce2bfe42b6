"""Alert episodes (amlwatch/alerts.py, docs/ALERTS.md): one per pattern instance, updates carry its id."""

from __future__ import annotations

from amlwatch.alerts import Alert, Episodes


def _alert(event_id: str, trades: list[str], ts: str = "2026-03-01T10:00:00+08:00") -> Alert:
    return Alert(detector="wash.pair_repeat", typology="wash_trading", severity="high", score=0.8, ts=ts,
                 event_id=event_id, accounts=["a", "b"], collection_id="c", token_ids=[f"k-{t}" for t in trades],
                 trade_ids=trades, reason="r", evidence={})


def test_single_shot_alert_is_its_own_episode():
    alert = _alert("ev-1", ["t1"])
    record = alert.to_dict("2026-01-01T00:00:00.000+00:00")
    assert record["episode_id"] == record["alert_id"] and record["episode_seq"] == 1


def test_updates_within_the_gap_extend_the_episode_and_list_every_trade():
    book = Episodes(gap=100.0)
    first = book.extend("pair", 0.0, _alert("ev-1", ["t1", "t2"]))
    second = book.extend("pair", 50.0, _alert("ev-2", ["t3"]))
    third = book.extend("pair", 120.0, _alert("ev-3", ["t2", "t4"]))
    assert first.episode_id == second.episode_id == third.episode_id == first.alert_id
    assert [first.episode_seq, second.episode_seq, third.episode_seq] == [1, 2, 3]
    assert second.trade_ids == ["t1", "t2", "t3"]
    assert third.trade_ids == ["t1", "t2", "t3", "t4"]  # trigger last
    assert third.token_ids == ["k-t1", "k-t2", "k-t3", "k-t4"]
    assert len({first.alert_id, second.alert_id, third.alert_id}) == 3


def test_a_quiet_gap_opens_a_new_episode_and_other_keys_are_apart():
    book = Episodes(gap=100.0)
    first = book.extend("pair", 0.0, _alert("ev-1", ["t1"]))
    other = book.extend("other", 10.0, _alert("ev-2", ["t2"]))
    later = book.extend("pair", 101.0, _alert("ev-3", ["t3"]))
    assert other.episode_id != first.episode_id
    assert later.episode_id == later.alert_id != first.episode_id and later.episode_seq == 1
    assert later.trade_ids == ["t3"]


def test_closed_episodes_are_evicted_and_trades_bounded():
    book = Episodes(gap=100.0, max_trades=3)
    book.extend("pair", 0.0, _alert("ev-1", ["t1", "t2"]))
    bounded = book.extend("pair", 1.0, _alert("ev-2", ["t3", "t4"]))
    assert bounded.trade_ids == ["t2", "t3", "t4"]
    book.evict(200.0)
    assert len(book) == 0


def test_episode_ids_are_deterministic():
    def replay():
        book = Episodes(gap=100.0)
        return [book.extend("pair", t, _alert(f"ev-{n}", [f"t{n}"])).to_dict("x")
                for n, t in enumerate((0.0, 10.0, 20.0))]
    assert replay() == replay()
