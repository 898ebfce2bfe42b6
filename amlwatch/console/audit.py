"""The console's audit trail: append-only, each entry hash-chained to the one before.

Every action an analyst or supervisor takes (log-ins, case changes, dispositions,
approvals, user changes; PII views only when configured) is appended in the same
transaction as the change itself, so a change without its audit entry cannot be
committed. `hash = SHA-256(prev_hash || canonical JSON of the entry)`, like the
record archive's chain: `verify` recomputes it and names the first entry that was
changed, removed or reordered. Rows are never updated or deleted by the console;
keep the head hash `verify` prints somewhere else to detect a truncated tail.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Connection, select

from amlwatch.console.schema import audit_log

GENESIS = "0" * 64


def entry_hash(prev_hash: str, seq: int, at: float, actor: str, action: str, target: str, detail: str) -> str:
    body = orjson.dumps({"seq": seq, "at": at, "actor": actor, "action": action, "target": target,
                         "detail": detail}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def append(conn: Connection, actor: str, action: str, target: str, detail: dict | None = None,
           *, at: float | None = None) -> int:
    """Append one entry inside the caller's transaction; returns its sequence number.

    Two concurrent appends compute the same `seq` and the second fails on the primary
    key, rolling its whole transaction back (callers retry: `store.transaction`)."""
    last = conn.execute(select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = time.time() if at is None else at
    text = orjson.dumps(detail or {}, option=orjson.OPT_SORT_KEYS).decode()
    conn.execute(audit_log.insert().values(seq=seq, at=at, actor=actor, action=action, target=target, detail=text,
                                           prev_hash=prev, hash=entry_hash(prev, seq, at, actor, action, target, text)))
    return seq


@dataclass
class AuditReport:
    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def table(self) -> str:
        lines = [f"audit log: {self.entries:,} entries, head seq {self.head_seq} hash {self.head_hash}"]
        lines += [f"  PROBLEM {p}" for p in self.problems] or ["  chain intact"]
        return "\n".join(lines)


def verify(conn: Connection, limit_problems: int = 50) -> AuditReport:
    report = AuditReport()
    prev, expected_seq = GENESIS, 1
    for row in conn.execute(select(audit_log).order_by(audit_log.c.seq)):
        report.entries += 1
        if row.seq != expected_seq:
            report.problems.append(f"seq {row.seq}: expected seq {expected_seq} (an entry is missing or inserted)")
        if row.prev_hash != prev:
            report.problems.append(f"seq {row.seq}: prev_hash does not match the entry before (removed or reordered)")
        if entry_hash(row.prev_hash, row.seq, row.at, row.actor, row.action, row.target, row.detail) != row.hash:
            report.problems.append(f"seq {row.seq}: content does not match its hash (changed)")
        prev, expected_seq = row.hash, row.seq + 1
        report.head_seq, report.head_hash = row.seq, row.hash
        if len(report.problems) >= limit_problems:
            break
    return report
