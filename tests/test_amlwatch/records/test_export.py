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


def test_counterparties_ips_and_devices_are_pseudonymised(tmp_path):
    """A buyer's export shows the sellers' network data only as per-export pseudonyms (and vice versa)."""
    root = tmp_path / "rec"
    with RecordArchive(root) as archive:
        for eid, minute, buyer, seller in (("p1", 0, A, "acc-b"), ("p2", 1, A, "acc-b"), ("p3", 2, "acc-c", A)):
            raw = trade(eid, ts(minute), f"t-{eid}", buyer, seller, buyer_ip=f"10.0.0.{minute}",
                        buyer_device_id=f"dev-{buyer}", seller_ip=f"36.110.1.{minute}", seller_device_id=f"dev-{seller}",
                        payment={"method": "alipay", "payer_name_hash": f"name-{buyer}",
                                 "instrument_hash": f"card-{buyer}"})
            archive.append_event(raw, {"file": "f", "line": minute})
        archive.commit()
    out = io.BytesIO()
    export_account(root, A, out)
    rows = [orjson.loads(line) for line in out.getvalue().splitlines()]
    text = out.getvalue().decode()
    assert "36.110.1.0" not in text and "36.110.1.1" not in text and "dev-acc-b" not in text, \
        "the sellers' IP and device of acc-a's buys"
    assert "36.110.1.2" in text, "acc-a's own IP where it sold"
    assert "10.0.0.2" not in text and "dev-acc-c" not in text and "card-acc-c" not in text, "its buyer's"
    bought = [r for r in rows if r["roles"] == ["buyer"]]
    assert [r["event"]["buyer_device_id"] for r in bought] == ["dev-acc-a", "dev-acc-a"], "its own data stays"
    seller_devices = {r["event"]["seller_device_id"] for r in bought}
    assert len(seller_devices) == 1 and next(iter(seller_devices)).startswith("pseudonym:")
    assert all(r["raw_pseudonymised"] and orjson.loads(r["raw"]) == r["event"] for r in rows)
    again = io.BytesIO()
    export_account(root, A, again)
    assert next(iter(seller_devices)) not in again.getvalue().decode(), "two exports cannot be joined"
