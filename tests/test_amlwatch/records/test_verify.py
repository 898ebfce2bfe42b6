"""verify: every kind of tampering is found and named (segment and seq); the CLI exits non-zero."""

from __future__ import annotations

import gzip
import hashlib

import orjson
import pytest

from amlwatch.records.archive import seal_line, split_line
from amlwatch.records.verify import verify_archive
from support.records import build_archive, run_cli

# build_archive: events/p0 sealed days 2026-03-01..03 (seq 1-12, 13-24, 25-36), open 2026-03-04 (seq 37-42)
SEALED_2 = "events/p0/000000000013-2026-03-02.jsonl.gz"
OPEN = "events/p0/000000000037-2026-03-04.jsonl"


@pytest.fixture
def root(tmp_path):
    path = build_archive(tmp_path / "rec")
    assert verify_archive(path).ok
    return path


def _errors(root):
    report = verify_archive(root)
    assert not report.ok
    return report.errors


def _named(errors, where, seq=None):
    return any(e.where == where and (seq is None or e.seq == seq) for e in errors)


def _rewrite_sealed(root, label, change):
    """Decompress, change the lines, recompress (what a careful forger would do)."""
    path = root / label
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join(change(lines)), mtime=0))


def _rewrite_open(root, label, change):
    path = root / label
    path.write_bytes(b"".join(change(path.read_bytes().splitlines(keepends=True))))


def _forge(line: bytes, old: bytes, new: bytes) -> bytes:
    """Change a record's content and give it a valid hash of its own."""
    body, _ = split_line(line)
    return seal_line(body.replace(old, new))[0]


def test_clean_archive_passes_cli(root, capsys):
    assert run_cli(["records", "verify", str(root)]) == 0
    assert "OK:" in capsys.readouterr().out


def test_flipped_byte_in_sealed_gz(root, capsys):
    path = root / SEALED_2
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    errors = _errors(root)
    assert _named(errors, SEALED_2)
    assert any("altered" in e.message for e in errors)
    assert any(e.seq is not None and 13 <= e.seq <= 24 for e in errors if e.where == SEALED_2)
    assert run_cli(["records", "verify", str(root)]) == 1
    assert SEALED_2 in capsys.readouterr().out


def test_changed_record_in_recompressed_sealed_segment(root):
    _rewrite_sealed(root, SEALED_2, lambda lines: [line.replace(b'"price\\":\\"15.00', b'"price\\":\\"16.00')
                                                   for line in lines])
    errors = _errors(root)
    assert _named(errors, SEALED_2, 15)  # the record whose content no longer matches its hash
    assert any("sha256" in e.message for e in errors)  # and the file no longer matches its manifest


def test_flipped_byte_in_open_segment(root):
    path = root / OPEN
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    target = lines[2]  # seq 39
    i = target.index(b'buyer-')
    lines[2] = target[:i] + b"B" + target[i + 1:]
    path.write_bytes(b"".join(lines))
    errors = _errors(root)
    assert _named(errors, OPEN, 39) and "altered" in errors[0].message


def test_deleted_record(root):
    _rewrite_open(root, OPEN, lambda lines: lines[:1] + lines[2:])  # seq 38 gone
    errors = _errors(root)
    assert _named(errors, OPEN, 38) and "missing" in errors[0].message


def test_deleted_record_in_sealed_segment(root):
    _rewrite_sealed(root, SEALED_2, lambda lines: lines[:4] + lines[5:])  # seq 17 gone
    assert _named(_errors(root), SEALED_2, 17)


def test_inserted_record(root):
    # a forged record carrying seq 39 with a valid hash, slipped in before the real one
    def insert(lines):
        forged = _forge(lines[2], b"buyer-", b"buyer-X")
        return lines[:2] + [forged] + lines[2:]

    _rewrite_open(root, OPEN, insert)
    errors = _errors(root)
    assert _named(errors, OPEN, 39)
    assert any("out of place" in e.message or "chain broken" in e.message for e in errors)


def test_duplicated_record(root):
    _rewrite_open(root, OPEN, lambda lines: lines[:4] + [lines[1]] + lines[4:])  # seq 38 again after 40
    errors = _errors(root)
    assert _named(errors, OPEN, 38) and "out of place" in errors[0].message


def test_swapped_records(root):
    _rewrite_sealed(root, SEALED_2, lambda lines: lines[:3] + [lines[4], lines[3]] + lines[5:])  # 16 <-> 17
    errors = [e for e in _errors(root) if e.where == SEALED_2]
    assert {e.seq for e in errors} >= {16}
    assert any("missing" in e.message or "out of place" in e.message for e in errors)


def test_truncated_sealed_file(root):
    path = root / SEALED_2
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    errors = _errors(root)
    assert _named(errors, SEALED_2)
    assert any("truncated" in e.message or "unreadable" in e.message for e in errors)


def test_truncated_sealed_segment_recompressed(root):
    _rewrite_sealed(root, SEALED_2, lambda lines: lines[:7])  # seq 20..24 cut off
    errors = _errors(root)
    assert any(e.where == SEALED_2 and "truncated" in e.message for e in errors)


def test_deleted_whole_segment(root):
    (root / SEALED_2).unlink()
    (root / SEALED_2.replace(".jsonl.gz", ".manifest.json")).unlink()
    errors = _errors(root)
    assert any("13..24" in e.message and "missing" in e.message and e.seq == 13 for e in errors)
    assert any(e.where.startswith("events/p0/000000000025-") for e in errors)  # named at the segment after the gap


def test_deleted_sealed_file_with_manifest_left(root):
    (root / SEALED_2).unlink()
    errors = _errors(root)
    assert _named(errors, SEALED_2, 13) and "missing" in errors[0].message


def test_forged_manifest_is_caught(root):
    path = root / SEALED_2.replace(".jsonl.gz", ".manifest.json")
    manifest = orjson.loads(path.read_bytes())
    manifest["identity"] = {"someone": [0, "close"]}  # would let a purge remove identity records early
    path.write_bytes(orjson.dumps(manifest))
    errors = _errors(root)
    assert any("identity" in e.message for e in errors)


def test_tail_segment_missing_is_caught_by_the_next(root):
    # the oldest segment gone: nothing before it, but seq 1..12 and the genesis link are missing
    first = "events/p0/000000000001-2026-03-01"
    (root / f"{first}.jsonl.gz").unlink()
    (root / f"{first}.manifest.json").unlink()
    errors = _errors(root)
    assert any("1..12" in e.message for e in errors)
