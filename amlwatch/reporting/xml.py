"""XML of the report drafts (roots `HVTR` and `BSTR`) and their validation against the shipped XSDs.

The schemas in `amlwatch/reporting/schemas/` follow the structure of the PBOC reporting interface
spec as far as a third-party copy shows it; element names are listed in docs/REPORTING.md. Every
document written is validated before it is returned, so a draft that leaves amlwatch is well formed.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from lxml import etree

from amlwatch.reporting.errors import ReportingError

MESSAGE_KINDS = {"normal": "N", "supplement": "S", "correction": "C", "delete": "D", "resend": "R"}
DIRECTIONS = {"receive": "01", "pay": "02"}
URGENCY = {"normal": "01", "urgent": "02"}


class SchemaError(ReportingError):
    """A document that does not validate against its shipped schema; `field` is the first bad element."""


@lru_cache(maxsize=None)
def schema(root: str) -> etree.XMLSchema:
    text = resources.files("amlwatch.reporting").joinpath(f"schemas/{root.lower()}.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(text))


def validate(document: bytes | etree._Element, root: str) -> None:
    """Raise `SchemaError` unless `document` is valid against the shipped `root` schema."""
    tree = etree.fromstring(document) if isinstance(document, bytes) else document
    checker = schema(root)
    if not checker.validate(tree):
        error = checker.error_log[0]
        raise SchemaError(error.path or root, error.message)


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _add(parent, tag: str, text=None, optional: bool = False):
    if optional and (text is None or text == ""):
        return None
    node = etree.SubElement(parent, tag)
    if text is not None:
        node.text = _NOT_XML.sub("\ufffd", str(text))
    return node


HVTR_TRADE = (("TICD", "trade_id"), ("TSTM", "ts"), ("CRAT", "amount"), ("CRTP", "currency"),
              ("TSTP", "payment_method"), ("CTAC?", "instrument_hash"), ("TCAC", "counterparty"),
              ("CLID", "collection_id"), ("TKID", "token_id"))
BSTR_TRADE = (("TICD", "trade_id"), ("TSTM", "ts"), ("CRAT", "amount"), ("CRTP", "currency"),
              ("TSTP", "payment_method"), ("CTAC", "instrument_hash"), ("BYAC", "buyer_id"), ("SLAC", "seller_id"),
              ("CLID", "collection_id"), ("TKID", "token_id"))
BSTR_ALERT = (("ALID", "alert_id"), ("DTNM", "detector"), ("TYPL", "typology"), ("SVRT", "severity"), ("ALTM", "ts"))


def _row(parent, tag: str, values: dict, columns, optional: bool = False):
    """One element with a child per (tag, key) column; a tag ending in `?` (or all, with `optional`)
    is left out when the value is missing."""
    row = _add(parent, tag)
    for child, key in columns:
        _add(row, child.rstrip("?"), values.get(key), optional=optional or child.endswith("?"))
    return row


def _serialise(root) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def hvtr_xml(reports: list[dict], day: str, *, institution_name: str = "", institution_code: str = "",
             day_offset: str = "+08:00") -> bytes:
    """One HVTR document holding the large-value reports of one reporting day."""
    root = etree.Element("HVTR", draft="true")
    header = _add(root, "RBIF")
    _add(header, "RINM", institution_name)
    _add(header, "FICD", institution_code)
    _add(header, "RPDT", day)
    _add(header, "DYOF", day_offset)
    _add(header, "RPCT", len(reports))
    body = _add(root, "CATIs")
    for report in reports:
        node = _add(body, "CATI")
        _add(node, "RPDI", report["report_id"])
        _add(node, "MSTP", MESSAGE_KINDS[report["message_kind"]])
        _add(node, "ORPI", report.get("original_report_id"), optional=True)
        _add(node, "CTAC", report["customer"])
        _add(node, "CTID", report.get("customer_id_hash"), optional=True)
        _add(node, "CTNH", report.get("customer_name_hash"), optional=True)
        _add(node, "CTTP", report.get("customer_type") or "individual")
        _add(node, "CRCD", report["trait_code"])
        _add(node, "TSDR", DIRECTIONS[report["direction"]])
        _add(node, "TTAM", report["total"])
        _add(node, "THAM", report["threshold"])
        _add(node, "LATE", "true" if report["late"] else "false")
        trades = _add(node, "TSDTs")
        for trade in report["trades"]:
            _row(trades, "TSDT", {**trade, "currency": "CNY", "payment_method": trade.get("payment_method") or "none"},
                 HVTR_TRADE)
    validate(root, "HVTR")
    return _serialise(root)


def _party(parent, tag: str, party: dict) -> None:
    node = _add(parent, tag)
    _add(node, "CTAC", party["account_id"])
    _add(node, "CTID", party.get("id_hash"), optional=True)
    _add(node, "CTNH", party.get("name_hash"), optional=True)
    _add(node, "CTPH", party.get("phone_hash"), optional=True)
    for card in party.get("card_hashes") or []:
        _add(node, "CTCD", card)
    _add(node, "KYCL", party.get("kyc_level"), optional=True)
    _add(node, "RGON", party.get("region"), optional=True)
    _add(node, "RGST", "registered" if party.get("registered") else "unknown")


def bstr_xml(draft: dict) -> bytes:
    """One BSTR document from a suspicious transaction report draft (`str_draft.build_str`)."""
    root = etree.Element("BSTR", draft="true")
    header = _add(root, "RBIF")
    _add(header, "RINM", draft.get("institution_name", ""))
    _add(header, "FICD", draft.get("institution_code", ""))
    _add(header, "RPDI", draft["report_id"])
    _add(header, "MSTP", MESSAGE_KINDS[draft["message_kind"]])
    _add(header, "ORPI", draft.get("original_report_id"), optional=True)
    _add(header, "CSID", draft.get("case_id"), optional=True)
    _add(header, "SSTM", URGENCY[draft["urgency"]])
    _add(header, "DTST", draft.get("period_start"), optional=True)
    _add(header, "DTED", draft.get("period_end"), optional=True)
    info = _add(root, "STIF")
    _add(info, "TRGR", draft["trigger"])
    _add(info, "SSDS", draft["narrative"])
    _add(info, "SSAN", draft["analysis"])
    for code in draft["offence_codes"] or [""]:
        _add(info, "TOSC", code)
    for code in draft["trait_codes"] or [""]:
        _add(info, "STCR", code)
    subjects = _add(root, "CTIFs")
    for party in draft["subjects"]:
        _party(subjects, "CTIF", party)
    counterparties = _add(root, "TCIFs")
    for party in draft["counterparties"]:
        _party(counterparties, "TCIF", party)
    trades = _add(root, "TSDTs")
    for trade in draft["transactions"]:
        row = _row(trades, "TSDT", trade, BSTR_TRADE, optional=True)
        _add(row, "RSLV", "true" if trade.get("resolved") else "false")
    alerts = _add(root, "ALRTs")
    for alert in draft["alerts"]:
        _row(alerts, "ALRT", alert, BSTR_ALERT)
    validate(root, "BSTR")
    return _serialise(root)
