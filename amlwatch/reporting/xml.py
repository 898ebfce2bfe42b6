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

MESSAGE_KINDS = {"normal": "N", "supplement": "S", "correction": "C", "delete": "D", "resend": "R"}
DIRECTIONS = {"receive": "01", "pay": "02"}
URGENCY = {"normal": "01", "urgent": "02"}


class SchemaError(ValueError):
    """A document that does not validate against its shipped schema; `field` is the first bad element."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


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
            row = _add(trades, "TSDT")
            _add(row, "TICD", trade["trade_id"])
            _add(row, "TSTM", trade["ts"])
            _add(row, "CRAT", trade["amount"])
            _add(row, "CRTP", "CNY")
            _add(row, "TSTP", trade.get("payment_method") or "none")
            _add(row, "CTAC", trade.get("instrument_hash"), optional=True)
            _add(row, "TCAC", trade["counterparty"])
            _add(row, "CLID", trade["collection_id"])
            _add(row, "TKID", trade["token_id"])
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
        row = _add(trades, "TSDT")
        _add(row, "TICD", trade["trade_id"])
        for tag, key in (("TSTM", "ts"), ("CRAT", "amount"), ("CRTP", "currency"), ("TSTP", "payment_method"),
                         ("CTAC", "instrument_hash"), ("BYAC", "buyer_id"), ("SLAC", "seller_id"),
                         ("CLID", "collection_id"), ("TKID", "token_id")):
            _add(row, tag, trade.get(key), optional=True)
        _add(row, "RSLV", "true" if trade.get("resolved") else "false")
    alerts = _add(root, "ALRTs")
    for alert in draft["alerts"]:
        row = _add(alerts, "ALRT")
        _add(row, "ALID", alert["alert_id"])
        _add(row, "DTNM", alert["detector"])
        _add(row, "TYPL", alert["typology"])
        _add(row, "SVRT", alert["severity"])
        _add(row, "ALTM", alert["ts"])
    validate(root, "BSTR")
    return _serialise(root)
