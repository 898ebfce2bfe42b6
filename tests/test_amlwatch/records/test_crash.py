"""Crash safety: a writer SIGKILLed at random moments, and killed at each step of a seal.

The writer runs in a real subprocess, appends and commits in a loop, and
prints each committed (acknowledged) sequence number. After the kill the
archive must verify, hold every acknowledged record, and take more appends on
the same chain.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from amlwatch.records.archive import ArchiveReader, RecordArchive
from amlwatch.records.verify import verify_archive

WRITER = r"""
import os, sys
import amlwatch.records.archive as A
import amlwatch.records.writer as W
root, start, crash_at = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if crash_at != "-":
    def crash(name):
        if name == crash_at:
            os._exit(9)  # like SIGKILL: no buffer flushed, no cleanup
    W._crash_point = crash
archive = A.RecordArchive(root, segment_max_bytes=int(sys.argv[5]))
line = start
limit = int(sys.argv[4])
while line < limit:
    for _ in range(5):
        t = 1772323200 + line * 600  # ten minutes apart: a new UTC day every 144 records
        raw = ('{"type":"trade","event_id":"e%d","ts":"%s","trade_id":"t%d","collection_id":"c","token_id":"k%d",'
               '"kind":"secondary","seller_id":"s%d","buyer_id":"b%d","price":"%d.00","currency":"CNY"}'
               % (line, A.utc_iso(t), line, line, line % 7, line % 11, line)).encode()
        seq = archive.append_event(raw, {"file": "crash", "line": line})
        line += 1
    archive.commit()
    print(seq, line, flush=True)
if crash_at != "-":
    archive.seal()
    print("sealed", flush=True)
"""


def _start(root, start: int, crash_at: str = "-", limit: int = 10**9, segment_bytes: int = 60_000) -> subprocess.Popen:
    """A writer from input line `start`; segments of ~140 records, so kills land in commits and in seals."""
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(start), crash_at, str(limit),
                             str(segment_bytes)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _acknowledged(output: bytes) -> tuple[int, int]:
    """(last acknowledged seq, next line) from the complete lines the writer printed."""
    seq, line = 0, None
    for text in output.decode().splitlines():
        parts = text.split()
        if len(parts) == 2 and parts[0].isdigit():
            seq, line = int(parts[0]), int(parts[1])
    return seq, line


def _check_after_crash(root, acked: int) -> int:
    report = verify_archive(root)
    assert report.ok, report.text()
    seqs = [r["seq"] for r in ArchiveReader(root).iter_stream("events/p0")]
    assert seqs == list(range(1, len(seqs) + 1))  # nothing missing, nothing twice
    assert len(seqs) >= acked, f"acknowledged seq {acked} lost (archive ends at {len(seqs)})"
    with RecordArchive(root) as archive:  # reopen: recovery, then the chain continues
        head, last_hash = archive.head("events/p0")
        assert head == len(seqs)
        assert archive.append_event(b'{"type":"trade"}', {"file": "after", "line": 0}, "missing field") == head + 1
        archive.commit()
    records = list(ArchiveReader(root).iter_stream("events/p0"))
    assert records[-1]["prev"] == last_hash
    assert verify_archive(root).ok
    report = verify_archive(root)
    assert not [p for p in report.problems if "incomplete" in p.message or "interrupted" in p.message]
    return head + 1


def test_sigkill_at_random_moments(tmp_path):
    root = tmp_path / "rec"
    rng = random.Random(int(os.environ.get("AMLWATCH_CRASH_SEED", "20260301")))
    next_line = 0
    total_acked = 0
    for _ in range(7):
        proc = _start(root, next_line)
        first = proc.stdout.readline()  # it is writing
        assert first, proc.stderr.read().decode()
        time.sleep(rng.uniform(0.0, 0.35))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        acked, line = _acknowledged(first + rest)
        assert acked > total_acked
        total_acked = _check_after_crash(root, acked)
        next_line = line + 1000  # new lines; a gap in line numbers is fine
    segments = ArchiveReader(root).segments("events/p0")
    assert sum(s.sealed for s in segments) >= 3  # the kills struck a writer that was sealing too


@pytest.mark.parametrize("point", ["seal.start", "seal.gz_written", "seal.gz_renamed", "seal.manifest_written",
                                   "seal.manifest_renamed", "seal.done"])
def test_killed_at_each_step_of_a_seal(tmp_path, point):
    root = tmp_path / "rec"
    proc = _start(root, 0, point, limit=40, segment_bytes=6000)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 9, err.decode()
    acked, _ = _acknowledged(out)  # killed in the first seal (a size rollover), mid-batch
    assert b"sealed" not in out
    _check_after_crash(root, acked)
