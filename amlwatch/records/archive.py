"""The record archive: every input event and every alert, hash-chained, per day and partition.

Layout (docs/RECORDS.md)::

    ROOT/events/p<partition>/<first_seq:012d>-<YYYY-MM-DD>.jsonl          open segment
    ROOT/events/p<partition>/<first_seq:012d>-<YYYY-MM-DD>.jsonl.gz       sealed segment
    ROOT/events/p<partition>/<first_seq:012d>-<YYYY-MM-DD>.manifest.json  its manifest
    ROOT/alerts/p<partition>/...                                          same, alerts
    ROOT/audit/...                                                        holds and purges

One *stream* per kind and partition (`events/p0`, `alerts/p0`, `audit`) has
one sequence (1, 2, ...) and one SHA-256 chain: each record carries `prev`,
the hash of the record before it in the stream (the first record of a stream
chains to `genesis_hash(stream)`), and `hash`, the SHA-256 of the record's
own JSON text without the `hash` member. A segment is a contiguous run of a
stream's sequence, so segments chain too.

Crash safety: records are appended to the open segment's buffer; `commit()`
flushes and fsyncs every stream written to (and its directory when a file was
created), and only then may the caller acknowledge. After a kill the open
segment ends in whole records plus at most one torn line, which reopening
truncates. Sealing writes `.jsonl.gz` and the manifest through temporary files
and atomic renames; the manifest's rename is the commit point, the open file is
removed only after it, and reopening finishes or rolls back an interrupted seal.

The code is split along these concerns, and this module re-exports them all
(`from amlwatch.records.archive import RecordArchive` keeps working):

| module | job |
|---|---|
| `lineformat.py` | stream ids, the record line and its hash chain, UTC times and days, fsync helpers |
| `segments.py` | segment file names, which files of a segment exist, listing streams and segments |
| `manifests.py` | what a sealed segment's manifest states, computed from its records |
| `writer.py` | `RecordArchive`: append, commit, roll, seal, recover |
| `reader.py` | `ArchiveReader`: streams, segments and records in order, by kind, partition and time |
"""

from __future__ import annotations

from .lineformat import (  # noqa: F401
    ArchiveBusy,
    ArchiveError,
    DAY_SECONDS,
    DIR_KINDS,
    FORMAT,
    HASH_PREFIX,
    HASH_SUFFIX_LEN,
    KINDS,
    KIND_DIRS,
    RecordFormatError,
    day_end,
    event_time,
    fsync_dir,
    genesis_hash,
    mkdirs,
    record_raw,
    seal_line,
    split_line,
    stream_id,
    stream_kind,
    time_of,
    utc_day,
    utc_iso,
)
from .segments import (  # noqa: F401
    MANIFEST,
    OPEN,
    SEALED,
    SEGMENT_RE,
    Segment,
    SegmentName,
    list_segments,
    list_streams,
    parse_segment_name,
)
from .manifests import (  # noqa: F401
    SegmentStats,
    event_accounts,
    record_accounts,
)
from .writer import (  # noqa: F401
    DEFAULT_SEGMENT_MAX_BYTES,
    RecordArchive,
)
from .reader import (  # noqa: F401
    ArchiveReader,
)

__all__ = [
    "ArchiveBusy",
    "ArchiveError",
    "ArchiveReader",
    "DAY_SECONDS",
    "DEFAULT_SEGMENT_MAX_BYTES",
    "DIR_KINDS",
    "FORMAT",
    "HASH_PREFIX",
    "HASH_SUFFIX_LEN",
    "KINDS",
    "KIND_DIRS",
    "MANIFEST",
    "OPEN",
    "RecordArchive",
    "RecordFormatError",
    "SEALED",
    "SEGMENT_RE",
    "Segment",
    "SegmentName",
    "SegmentStats",
    "day_end",
    "event_accounts",
    "event_time",
    "fsync_dir",
    "genesis_hash",
    "list_segments",
    "list_streams",
    "mkdirs",
    "parse_segment_name",
    "record_accounts",
    "record_raw",
    "seal_line",
    "split_line",
    "stream_id",
    "stream_kind",
    "time_of",
    "utc_day",
    "utc_iso",
]
