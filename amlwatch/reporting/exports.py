"""JSON and CSV of reporting records (the XML is `xml`): one row per transaction of a large-value
report, one row per rating."""

from __future__ import annotations

import csv
import io

import orjson

from amlwatch.alerts import json_default

LVTR_COLUMNS = ("report_id", "message_kind", "original_report_id", "day", "day_offset", "customer", "payment_kind",
                "direction", "trait_code", "threshold", "total", "trade_count", "late", "closed_by", "trade_id",
                "ts", "amount", "counterparty", "payment_method", "instrument_hash", "collection_id", "token_id")
RATING_COLUMNS = ("rating_id", "subject_kind", "subject", "level", "score", "previous_level", "ruleset", "ts",
                  "event_id", "reasons")


def to_json(records) -> bytes:
    return orjson.dumps(records, default=json_default, option=orjson.OPT_INDENT_2) + b"\n"


def lvtr_csv(reports: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LVTR_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for report in reports:
        head = {k: report.get(k) for k in LVTR_COLUMNS}
        for trade in report["trades"]:
            writer.writerow({**head, **trade})
    return out.getvalue().encode("utf-8")


def ratings_csv(ratings: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RATING_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for rating in ratings:
        row = dict(rating)
        row["reasons"] = "; ".join(f"{r['rule']} +{r['points']:g}: {r['detail']}" for r in rating["reasons"])
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def latest_ratings(ratings) -> list[dict]:
    """The last rating of each subject, in subject order."""
    latest: dict[tuple, dict] = {}
    for rating in ratings:
        latest[(rating["subject_kind"], rating["subject"])] = rating
    return [latest[k] for k in sorted(latest)]
