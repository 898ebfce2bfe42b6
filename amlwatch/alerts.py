"""The alert record of the output contract (docs/ALERTS.md), and the episodes that group its updates.

Alerts are built by detectors from event time only; `detected_at` (wall
clock) is stamped by the sink that writes them, which keeps the detection core
deterministic. A pattern that grows (a pair trading again, a pump going on)
raises one alert per growth step, all carrying one `episode_id`: consumers
dedupe by `alert_id` and group by `episode_id`, showing the latest
`episode_seq`.
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
    episode: str = ""
    """Episode id of a growing pattern; empty for a single-shot alert (its own `alert_id`)."""
    episode_seq: int = 1

    @property
    def alert_id(self) -> str:
        return make_alert_id(self.detector, self.event_id, self.key)

    @property
    def episode_id(self) -> str:
        return self.episode or self.alert_id

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
            "episode_id": self.episode_id,
            "episode_seq": self.episode_seq,
        }

    def to_json(self, detected_at: str | None = None) -> bytes:
        return orjson.dumps(self.to_dict(detected_at), default=json_default)


class Episodes:
    """Open pattern instances of one detector, keyed by what the pattern is about (a pair, a collection).

    An episode opens with its first alert, whose `alert_id` becomes the `episode_id` (deterministic,
    as alert ids are), and stays open while the pattern keeps growing: an alert within `gap` seconds
    of event time after the episode's last one extends it (`episode_seq` + 1, the trades of every
    earlier alert of the episode kept in its `trade_ids`). After a quiet `gap` the next alert opens a
    new episode. State is bounded: closed episodes are dropped by `evict`, and an episode keeps at
    most `max_trades` trade ids (the newest).
    """

    __slots__ = ("gap", "max_trades", "_open")

    def __init__(self, gap: float, max_trades: int = 256):
        self.gap = gap
        self.max_trades = max_trades
        self._open: dict = {}
        """key -> [episode_id, seq, last event time, trade ids, token ids, accounts (each in order)]"""

    def extend(self, key, t: float, alert: Alert) -> Alert:
        """Stamp `alert` as the next step of `key`'s episode (or the first of a new one) and return it.

        An update lists every trade, token and account of the episode so far, the trigger last."""
        episode = self._open.get(key)
        if episode is None or t - episode[2] > self.gap:
            self._open[key] = [alert.alert_id, 1, t, list(alert.trade_ids), list(alert.token_ids),
                               list(alert.accounts)]
            alert.episode, alert.episode_seq = alert.alert_id, 1
            return alert
        episode[1] += 1
        episode[2] = t
        trigger = alert.trade_ids[-1:]
        episode[3] = _merged(episode[3], alert.trade_ids, self.max_trades)
        episode[4] = _merged(episode[4], alert.token_ids, self.max_trades)
        episode[5] = _merged(episode[5], alert.accounts, self.max_trades)
        alert.trade_ids = [trade for trade in episode[3] if trade not in trigger] + trigger
        alert.token_ids = list(episode[4])
        alert.accounts = list(episode[5])
        alert.episode, alert.episode_seq = episode[0], episode[1]
        return alert

    def seq(self, key, t: float) -> int:
        """How many alerts `key`'s episode has had if it is still open at `t`, else 0."""
        episode = self._open.get(key)
        return episode[1] if episode is not None and t - episode[2] <= self.gap else 0

    def evict(self, now: float) -> None:
        cutoff = now - self.gap
        closed = [key for key, episode in self._open.items() if episode[2] < cutoff]
        for key in closed:
            del self._open[key]

    def __len__(self) -> int:
        return len(self._open)


def _merged(known: list[str], new: list[str], limit: int) -> list[str]:
    """`known` then the unseen of `new`, in order, keeping the newest `limit`."""
    merged = list(dict.fromkeys(known + new))
    return merged[-limit:] if len(merged) > limit else merged


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
