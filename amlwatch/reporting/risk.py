"""Customer risk rating per account and per person (accounts linked by national ID hash).

Pure logic on event time. Inputs: the registry (KYC level, linked accounts), the account's paid
volume against its peers, its alerts (weighted by analysts' dispositions, a labels file) and its
watchlist hits (`watchlist.hit` alerts). The ruleset is `[risk]` with its `version`; every rating
lists the rules that gave its points, so a rating is explained by itself.

Invariants:

* An account is rated again on every relevant event: its own account events, its trades, every
  alert naming it and every change of a linked account's rating; its person is rated again whenever
  one of its accounts' ratings or its set of accounts changes. A rating is emitted only when the level, the
  score or the rules behind it changed, so the output is a change log of ratings.
* Linked accounts count by their own risk without links (no account's rating feeds back into
  itself through a sibling), so ratings settle in one pass and do not depend on order of siblings.
* The peer median (median 30-day paid volume of active accounts) is recomputed once per event-time
  day, when the watermark enters a new UTC day: the same in replay and live for the same stream.
* State is bounded: per account, alert ids capped per typology and one volume total per day of
  the activity window.
"""

from __future__ import annotations

import hashlib
from collections import deque
from decimal import Decimal
from pathlib import Path
from statistics import median

import orjson

from amlwatch.errors import AmlwatchError
from amlwatch.events import AccountEvent, Event, TradeEvent
from amlwatch.reporting.errors import ReportingError
from amlwatch.reporting.settings import RiskConfig
from amlwatch.sources import read_lines

DAY = 86_400
LEVELS = ("low", "medium", "high")
DISMISSED = frozenset({"false_positive", "dismissed", "benign"})


class LabelsError(AmlwatchError, ReportingError):
    """A labels file (`--labels`, `[risk] labels`) that cannot be used; `field` names the offending field,
    `source` the file (and line)."""


class Dispositions:
    """Analysts' dispositions: a labels file (`trade_id`, `typology`, optional `disposition`, `alert_id`).

    A line without `disposition` confirms its trade for its typology (the format `amlwatch
    evaluate` reads); `false_positive`/`dismissed`/`benign` dismisses it."""

    def __init__(self, confirmed=(), dismissed=(), alerts_confirmed=(), alerts_dismissed=()):
        self.confirmed = set(confirmed)
        self.dismissed = set(dismissed)
        self.alerts_confirmed = set(alerts_confirmed)
        self.alerts_dismissed = set(alerts_dismissed)

    @classmethod
    def load(cls, path: str | Path) -> "Dispositions":
        """Read a labels file whole; a file that cannot be read, or a malformed line, raises `LabelsError`
        naming the field and the file (and line)."""
        out = cls()
        try:
            lines = list(read_lines(path))
        except OSError as error:
            raise LabelsError("risk.labels", f"cannot read the labels file: {error.strerror or error}",
                              str(path)) from None
        for number, line in lines:
            source = f"{path}:{number}"
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise LabelsError("<json>", f"invalid JSON: {error}", source) from None
            if not isinstance(record, dict):
                raise LabelsError("<record>", "expected a JSON object", source)
            if not isinstance(record.get("typology"), str):
                raise LabelsError("typology", "a label needs `typology` (a string)", source)
            if not (isinstance(record.get("trade_id"), str) or isinstance(record.get("alert_id"), str)):
                raise LabelsError("trade_id", "a label needs `trade_id` or `alert_id` (a string)", source)
            dismissed = record.get("disposition") in DISMISSED
            if isinstance(record.get("alert_id"), str):
                (out.alerts_dismissed if dismissed else out.alerts_confirmed).add(record["alert_id"])
            if isinstance(record.get("trade_id"), str):
                (out.dismissed if dismissed else out.confirmed).add((record["trade_id"], record["typology"]))
        return out

    def of(self, alert: dict) -> str:
        """"confirmed", "dismissed" or "open" for one alert (its contract dict)."""
        alert_id, typology = alert.get("alert_id"), alert.get("typology")
        if alert_id in self.alerts_dismissed:
            return "dismissed"
        if alert_id in self.alerts_confirmed:
            return "confirmed"
        trades = alert.get("trade_ids") or []
        if any((t, typology) in self.confirmed for t in trades):
            return "confirmed"
        if trades and all((t, typology) in self.dismissed for t in trades):
            return "dismissed"
        return "open"


class RatedTrade:
    """What the rater reads of a trade. The worker's stage 1 sends the rating stage these fields
    (`fields`) rather than the trade's bytes, and the stage builds this from them instead of parsing the
    event again (a strict parse cost the stage about 10 us a trade, most of its own cost). `price` is kept
    only for a paid trade (the rater adds only those), as text in the fact, so the sums are exact."""

    __slots__ = ("event_id", "ts", "t", "buyer_id", "seller_id", "price")
    type = "trade"

    def __init__(self, event_id: str, ts: str, t: float, buyer_id: str, seller_id: str, price: str | None):
        self.event_id = event_id
        self.ts = ts
        self.t = t
        self.buyer_id = buyer_id
        self.seller_id = seller_id
        self.price = None if price is None else Decimal(price)

    @property
    def paid(self) -> bool:
        return self.price is not None

    @staticmethod
    def fields(trade: TradeEvent) -> list:
        """A parsed trade as the constructor's arguments (JSON values)."""
        return [trade.event_id, trade.ts, trade.t, trade.buyer_id, trade.seller_id,
                str(trade.price) if trade.paid else None]

    def __reduce__(self):
        return RatedTrade, (self.event_id, self.ts, self.t, self.buyer_id, self.seller_id,
                            None if self.price is None else str(self.price))


def rated_alert(alert) -> dict:
    """What the rater reads of an alert (the contract dict's fields it uses): the worker's stages send the
    rating stage this much of each alert, not the whole record."""
    record = {"alert_id": alert.alert_id, "detector": alert.detector, "typology": alert.typology,
              "accounts": list(alert.accounts), "trade_ids": list(alert.trade_ids)}
    if alert.detector == "watchlist.hit":
        record["evidence"] = {"hits": (alert.evidence or {}).get("hits", [])}
    return record


class _Profile:
    __slots__ = ("alerts", "blocked", "watched", "days", "volume", "last")

    def __init__(self):
        self.alerts: dict[str, list[tuple[str, str]]] = {}
        """typology -> [(alert_id, disposition)], at most max_alerts_per_typology."""
        self.blocked = False
        self.watched = False
        self.days: deque[list] = deque()
        self.volume = Decimal(0)
        self.last: tuple | None = None


class RiskRater:
    """`observe(event, alerts)` -> the ratings (dicts) that changed."""

    def __init__(self, config: RiskConfig | None, registry, dispositions: Dispositions | None = None):
        self.config = config or RiskConfig()
        self.registry = registry
        self.dispositions = dispositions or Dispositions()
        self.profiles: dict[str, _Profile] = {}
        self.persons: dict[str, tuple] = {}
        self.peer_median: Decimal | None = None
        self.peer_count = 0
        self._day = None

    def observe(self, event: Event | RatedTrade, alerts=()) -> list[dict]:
        day = int(event.t // DAY)
        if day != self._day:
            self._day = day
            self._peers(event.t)
        touched: dict[str, None] = {}
        if isinstance(event, AccountEvent):
            touched[event.account_id] = None
        elif isinstance(event, (TradeEvent, RatedTrade)):
            if event.paid:
                for account in (event.buyer_id, event.seller_id):
                    self._add_volume(self._profile(account), event)
            touched[event.buyer_id] = None
            touched[event.seller_id] = None
        for alert in alerts:
            record = alert if isinstance(alert, dict) else alert.to_dict("")
            for account in self._add_alert(record):
                touched[account] = None
        ratings = []
        for account in touched:
            ratings.extend(self._rate(account, event))
        return ratings

    # -- state

    def _profile(self, account: str) -> _Profile:
        profile = self.profiles.get(account)
        if profile is None:
            profile = self.profiles[account] = _Profile()
        return profile

    def _add_volume(self, profile: _Profile, trade: TradeEvent | RatedTrade) -> None:
        day = int(trade.t // DAY)
        if profile.days and profile.days[-1][0] == day:
            profile.days[-1][1] += trade.price
        else:
            profile.days.append([day, trade.price])
        profile.volume += trade.price
        self._expire(profile, trade.t)

    def _expire(self, profile: _Profile, t: float) -> None:
        first_day = int((t - self.config.activity_days * DAY) // DAY)
        while profile.days and profile.days[0][0] <= first_day:
            profile.volume -= profile.days.popleft()[1]

    def _peers(self, t: float) -> None:
        volumes = []
        for profile in self.profiles.values():
            self._expire(profile, t)
            if profile.volume > 0:
                volumes.append(profile.volume)
        self.peer_count = len(volumes)
        self.peer_median = median(volumes) if volumes else None

    def _add_alert(self, alert: dict) -> list[str]:
        typology, accounts = alert.get("typology"), alert.get("accounts") or []
        if alert.get("detector") == "watchlist.hit":
            hit_accounts = set()
            for hit in (alert.get("evidence") or {}).get("hits", []):
                profile = self._profile(hit.get("account") or "")
                if hit.get("list") == "block":
                    profile.blocked = True
                else:
                    profile.watched = True
                hit_accounts.add(hit.get("account"))
            return [a for a in accounts if a in hit_accounts]
        disposition = self.dispositions.of(alert)
        for account in accounts:
            listed = self._profile(account).alerts.setdefault(typology, [])
            if len(listed) < self.config.max_alerts_per_typology and all(a != alert.get("alert_id") for a, _ in listed):
                listed.append((alert.get("alert_id"), disposition))
        return list(accounts)

    # -- rating

    def _own(self, account: str) -> list[tuple[str, float, str]]:
        """(rule, points, detail) of the account's own risk, links aside."""
        config, reasons = self.config, []
        state = self.registry.accounts.get(account) if self.registry is not None else None
        if state is None:
            reasons.append(("kyc.unverified", config.kyc_unverified, "no registry record (KYC unknown)"))
        elif state.kyc_level < 2:
            reasons.append(("kyc.unverified", config.kyc_unverified,
                            f"KYC level {state.kyc_level}: no real-name verification"))
        elif state.kyc_level == 2:
            reasons.append(("kyc.basic", config.kyc_basic, "KYC level 2: no bank card or face match"))
        profile = self.profiles.get(account)
        if profile is None:
            return reasons
        if profile.blocked:
            reasons.append(("watchlist.block", config.watchlist_block, "on the block list"))
        elif profile.watched:
            reasons.append(("watchlist.watch", config.watchlist_watch, "on the watch list"))
        for typology in sorted(profile.alerts):
            listed = profile.alerts[typology]
            weight = sum(config.confirmed_multiplier if d == "confirmed" else 0.0 if d == "dismissed" else 1.0
                         for _, d in listed)
            points = config.alert_points.get(typology, 0.0) * weight
            if points:
                confirmed = sum(d == "confirmed" for _, d in listed)
                dismissed = sum(d == "dismissed" for _, d in listed)
                reasons.append((f"alerts.{typology}", points,
                                f"{len(listed)} {typology} alert{'s' if len(listed) > 1 else ''}"
                                f"{f', {confirmed} confirmed' if confirmed else ''}"
                                f"{f', {dismissed} dismissed' if dismissed else ''}"))
        if (self.peer_median and self.peer_count >= config.peer_min_accounts
                and profile.volume > self.peer_median * Decimal(str(config.peer_multiple))):
            reasons.append(("activity.peers", config.peer_points,
                            f"paid volume {profile.volume:,.2f} CNY over {config.activity_days:g} days, "
                            f"{profile.volume / self.peer_median:.1f}x the median active account's"))
        return reasons

    def _level(self, score: float) -> str:
        return "high" if score >= self.config.high_at else "medium" if score >= self.config.medium_at else "low"

    def rating_of(self, account: str) -> tuple[str, float, list[tuple[str, float, str]]]:
        reasons = self._own(account)
        state = self.registry.accounts.get(account) if self.registry is not None else None
        if state is not None:
            linked = [a for a in self.registry.accounts_sharing_id(state) if a != account]
            worst, worst_account = "low", None
            for other in linked:
                level = self._level(sum(p for _, p, _ in self._own(other)))
                if LEVELS.index(level) > LEVELS.index(worst):
                    worst, worst_account = level, other
            if worst != "low":
                points = self.config.linked_high if worst == "high" else self.config.linked_medium
                reasons.append((f"linked.{worst}", points,
                                f"linked account {worst_account} (same national ID) is {worst} risk"))
        score = sum(p for _, p, _ in reasons)
        return self._level(score), score, reasons

    def _rate(self, account: str, event: Event, *, siblings: bool = True) -> list[dict]:
        """The account's rating if it changed; then its person's, and its linked accounts' (whose
        `linked.*` reason follows this account's own risk)."""
        level, score, reasons = self.rating_of(account)
        profile = self._profile(account)
        out = []
        signature = (level, round(score, 4), tuple(r for r, _, _ in reasons))
        changed = signature != profile.last
        if changed:
            previous = profile.last[0] if profile.last else None
            profile.last = signature
            out.append(self._record("account", account, level, score, reasons, previous, event))
        state = self.registry.accounts.get(account) if self.registry is not None else None
        if state is not None and state.id_hash is not None and (changed or isinstance(event, AccountEvent)):
            if siblings:
                for other in self.registry.accounts_sharing_id(state):
                    if other != account:
                        out.extend(self._rate(other, event, siblings=False))
            out.extend(self._rate_person(state.id_hash, event))
        return out

    def _rate_person(self, id_hash: str, event: Event) -> list[dict]:
        members = list(self.registry.accounts_by_id_hash.get(id_hash, []))
        rated = sorted(((self.rating_of(a), a) for a in members), key=lambda x: (-x[0][1], x[1]))
        (level, score, reasons), top = rated[0]
        person_reasons = [(rule, points, f"account {top}: {detail}") for rule, points, detail in reasons]
        signature = (level, round(score, 4), tuple(r for r, _, _ in person_reasons), tuple(members))
        previous = self.persons.get(id_hash)
        if signature == previous:
            return []
        self.persons[id_hash] = signature
        record = self._record("person", id_hash, level, score, person_reasons, previous[0] if previous else None, event)
        record["accounts"] = members
        return [record]

    def _record(self, kind: str, subject: str, level: str, score: float, reasons, previous, event: Event) -> dict:
        digest = hashlib.sha256(f"{kind}\x1f{subject}\x1f{event.event_id}".encode()).hexdigest()[:24]
        return {"record_type": "risk_rating", "rating_id": f"rr-{digest}", "subject_kind": kind, "subject": subject,
                "level": level, "score": round(score, 2), "previous_level": previous, "ruleset": self.config.version,
                "reasons": [{"rule": r, "points": round(p, 2), "detail": d} for r, p, d in reasons],
                "ts": event.ts, "event_id": event.event_id}

    def state_size(self) -> dict[str, int]:
        return {"rated_accounts": len(self.profiles), "rated_persons": len(self.persons)}
