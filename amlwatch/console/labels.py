"""Analysts' dispositions as labels for `amlwatch evaluate`, `backtest --labels` and `train --exclude-labels`.

The labels file has the simulator's format (amlwatch/evaluation.py reads it):
one `{"trade_id", "typology", "scenario"}` line per trade an approved
confirmed-suspicious case lists, with the typology of the alert that listed it
and `scenario` = `console:case-<id>`. Trades of cases closed as false positive
go, optionally, to a negatives file (`{"trade_id", "scenario"}`, the format
`evaluate --negatives` reads), unless another case confirmed them.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlalchemy import Connection, select

from amlwatch.console.schema import alert_trades, alerts, case_episodes, cases


def _case_trades(conn: Connection, disposition: str):
    return conn.execute(
        select(alert_trades.c.trade_id, alerts.c.typology, cases.c.id)
        .join(alerts, alerts.c.alert_id == alert_trades.c.alert_id)
        .join(case_episodes, case_episodes.c.episode_id == alerts.c.episode_id)
        .join(cases, cases.c.id == case_episodes.c.case_id)
        .where(cases.c.status == "closed", cases.c.disposition == disposition)
        .order_by(cases.c.id, alert_trades.c.trade_id, alerts.c.typology)).all()


def export_labels(conn: Connection, out: str | Path, negatives_out: str | Path | None = None) -> tuple[int, int]:
    """Write the files; returns (label lines, negative lines)."""
    confirmed: dict[tuple[str, str], int] = {}
    for trade_id, typology, case_id in _case_trades(conn, "confirmed_suspicious"):
        confirmed.setdefault((trade_id, typology), case_id)
    Path(out).write_bytes(b"".join(orjson.dumps({"trade_id": t, "typology": typ, "scenario": f"console:case-{c}"})
                                   + b"\n" for (t, typ), c in confirmed.items()))
    negatives = 0
    if negatives_out is not None:
        suspicious = {t for t, _ in confirmed}
        cleared: dict[str, int] = {}
        for trade_id, _, case_id in _case_trades(conn, "false_positive"):
            if trade_id not in suspicious:
                cleared.setdefault(trade_id, case_id)
        Path(negatives_out).write_bytes(b"".join(
            orjson.dumps({"trade_id": t, "scenario": f"console:false-positive-case-{c}"}) + b"\n"
            for t, c in cleared.items()))
        negatives = len(cleared)
    return len(confirmed), negatives
