"""The inbox query: episodes filtered, sorted, counted and paged.

Filters are parsed at the boundary into an `InboxFilter` (a bad value is a
`FilterError` naming the parameter, shown to the analyst, never a 500). Every
filter and both sort orders are served by an index on `episodes`
(schema.py), and the account filter by `episode_accounts`, so a page stays an
index walk with a million alerts (bench/bench_console.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timezone

from sqlalchemy import Connection, Select, func, select

from amlwatch.alerts import SEVERITIES
from amlwatch.console.counts import counted
from amlwatch.console.schema import episode_accounts, episodes
from amlwatch.events import BadRecord, parse_time

STATUSES = ("open", "in_case", "closed")
SORTS = {"time": (episodes.c.event_time.desc(), episodes.c.episode_id.desc()),
         "time_asc": (episodes.c.event_time.asc(), episodes.c.episode_id.asc()),
         "score": (episodes.c.score.desc(), episodes.c.event_time.desc(), episodes.c.episode_id.desc())}
PAGE_SIZES = (25, 50, 100, 200)


class FilterError(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class InboxFilter:
    typology: str = ""
    severity: str = ""
    detector: str = ""
    status: str = ""
    account: str = ""
    collection: str = ""
    since: str = ""
    until: str = ""
    sort: str = "time"
    page: int = 1
    per_page: int = 50

    @classmethod
    def from_params(cls, params) -> "InboxFilter":
        values = {f.name: (params.get(f.name) or "").strip() for f in fields(cls)}
        for name in ("page", "per_page"):
            raw = values.pop(name)
            try:
                values[name] = int(raw) if raw else getattr(cls, name)
            except ValueError:
                raise FilterError(name, "expected a whole number") from None
        if values["page"] < 1:
            raise FilterError("page", "must be 1 or more")
        if values["per_page"] not in PAGE_SIZES:
            raise FilterError("per_page", f"one of {', '.join(map(str, PAGE_SIZES))}")
        values["sort"] = values["sort"] or "time"
        if values["sort"] not in SORTS:
            raise FilterError("sort", f"one of {', '.join(SORTS)}")
        if values["severity"] and values["severity"] not in SEVERITIES:
            raise FilterError("severity", f"one of {', '.join(SEVERITIES)}")
        if values["status"] and values["status"] not in STATUSES:
            raise FilterError("status", f"one of {', '.join(STATUSES)}")
        made = cls(**values)
        made.bound("since"), made.bound("until")
        return made

    def bound(self, name: str) -> float | None:
        """`since`/`until` as epoch seconds: ISO-8601 with offset, or a date (UTC day start / end)."""
        text = getattr(self, name)
        if not text:
            return None
        if len(text) == 10:
            try:
                day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
            except ValueError:
                raise FilterError(name, "expected YYYY-MM-DD or ISO-8601 with offset") from None
            return day + (86400 if name == "until" else 0)
        try:
            return parse_time(text, name).timestamp()
        except BadRecord as exc:
            raise FilterError(name, exc.reason) from None

    def query_string(self, **changes) -> str:
        from urllib.parse import urlencode

        values = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        defaults = {f.name: f.default for f in fields(self)}
        return urlencode({k: v for k, v in values.items() if v != defaults[k] and v != ""})


def _filtered(query: Select, f: InboxFilter, *, skip: str = "") -> Select:
    for name, column in (("typology", episodes.c.typology), ("detector", episodes.c.detector),
                         ("status", episodes.c.status), ("collection", episodes.c.collection_id)):
        if getattr(f, name) and name != skip:
            query = query.where(column == getattr(f, name))
    if f.severity and skip != "severity":
        query = query.where(episodes.c.severity_rank == SEVERITIES.index(f.severity))
    if f.account:
        query = query.where(episodes.c.episode_id.in_(
            select(episode_accounts.c.episode_id).where(episode_accounts.c.account_id == f.account)))
    if (since := f.bound("since")) is not None:
        query = query.where(episodes.c.event_time >= since)
    if (until := f.bound("until")) is not None:
        query = query.where(episodes.c.event_time < until)
    return query


@dataclass
class InboxPage:
    rows: list
    total: int
    by_typology: dict[str, int]
    by_severity: dict[str, int]
    filter: InboxFilter

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filter.per_page))


def _kept_counts(conn: Connection, f: InboxFilter) -> tuple[int, dict[str, int], dict[int, int]]:
    """Total and facets from `episode_counts` (counts.py), for filters on detector, typology, severity, status."""
    rank = SEVERITIES.index(f.severity) if f.severity else None
    total, by_typology, by_rank = 0, {}, {}
    for (detector, typology, severity_rank, status), n in counted(conn).items():
        if (f.status and status != f.status) or (f.detector and detector != f.detector):
            continue
        typology_ok, severity_ok = not f.typology or typology == f.typology, rank is None or severity_rank == rank
        if severity_ok:
            by_typology[typology] = by_typology.get(typology, 0) + n
        if typology_ok:
            by_rank[severity_rank] = by_rank.get(severity_rank, 0) + n
        if typology_ok and severity_ok:
            total += n
    return total, dict(sorted(by_typology.items())), by_rank


def inbox_page(conn: Connection, f: InboxFilter) -> InboxPage:
    rows = conn.execute(_filtered(select(episodes), f).order_by(*SORTS[f.sort])
                        .limit(f.per_page).offset((f.page - 1) * f.per_page)).all()
    if not (f.account or f.collection or f.since or f.until):
        total, by_typology, by_severity_rank = _kept_counts(conn, f)
    else:
        total = conn.execute(_filtered(select(func.count()).select_from(episodes), f)).scalar_one()
        by_typology = dict(conn.execute(_filtered(select(episodes.c.typology, func.count()), f, skip="typology")
                                        .group_by(episodes.c.typology).order_by(episodes.c.typology)).all())
        by_severity_rank = dict(conn.execute(_filtered(select(episodes.c.severity_rank, func.count()), f,
                                                       skip="severity").group_by(episodes.c.severity_rank)).all())
    by_severity = {name: by_severity_rank.get(rank, 0) for rank, name in reversed(list(enumerate(SEVERITIES)))}
    return InboxPage(rows, total, by_typology, by_severity, f)


def detectors(conn: Connection) -> list[str]:
    return list(conn.execute(select(episodes.c.detector).distinct().order_by(episodes.c.detector)).scalars())
