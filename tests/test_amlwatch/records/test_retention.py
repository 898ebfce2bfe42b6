"""Retention: purge of whole sealed segments past the horizon, legal holds, identity records, audit."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta, timezone

import pytest

from amlwatch.config import RetentionConfig, load_config
from amlwatch.records.archive import ArchiveReader, RecordArchive
from amlwatch.records.retention import add_hold, list_holds, purge, release_hold
from amlwatch.records.verify import verify_archive
from support.records import account, run_cli, trade, ts

OLD = datetime(2015, 1, 1, 12, tzinfo=timezone.utc)
NOW = datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp()  # 10 years back: 2016-03-04
POLICY = RetentionConfig()  # 3650 days


def day(n: int, minutes: float = 0) -> str:
    return ts(minutes, OLD + timedelta(days=n))


@pytest.fixture
def root(tmp_path):
    """events/p0: 2015-01-01 (u1/u2 trade), 01-02 (u3/u4 trade), 01-03 (u5, u6 register), 01-04 (u5 closes),
    2026-03-01 (recent, sealed), 2026-03-02 (open). alerts/p0: one per old trade day, two recent."""
    path = tmp_path / "rec"
    with RecordArchive(path) as archive:
        archive.append_event(trade("e1", day(0), "t1", "u1", "u2"), {"file": "f", "line": 1})
        archive.append_alert({"alert_id": "al-1", "detector": "d", "ts": day(0, 1), "accounts": ["u1", "u2"]})
        archive.append_event(trade("e2", day(1), "t2", "u3", "u4"), {"file": "f", "line": 2})
        archive.append_alert({"alert_id": "al-2", "detector": "d", "ts": day(1, 1), "accounts": ["u3", "u4"]})
        archive.append_event(account("e3", day(2), "u5"), {"file": "f", "line": 3})
        archive.append_event(account("e4", day(2, 5), "u6"), {"file": "f", "line": 4})
        archive.append_event(account("e5", day(3), "u5", action="close"), {"file": "f", "line": 5})
        archive.append_event(trade("e6", ts(0), "t6", "u7", "u8"), {"file": "f", "line": 6})
        archive.append_alert({"alert_id": "al-6", "detector": "d", "ts": ts(1), "accounts": ["u7"]})
        archive.append_event(trade("e7", ts(24 * 60), "t7", "u7", "u8"), {"file": "f", "line": 7})
        archive.append_alert({"alert_id": "al-7", "detector": "d", "ts": ts(24 * 60), "accounts": ["u7"]})
    return path


def _snapshot(path):
    out = {}
    for directory, _, files in os.walk(path):
        for name in files:
            full = os.path.join(directory, name)
            out[os.path.relpath(full, path)] = hashlib.sha256(open(full, "rb").read()).hexdigest()
    return out


def _events_days(path):
    return sorted(s.day for s in ArchiveReader(path).segments("events/p0"))


def test_dry_run_changes_nothing(root):
    before = _snapshot(root)
    plan = purge(root, POLICY, now=NOW, dry_run=True)
    assert {e["segment"].split("-", 1)[1] for e in plan.removed} >= {"2015-01-01.jsonl.gz", "2015-01-02.jsonl.gz"}
    assert _snapshot(root) == before  # no audit record either


def test_purge_without_holds(root):
    plan = purge(root, POLICY, now=NOW)
    removed = sorted(e["segment"] for e in plan.removed)
    assert removed == ["alerts/p0/000000000001-2015-01-01.jsonl.gz", "alerts/p0/000000000002-2015-01-02.jsonl.gz",
                       "events/p0/000000000001-2015-01-01.jsonl.gz", "events/p0/000000000002-2015-01-02.jsonl.gz",
                       "events/p0/000000000005-2015-01-04.jsonl.gz"]
    # 2015-01-03 holds u6's identity record and u6 never closed: kept; u5 closed in 2015: its records may go
    assert [k["segment"] for k in plan.kept_for_identity] == ["events/p0/000000000003-2015-01-03.jsonl.gz"]
    assert plan.kept_for_identity[0]["accounts"] == ["u6"]
    assert _events_days(root) == ["2015-01-03", "2026-03-01", "2026-03-02"]
    audit = [r for r in ArchiveReader(root).iter_stream("audit") if r["action"] == "purge"]
    assert len(audit) == 1 and len(audit[0]["removed"]) == 5 and audit[0]["seq"] == plan.audit_seq
    report = verify_archive(root)
    assert report.ok, report.text()
    assert report.streams["events/p0"].purged_records == 3  # seq 1, 2 and 5
    # a purge only removes what the audit stream lists: deleting another segment by hand is still caught
    (root / "events/p0/000000000003-2015-01-03.jsonl.gz").unlink()
    (root / "events/p0/000000000003-2015-01-03.manifest.json").unlink()
    assert not verify_archive(root).ok


def test_holds_keep_segments_until_released(root):
    account_hold = add_hold(root, accounts=["u3"], reason="STR 2026-17 filed")
    case_hold = add_hold(root, case="CASE-9", since="2015-01-01T00:00:00Z", until="2015-01-01T23:59:59Z",
                         reason="court order")
    assert [h.hold_id for h in list_holds(root)] == [account_hold.hold_id, case_hold.hold_id]
    plan = purge(root, POLICY, now=NOW)
    kept = {k["segment"]: k["holds"] for k in plan.kept_for_hold}
    assert kept == {"events/p0/000000000001-2015-01-01.jsonl.gz": [case_hold.hold_id],
                    "events/p0/000000000002-2015-01-02.jsonl.gz": [account_hold.hold_id],
                    "alerts/p0/000000000001-2015-01-01.jsonl.gz": [case_hold.hold_id],
                    "alerts/p0/000000000002-2015-01-02.jsonl.gz": [account_hold.hold_id]}
    assert _events_days(root) == ["2015-01-01", "2015-01-02", "2015-01-03", "2026-03-01", "2026-03-02"]
    assert verify_archive(root).ok

    release_hold(root, account_hold.hold_id, reason="case closed")
    with pytest.raises(ValueError, match="already released"):
        release_hold(root, account_hold.hold_id)
    plan = purge(root, POLICY, now=NOW)
    assert sorted(e["segment"] for e in plan.removed) == ["alerts/p0/000000000002-2015-01-02.jsonl.gz",
                                                          "events/p0/000000000002-2015-01-02.jsonl.gz"]
    assert _events_days(root) == ["2015-01-01", "2015-01-03", "2026-03-01", "2026-03-02"]
    actions = [r["action"] for r in ArchiveReader(root).iter_stream("audit")]
    assert actions == ["hold.add", "hold.add", "purge", "hold.release", "purge"]
    report = verify_archive(root)
    assert report.ok, report.text()
    assert report.streams["events/p0"].purged_records == 2  # seq 2 (now) and seq 5 (first purge)


def test_cli_hold_and_purge(root, tmp_path, capsys):
    config = tmp_path / "retention.toml"
    config.write_text(f'[archive]\ndir = "{root}"\n[retention]\nevents_days = 3650\nalerts_days = 7300\n')
    assert load_config(config).retention.alerts_days == 7300
    assert run_cli(["records", "hold", "add", "--account", "u1", "--reason", "regulator request",
                    "--config", str(config)]) == 0
    hold_id = capsys.readouterr().out.strip()
    assert run_cli(["records", "hold", "list", "--dir", str(root)]) == 0
    assert hold_id in capsys.readouterr().out
    assert run_cli(["records", "hold", "add", "--case", "C1", "--reason", "x", "--dir", str(root)]) == 2
    assert "accounts" in capsys.readouterr().err
    assert run_cli(["records", "purge", "--config", str(config), "--dry-run",
                    "--now", "2026-03-02T00:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "DRY RUN" in out and f"kept (hold {hold_id})" in out and "would remove" in out
    assert run_cli(["records", "purge", "--config", str(config), "--now", "2026-03-02T00:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "removed events/p0/000000000002-2015-01-02.jsonl.gz" in out
    assert "alerts/p0" not in out.split("kept")[0]  # alerts are kept 20 years under this config
    assert run_cli(["records", "hold", "release", hold_id, "--dir", str(root)]) == 0
    assert run_cli(["records", "verify", "--dir", str(root)]) == 0


def test_purge_records_itself_even_when_nothing_is_due(root):
    plan = purge(root, RetentionConfig(events_days=0, alerts_days=0), now=NOW)  # 0 = keep forever
    assert plan.removed == [] and plan.audit_seq == 1
    assert [r["action"] for r in ArchiveReader(root).iter_stream("audit")] == ["purge"]


def test_newest_sealed_segment_is_never_purged(tmp_path):
    path = tmp_path / "rec"
    with RecordArchive(path) as archive:
        archive.append_event(trade("e1", day(0), "t1", "u1", "u2"), {"file": "f", "line": 1})
        archive.append_event(trade("e2", day(1), "t2", "u1", "u2"), {"file": "f", "line": 2})
        archive.seal()  # both 2015 days sealed, nothing open: the second carries the chain's head
    plan = purge(path, POLICY, now=NOW)
    assert [e["segment"] for e in plan.removed] == ["events/p0/000000000001-2015-01-01.jsonl.gz"]
    with RecordArchive(path) as archive:
        assert archive.append_event(trade("e3", ts(0), "t3", "u1", "u2"), {"file": "f", "line": 3}) == 3
    assert verify_archive(path).ok
