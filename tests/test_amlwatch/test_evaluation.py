"""Scoring alerts against labels: per-typology recall and precision, the anomaly row, misses listed."""

from __future__ import annotations

from amlwatch.evaluation import evaluate


def _alert(typology, *trade_ids):
    return {"typology": typology, "trade_ids": list(trade_ids)}


def test_recall_precision_anomaly_row_and_misses():
    labels = {"t1": {"wash_trading"}, "t2": {"wash_trading"}, "t3": {"structuring"}, "t4": {"speculation"}}
    alerts = [_alert("wash_trading", "t1", "t9"), _alert("structuring", "t3"),
              _alert("anomaly", "t2", "t8"), _alert("speculation", "t5")]
    result = evaluate(labels, alerts, negatives={"t9": "shared_public_ip", "t7": "family_gifts"})
    rows = {r.typology: r for r in result.rows}
    assert (rows["wash_trading"].recall, rows["wash_trading"].precision) == (0.5, 0.5)
    assert (rows["structuring"].recall, rows["structuring"].precision) == (1.0, 1.0)
    assert (rows["speculation"].recall, rows["speculation"].precision) == (0.0, 0.0)
    assert (result.anomaly.caught, result.anomaly.flagged, result.anomaly.precision) == (1, 2, 0.5)
    assert result.anomaly_recall_by_typology["wash_trading"] == 0.5
    assert result.missed == {"wash_trading": ["t2"], "speculation": ["t4"]}
    assert result.missed_by_rules_caught_by_anomaly == ["t2"]
    assert result.false_positives_by_negative == {"shared_public_ip": 1}
    table = result.table()
    assert "missed by rules (wash_trading, 1): t2" in table
    assert "hard negatives flagged: 1 of 2" in table
