"""Every field of a manifest is checked: an edit to any of them is an error of `verify`, and `purge` never
deletes a segment on the word of a manifest `verify` flags (a young segment made to look old stays)."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from amlwatch.config import RetentionConfig
from amlwatch.records.archive import ArchiveReader
from amlwatch.records.retention import purge
from amlwatch.records.verify import verify_archive
from support.records import build_archive

TAMPERED = {
    "format": "amlwatch.records/2", "stream": "events/p1", "kind": "alert", "partition": 3, "day": "2026-03-09",
    "segment": "000000000099-2026-03-09.jsonl.gz", "records": 11, "first_seq": 2, "last_seq": 11,
    "first_ts": "2026-03-01T00:00:01.000Z", "last_ts": "2026-03-01T09:00:00.000Z", "min_t": 1.0, "max_t": 2.0,
    "prev_hash": "0" * 64, "last_hash": "1" * 64, "sha256": "2" * 64, "bytes": 1, "raw_bytes": 5,
    "sealed_at": "2001-01-01T00:00:00.000Z", "identity": {"buyer-1": [1.0, "register"]},
}


@pytest.fixture
def root(tmp_path):
    return build_archive(tmp_path / "rec", days=3)


def _first_manifest(root):
    seg = ArchiveReader(root).segments("events/p0")[0]
    return seg, root / "events" / "p0" / seg.name.file("manifest.json")


def test_the_tamper_table_covers_every_field_a_manifest_has(root):
    seg, _ = _first_manifest(root)
    assert set(seg.manifest()) == set(TAMPERED)


@pytest.mark.parametrize("field", sorted(TAMPERED))
def test_an_edit_to_any_manifest_field_fails_verify(root, field):
    assert verify_archive(root).ok
    seg, path = _first_manifest(root)
    manifest = seg.manifest()
    assert manifest[field] != TAMPERED[field]
    path.write_bytes(orjson.dumps({**manifest, field: TAMPERED[field]}))
    report = verify_archive(root)
    assert not report.ok, f"an edit to {field} went unnoticed"


def test_purge_keeps_a_young_segment_whose_manifest_was_made_to_look_old(root):
    seg, path = _first_manifest(root)
    manifest = seg.manifest()
    path.write_bytes(orjson.dumps({**manifest, "max_t": 0.0, "min_t": 0.0}))
    assert not verify_archive(root).ok
    now = datetime(2026, 3, 10, tzinfo=timezone.utc).timestamp()
    plan = purge(root, RetentionConfig(events_days=30), now=now)
    assert plan.removed == [] and [k["segment"] for k in plan.kept_for_damage] == [seg.label]
    assert "disagrees with its records on min_t, max_t" in plan.kept_for_damage[0]["problems"][0]
    assert seg.path("jsonl.gz").exists()


def test_purge_still_removes_old_segments_that_verify(root):
    now = datetime(2036, 3, 10, tzinfo=timezone.utc).timestamp()
    plan = purge(root, RetentionConfig(events_days=30, alerts_days=30), now=now)
    assert plan.removed and not plan.kept_for_damage
    assert verify_archive(root).ok
