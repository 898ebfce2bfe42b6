"""Suspicious transaction report drafts: content, codes from config, message kinds, typed errors, BSTR XML."""

from __future__ import annotations

import gzip

import orjson
import pytest
from support.reporting import reporting_run
from support.events import at, id_of, monitor_run, trade, world
from lxml import etree

from amlwatch.cli import main
from amlwatch.config import Config
from amlwatch.reporting.str_draft import ReportRequestError, StrContext, StrRequest, build_str, parse_case
from amlwatch.reporting.xml import SchemaError, bstr_xml, hvtr_xml, validate


@pytest.fixture
def scene(tmp_path):
    """A structuring pattern (digital RMB payments packed just under the cash line) and its alerts, as files."""
    events = world("acc-s", "acc-b", "acc-c")
    events += [trade("acc-s", "acc-b", at(hours=1), token_id="t1", price="48500", method="digital_rmb"),
               trade("acc-c", "acc-b", at(hours=2), token_id="t2", price="49200", method="digital_rmb")]
    _, alerts = monitor_run(events)
    alerts = [a.to_dict("2026-03-01T00:00:00Z") for a in alerts if a.typology == "structuring"]
    assert alerts
    events_file, alerts_file = tmp_path / "events.jsonl.gz", tmp_path / "alerts.jsonl"
    events_file.write_bytes(gzip.compress(b"".join(orjson.dumps(e) + b"\n" for e in events)))
    alerts_file.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in alerts))
    return events, alerts, events_file, alerts_file


def _context(events, alerts):
    return StrContext.from_events(((n, orjson.dumps(e)) for n, e in enumerate(events)),
                                  {t for a in alerts for t in a["trade_ids"]})


def test_draft_carries_subjects_counterparties_transactions_trigger_and_narrative(scene):
    events, alerts, _, _ = scene
    draft = build_str(StrRequest(alerts), _context(events, alerts))
    subject = draft["subjects"][0]
    assert subject["account_id"] in alerts[0]["accounts"] and subject["id_hash"] == id_of(subject["account_id"])
    assert {p["account_id"] for p in draft["counterparties"]} & {"acc-s", "acc-c", "acc-b"}
    assert all(t["resolved"] and t["currency"] == "CNY" for t in draft["transactions"])
    assert {t["amount"] for t in draft["transactions"]} == {"48500", "49200"}
    assert draft["trigger"].startswith("structuring.near_threshold")
    assert alerts[0]["reason"] in draft["narrative"] and "Evidence:" in draft["narrative"]
    assert draft["offence_codes"] == ["money_laundering"] and draft["trait_codes"] == ["ST-SPLIT"]
    assert draft["urgency"] == "normal" and draft["message_kind"] == "normal"
    import re

    for party in draft["subjects"] + draft["counterparties"]:  # identity is hashes only, plus the account id
        values = [party[k] for k in ("id_hash", "name_hash", "phone_hash")] + party["card_hashes"]
        assert all(re.fullmatch("[0-9a-f]{64}", v) for v in values), party


def test_codes_and_urgency_come_from_config(scene):
    events, alerts, _, _ = scene
    config = Config.from_mapping({"str_report": {"trait_codes": {"structuring": "1101"},
                                                 "urgent_typologies": ["structuring"]}}).str_report
    draft = build_str(StrRequest(alerts), None, config)
    assert draft["trait_codes"] == ["1101"] and draft["urgency"] == "urgent"
    assert draft["offence_codes"] == ["money_laundering"]  # the default kept for keys not overridden
    assert not any(t["resolved"] for t in draft["transactions"])  # without a stream, ids only


def test_correction_refers_to_the_original_and_gets_its_own_id(scene):
    _, alerts, _, _ = scene
    normal = build_str(StrRequest(alerts))
    assert build_str(StrRequest(alerts))["report_id"] == normal["report_id"]
    correction = build_str(StrRequest(alerts, "correction", normal["report_id"]))
    assert correction["original_report_id"] == normal["report_id"] != correction["report_id"]
    root = etree.fromstring(bstr_xml(correction))
    assert root.findtext("RBIF/MSTP") == "C" and root.findtext("RBIF/ORPI") == normal["report_id"]
    assert build_str(StrRequest([], "delete", normal["report_id"]))["message_kind"] == "delete"


@pytest.mark.parametrize("request_, field", [
    (StrRequest([], "normal"), "alerts"),
    (StrRequest([{}], "amend"), "message_kind"),
    (StrRequest([{}], "correction"), "original_report_id"),
    (StrRequest([{}], "supplement", ""), "original_report_id"),
    (StrRequest([{}], "normal", "str-1"), "original_report_id")])
def test_malformed_requests_name_the_field(request_, field):
    with pytest.raises(ReportRequestError) as error:
        build_str(request_)
    assert error.value.field == field


def test_case_export_selects_alerts_and_adds_the_analysts_view(scene):
    _, alerts, _, _ = scene
    by_id = {a["alert_id"]: a for a in alerts}
    case, chosen = parse_case({"case_id": "case-9", "disposition": "confirmed", "notes": ["funds went on to acc-c"],
                               "alert_ids": [alerts[0]["alert_id"]]}, by_id)
    draft = build_str(StrRequest(chosen, case=case))
    assert draft["case_id"] == "case-9" and "funds went on to acc-c" in draft["analysis"]
    assert len(draft["alerts"]) == 1
    for bad, field in [({"disposition": "confirmed", "alert_ids": ["x"]}, "case.case_id"),
                       ({"case_id": "c", "disposition": "false_positive", "alert_ids": ["x"]}, "case.disposition"),
                       ({"case_id": "c", "disposition": "confirmed", "alert_ids": []}, "case.alert_ids"),
                       ({"case_id": "c", "disposition": "confirmed", "alert_ids": ["al-missing"]}, "case.alert_ids"),
                       ({"case_id": "c", "disposition": "confirmed", "notes": 3, "alert_ids": ["x"]}, "case.notes")]:
        with pytest.raises(ReportRequestError) as error:
            parse_case(bad, by_id)
        assert error.value.field == field


def test_bstr_validates_against_the_shipped_schema_and_a_broken_one_does_not(scene):
    events, alerts, _, _ = scene
    document = bstr_xml(build_str(StrRequest(alerts), _context(events, alerts)))
    validate(document, "BSTR")
    root = etree.fromstring(document)
    assert root.tag == "BSTR" and root.get("draft") == "true"
    for tag in ("RBIF/SSTM", "STIF/TRGR", "STIF/SSDS", "STIF/SSAN", "STIF/TOSC", "STIF/STCR", "CTIFs/CTIF", "TCIFs/TCIF"):
        assert root.find(tag) is not None, tag
    root.find("RBIF").remove(root.find("RBIF/SSTM"))
    with pytest.raises(SchemaError):
        validate(etree.tostring(root), "BSTR")


def test_hvtr_validates_and_control_characters_cannot_break_it():
    records, _, _ = reporting_run(world("acc-s", "acc-b") + [
        trade("acc-s", "acc-b", at(hours=1), price="50000", method="digital_rmb", token_id="x\x01y")], flush=True)
    reports = [r for r in records if r["record_type"] == "lvtr"]
    document = hvtr_xml(reports, reports[0]["day"])
    validate(document, "HVTR")
    root = etree.fromstring(document)
    assert root.findtext("RBIF/RPCT") == "2" and len(root.findall("CATIs/CATI")) == 2
    assert {n.text for n in root.iter("TSDR")} == {"01", "02"}
    bad = etree.fromstring(document)
    bad.find("CATIs/CATI/TSDR").text = "03"
    with pytest.raises(SchemaError) as error:
        validate(etree.tostring(bad), "HVTR")
    assert "TSDR" in error.value.field


def test_cli_writes_xml_and_json_and_refuses_a_bad_request_writing_nothing(scene, tmp_path, capsys):
    _, alerts, events_file, alerts_file = scene
    out = tmp_path / "str.xml"
    assert main(["report", "str", "--alerts", str(alerts_file), "--events", str(events_file), "--out", str(out)]) == 0
    validate(out.read_bytes(), "BSTR")
    assert main(["report", "str", "--alerts", str(alerts_file), "--format", "json", "--out", str(tmp_path / "s.json")]) == 0
    assert orjson.loads((tmp_path / "s.json").read_bytes())["record_type"] == "str"
    case = tmp_path / "case.json"
    case.write_bytes(orjson.dumps({"case_id": "c1", "disposition": "confirmed", "alert_ids": ["al-nope"]}))
    bad_out = tmp_path / "bad.xml"
    assert main(["report", "str", "--alerts", str(alerts_file), "--case-file", str(case), "--out", str(bad_out)]) == 2
    assert "al-nope" in capsys.readouterr().err and not bad_out.exists()
    assert main(["report", "str", "--alerts", str(alerts_file), "--kind", "correction", "--out", str(bad_out)]) == 2
    assert "original_report_id" in capsys.readouterr().err and not bad_out.exists()
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(alerts_file.read_bytes() + b'{"alert_id": "x"}\n')
    assert main(["report", "str", "--alerts", str(broken), "--out", str(bad_out)]) == 2
    assert f"{broken}:{len(alerts) + 1}" in capsys.readouterr().err and not bad_out.exists()
    assert main(["report", "str", "--alerts", str(alerts_file), "--case", "c1"]) == 2
    assert "--case-file" in capsys.readouterr().err
