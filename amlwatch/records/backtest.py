"""Backtest: two configurations over the same records, and what changes between them.

Alert ids leave the configuration out (docs/ALERTS.md), so an alert raised
under both is matched by id: it *changed* when its severity, score, trades or
reason differ. Otherwise it *appeared* (only under B) or *vanished* (only
under A). With labels, each configuration gets a trade-level confusion matrix
per typology as in `amlwatch.evaluation`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

import orjson

from amlwatch.config import Config

COMPARED = ("severity", "score", "trade_ids", "reason")
FIXED_DETECTED_AT = "1970-01-01T00:00:00.000+00:00"


@dataclass
class RunResult:
    name: str
    config_hash: str
    alerts: dict[str, dict]
    events: int = 0
    bad_records: int = 0
    duplicate_ids: int = 0


@dataclass
class BacktestResult:
    a: RunResult
    b: RunResult
    appeared: list[dict] = field(default_factory=list)
    vanished: list[dict] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)  # {"alert_id", "detector", "typology", "changes": {f: [a, b]}}
    unchanged: int = 0
    per_detector: dict[str, Counter] = field(default_factory=dict)
    confusion: dict[str, dict[str, dict[str, int]]] | None = None  # typology -> run name -> tp/fp/fn
    labels_in_period: int | None = None

    def to_dict(self) -> dict:
        return {
            "configs": {r.name: {"hash": r.config_hash, "alerts": len(r.alerts), "events": r.events,
                                 "bad_records": r.bad_records} for r in (self.a, self.b)},
            "counts": {"appeared": len(self.appeared), "vanished": len(self.vanished),
                       "changed": len(self.changed), "unchanged": self.unchanged},
            "per_detector": {d: dict(c) for d, c in sorted(self.per_detector.items())},
            "appeared": self.appeared,
            "vanished": self.vanished,
            "changed": self.changed,
            "confusion": self.confusion,
            "labels_in_period": self.labels_in_period,
        }

    def text(self, show: int = 20) -> str:
        a, b = self.a, self.b
        lines = [
            f"A = {a.name} ({a.config_hash})",
            f"B = {b.name} ({b.config_hash})",
            f"{a.events:,} records replayed ({a.bad_records:,} bad); alerts: A {len(a.alerts):,}, B {len(b.alerts):,}; "
            f"appeared {len(self.appeared):,}, vanished {len(self.vanished):,}, changed {len(self.changed):,}, "
            f"unchanged {self.unchanged:,}",
            "",
            f"{'detector':<34}{'A':>7}{'B':>7}{'appeared':>10}{'vanished':>10}{'changed':>9}{'unchanged':>11}",
        ]
        for detector, c in sorted(self.per_detector.items()):
            lines.append(f"{detector:<34}{c['A']:>7,}{c['B']:>7,}{c['appeared']:>10,}{c['vanished']:>10,}"
                         f"{c['changed']:>9,}{c['unchanged']:>11,}")
        for title, items in (("appeared (B only)", self.appeared), ("vanished (A only)", self.vanished)):
            if items:
                lines += ["", f"{title}:"]
                for alert in items[:show]:
                    lines.append(f"  {alert['alert_id']} {alert['detector']} {alert['severity']} {alert['score']} "
                                 f"trades {','.join(alert['trade_ids']) or '-'}: {alert['reason']}")
                if len(items) > show:
                    lines.append(f"  ... {len(items) - show:,} more")
        if self.changed:
            lines += ["", "changed:"]
            for item in self.changed[:show]:
                parts = []
                for name, (old, new) in item["changes"].items():
                    if name == "trade_ids":
                        parts.append(f"trade_ids {','.join(old) or '-'} -> {','.join(new) or '-'}")
                    elif name == "reason":
                        parts.append(f"reason {old!r} -> {new!r}")
                    else:
                        parts.append(f"{name} {old} -> {new}")
                lines.append(f"  {item['alert_id']} {item['detector']}: " + "; ".join(parts))
            if len(self.changed) > show:
                lines.append(f"  ... {len(self.changed) - show:,} more")
        if self.confusion is not None:
            lines += ["", f"trade-level confusion per typology ({self.labels_in_period:,} labelled trades)",
                      f"{'typology':<24}{'A TP':>7}{'FP':>7}{'FN':>7}{'B TP':>9}{'FP':>7}{'FN':>7}"]
            for typology, runs in self.confusion.items():
                ra, rb = runs["A"], runs["B"]
                lines.append(f"{typology:<24}{ra['tp']:>7,}{ra['fp']:>7,}{ra['fn']:>7,}"
                             f"{rb['tp']:>9,}{rb['fp']:>7,}{rb['fn']:>7,}")
        return "\n".join(lines)


def run_config(records: Callable[[], Iterable[tuple[int, bytes]]], config: Config, name: str, *,
               since: float | None = None, until: float | None = None, source: str = "-",
               workers: int = 1) -> RunResult:
    """Replay the records under one configuration (across `workers` processes) and collect its alerts by id."""
    from amlwatch.deadletter import DeadLetterFile
    from amlwatch.engine import build_monitor
    from amlwatch.replay import replay
    from amlwatch.shardedreplay import sharded_replay

    alerts: dict[str, dict] = {}
    result = RunResult(name, config.hash, alerts)

    def emit(batch) -> None:
        for alert in batch:
            data = orjson.loads(alert.to_json(FIXED_DETECTED_AT))
            if data["alert_id"] in alerts:
                result.duplicate_ids += 1
            alerts[data["alert_id"]] = data

    if workers > 1:
        summary = sharded_replay(records, config, emit, DeadLetterFile(None), shards=workers, source=source,
                                 since=since, until=until)
    else:
        summary = replay(records(), build_monitor(config), emit, DeadLetterFile(None), source=source,
                         since=since, until=until)
    result.events, result.bad_records = summary.events, summary.bad_records
    return result


def diff_runs(a: RunResult, b: RunResult) -> BacktestResult:
    result = BacktestResult(a, b)
    per: dict[str, Counter] = {}

    def count(detector: str, key: str) -> None:
        per.setdefault(detector, Counter({"A": 0, "B": 0, "appeared": 0, "vanished": 0, "changed": 0,
                                          "unchanged": 0}))[key] += 1

    for alert_id, alert in a.alerts.items():
        count(alert["detector"], "A")
        other = b.alerts.get(alert_id)
        if other is None:
            result.vanished.append(alert)
            count(alert["detector"], "vanished")
            continue
        changes = {name: [alert.get(name), other.get(name)] for name in COMPARED if alert.get(name) != other.get(name)}
        if changes:
            result.changed.append({"alert_id": alert_id, "detector": alert["detector"],
                                   "typology": alert["typology"], "changes": changes})
            count(alert["detector"], "changed")
        else:
            result.unchanged += 1
            count(alert["detector"], "unchanged")
    for alert_id, alert in b.alerts.items():
        count(alert["detector"], "B")
        if alert_id not in a.alerts:
            result.appeared.append(alert)
            count(alert["detector"], "appeared")
    order = lambda x: (x.get("ts") or "", x["alert_id"])  # noqa: E731
    result.appeared.sort(key=order)
    result.vanished.sort(key=order)
    result.changed.sort(key=lambda x: (x["detector"], x["alert_id"]))
    result.per_detector = per
    return result


def confusion(labels: dict[str, set[str]], alerts: Iterable[dict]) -> dict[str, dict[str, int]]:
    """Trade-level TP/FP/FN per typology, counted as `amlwatch.evaluation.evaluate` does."""
    from amlwatch.evaluation import evaluate

    evaluation = evaluate(labels, list(alerts))
    out = {}
    for row in evaluation.rows + [evaluation.anomaly]:
        out[row.typology] = {"tp": row.caught, "fp": row.flagged - row.flagged_true, "fn": row.labelled - row.caught}
    return out


def trades_in_period(records: Iterable[tuple[int, bytes]], since: float | None, until: float | None) -> set[str]:
    from amlwatch.events import BadRecord, TradeEvent, parse_event

    seen = set()
    for _, raw in records:
        try:
            event = parse_event(raw)
        except BadRecord:
            continue
        if until is not None and event.t > until:
            break
        if isinstance(event, TradeEvent) and (since is None or event.t >= since):
            seen.add(event.trade_id)
    return seen


def backtest(records: Callable[[], Iterable[tuple[int, bytes]]], config_a: Config, config_b: Config, *,
             names: tuple[str, str] = ("A", "B"), labels: dict[str, set[str]] | None = None,
             since: float | None = None, until: float | None = None, source: str = "-",
             workers: int = 1) -> BacktestResult:
    """Replay the records (`records()` gives a fresh iterator each call) under both configs and compare;
    each replay across `workers` processes when more than one (amlwatch/shardedreplay.py).

    With `since`, earlier records still warm the detectors; only alerts from
    `since` on count. Labels are restricted to the trades in the period.
    """
    a = run_config(records, config_a, names[0], since=since, until=until, source=source, workers=workers)
    b = run_config(records, config_b, names[1], since=since, until=until, source=source, workers=workers)
    result = diff_runs(a, b)
    if labels is not None:
        if since is not None or until is not None:
            present = trades_in_period(records(), since, until)
            labels = {t: kinds for t, kinds in labels.items() if t in present}
        result.labels_in_period = len(labels)
        ca, cb = confusion(labels, a.alerts.values()), confusion(labels, b.alerts.values())
        shown = [t for t in ca if t != "anomaly" and (any(ca[t].values()) or any(cb[t].values()))]
        if ca["anomaly"]["tp"] + ca["anomaly"]["fp"] + cb["anomaly"]["tp"] + cb["anomaly"]["fp"]:
            shown.append("anomaly")  # scored against every label, as in amlwatch.evaluation
        result.confusion = {t: {"A": ca[t], "B": cb[t]} for t in shown}
    return result
