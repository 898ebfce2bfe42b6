"""Reports from the console's store: `amlwatch report str --case ID`, the case page's STR download, the day's HVTR.

The case path must give the same draft as a case export file with the alerts and events it came from,
refuse what is not confirmed-and-approved, and leave nothing written when it refuses.
"""

from __future__ import annotations

import re

import orjson
import pytest
from lxml import etree
from sqlalchemy import select
from support.console import Browser, alert_line, event_lines

from amlwatch.cli import main
from amlwatch.console import audit
from amlwatch.console.ingest import store_events
from amlwatch.console.schema import audit_log
from amlwatch.reporting.xml import validate

COMMENT = "funds went round acc-1 and acc-2 on the same national ID"


def _version(browser, case_id: int) -> str:
    return re.search(r'name="version" value="(\d+)"', browser.get(f"/cases/{case_id}").text).group(1)


def _case(app, *episodes, confirm=True, approve=True, disposition="confirmed_suspicious") -> int:
    ana, sue = Browser(app, "ana"), Browser(app, "sue")
    response = ana.post("/cases", {"title": "round trip", "episode_id": list(episodes)})
    case_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert ana.post(f"/cases/{case_id}/comment", {"body": COMMENT}).status_code == 303
    if confirm:
        assert ana.post(f"/cases/{case_id}/dispose", {"disposition": disposition, "note": "cycle on one ID",
                                                      "version": _version(ana, case_id)}).status_code == 303
    if confirm and approve and disposition == "confirmed_suspicious":
        assert sue.post(f"/cases/{case_id}/approve", {"note": "agreed",
                                                      "version": _version(sue, case_id)}).status_code == 303
    return case_id


def _files(tmp_path):
    alerts, events = tmp_path / "alerts.jsonl", tmp_path / "events.jsonl"
    alerts.write_bytes(alert_line("al-1") + b"\n")
    events.write_bytes(b"".join(line + b"\n" for line in event_lines()))
    return alerts, events


def _entries(engine, action):
    with engine.connect() as conn:
        return conn.execute(select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq)).all()


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_case_draft_from_the_store_is_the_case_file_draft(console, db_url, tmp_path, fmt):
    app, engine = console
    case_id = _case(app, "al-1")
    alerts, events = _files(tmp_path)
    case_file = tmp_path / "case.json"
    case_file.write_bytes(orjson.dumps({"case_id": str(case_id), "disposition": "confirmed_suspicious",
                                        "notes": [COMMENT, "Proposed as confirmed suspicious: cycle on one ID",
                                                  "Approved: agreed"], "alert_ids": ["al-1"]}))
    from_files, from_store = tmp_path / f"files.{fmt}", tmp_path / f"store.{fmt}"
    assert main(["report", "str", "--alerts", str(alerts), "--case-file", str(case_file), "--events", str(events),
                 "--format", fmt, "--out", str(from_files)]) == 0
    assert main(["report", "str", "--case", str(case_id), "--db", db_url, "--format", fmt,
                 "--out", str(from_store)]) == 0
    assert from_store.read_bytes() == from_files.read_bytes()
    with_stream = tmp_path / f"stream.{fmt}"
    assert main(["report", "str", "--case", str(case_id), "--db", db_url, "--events", str(events), "--format", fmt,
                 "--out", str(with_stream)]) == 0
    assert with_stream.read_bytes() == from_files.read_bytes()  # the events from a stream instead of the store
    if fmt == "xml":
        validate(from_store.read_bytes(), "BSTR")
        root = etree.fromstring(from_store.read_bytes())
        assert root.findtext("RBIF/CSID") == str(case_id)
        assert {n.text for n in root.iter("CTAC")} >= {"1f" * 32, "2f" * 32}  # paying instruments, from the store
    else:
        draft = orjson.loads(from_store.read_bytes())
        assert COMMENT in draft["analysis"] and all(t["resolved"] for t in draft["transactions"])
        assert {p["account_id"] for p in draft["subjects"]} == {"acc-1"}
        assert draft["subjects"][0]["id_hash"] == "a" * 64
    entries = _entries(engine, "case.report_str")
    assert len(entries) == 2 and all(e.actor.startswith("cli:") and e.target == f"case:{case_id}" for e in entries)
    assert orjson.loads(entries[0].detail)["format"] == fmt
    with engine.connect() as conn:
        assert audit.verify(conn).ok


def test_refusals_exit_2_and_write_nothing(console, db_url, tmp_path, capsys):
    app, engine = console
    pending = _case(app, "al-1", approve=False)
    out = tmp_path / "str.xml"
    for argv, words in [(["--case", "999"], "no case 999"),
                        (["--case", "abc"], "case ids are numbers"),
                        (["--case", str(pending)], "--draft-anyway"),
                        (["--case", str(pending), "--alerts", "x.jsonl"], "--case-file"),
                        (["--case", str(pending), "--kind", "correction"], "original_report_id")]:
        extra = ["--draft-anyway"] if argv[-1] == "correction" else []
        assert main(["report", "str", *argv, *extra, "--db", db_url, "--out", str(out)]) == 2, argv
        assert words in capsys.readouterr().err and not out.exists()
    assert not _entries(engine, "case.report_str")
    assert main(["report", "str", "--case", str(pending), "--draft-anyway", "--db", db_url, "--format", "json",
                 "--out", str(out)]) == 0
    analysis = orjson.loads(out.read_bytes())["analysis"]
    assert "not approved" in analysis and "confirmed_suspicious" in analysis
    fp = _case(app, "al-2", disposition="false_positive")
    out.unlink()
    assert main(["report", "str", "--case", str(fp), "--draft-anyway", "--db", db_url, "--out", str(out)]) == 2
    assert "false positive is never reported" in capsys.readouterr().err and not out.exists()


def test_a_missing_sqlite_store_is_an_error_not_a_new_database(tmp_path, capsys):
    missing = tmp_path / "nowhere.db"
    assert main(["report", "str", "--case", "1", "--db", str(missing)]) == 2
    assert "no console store" in capsys.readouterr().err and not missing.exists()


def test_case_page_downloads_the_draft_audited_with_csrf_and_roles(console):
    app, engine = console
    case_id = _case(app, "al-1")
    ana = Browser(app, "ana")
    page = ana.get(f"/cases/{case_id}").text
    assert f'action="/cases/{case_id}/report"' in page and "Download report draft" in page
    forged = ana.post(f"/cases/{case_id}/report", {"format": "xml"}, csrf="forged")
    assert forged.status_code == 403 and not _entries(engine, "case.report_str")
    response = ana.post(f"/cases/{case_id}/report", {"format": "xml"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert response.headers["content-disposition"].startswith(f'attachment; filename="case-{case_id}-str-')
    validate(response.content, "BSTR")
    as_json = ana.post(f"/cases/{case_id}/report", {"format": "json"})
    draft = orjson.loads(as_json.content)
    assert etree.fromstring(response.content).findtext("RBIF/RPDI") == draft["report_id"]
    entries = _entries(engine, "case.report_str")
    assert [(e.actor, orjson.loads(e.detail)["format"]) for e in entries] == [("ana", "xml"), ("ana", "json")]
    assert orjson.loads(entries[0].detail)["report_id"] == draft["report_id"]
    bad = ana.post(f"/cases/{case_id}/report", {"format": "xml", "kind": "correction"})
    assert bad.status_code == 400 and "original report" in bad.text
    fixed = ana.post(f"/cases/{case_id}/report", {"format": "json", "kind": "correction",
                                                   "original": draft["report_id"]})
    assert orjson.loads(fixed.content)["original_report_id"] == draft["report_id"]
    assert ana.post("/cases/999/report", {"format": "xml"}).status_code == 404
    with engine.connect() as conn:
        assert audit.verify(conn).ok


def test_an_unapproved_case_is_a_supervisors_preview_only(console):
    app, engine = console
    case_id = _case(app, "al-1", approve=False)
    ana, sue = Browser(app, "ana"), Browser(app, "sue")
    assert "Download report draft" not in ana.get(f"/cases/{case_id}").text
    refused = ana.post(f"/cases/{case_id}/report", {"format": "xml"})
    assert refused.status_code == 409 and "with a second user" in refused.text
    assert ana.post(f"/cases/{case_id}/report", {"format": "xml", "draft_anyway": "1"}).status_code == 403
    assert "Preview draft (not approved)" in sue.get(f"/cases/{case_id}").text
    preview = sue.post(f"/cases/{case_id}/report", {"format": "xml", "draft_anyway": "1"})
    assert preview.status_code == 200
    validate(preview.content, "BSTR")
    assert "not approved" in etree.fromstring(preview.content).findtext("STIF/SSAN")
    [entry] = _entries(engine, "case.report_str")
    assert entry.actor == "sue" and orjson.loads(entry.detail)["draft_anyway"] is True


def _large_trade():
    return orjson.dumps({"type": "trade", "event_id": "e-big", "ts": "2026-02-08T23:30:00+08:00", "trade_id": "tr-big",
                         "collection_id": "col-1", "token_id": "tok-1", "kind": "secondary", "seller_id": "acc-1",
                         "buyer_id": "acc-3", "price": "60000.00", "currency": "CNY",
                         "payment": {"method": "digital_rmb", "instrument_hash": "e" * 64}})


def test_reports_page_gives_the_days_hvtr_the_cli_gives(console, tmp_path):
    app, engine = console
    with engine.begin() as conn:
        store_events(conn, [("1", _large_trade())], "big")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in event_lines() + [_large_trade()]))
    cli = tmp_path / "hvtr.xml"
    assert main(["report", "lvtr", "--day", "2026-02-08", "--events", str(events), "--out", str(cli)]) == 0
    ana, sue = Browser(app, "ana"), Browser(app, "sue")
    assert ana.get("/reports").status_code == 403
    assert ana.post("/reports/lvtr", {"day": "2026-02-08"}).status_code == 403
    assert 'href="/reports"' in sue.get("/inbox").text and 'action="/reports/lvtr"' in sue.get("/reports").text
    response = sue.post("/reports/lvtr", {"day": "2026-02-08", "format": "xml"})
    assert response.status_code == 200, response.text
    validate(response.content, "HVTR")
    assert response.content == cli.read_bytes()
    root = etree.fromstring(response.content)
    assert root.findtext("RBIF/RPCT") == "2" and {n.text for n in root.findall("CATIs/CATI/CTAC")} == {"acc-1", "acc-3"}
    csv = sue.post("/reports/lvtr", {"day": "2026-02-08", "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and b"tr-big" in csv.content
    assert sue.post("/reports/lvtr", {"day": "8 Feb"}).status_code == 400
    assert orjson.loads(sue.post("/reports/lvtr", {"day": "2026-02-09", "format": "json"}).content) == []
    entries = _entries(engine, "report.lvtr")
    assert [(e.actor, e.target) for e in entries] == [("sue", "day:2026-02-08")] * 2 + [("sue", "day:2026-02-09")]
