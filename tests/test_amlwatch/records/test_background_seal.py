"""Sealing on a thread (the Kafka worker's archive): same files as inline, no pause, crash-safe."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from amlwatch.records.archive import ArchiveError, ArchiveReader, RecordArchive
from amlwatch.records.verify import verify_archive
import support
from support.records import raw_trade as _raw

SEGMENT_BYTES = 20_000


def _write(root, lines: range, **options) -> RecordArchive:
    archive = RecordArchive(root, segment_max_bytes=SEGMENT_BYTES, fsync=False, **options)
    for line in lines:
        archive.append_event(_raw(line), {"file": "f", "line": line}, ts=1772330400.0 + line)
    archive.commit()
    return archive


def _lines(root) -> list[int]:
    return [record["source"]["line"] for record in ArchiveReader(root).records(kinds=("event",))]


def _segments(root) -> list[str]:
    return sorted(path.name for path in root.rglob("*") if path.is_file() and not path.name.startswith("."))


def test_background_seals_leave_the_same_segments_as_inline_seals(tmp_path):
    _write(tmp_path / "inline", range(600)).close()
    _write(tmp_path / "background", range(600), background_seals=True).close()
    assert _segments(tmp_path / "background") == _segments(tmp_path / "inline")
    assert sum(name.endswith(".gz") for name in _segments(tmp_path / "background")) >= 5
    assert verify_archive(tmp_path / "background").ok
    assert _lines(tmp_path / "background") == list(range(600))


def test_appends_go_on_while_a_segment_is_being_sealed(tmp_path):
    archive = RecordArchive(tmp_path, segment_max_bytes=SEGMENT_BYTES, fsync=False, background_seals=True)
    gate, started = threading.Event(), threading.Event()
    finish = archive._finish_seal

    def held(*args):
        started.set()
        assert gate.wait(30)
        return finish(*args)
    archive._finish_seal = held
    line = 0
    while not started.is_set():
        archive.append_event(_raw(line), {"file": "f", "line": line}, ts=1772330400.0 + line)
        line += 1
    for extra in range(line, line + 200):   # past another segment boundary, the first seal still held
        archive.append_event(_raw(extra), {"file": "f", "line": extra}, ts=1772330400.0 + extra)
    archive.commit()
    gate.set()
    archive.close()
    assert verify_archive(tmp_path).ok
    assert _lines(tmp_path) == list(range(line + 200))


WRITER = r"""
import os, sys, threading
import amlwatch.records.archive as A
from support.records import raw_trade as _raw
archive = A.RecordArchive(sys.argv[1], segment_max_bytes=20_000, background_seals=True)
archive._finish_seal = lambda *args: threading.Event().wait()     # the sealer never gets anywhere
for line in range(600):
    archive.append_event(_raw(line), {"file": "f", "line": line}, ts=1772330400.0 + line)
archive.commit()
os._exit(9)                                                        # killed with seals pending
"""


def test_a_writer_killed_with_seals_pending_leaves_an_archive_that_reopens_whole(tmp_path):
    tests = str(Path(support.__file__).resolve().parents[1])        # the child finds support/ as pytest does
    done = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path)], capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))})
    assert done.returncode == 9, done.stderr.decode()
    assert sum(name.endswith(".jsonl") for name in _segments(tmp_path)) > 1, "several segments left unsealed"
    assert _lines(tmp_path) == list(range(600)), "readable as left"
    assert verify_archive(tmp_path).ok, "and verifiable as left"
    archive = RecordArchive(tmp_path, segment_max_bytes=SEGMENT_BYTES, fsync=False)
    archive.append_event(_raw(600), {"file": "f", "line": 600}, ts=1772330400.0 + 600)
    archive.close()
    assert verify_archive(tmp_path).ok
    assert _lines(tmp_path) == list(range(601))


def test_a_failed_background_seal_stops_the_writer(tmp_path):
    archive = RecordArchive(tmp_path, segment_max_bytes=SEGMENT_BYTES, fsync=False, background_seals=True)

    def broken(*args):
        raise OSError("disk full")
    archive._finish_seal = broken
    with pytest.raises(ArchiveError, match="disk full"):   # at the next segment change or commit
        for line in range(300):
            archive.append_event(_raw(line), {"file": "f", "line": line}, ts=1772330400.0 + line)
        archive._sealer.wait()
        archive.commit()
