"""Replay from the archive, and archive a replay.

* `iter_archived_events(dir)` yields the archived input records as `(number,
  raw_bytes)`, good and bad alike, in their original order: feed it to
  `amlwatch.replay.replay` to reconstruct any period (dead letters included).
* `archive_replay(...)` runs a file replay that archives every input record
  (with its parse outcome) and every alert as it goes, committing every
  `commit_every` records and at the end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import orjson

from amlwatch.alerts import Alert, json_default, wall_clock_now
from amlwatch.events import BadRecord, parse_event, parse_time

from .archive import ArchiveReader, RecordArchive, record_raw

ENV_ARCHIVE_DIR = "AMLWATCH_ARCHIVE_DIR"
DEFAULT_ARCHIVE_DIR = "./records"


def resolve_archive_dir(explicit: str | os.PathLike | None = None, config=None) -> Path:
    """An explicit directory, else $AMLWATCH_ARCHIVE_DIR, else config `archive.dir`, else ./records."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_ARCHIVE_DIR):
        return Path(os.environ[ENV_ARCHIVE_DIR])
    if config is not None and getattr(config, "archive", None) is not None and config.archive.dir:
        return Path(config.archive.dir)
    return Path(DEFAULT_ARCHIVE_DIR)


def open_archive(directory: str | os.PathLike | None = None, config=None, **options) -> RecordArchive:
    """A `RecordArchive` at `resolve_archive_dir(directory, config)`, sized by the config's `[archive]`."""
    kwargs = dict(options)
    if config is not None and getattr(config, "archive", None) is not None:
        kwargs["segment_max_bytes"] = max(1, config.archive.segment_max_mb) << 20
    return RecordArchive(resolve_archive_dir(directory, config), **kwargs)


def _bound(value, name: str) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    return parse_time(value, name).timestamp()


def iter_archived_records(root: str | os.PathLike, since=None, until=None, *,
                          partitions: Iterable[int] | None = None) -> Iterator[dict]:
    """Archived input records (parsed archive lines) in original order; several partitions merge by event time."""
    yield from ArchiveReader(root).records(("event",), partitions, _bound(since, "since"), _bound(until, "until"))


def iter_archived_events(root: str | os.PathLike, since=None, until=None, *,
                         partitions: Iterable[int] | None = None) -> Iterator[tuple[int, bytes]]:
    """`(number, raw_bytes)` of every archived input record, ok and bad alike, in the original order.

    `number` is the original line number for records archived from a file and
    the archive sequence number otherwise. `since`/`until` (ISO text or epoch
    seconds) drop records outside the period; a record without a readable
    event time counts as at the time of the record before it. To warm the
    detectors on the days before a period, pass `since` to `replay()` rather
    than here.
    """
    for record in iter_archived_records(root, since, until, partitions=partitions):
        source = record.get("source")
        line = source.get("line") if isinstance(source, dict) else None
        number = line if isinstance(line, int) and not isinstance(line, bool) else record["seq"]
        yield number, record_raw(record)


def archive_records(records: Iterable[tuple[int, bytes]], archive: RecordArchive, *, source: str = "-",
                    until: float | None = None, commit_every: int = 10_000,
                    partition: int = 0) -> Iterator[tuple[int, bytes]]:
    """Pass `(number, raw)` records through, archiving each (with its parse outcome) before it is processed.

    Commits every `commit_every` records and when the input ends. With `until`,
    the first good record past it (where `replay` stops) is passed on but not
    archived, since it is not processed.
    """
    count = 0
    for number, raw in records:
        try:
            event = parse_event(raw)
        except BadRecord as error:
            outcome, t = error, None
        else:
            outcome, t = "ok", event.t
            if until is not None and t > until:
                yield number, raw
                return
        archive.append_event(raw, {"file": source, "line": number}, outcome, t, partition=partition)
        count += 1
        if commit_every and count % commit_every == 0:
            archive.commit()
        yield number, raw
    archive.commit()


class ArchivingEmitter:
    """The `emit` of `replay()`: archives each alert, then writes it as JSON Lines to `handle` and/or calls `inner`.

    The archived and the written alert carry the same `detected_at`.
    """

    def __init__(self, archive: RecordArchive, handle: BinaryIO | None = None,
                 inner: Callable[[list[Alert]], None] | None = None, *, partition: int = 0):
        self.archive = archive
        self.handle = handle
        self.inner = inner
        self.partition = partition
        self.count = 0

    def __call__(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        now = wall_clock_now()
        dicts = [alert.to_dict(now) for alert in alerts]
        for alert in dicts:
            self.archive.append_alert(alert, partition=self.partition)
        self.count += len(dicts)
        if self.handle is not None:
            self.handle.write(b"".join(orjson.dumps(d, default=json_default) + b"\n" for d in dicts))
        if self.inner is not None:
            self.inner(alerts)


def archive_replay(records: Iterable[tuple[int, bytes]], monitor, archive: RecordArchive | str | os.PathLike,
                   alerts_out: BinaryIO | None, dead_letters, *, source: str = "-", since: float | None = None,
                   until: float | None = None, progress=None, commit_every: int = 10_000, seal: bool = True,
                   partition: int = 0):
    """`amlwatch.replay.replay` that archives every input record and alert (`amlwatch replay FILE --record DIR`).

    `archive` is a `RecordArchive` (left open) or a directory (opened and
    closed here). At the end everything is committed, and with `seal` the open
    segments are sealed (a replayed file is a finished period).
    """
    from amlwatch.replay import replay

    owned = not isinstance(archive, RecordArchive)
    if owned:
        archive = RecordArchive(archive)
    try:
        summary = replay(
            archive_records(records, archive, source=source, until=until, commit_every=commit_every,
                            partition=partition),
            monitor, ArchivingEmitter(archive, alerts_out, partition=partition), dead_letters,
            source=source, since=since, until=until, progress=progress)
        if seal:
            archive.seal()
        else:
            archive.commit()
    finally:
        if owned:
            archive.close()
    return summary
