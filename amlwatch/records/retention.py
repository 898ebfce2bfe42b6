"""Retention: legal holds and the purge of whole sealed segments past their horizon.

Holds and purges live in the archive's own `audit` stream (hash-chained like
every other stream), so the hold list is whatever that stream says, and every
removal is on record before it happens:

* `hold.add` {hold_id, case, accounts, since, until, reason, by}
* `hold.release` {hold_id, reason, by}
* `purge` {now, policy, removed: [segment summaries], kept_for_hold,
  kept_for_identity, purged: every purged run so far, per stream}

A purge removes a sealed segment only when all of these hold:

* it is not the newest sealed segment of its stream (so the chain's head can
  always be found, whatever happens to the open segment);
* its latest event time is older than `now - <kind>_days` (0 days: kept forever);
* for an events segment, with `identity_until_closed`, every account whose
  account (identity) events it holds was closed more than `events_days` ago;
* no record in it touches an account under an active hold, or falls in the
  period of an active case hold (audit segments: none adds an active hold).
"""

from __future__ import annotations

import getpass
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from amlwatch.config import DAY, RetentionConfig
from amlwatch.events import parse_time

from .verify import check_sealed_segment
from .archive import (
    MANIFEST,
    OPEN,
    SEALED,
    ArchiveReader,
    RecordArchive,
    SegmentStats,
    day_end,
    fsync_dir,
    record_accounts,
    stream_kind,
    utc_iso,
)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in a container
        return os.environ.get("USER", "unknown")


@dataclass
class Hold:
    hold_id: str
    reason: str
    accounts: list[str] = field(default_factory=list)
    case: str | None = None
    since: str | None = None
    until: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    released_at: str | None = None
    released_by: str | None = None
    release_reason: str | None = None

    @property
    def kind(self) -> str:
        return "case" if self.case else "account"

    @property
    def active(self) -> bool:
        return self.released_at is None

    def matches(self, accounts, t: float | None) -> bool:
        """Whether a record touching `accounts` at event time `t` falls under this hold.

        A record without an event time is held whenever its accounts match.
        """
        if t is not None:
            if self.since is not None and t < parse_time(self.since, "since").timestamp():
                return False
            if self.until is not None and t > parse_time(self.until, "until").timestamp():
                return False
        if self.accounts:
            return any(a in self.accounts for a in accounts)
        return True

    def describe(self) -> str:
        what = f"case {self.case}" if self.case else "account"
        scope = []
        if self.accounts:
            scope.append("accounts " + ", ".join(self.accounts))
        if self.since or self.until:
            scope.append(f"period {self.since or '...'} to {self.until or '...'}")
        state = "active" if self.active else f"released {self.released_at} by {self.released_by}"
        return (f"{self.hold_id}  {what}: {'; '.join(scope)}  reason: {self.reason}  "
                f"(placed {self.created_at} by {self.created_by}; {state})")


def list_holds(root: str | os.PathLike, include_released: bool = False) -> list[Hold]:
    """Holds as the audit stream records them, oldest first."""
    root = Path(root)
    if not (root / "audit").is_dir():
        return []
    holds: dict[str, Hold] = {}
    for record in ArchiveReader(root).iter_stream("audit"):
        action = record.get("action")
        if action == "hold.add":
            holds[record["hold_id"]] = Hold(
                record["hold_id"], record.get("reason", ""), list(record.get("accounts") or []),
                record.get("case"), record.get("since"), record.get("until"), record.get("at"), record.get("by"))
        elif action == "hold.release" and record.get("hold_id") in holds:
            hold = holds[record["hold_id"]]
            hold.released_at, hold.released_by = record.get("at"), record.get("by")
            hold.release_reason = record.get("reason")
    return [h for h in holds.values() if include_released or h.active]


def add_hold(root: str | os.PathLike, *, reason: str, accounts=(), case: str | None = None,
             since: str | None = None, until: str | None = None, by: str | None = None) -> Hold:
    """Place a legal hold: on accounts, or on a case (its accounts and/or a period)."""
    accounts = sorted({a for a in accounts if a})
    if not reason or not reason.strip():
        raise ValueError("a hold needs a --reason")
    if case is None:
        if not accounts:
            raise ValueError("a hold needs --account ID, or --case ID with accounts and/or a period")
        if since or until:
            raise ValueError("a period (--since/--until) belongs to a case hold: add --case ID")
    elif not accounts and not (since or until):
        raise ValueError(f"case hold {case}: name its accounts (--account, repeatable) and/or a period "
                         "(--since/--until)")
    for value, name in ((since, "--since"), (until, "--until")):
        if value is not None:
            parse_time(value, name)
    with RecordArchive(root) as archive:
        seq = archive.head("audit")[0] + 1
        hold = Hold(f"hold-{seq}", reason.strip(), accounts, case, since, until, created_by=by or current_user())
        archive.append_audit("hold.add", hold_id=hold.hold_id, case=case, accounts=accounts, since=since,
                             until=until, reason=hold.reason, by=hold.created_by)
        archive.commit()
    hold.created_at = utc_iso(time.time())
    return hold


def release_hold(root: str | os.PathLike, hold_id: str, *, reason: str | None = None, by: str | None = None) -> Hold:
    with RecordArchive(root) as archive:
        archive.head("audit")  # take the audit stream's lock before reading the hold list
        active = {h.hold_id: h for h in list_holds(root)}
        if hold_id not in active:
            known = {h.hold_id for h in list_holds(root, include_released=True)}
            raise ValueError(f"hold {hold_id} is {'already released' if hold_id in known else 'unknown'}")
        hold = active[hold_id]
        hold.released_by = by or current_user()
        hold.release_reason = reason
        archive.append_audit("hold.release", hold_id=hold_id, accounts=hold.accounts, case=hold.case,
                             reason=reason, by=hold.released_by)
        archive.commit()
    hold.released_at = utc_iso(time.time())
    return hold


# --------------------------------------------------------------------------- purge


@dataclass
class PurgePlan:
    now: float
    policy: dict
    dry_run: bool = True
    removed: list[dict] = field(default_factory=list)
    kept_for_hold: list[dict] = field(default_factory=list)
    kept_for_identity: list[dict] = field(default_factory=list)
    kept_for_damage: list[dict] = field(default_factory=list)
    """Segments past their horizon whose file or manifest `verify` flags: never removed on a manifest's word."""
    audit_seq: int | None = None

    def text(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        lines = [f"purge at {utc_iso(self.now)} (policy: events {self.policy['events_days']} d, alerts "
                 f"{self.policy['alerts_days']} d, audit {self.policy['audit_days']} d; 0 = forever)"
                 + ("  DRY RUN: nothing changed" if self.dry_run else "")]
        for entry in self.removed:
            lines.append(f"  {verb} {entry['segment']}  seq {entry['first_seq']}..{entry['last_seq']}  "
                         f"{entry['records']:,} records  {entry['first_ts']} .. {entry['last_ts']}")
        for entry in self.kept_for_hold:
            lines.append(f"  kept (hold {', '.join(entry['holds'])}) {entry['segment']}")
        for entry in self.kept_for_identity:
            shown = ", ".join(entry["accounts"][:5]) + (" ..." if len(entry["accounts"]) > 5 else "")
            lines.append(f"  kept (identity records of {entry['open_accounts']} accounts not closed long "
                         f"enough: {shown}) {entry['segment']}")
        for entry in self.kept_for_damage:
            lines.append(f"  kept (fails verify: {entry['problems'][0]}) {entry['segment']}")
        records = sum(e["records"] for e in self.removed)
        lines.append(f"{verb} {len(self.removed)} segments ({records:,} records); kept {len(self.kept_for_hold)} "
                     f"for holds, {len(self.kept_for_identity)} for identity retention"
                     + (f", {len(self.kept_for_damage)} that fail verify" if self.kept_for_damage else "")
                     + ("" if self.audit_seq is None else f"; audit record seq {self.audit_seq}"))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)


def _policy(retention: RetentionConfig) -> dict:
    return {"events_days": retention.events_days, "alerts_days": retention.alerts_days,
            "audit_days": retention.audit_days, "identity_until_closed": retention.identity_until_closed}


def _identity_state(reader: ArchiveReader) -> dict[str, list]:
    """Each account's latest account event [t, action] across the archive (manifests and open segments)."""
    latest: dict[str, list] = {}

    def merge(identity: dict) -> None:
        for account, (t, action) in identity.items():
            known = latest.get(account)
            if known is None or t >= known[0]:
                latest[account] = [t, action]

    for sid in reader.streams(kinds=("event",)):
        for seg in reader.segments(sid):
            if seg.sealed:
                merge(seg.manifest().get("identity") or {})
            elif seg.has_open:
                stats = SegmentStats(sid)
                for record in _records(seg):
                    stats.add(record, "", 0)
                merge(stats.identity)
    return latest


def _records(seg):
    import orjson

    for line in seg.lines():
        yield orjson.loads(line)


def plan_purge(root: str | os.PathLike, retention: RetentionConfig, now: float | None = None) -> PurgePlan:
    """What a purge would remove and keep; changes nothing."""
    now = time.time() if now is None else now
    reader = ArchiveReader(root)
    plan = PurgePlan(now, _policy(retention))
    holds = list_holds(root)
    active_ids = {h.hold_id for h in holds}
    identity = None
    days_by_kind = {"event": retention.events_days, "alert": retention.alerts_days, "audit": retention.audit_days}
    for sid in reader.streams():
        kind, _ = stream_kind(sid)
        days = days_by_kind[kind]
        if days <= 0:
            continue
        cutoff = now - days * DAY
        sealed = [seg for seg in reader.segments(sid) if seg.sealed]
        for seg in sealed[:-1]:  # the newest sealed segment is always kept: the chain's head is never lost
            manifest = seg.manifest()
            if not _old_enough(manifest, seg, cutoff):
                continue
            # Only now (a candidate) is the manifest worth checking, and it must be: its dates decide the
            # deletion, and a manifest edited to look old would otherwise delete a young segment.
            problems = check_sealed_segment(seg)
            if problems:
                plan.kept_for_damage.append({"segment": seg.label, "problems": problems[:5]})
                continue
            if kind == "event" and retention.identity_until_closed and manifest.get("identity"):
                if identity is None:
                    identity = _identity_state(reader)
                still_open = sorted(a for a in manifest["identity"]
                                    if not (identity.get(a, [0, None])[1] == "close" and identity[a][0] < cutoff))
                if still_open:
                    plan.kept_for_identity.append({"segment": seg.label, "open_accounts": len(still_open),
                                                   "accounts": still_open[:50]})
                    continue
            held = set()
            if holds:
                last_t = None
                for record in _records(seg):
                    t = record.get("t")
                    if t is None:
                        t = last_t
                    else:
                        last_t = t
                    if kind == "audit":
                        if record.get("action") == "hold.add" and record.get("hold_id") in active_ids:
                            held.add(record["hold_id"])
                        continue
                    accounts = record_accounts(record)
                    for hold in holds:
                        if hold.hold_id not in held and hold.matches(accounts, t):
                            held.add(hold.hold_id)
            if held:
                plan.kept_for_hold.append({"segment": seg.label, "holds": sorted(held, key=_hold_order)})
                continue
            plan.removed.append({
                "stream": sid, "segment": seg.label, "first_seq": manifest["first_seq"],
                "last_seq": manifest["last_seq"], "prev_hash": manifest["prev_hash"],
                "last_hash": manifest["last_hash"], "records": manifest["records"],
                "first_ts": manifest.get("first_ts"), "last_ts": manifest.get("last_ts"),
                "sha256": manifest["sha256"],
            })
    return plan


def _old_enough(manifest: dict, seg, cutoff: float) -> bool:
    """Past the horizon by event time: its newest record (checked against the records before deletion),
    else the end of its day."""
    end = manifest.get("max_t")
    if not isinstance(end, (int, float)) or isinstance(end, bool):
        end = day_end(seg.day)
    return end < cutoff


def _hold_order(hold_id: str):
    tail = hold_id.rpartition("-")[2]
    return (0, int(tail)) if tail.isdigit() else (1, hold_id)


def _coalesce(runs) -> list[list]:
    """Purged runs [first_seq, last_seq, prev_hash, last_hash], adjacent chained runs merged."""
    merged: list[list] = []
    for run in sorted({tuple(r) for r in runs}):
        if merged and merged[-1][1] + 1 == run[0] and merged[-1][3] == run[2]:
            merged[-1][1], merged[-1][3] = run[1], run[3]
        elif merged and run[0] <= merged[-1][1]:
            continue  # already covered
        else:
            merged.append(list(run))
    return merged


def purge(root: str | os.PathLike, retention: RetentionConfig, *, now: float | None = None,
          dry_run: bool = False, by: str | None = None) -> PurgePlan:
    """Remove whole sealed segments past their horizon, not under hold; recorded in the audit stream first."""
    if dry_run:
        return plan_purge(root, retention, now)
    root = Path(root)
    with RecordArchive(root) as archive:
        archive.head("audit")  # lock the audit stream: one purge or hold change at a time
        plan = plan_purge(root, retention, now)
        plan.dry_run = False
        state: dict[str, list] = {}
        for record in ArchiveReader(root).iter_stream("audit"):
            if record.get("action") == "purge":
                for sid, runs in (record.get("purged") or {}).items():
                    state.setdefault(sid, []).extend(runs)
        for entry in plan.removed:
            state.setdefault(entry["stream"], []).append(
                [entry["first_seq"], entry["last_seq"], entry["prev_hash"], entry["last_hash"]])
        state = {sid: _coalesce(runs) for sid, runs in sorted(state.items())}
        plan.audit_seq = archive.append_audit(
            "purge", now=utc_iso(plan.now), policy=plan.policy, by=by or current_user(), removed=plan.removed,
            kept_for_hold=plan.kept_for_hold, kept_for_identity=plan.kept_for_identity,
            kept_for_damage=plan.kept_for_damage, purged=state)
        archive.commit()  # on record before anything is removed
        touched = set()
        for entry in plan.removed:
            directory = root / entry["stream"]
            base = entry["segment"].rsplit("/", 1)[1][: -len("." + SEALED)]
            for suffix in (SEALED, MANIFEST, OPEN):
                try:
                    os.unlink(directory / f"{base}.{suffix}")
                except FileNotFoundError:
                    pass
            touched.add(directory)
        for directory in touched:
            fsync_dir(directory)
    return plan


def parse_now(text: str | None) -> float | None:
    if text is None:
        return None
    return parse_time(text, "--now").timestamp()
