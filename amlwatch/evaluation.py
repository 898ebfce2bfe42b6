"""Recall and precision of alerts against a simulator's labels, and alert volume on any stream.

A labelled trade counts as caught when an alert of its typology lists it in
`trade_ids` (docs/ALERTS.md). Precision is per trade: of the trades that
alerts of a typology list, the share labelled with that typology. Anomaly
alerts have no typology of their own, so they are scored against any label.

`alert_volume` needs no labels: per detector, how many alerts and what share
of the stream's trades they name, the table a compliance team reads before
going live to see which rule would bury its analysts. Given labels, it adds
the share of honest (unlabelled) trades each detector alerts on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from amlwatch.alerts import TYPOLOGIES
from amlwatch.sources import read_lines

RULE_TYPOLOGIES = tuple(t for t in TYPOLOGIES if t != "anomaly")
MISSED_SHOWN = 8
"""Missed trade ids listed per typology in the table; all of them are in `to_dict()`."""


@dataclass
class TypologyScore:
    typology: str
    labelled: int = 0
    caught: int = 0
    flagged: int = 0
    flagged_true: int = 0

    @property
    def recall(self) -> float | None:
        return self.caught / self.labelled if self.labelled else None

    @property
    def precision(self) -> float | None:
        return self.flagged_true / self.flagged if self.flagged else None


@dataclass
class Evaluation:
    rows: list[TypologyScore]
    anomaly: TypologyScore
    anomaly_recall_by_typology: dict[str, float | None] = field(default_factory=dict)
    missed_by_rules_caught_by_anomaly: list[str] = field(default_factory=list)
    missed: dict[str, list[str]] = field(default_factory=dict)
    false_positives_by_negative: dict[str, int] = field(default_factory=dict)
    negatives: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        def row(score: TypologyScore) -> dict:
            return {"labelled": score.labelled, "caught": score.caught, "recall": score.recall,
                    "flagged": score.flagged, "flagged_true": score.flagged_true, "precision": score.precision}

        return {
            "typologies": {r.typology: row(r) for r in self.rows},
            "anomaly": row(self.anomaly) | {"recall_by_typology": self.anomaly_recall_by_typology,
                                            "missed_by_rules_caught": self.missed_by_rules_caught_by_anomaly},
            "missed": self.missed,
            "hard_negatives": {name: {"trades": count, "flagged": self.false_positives_by_negative.get(name, 0)}
                               for name, count in self.negatives.items()},
        }

    def table(self) -> str:
        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{value * 100:.1f}%"

        head = f"{'typology':<22}{'labelled':>9}{'caught':>8}{'recall':>9}{'flagged':>9}{'precision':>11}"
        lines = [head, "-" * len(head)]
        for r in self.rows + [self.anomaly]:
            lines.append(f"{r.typology:<22}{r.labelled:>9,}{r.caught:>8,}{pct(r.recall):>9}"
                         f"{r.flagged:>9,}{pct(r.precision):>11}")
        if self.anomaly.flagged or self.anomaly_recall_by_typology:
            parts = ", ".join(f"{t} {pct(v)}" for t, v in self.anomaly_recall_by_typology.items() if v is not None)
            lines.append(f"anomaly recall by typology: {parts}")
            lines.append(f"labelled trades missed by rules, caught by anomaly: "
                         f"{len(self.missed_by_rules_caught_by_anomaly)}")
        for typology, missed in self.missed.items():
            shown = ", ".join(missed[:MISSED_SHOWN]) + (" ..." if len(missed) > MISSED_SHOWN else "")
            lines.append(f"missed by rules ({typology}, {len(missed)}): {shown}")
        if self.negatives:
            flagged = sum(self.false_positives_by_negative.values())
            total = sum(self.negatives.values())
            lines.append(f"hard negatives flagged: {flagged} of {total} "
                         + ", ".join(f"{k} {self.false_positives_by_negative.get(k, 0)}/{v}"
                                     for k, v in sorted(self.negatives.items())))
        return "\n".join(lines)


def load_labels(path: str | Path) -> dict[str, set[str]]:
    labels: dict[str, set[str]] = defaultdict(set)
    for _, line in read_lines(path):
        record = orjson.loads(line)
        labels[record["trade_id"]].add(record["typology"])
    return dict(labels)


def load_negatives(path: str | Path) -> dict[str, str]:
    return {r["trade_id"]: r["scenario"] for r in (orjson.loads(line) for _, line in read_lines(path))}


def load_alerts(path: str | Path) -> list[dict]:
    return [orjson.loads(line) for _, line in read_lines(path)]


def evaluate(labels: dict[str, set[str]], alerts: list[dict], negatives: dict[str, str] | None = None) -> Evaluation:
    flagged: dict[str, set[str]] = defaultdict(set)
    for alert in alerts:
        flagged[alert["typology"]].update(alert["trade_ids"])
    rows = []
    for typology in RULE_TYPOLOGIES:
        score = TypologyScore(typology)
        labelled = {t for t, kinds in labels.items() if typology in kinds}
        score.labelled = len(labelled)
        score.caught = len(labelled & flagged[typology])
        score.flagged = len(flagged[typology])
        score.flagged_true = sum(1 for t in flagged[typology] if typology in labels.get(t, ()))
        rows.append(score)
    anomalous = flagged["anomaly"]
    anomaly = TypologyScore("anomaly", labelled=len(labels), caught=len(anomalous & labels.keys()),
                            flagged=len(anomalous), flagged_true=len(anomalous & labels.keys()))
    by_rules = set().union(*(flagged[t] for t in RULE_TYPOLOGIES))
    result = Evaluation(rows, anomaly)
    for typology in RULE_TYPOLOGIES:
        labelled = {t for t, kinds in labels.items() if typology in kinds}
        result.anomaly_recall_by_typology[typology] = (len(labelled & anomalous) / len(labelled)) if labelled else None
        missed = sorted(t for t in labelled if t not in flagged[typology])
        if missed:
            result.missed[typology] = missed
    result.missed_by_rules_caught_by_anomaly = sorted((labels.keys() - by_rules) & anomalous)
    if negatives:
        for trade_id, scenario in negatives.items():
            result.negatives[scenario] = result.negatives.get(scenario, 0) + 1
            if trade_id in by_rules:
                result.false_positives_by_negative[scenario] = result.false_positives_by_negative.get(scenario, 0) + 1
    return result


@dataclass
class DetectorVolume:
    detector: str
    alerts: int = 0
    trades: set[str] = field(default_factory=set)
    honest: int | None = None
    """Trades named that carry no label (None without labels)."""


@dataclass
class AlertVolume:
    """Alert volume per detector against a stream's trade counts."""

    trades: int
    paid_trades: int
    scored_trades: int
    """Paid secondary trades: what the anomaly detector scores and its budget is a share of."""
    rows: list[DetectorVolume]
    honest_trades: int | None = None

    def share(self, count: int) -> float:
        return count / self.trades if self.trades else 0.0

    def to_dict(self) -> dict:
        def row(r: DetectorVolume) -> dict:
            entry = {"alerts": r.alerts, "trades": len(r.trades), "share_of_trades": round(self.share(len(r.trades)), 6)}
            if r.honest is not None and self.honest_trades:
                entry |= {"honest_trades": r.honest, "share_of_honest": round(r.honest / self.honest_trades, 6)}
            return entry

        return {"trades": self.trades, "paid_trades": self.paid_trades, "scored_trades": self.scored_trades,
                "honest_trades": self.honest_trades, "detectors": {r.detector: row(r) for r in self.rows}}

    def table(self) -> str:
        labelled = self.honest_trades is not None
        head = f"{'detector':<34}{'alerts':>8}{'trades':>9}{'of trades':>11}"
        if labelled:
            head += f"{'honest':>8}{'of honest':>11}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            line = f"{r.detector:<34}{r.alerts:>8,}{len(r.trades):>9,}{self.share(len(r.trades)) * 100:>10.2f}%"
            if labelled and r.honest is not None:
                share = r.honest / self.honest_trades * 100 if self.honest_trades else 0.0
                line += f"{r.honest:>8,}{share:>10.2f}%"
            lines.append(line)
        lines.append(f"{self.trades:,} trades ({self.paid_trades:,} paid, {self.scored_trades:,} paid secondary"
                     + (f", {self.honest_trades:,} unlabelled" if labelled else "") + ")")
        return "\n".join(lines)


ALL_RULES = "all rules"
EVERYTHING = "all detectors"


def count_trades(path: str | Path) -> dict[str, tuple[bool, bool]]:
    """Every trade id in a recorded stream, with (paid, secondary): the denominators of alert volume."""
    trades = {}
    for _, line in read_lines(path):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(record, dict) or record.get("type") != "trade" or "trade_id" not in record:
            continue
        kind = record.get("kind")
        try:
            paid = kind != "gift" and float(record.get("price") or 0) > 0
        except (TypeError, ValueError):
            paid = False
        trades[record["trade_id"]] = (paid, kind == "secondary")
    return trades


def alert_volume(trades: dict[str, tuple[bool, bool]], alerts: list[dict],
                 labels: dict[str, set[str]] | None = None) -> AlertVolume:
    """Per detector, then all rules and everything together: alerts and the share of trades they name."""
    rows: dict[str, DetectorVolume] = {}
    rules, everything = DetectorVolume(ALL_RULES), DetectorVolume(EVERYTHING)
    for alert in alerts:
        row = rows.setdefault(alert["detector"], DetectorVolume(alert["detector"]))
        named = set(alert["trade_ids"])
        row.alerts += 1
        row.trades |= named
        everything.alerts += 1
        everything.trades |= named
        if alert["typology"] != "anomaly":
            rules.alerts += 1
            rules.trades |= named
    ordered = [rows[name] for name in sorted(rows)] + [rules, everything]
    honest_trades = None
    if labels is not None:
        honest_trades = sum(1 for t in trades if t not in labels)
        for row in ordered:
            row.honest = sum(1 for t in row.trades if t not in labels)
    return AlertVolume(trades=len(trades), paid_trades=sum(paid for paid, _ in trades.values()),
                       scored_trades=sum(paid and secondary for paid, secondary in trades.values()),
                       rows=ordered, honest_trades=honest_trades)
