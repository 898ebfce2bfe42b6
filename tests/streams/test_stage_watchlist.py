"""Stage 1 re-reads its watchlists between batches, without a restart; a malformed change keeps the lists."""

from __future__ import annotations

import asyncio
import os

import orjson
from support.events import account, at, trade

from amlwatch.config import Config
from amlwatch.events import parse_event
from amlwatch.streams.gaps import GapGuard
from amlwatch.streams.processors import WorkProcessor, build_stage_monitor
from amlwatch.streams.snapshots import SnapshotStore
from amlwatch.streams.stages import DetectionStage


def _change(path, value: str) -> None:
    record = {"op": "add", "list": "block", "kind": "account", "value": value, "effective": at(0)}
    with open(path, "ab") as handle:
        handle.write(orjson.dumps(record) + b"\n")
    os.utime(path, ns=(os.stat(path).st_mtime_ns + 10**9,) * 2)    # a new mtime even within one tick


def _stage(config: Config) -> tuple[DetectionStage, WorkProcessor]:
    stage = DetectionStage(1, "work", config, store=SnapshotStore({}), checkpoint_steps={
        "take_snapshot": None, "produce_changelog": None, "flush_producer": None, "commit_offsets": None},
        consumer=lambda: None, send=None, parse=parse_event, gaps=GapGuard(), sources=["s"],
        work_partitions=1, keyed_partitions=1, with_model=False)
    proc = stage.procs[0] = WorkProcessor(0, build_stage_monitor(config, 1, False), ["s"], "", 1)
    return stage, proc


def _hits(proc: WorkProcessor, who: str, minute: int) -> set[str]:
    """The listed values a (re-)registration of `who` and a trade with it hit, at a minute of the stream."""
    events = [account("acc-s", at(minutes=minute)), account(who, at(minutes=minute + 1)),
              trade("acc-s", who, at(minutes=minute + 2), token_id=f"t{minute}", trade_id=f"tr{minute}")]
    alerts = []
    for record in events:
        alerts.extend(proc.monitor.observe(parse_event(orjson.dumps(record))))
    # (a trade waiting for its collection's registration is judged later: only `who`'s hits count)
    return {hit["value"] for a in alerts if a.detector == "watchlist.hit" for hit in a.evidence["hits"]
            if hit["account"] == who}


def test_stage_one_reloads_its_watchlist_between_batches_and_keeps_it_on_a_bad_file(tmp_path):
    lists = tmp_path / "lists.jsonl"
    _change(lists, "acc-100")
    config = Config.from_mapping({"watchlist": {"files": [str(lists)], "reload_check_seconds": 0}})
    stage, proc = _stage(config)
    assert _hits(proc, "acc-100", 10) == {"acc-100"} and _hits(proc, "acc-300", 20) == set()
    _change(lists, "acc-300")
    assert _hits(proc, "acc-300", 30) == set(), "nothing changes before the reload"
    asyncio.run(stage._reload_watchlists())
    assert _hits(proc, "acc-300", 40) == {"acc-300"}, "the new entry applies without a restart"
    with open(lists, "ab") as handle:
        handle.write(b'{"op": "add", "list": "block", "kind": "id", "value": "not-a-hash"}\n')
    os.utime(lists, ns=(os.stat(lists).st_mtime_ns + 10**9,) * 2)
    asyncio.run(stage._reload_watchlists())
    assert stage.watchlist_errors == 1
    assert _hits(proc, "acc-300", 50) == {"acc-300"}, "a refused file leaves the lists in force"
