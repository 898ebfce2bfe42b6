"""The record archive: every input event and alert kept, hash-chained, for years (docs/RECORDS.md).

Writing: `RecordArchive` (append_event / append_alert / commit / seal), or
`archive_replay` for a file replay. Reading: `ArchiveReader`,
`iter_archived_events` (input for `amlwatch.replay.replay`). Checking:
`verify_archive`. Retention: `purge`, `add_hold`, `release_hold`,
`list_holds`. Investigations: `export_account`, `backtest`. CLI:
`amlwatch.records.commands.add_commands`.
"""

from .archive import ArchiveBusy, ArchiveError, ArchiveReader, RecordArchive, record_raw
from .backtest import backtest
from .export import export_account
from .replay import (
    ArchivingEmitter,
    archive_records,
    archive_replay,
    iter_archived_events,
    iter_archived_records,
    open_archive,
    resolve_archive_dir,
)
from .retention import add_hold, list_holds, plan_purge, purge, release_hold
from .verify import verify_archive

__all__ = [
    "ArchiveBusy",
    "ArchiveError",
    "ArchiveReader",
    "ArchivingEmitter",
    "RecordArchive",
    "add_hold",
    "archive_records",
    "archive_replay",
    "backtest",
    "export_account",
    "iter_archived_events",
    "iter_archived_records",
    "list_holds",
    "open_archive",
    "plan_purge",
    "purge",
    "record_raw",
    "release_hold",
    "resolve_archive_dir",
    "verify_archive",
]
