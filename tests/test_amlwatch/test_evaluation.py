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


def _volume_alert(detector, typology, *trade_ids):
    return {"detector": detector, "typology": typology, "trade_ids": list(trade_ids)}


def _stream(tmp_path, trades):
    import orjson

    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in [{"type": "account", "account_id": "a"}] + trades))
    return path


TRADES = [{"type": "trade", "trade_id": f"t{n}", "kind": "primary" if n < 2 else "secondary",
           "price": "0" if n == 9 else "10.00"} for n in range(10)] + [
          {"type": "trade", "trade_id": "gift", "kind": "gift", "price": "0"}, "not a record"]


def test_alert_volume_counts_trades_once_per_detector_and_overall(tmp_path):
    from amlwatch.evaluation import alert_volume, count_trades

    trades = count_trades(_stream(tmp_path, TRADES))
    alerts = [_volume_alert("wash.pair_repeat", "wash_trading", "t2", "t3"),
              _volume_alert("wash.pair_repeat", "wash_trading", "t3", "t4"),
              _volume_alert("speculation.pump", "speculation", "t4"),
              _volume_alert("anomaly.isolation_forest", "anomaly", "t5")]
    volume = alert_volume(trades, alerts)
    assert (volume.trades, volume.paid_trades, volume.scored_trades) == (11, 9, 7)
    rows = {r.detector: r for r in volume.rows}
    assert (rows["wash.pair_repeat"].alerts, len(rows["wash.pair_repeat"].trades)) == (2, 3)
    assert (rows["all rules"].alerts, len(rows["all rules"].trades)) == (3, 3)
    assert (rows["all detectors"].alerts, len(rows["all detectors"].trades)) == (4, 4)
    assert volume.to_dict()["detectors"]["wash.pair_repeat"]["share_of_trades"] == round(3 / 11, 6)
    assert "honest" not in volume.table()


def test_alert_volume_with_labels_reports_the_share_of_honest_trades_alerted(tmp_path):
    from amlwatch.evaluation import alert_volume, count_trades

    trades = count_trades(_stream(tmp_path, TRADES))
    alerts = [_volume_alert("wash.pair_repeat", "wash_trading", "t2", "t3")]
    volume = alert_volume(trades, alerts, labels={"t2": {"wash_trading"}})
    rows = {r.detector: r for r in volume.rows}
    assert volume.honest_trades == 10 and rows["wash.pair_repeat"].honest == 1
    assert volume.to_dict()["detectors"]["wash.pair_repeat"]["share_of_honest"] == 0.1
    assert "of honest" in volume.table()


def test_volume_command_prints_the_table_for_a_recorded_stream(tmp_path, capsys):
    import orjson

    from amlwatch.cli import main

    events = _stream(tmp_path, TRADES[:-1])
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_bytes(orjson.dumps(_volume_alert("speculation.price_spike", "speculation", "t6")) + b"\n")
    assert main(["volume", str(events), "--alerts", str(alerts)]) == 0
    table = capsys.readouterr().out
    assert "speculation.price_spike" in table and "9.09%" in table
    assert main(["volume", str(events), "--alerts", str(alerts), "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["detectors"]["speculation.price_spike"]["trades"] == 1


def test_demo_reports_the_share_of_honest_trades_each_detector_alerts_on(tmp_path, capsys):
    from amlwatch.cli import main

    assert main(["demo", "--out", str(tmp_path), "--days", "4", "--accounts", "100", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "recall" in out and "precision" in out
    volume = out[out.index("alert volume per detector"):]
    assert "of honest" in volume and "all rules" in volume and "all detectors" in volume
    assert "asset.financial" in volume
