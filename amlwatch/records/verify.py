"""Verify a record archive: every chain, every manifest, every sealed file.

Detects a changed byte (a record's hash, a sealed file's SHA-256), a deleted,
inserted or reordered record (the sequence and `prev` links), a truncated
segment (its manifest's count and last hash) and a missing segment (a gap in
the sequence between segments), naming the segment and the record. A gap is
not an error when purge records in the audit stream account for it exactly:
the purged segments' sequence ranges tile the gap and their hashes chain from
the record before it to the record after it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from amlwatch.events import BadRecord, parse_time

from .archive import (
    MANIFEST,
    OPEN,
    SEALED,
    SEGMENT_RE,
    ArchiveReader,
    RecordFormatError,
    SegmentStats,
    genesis_hash,
    list_segments,
    list_streams,
    split_line,
    stream_kind,
)

MAX_PROBLEMS_PER_SEGMENT = 20


@dataclass
class Problem:
    level: str  # "error" or "warning"
    where: str  # a segment (`events/p0/000000000001-2026-03-01.jsonl.gz`) or a stream
    seq: int | None
    message: str

    def __str__(self) -> str:
        tag = "FAIL" if self.level == "error" else "warn"
        at = f" seq {self.seq}" if self.seq is not None else ""
        return f"{tag} {self.where}{at}: {self.message}"

    def to_dict(self) -> dict:
        return {"level": self.level, "where": self.where, "seq": self.seq, "message": self.message}


@dataclass
class StreamSummary:
    records: int = 0
    sealed: int = 0
    open: int = 0
    purged_runs: int = 0
    purged_records: int = 0
    head_seq: int = 0
    head_hash: str = ""


@dataclass
class VerifyReport:
    root: str
    problems: list[Problem] = field(default_factory=list)
    streams: dict[str, StreamSummary] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def empty(self) -> bool:
        """No record was checked: an archive a run never wrote to (or one aborted before its first commit)
        is not a verified archive, and `records verify` exits 1 on it rather than print OK."""
        return sum(s.records for s in self.streams.values()) == 0 and not any(
            s.purged_records for s in self.streams.values())

    def error(self, where: str, seq: int | None, message: str) -> None:
        self.problems.append(Problem("error", where, seq, message))

    def warn(self, where: str, seq: int | None, message: str) -> None:
        self.problems.append(Problem("warning", where, seq, message))

    def text(self) -> str:
        lines = [str(p) for p in self.problems]
        records = sum(s.records for s in self.streams.values())
        sealed = sum(s.sealed for s in self.streams.values())
        opened = sum(s.open for s in self.streams.values())
        purged = sum(s.purged_records for s in self.streams.values())
        verdict = "FAILED" if not self.ok else "EMPTY (nothing was checked)" if self.empty else "OK"
        lines.append(f"{verdict}: {records:,} records checked in {sealed:,} sealed and {opened:,} "
                     f"open segments of {len(self.streams)} streams; {purged:,} purged records accounted for; "
                     f"{len(self.errors)} errors, {len(self.problems) - len(self.errors)} warnings")
        for sid, s in self.streams.items():
            lines.append(f"  {sid:<12} head seq {s.head_seq:>10,}  hash {s.head_hash}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"root": self.root, "ok": self.ok, "empty": self.empty, "problems": [p.to_dict() for p in self.problems],
                "streams": {k: vars(v) for k, v in self.streams.items()}}


def purged_ranges(root: str | os.PathLike) -> dict[str, list[tuple[int, int, str, str]]]:
    """(first_seq, last_seq, prev_hash, last_hash) of every purged run, per stream, from the audit stream."""
    ranges: dict[str, set] = {}
    try:
        records = list(ArchiveReader(root).iter_stream("audit")) if (Path(root) / "audit").is_dir() else []
    except (OSError, EOFError, zlib.error, orjson.JSONDecodeError):
        records = []  # the audit stream's own damage is reported by the verify pass
    for record in records:
        if record.get("action") != "purge":
            continue
        for entry in record.get("removed") or []:
            try:
                ranges.setdefault(entry["stream"], set()).add(
                    (int(entry["first_seq"]), int(entry["last_seq"]), entry["prev_hash"], entry["last_hash"]))
            except (KeyError, TypeError, ValueError):
                continue
        for sid, runs in (record.get("purged") or {}).items():
            for run in runs:
                try:
                    ranges.setdefault(sid, set()).add((int(run[0]), int(run[1]), run[2], run[3]))
                except (IndexError, TypeError, ValueError):
                    continue
    return {sid: sorted(runs) for sid, runs in ranges.items()}


def _cover(runs: list[tuple[int, int, str, str]], start: int, prev: str | None, stop: int) -> tuple[int, int] | None:
    """Purged runs that tile seq start..stop-1 with an unbroken chain: (segments, records), or None."""
    by_first: dict[int, list] = {}
    for run in runs:
        by_first.setdefault(run[0], []).append(run)
    segments = 0
    s, p = start, prev
    while s < stop:
        options = [r for r in by_first.get(s, ()) if r[1] < stop and (p is None or r[2] == p)]
        if not options:
            return None
        run = max(options, key=lambda r: r[1])
        segments += 1
        s, p = run[1] + 1, run[3]
    return segments, stop - start


class _Walk:
    """The chain state through one stream."""

    def __init__(self, sid: str):
        self.sid = sid
        self.kind, self.partition = stream_kind(sid)
        self.seq = 1
        self.prev: str | None = genesis_hash(sid)


def verify_archive(root: str | os.PathLike) -> VerifyReport:
    root = Path(root)
    report = VerifyReport(str(root))
    if not root.is_dir():
        report.error(str(root), None, "no record archive here")
        return report
    purged = purged_ranges(root)
    streams = list_streams(root)
    if not streams:
        report.warn(str(root), None, "empty archive (no streams)")
    for sid in streams:
        _verify_stream(root, sid, purged.get(sid, []), report)
    return report


def _verify_stream(root: Path, sid: str, runs: list, report: VerifyReport) -> None:
    directory = root / sid
    summary = report.streams.setdefault(sid, StreamSummary())
    for entry in sorted(os.listdir(directory)):
        if entry == ".lock" or SEGMENT_RE.match(entry):
            continue
        if entry.endswith(".tmp"):
            report.warn(f"{sid}/{entry}", None, "temporary file of an interrupted seal (removed on next open)")
        else:
            report.warn(f"{sid}/{entry}", None, "unexpected file in a stream directory")
    purged_firsts = {r[0] for r in runs}
    walk = _Walk(sid)
    for seg in list_segments(directory, sid):
        label = seg.label
        if seg.first_seq > walk.seq:
            covered = _cover(runs, walk.seq, walk.prev, seg.first_seq)
            if covered is None:
                report.error(label, walk.seq, f"records seq {walk.seq}..{seg.first_seq - 1} are missing before "
                                              "this segment (a segment was deleted) and no purge record covers them")
            else:
                summary.purged_runs += covered[0]
                summary.purged_records += covered[1]
            walk.seq, walk.prev = seg.first_seq, None
        elif seg.first_seq < walk.seq:
            report.error(label, seg.first_seq, f"segment starts at seq {seg.first_seq} but seq {walk.seq - 1} was "
                                               "already reached: an overlapping or inserted segment")
            walk.seq, walk.prev = seg.first_seq, None
        listed_purged = seg.first_seq in purged_firsts
        if listed_purged:
            report.warn(label, None, "listed as purged by the audit stream but still present "
                                     "(an interrupted purge; the next purge removes it)")
        manifest = None
        if seg.has_manifest:
            try:
                manifest = seg.manifest()
            except (OSError, orjson.JSONDecodeError) as error:
                report.error(f"{sid}/{seg.name.file(MANIFEST)}", None, f"unreadable manifest: {error}")
        if seg.has_manifest and not seg.has_sealed:
            if seg.has_open:
                report.error(label, None, "manifest without its sealed file beside an open segment")
            else:
                first = manifest.get("first_seq") if manifest else seg.first_seq
                last = manifest.get("last_seq") if manifest else None
                report.error(f"{sid}/{seg.name.file(SEALED)}", first,
                             f"sealed segment missing (its manifest lists seq {first}..{last})")
                if manifest and isinstance(last, int):
                    walk.seq, walk.prev = last + 1, manifest.get("last_hash")
                continue
        if seg.has_open and seg.has_sealed and seg.has_manifest:
            report.warn(f"{sid}/{seg.name.file(OPEN)}", None,
                        "open file of a completed seal left behind (removed when the stream is next opened)")
        if seg.has_sealed and not seg.has_manifest:
            if seg.has_open:
                report.warn(f"{sid}/{seg.name.file(SEALED)}", None,
                            "sealed file of an interrupted seal (rolled back when the stream is next opened)")
            else:
                report.error(label, None, "sealed segment has no manifest")
        if seg.sealed or (seg.has_sealed and not seg.has_open):
            summary.sealed += 1
            _verify_sealed(seg, manifest, walk, report, summary)
        else:
            summary.open += 1
            _verify_open(seg, walk, report, summary)
    summary.head_seq = walk.seq - 1
    summary.head_hash = walk.prev or ""


def _verify_sealed(seg, manifest: dict | None, walk: _Walk, report: VerifyReport, summary: StreamSummary) -> None:
    label = seg.label
    path = seg.path(SEALED)
    data = path.read_bytes()
    if manifest is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != manifest.get("sha256") or len(data) != manifest.get("bytes"):
            report.error(label, None, f"sealed file altered or truncated: {len(data):,} bytes with sha256 "
                                      f"{digest[:16]}..., manifest says {manifest.get('bytes')} bytes with sha256 "
                                      f"{str(manifest.get('sha256'))[:16]}...")
        if manifest.get("stream") != seg.stream or manifest.get("first_seq") != seg.first_seq:
            report.error(label, None, "manifest names another segment "
                                      f"({manifest.get('stream')} seq {manifest.get('first_seq')})")
    stats = SegmentStats(seg.stream)
    start_seq = walk.seq
    problems = _Counter(report, label)
    complete = True
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    problems.error(None, f"last line unterminated after seq {walk.seq - 1} (truncated)")
                    break
                _check_line(line, walk, problems, stats)
    except (OSError, EOFError, zlib.error) as error:
        complete = False
        at_end = manifest is not None and walk.seq - 1 == manifest.get("last_seq")
        problems.error(None if at_end else walk.seq,
                       f"sealed file damaged: unreadable after seq {walk.seq - 1} ({error})"
                       + ("" if at_end else f"; the records from seq {walk.seq} on are lost or altered"))
    summary.records += stats.records
    if manifest is not None:
        if stats.records and manifest.get("last_seq") != stats.last_seq:
            problems.error(stats.last_seq, f"manifest lists seq {manifest.get('first_seq')}..{manifest.get('last_seq')}"
                                            f" ({manifest.get('records')} records) but the file holds seq "
                                            f"{stats.first_seq}..{stats.last_seq} ({stats.records}): truncated")
        elif complete:
            differ = stats.compare(manifest, seg.name)
            if differ:
                problems.error(None, f"manifest disagrees with its records on {', '.join(differ)}")
            sealed_at = _time_or_none(manifest.get("sealed_at"))
            if sealed_at is None or (stats.max_received is not None and sealed_at < stats.max_received - 1.0) \
                    or sealed_at > time.time() + 86_400:
                problems.error(None, f"manifest sealed_at {str(manifest.get('sealed_at'))[:40]!r} is not between its "
                                     "last record's receipt and now")
        if not complete and isinstance(manifest.get("last_seq"), int):
            walk.seq, walk.prev = manifest["last_seq"] + 1, manifest.get("last_hash")
    elif not stats.records:
        problems.error(start_seq, "sealed segment holds no records")


def _time_or_none(text) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_time(text, "sealed_at").timestamp()
    except BadRecord:
        return None


def check_sealed_segment(seg) -> list[str]:
    """Problems of one sealed segment on its own (file against manifest, manifest against its records, the
    chain inside it): what `purge` checks before it trusts a manifest's dates."""
    report = VerifyReport(seg.label)
    try:
        manifest = seg.manifest()
    except (OSError, orjson.JSONDecodeError) as error:
        return [f"unreadable manifest: {error}"]
    if not isinstance(manifest, dict):
        return ["unreadable manifest"]
    walk = _Walk(seg.stream)
    walk.seq, walk.prev = seg.first_seq, manifest.get("prev_hash")
    _verify_sealed(seg, manifest, walk, report, StreamSummary())
    return [p.message for p in report.errors]


def _verify_open(seg, walk: _Walk, report: VerifyReport, summary: StreamSummary) -> None:
    label = seg.label
    problems = _Counter(report, label)
    stats = SegmentStats(seg.stream)
    with open(seg.path(OPEN), "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                report.warn(label, walk.seq, f"incomplete last line ({len(line)} bytes): a write in progress or "
                                             "cut short by a crash, never committed; dropped when next opened")
                break
            _check_line(line, walk, problems, stats)
    summary.records += stats.records


class _Counter:
    """Caps the errors reported per segment (a shifted segment would otherwise report every record)."""

    def __init__(self, report: VerifyReport, label: str):
        self.report = report
        self.label = label
        self.count = 0

    def error(self, seq: int | None, message: str) -> None:
        self.count += 1
        if self.count <= MAX_PROBLEMS_PER_SEGMENT:
            self.report.error(self.label, seq, message)
        elif self.count == MAX_PROBLEMS_PER_SEGMENT + 1:
            self.report.error(self.label, None, f"more than {MAX_PROBLEMS_PER_SEGMENT} errors; the rest not listed")


def _check_line(line: bytes, walk: _Walk, problems: _Counter, stats: SegmentStats) -> None:
    try:
        body, stored = split_line(line)
    except RecordFormatError as error:
        problems.error(_seq_of(line), f"not an archive record ({error}) after seq {walk.seq - 1}")
        return
    digest = hashlib.sha256(body).hexdigest()
    try:
        record = orjson.loads(body)
    except orjson.JSONDecodeError:
        record = None
    seq = record.get("seq") if isinstance(record, dict) else _seq_of(line)
    if digest != stored or not isinstance(record, dict):
        problems.error(seq if isinstance(seq, int) else None,
                       f"record altered: its content does not match its hash (after seq {walk.seq - 1})")
        if isinstance(seq, int) and seq == walk.seq:
            walk.seq, walk.prev = seq + 1, None  # its successor's link cannot be checked
        return
    if not isinstance(seq, int) or isinstance(seq, bool):
        problems.error(None, f"record without a sequence number after seq {walk.seq - 1}")
        return
    if seq > walk.seq:
        missing = f"seq {walk.seq}" if seq == walk.seq + 1 else f"seq {walk.seq}..{seq - 1}"
        problems.error(walk.seq, f"record {missing} missing: seq {seq} follows seq {walk.seq - 1} "
                                 "(deleted or moved)")
    elif seq < walk.seq:
        problems.error(seq, f"record out of place: seq {seq} after seq {walk.seq - 1} "
                            "(inserted, duplicated or reordered)")
        return
    elif walk.prev is not None and record.get("prev") != walk.prev:
        problems.error(seq, f"chain broken: seq {seq} does not link to the record before it "
                            "(that record was replaced, or this one inserted)")
    if record.get("kind") != walk.kind or (walk.kind != "audit" and record.get("partition") != walk.partition):
        problems.error(seq, f"record of kind {record.get('kind')!r} partition {record.get('partition')!r} "
                            f"in stream {walk.sid}")
    walk.seq, walk.prev = seq + 1, stored
    stats.add(record, stored, len(line))


def _seq_of(line: bytes) -> int | None:
    """Best-effort sequence number of a damaged line, for naming it."""
    head = line[:40]
    if head.startswith(b'{"seq":'):
        digits = head[7:].split(b",", 1)[0]
        if digits.isdigit():
            return int(digits)
    return None
