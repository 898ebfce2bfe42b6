"""RecordArchive: layout, chain, day and partition segments, recovery, reading back."""

from __future__ import annotations

import gzip
import hashlib
import os

import orjson
import pytest

from amlwatch.events import BadRecord
from amlwatch.records.archive import (
    ArchiveBusy,
    ArchiveReader,
    RecordArchive,
    genesis_hash,
    record_raw,
    split_line,
)
from amlwatch.records.verify import verify_archive
from support.records import account, trade, ts


def _lines(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        return [orjson.loads(line) for line in handle]


def test_records_are_chained_and_segmented_per_day_and_partition(tmp_path):
    root = tmp_path / "rec"
    day1 = [trade(f"e{i}", ts(i), f"t{i}", "b", "s") for i in range(3)]
    day2 = trade("e9", ts(24 * 60), "t9", "b", "s")
    bad = b'{"type":"trade","ts":"not a time","price":"1"}'
    with RecordArchive(root) as archive:
        assert [archive.append_event(raw, {"file": "f", "line": i}) for i, raw in enumerate(day1, 1)] == [1, 2, 3]
        assert archive.append_event(bad, {"file": "f", "line": 4}, BadRecord("ts", "unparsable time")) == 4
        assert archive.append_event(day1[0], {"topic": "marketplace.trades", "partition": 2, "offset": 7}) == 1
        assert archive.append_event(day2, {"file": "f", "line": 5}) == 5  # next day: seals day 1
        archive.append_alert({"alert_id": "al-1", "ts": ts(1), "accounts": ["b"], "detector": "d"})
        archive.commit()
    ev = root / "events" / "p0"
    assert sorted(os.listdir(ev)) == [".lock", "000000000001-2026-03-01.jsonl.gz",
                                      "000000000001-2026-03-01.manifest.json", "000000000005-2026-03-02.jsonl"]
    assert sorted(os.listdir(root / "events" / "p2")) == [".lock", "000000000001-2026-03-01.jsonl"]
    sealed = _lines(ev / "000000000001-2026-03-01.jsonl.gz")
    assert [r["seq"] for r in sealed] == [1, 2, 3, 4]
    assert sealed[0]["prev"] == genesis_hash("events/p0")
    for before, after in zip(sealed, sealed[1:]):
        assert after["prev"] == before["hash"]
    assert sealed[3]["outcome"] == "unparsable time" and sealed[3]["field"] == "ts"
    assert sealed[3]["t"] is None  # no time of its own: filed on the previous record's day
    assert record_raw(sealed[0]) == day1[0]
    assert sealed[0]["source"] == {"file": "f", "line": 1}
    with open(ev / "000000000001-2026-03-01.jsonl.gz", "rb") as handle:
        body, stored = split_line(gzip.decompress(handle.read()).splitlines()[1])
    assert hashlib.sha256(body).hexdigest() == stored == sealed[1]["hash"]
    manifest = orjson.loads((ev / "000000000001-2026-03-01.manifest.json").read_bytes())
    assert manifest["records"] == 4 and manifest["first_seq"] == 1 and manifest["last_seq"] == 4
    assert manifest["last_hash"] == sealed[3]["hash"] and manifest["prev_hash"] == genesis_hash("events/p0")
    assert manifest["sha256"] == hashlib.sha256((ev / manifest["segment"]).read_bytes()).hexdigest()
    assert manifest["first_ts"] == "2026-03-01T01:00:00.000Z"
    opened = _lines(ev / "000000000005-2026-03-02.jsonl")
    assert opened[0]["prev"] == sealed[3]["hash"]  # the chain runs on across segments
    assert verify_archive(root).ok


def test_late_record_stays_in_open_segment_and_bad_bytes_kept_exactly(tmp_path):
    root = tmp_path / "rec"
    binary = b"\xff\xfe not utf-8"
    with RecordArchive(root) as archive:
        archive.append_event(trade("e1", ts(24 * 60), "t1", "b", "s"), {"file": "f", "line": 1})
        archive.append_event(trade("e0", ts(0), "t0", "b", "s"), {"file": "f", "line": 2})  # a day late
        archive.append_event(binary, {"file": "f", "line": 3}, "invalid JSON", field="<json>")
    records = list(ArchiveReader(root).iter_stream("events/p0"))
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert os.listdir(root / "events" / "p0").count("000000000001-2026-03-02.jsonl") == 1
    assert record_raw(records[2]) == binary and "raw_base64" in records[2]
    assert verify_archive(root).ok


def test_reopen_truncates_torn_line_and_continues_chain(tmp_path):
    root = tmp_path / "rec"
    with RecordArchive(root) as archive:
        for i in range(5):
            archive.append_event(trade(f"e{i}", ts(i), f"t{i}", "b", "s"), {"file": "f", "line": i})
    path = root / "events" / "p0" / "000000000001-2026-03-01.jsonl"
    whole = path.read_bytes()
    with open(path, "ab") as handle:  # a write cut short by a crash: never committed
        handle.write(b'{"seq":6,"prev":"abc","kind":"event","raw":"{\\"type')
    report = verify_archive(root)
    assert report.ok and any("incomplete last line" in p.message for p in report.problems)
    with RecordArchive(root) as archive:
        assert archive.head("events/p0")[0] == 5  # a stream is recovered when the writer first touches it
        assert path.read_bytes() == whole
        assert archive.append_event(trade("e9", ts(9), "t9", "b", "s"), {"file": "f", "line": 9}) == 6
    records = list(ArchiveReader(root).iter_stream("events/p0"))
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[5]["prev"] == records[4]["hash"]
    assert verify_archive(root).ok and not verify_archive(root).problems


def test_seal_size_rollover_and_reader_time_filter(tmp_path):
    root = tmp_path / "rec"
    with RecordArchive(root, segment_max_bytes=2000) as archive:
        for i in range(40):
            archive.append_event(trade(f"e{i}", ts(i * 10), f"t{i}", "b", "s"), {"file": "f", "line": i})
        archive.seal()
    reader = ArchiveReader(root)
    segments = reader.segments("events/p0")
    assert len(segments) > 5 and all(s.sealed for s in segments)
    assert [r["seq"] for r in reader.iter_stream("events/p0")] == list(range(1, 41))
    from amlwatch.events import parse_time

    since, until = parse_time(ts(100)).timestamp(), parse_time(ts(200)).timestamp()
    assert [r["seq"] for r in reader.iter_stream("events/p0", since, until)] == list(range(11, 22))
    assert verify_archive(root).ok


def test_every_seal_is_reported_to_the_on_seal_hook(tmp_path):
    sealed = []
    with RecordArchive(tmp_path / "rec", segment_max_bytes=2000, on_seal=sealed.append) as archive:
        for i in range(40):
            archive.append_event(trade(f"e{i}", ts(i * 10), f"t{i}", "b", "s"), {"file": "f", "line": i})
        archive.seal()
    segments = ArchiveReader(tmp_path / "rec").segments("events/p0")
    assert len(sealed) == len(segments) > 5
    assert all(path.exists() for path in sealed)


def test_one_writer_per_stream(tmp_path):
    root = tmp_path / "rec"
    with RecordArchive(root) as first:
        first.append_event(account("e1", ts(0), "a"), {"file": "f", "line": 1})
        second = RecordArchive(root)
        with pytest.raises(ArchiveBusy):
            second.append_event(account("e2", ts(1), "a"), {"file": "f", "line": 2})
        second.append_event(account("e2", ts(1), "a"), {"topic": "t", "partition": 1, "offset": 0})  # other stream
        second.close()
    with RecordArchive(root) as again:  # released on close
        assert again.append_event(account("e3", ts(2), "a"), {"file": "f", "line": 3}) == 2


def test_release_hands_a_partition_to_another_writer(tmp_path):
    root = tmp_path / "rec"
    first = RecordArchive(root)
    first.append_event(account("e1", ts(0), "a"), {"topic": "t", "partition": 3, "offset": 0})
    first.append_event(account("e2", ts(0), "b"), {"topic": "t", "partition": 4, "offset": 0})
    first.release(partition=3)  # a Kafka rebalance took partition 3 away
    with RecordArchive(root) as second:
        assert second.append_event(account("e3", ts(1), "a"), {"topic": "t", "partition": 3, "offset": 1}) == 2
        with pytest.raises(ArchiveBusy):
            second.append_event(account("e4", ts(1), "b"), {"topic": "t", "partition": 4, "offset": 1})
    first.close()
    assert verify_archive(root).ok


def test_partitions_merge_by_event_time_on_replay(tmp_path):
    from amlwatch.records.replay import iter_archived_events

    root = tmp_path / "rec"
    raws = {i: trade(f"e{i}", ts(i), f"t{i}", "b", "s") for i in range(6)}
    with RecordArchive(root) as archive:
        for i in (0, 2, 4):
            archive.append_event(raws[i], {"topic": "trades", "partition": 0, "offset": i})
        for i in (1, 3, 5):
            archive.append_event(raws[i], {"topic": "trades", "partition": 1, "offset": i})
        archive.append_event(b"{oops", {"topic": "trades", "partition": 1, "offset": 6}, "invalid JSON")
    replayed = list(iter_archived_events(root))
    assert [raw for _, raw in replayed] == [raws[i] for i in range(6)] + [b"{oops"]
    assert [number for number, _ in replayed] == [1, 1, 2, 2, 3, 3, 4]  # no file line: the archive seq
    assert [raw for _, raw in iter_archived_events(root, since=ts(2), until=ts(3), partitions=[1])] == [raws[3]]
