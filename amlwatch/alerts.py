"""The alert record of the output contract (docs/ALERTS.md).

Alerts are built by detectors from event time only; `detected_at` (wall
clock) is stamped by the sink that writes them, which keeps the detection core
deterministic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson

TYPOLOGIES = (
    "wash_trading",
    "speculation",
    "identity_mismatch",
    "prohibited_settlement",
    "prohibited_asset",
    "structuring",
    "anomaly",
)
SEVERITIES = ("low", "medium", "high", "critical")


def severity_for(score: float) -> str:
    """Map detector confidence to a severity band."""
    if score >= 0.9:
        return "critical"
    if score >= 0.75:
        return "high"
    if score >= 0.5:
        return "medium"
    return "low"


def make_alert_id(detector: str, event_id: str, key: str = "") -> str:
    """Deterministic: the detector, the triggering event and the pattern's key.

    The configuration is deliberately left out so a backtest can tell an alert
    that changed under new thresholds from one that appeared or vanished.
    """
    digest = hashlib.sha256(f"{detector}\x1f{event_id}\x1f{key}".encode()).hexdigest()
    return "al-" + digest[:24]


@dataclass(slots=True)
class Alert:
    detector: str
    typology: str
    severity: str
    score: float
    ts: str
    event_id: str
    accounts: list[str]
    collection_id: str | None
    token_ids: list[str]
    trade_ids: list[str]
    reason: str
    evidence: dict
    key: str = ""
    versions: dict = field(default_factory=dict)

    @property
    def alert_id(self) -> str:
        return make_alert_id(self.detector, self.event_id, self.key)

    def to_dict(self, detected_at: str | None = None) -> dict:
        return {
            "alert_id": self.alert_id,
            "detector": self.detector,
            "typology": self.typology,
            "severity": self.severity,
            "score": round(self.score, 4),
            "ts": self.ts,
            "detected_at": detected_at or wall_clock_now(),
            "accounts": self.accounts,
            "collection_id": self.collection_id,
            "token_ids": self.token_ids,
            "trade_ids": self.trade_ids,
            "reason": self.reason,
            "evidence": self.evidence,
            "versions": self.versions,
        }

    def to_json(self, detected_at: str | None = None) -> bytes:
        return orjson.dumps(self.to_dict(detected_at), default=json_default)


def wall_clock_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def json_default(value):
    """orjson fallback for what alerts and archive records carry: Decimal amounts, sets of ids."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
