"""export: every archived event and alert touching an account, and nothing else."""

from __future__ import annotations

import csv
import io

import orjson

from amlwatch.records.archive import RecordArchive
from amlwatch.records.export import export_account
from support.records import account, collection, run_cli, trade, ts

A = "acc-a"

# (raw, touches acc-a?)
STREAM = [
    (account("e1", ts(0), A), True),                                           # its registration
    (account("e2", ts(1), "acc-a2"), False),                                   # a longer id sharing the prefix
    (collection("e3", ts(2), "col-1", A), True),                               # it issues a collection
    (collection("e4", ts(3), "col-2", "acc-b"), False),
    (trade("e5", ts(4), "t5", A, "acc-b"), True),                              # it buys
    (trade("e6", ts(5), "t6", "acc-c", A), True),                              # it sells
    (trade("e7", ts(6), "t7", "acc-c", "acc-b", token=f"{A}-tok",              # its id only inside other fields
           buyer_device_id=A), False),
    (b'{"type":"trade","event_id":"e8","ts":"' + ts(7).encode() + b'","buyer_id":"acc-a","price":9}', True),  # bad
    (b'{"type":"account","event_id":"e9","ts":"' + ts(8).encode() + b'","account_id":"acc-\\u0061","action":'
     b'"update"}', True),                                                      # the id written with a JSON escape
    (b"not json at all acc-a", False),                                         # unparsable: names nobody
    (account("e11", ts(24 * 60), A, action="close"), True),                    # next day (another segment)
]
ALERTS = [
    ({"alert_id": "al-1", "detector": "wash.round_trip", "typology": "wash_trading", "ts": ts(6), "accounts": [A, "acc-b"],
      "trade_ids": ["t5", "t6"], "token_ids": [], "reason": "r", "severity": "high", "score": 0.8}, True),
    ({"alert_id": "al-2", "detector": "wash.round_trip", "typology": "wash_trading", "ts": ts(7),
      "accounts": ["acc-b", "acc-c"], "trade_ids": ["t7"], "token_ids": [], "reason": f"about {A}'s token",
      "severity": "low", "score": 0.3}, False),
]


def _archive(root):
    bad = {8: "expected a decimal string", 10: "invalid JSON"}
    with RecordArchive(root) as archive:
        for line, (raw, _) in enumerate(STREAM, 1):
            archive.append_event(raw, {"file": "s.jsonl", "line": line}, bad.get(line, "ok"))
            if line == 7:
                archive.append_alert(ALERTS[0][0])
            if line == 8:
                archive.append_alert(ALERTS[1][0])
    return root


def test_export_jsonl_is_complete_and_exact(tmp_path):
    root = _archive(tmp_path / "rec")
    out = io.BytesIO()
    count = export_account(root, A, out)
    rows = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(rows)
    events = [r for r in rows if r["record"] == "event"]
    alerts = [r for r in rows if r["record"] == "alert"]
    expected_events = [raw for raw, touches in STREAM if touches]
    assert [r["raw"].encode() for r in events] == expected_events  # all of them, in order, nothing else
    assert [a["alert"]["alert_id"] for a in alerts] == ["al-1"]
    assert events[2]["roles"] == ["buyer"] and events[3]["roles"] == ["seller"] and events[1]["roles"] == ["issuer"]
    assert events[4]["outcome"] == "expected a decimal string"  # bad input is exported too, with why
    assert all(r["hash"] and r["seq"] for r in rows)


def test_export_period_and_csv_cli(tmp_path, capsys):
    root = _archive(tmp_path / "rec")
    out = tmp_path / "a.csv"
    assert run_cli(["records", "export", "--dir", str(root), "--account", A, "--since", ts(4), "--until", ts(7),
                    "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [(r["record"], r["event_id"] or r["alert_id"]) for r in rows] == [
        ("event", "e5"), ("event", "e6"), ("alert", "al-1"), ("event", "e8")]
    assert rows[0]["roles"] == "buyer" and rows[0]["price"] == "99.00" and rows[0]["buyer_id"] == A
    assert rows[2]["alert_accounts"] == f"{A};acc-b" and rows[2]["trade_ids"] == "t5;t6"
    assert "4 records touching acc-a" in capsys.readouterr().err
