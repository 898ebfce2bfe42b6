"""Cost per event of watchlist screening, risk rating and large-value aggregation, next to replay.

One simulated stream is replayed (rules only unless --model) five ways: the plain replay, then
with the watchlist detector screening against a list of `--entries` hashes (some of the stream's
own national IDs among them), with the risk rater, with the large-value aggregator, and with all
three. Each way runs `--repeat` times and the fastest run counts (the machine is shared). The
added cost per event is the difference to the plain replay. Prints a table and writes
bench/results/reporting.json. Usage: python bench/bench_reporting.py [--accounts N --days D]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=103)
    parser.add_argument("--entries", type=int, default=10_000, help="watchlist entries (hashes)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--model", action="store_true", help="replay with the anomaly model too")
    args = parser.parse_args()

    data = HERE / "data" / f"sim-{args.seed}-{args.accounts}-{args.days}"
    events = data / "events.jsonl.gz"
    if not events.exists():
        print(f"generating {data} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "amlwatch.cli", "simulate", str(data), "--seed", str(args.seed),
                        "--accounts", str(args.accounts), "--days", str(args.days)], check=True)

    from amlwatch.cli import build_monitor
    from amlwatch.config import Config
    from amlwatch.deadletter import DeadLetterFile
    from amlwatch.replay import replay
    from amlwatch.reporting.pipeline import ListSink, ReportingMonitor
    from amlwatch.sources import read_lines

    raw = [line for _, line in read_lines(events)]
    with tempfile.TemporaryDirectory() as tmp:
        lists = Path(tmp) / "lists.jsonl"
        _write_watchlist(lists, raw, args.entries)
        base = Config()
        screened = Config.from_mapping({"watchlist": {"files": [str(lists)]}})
        ways = {
            "replay": (base, False, False),
            "+ watchlist screening": (screened, False, False),
            "+ risk rating": (base, False, True),
            "+ large-value aggregation": (base, True, False),
            "+ all three": (screened, True, True),
        }
        results = {}
        for name, (config, lvtr, ratings) in ways.items():
            best = None
            for _ in range(args.repeat):
                core = build_monitor(config, with_model=args.model)
                sink = ListSink()
                monitor = ReportingMonitor(core, config, sink, lvtr=lvtr, ratings=ratings) if (lvtr or ratings) else core
                alerts = []
                started = time.perf_counter()
                summary = replay(((n, line) for n, line in enumerate(raw, 1)), monitor, alerts.extend,
                                 DeadLetterFile(None))
                seconds = time.perf_counter() - started
                if best is None or seconds < best["seconds"]:
                    best = {"seconds": seconds, "events": summary.events, "alerts": len(alerts),
                            "watchlist_hits": sum(a.detector == "watchlist.hit" for a in alerts),
                            "records": len(sink.records),
                            "lvtr_reports": sum(r["record_type"] == "lvtr" for r in sink.records),
                            "ratings": sum(r["record_type"] == "risk_rating" for r in sink.records)}
            results[name] = best
    plain = results["replay"]
    for result in results.values():
        result["events_per_second"] = result["events"] / result["seconds"]
        result["us_per_event"] = 1e6 * result["seconds"] / result["events"]
        result["added_us_per_event"] = result["us_per_event"] - plain["us_per_event"]
    report = {"stream": str(events), "events": plain["events"], "watchlist_entries": args.entries,
              "model": args.model, "repeat": args.repeat, "results": results,
              "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(),
              "machine": f"{platform.machine()} x{os.cpu_count()} (shared)"}
    print(_table(report))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "reporting.json").write_text(json.dumps(report, indent=2))
    return 0


def _write_watchlist(path: Path, raw: list[bytes], entries: int) -> None:
    """`entries` random hashes, 20 of them national IDs of the stream's accounts (so hits happen):
    every 50th verified account, the first 200 (issuers among them, who trade all day) left out."""
    ids, seen = [], []
    for line in raw:
        if b'"id_hash"' in line:
            seen.append(orjson.loads(line)["id_hash"])
    ids = list(dict.fromkeys(seen))[200::50][:20]
    with open(path, "wb") as handle:
        for n in range(entries - len(ids)):
            value = hashlib.sha256(f"bench-{n}".encode()).hexdigest()
            handle.write(orjson.dumps({"op": "add", "list": "watch", "kind": ("id", "card", "phone")[n % 3],
                                       "value": value}) + b"\n")
        for value in ids:
            handle.write(orjson.dumps({"op": "add", "list": "block", "kind": "id", "value": value}) + b"\n")


def _table(report: dict) -> str:
    lines = [f"{report['events']:,} events, watchlist of {report['watchlist_entries']:,} entries, "
             f"{'rules + model' if report['model'] else 'rules only'}, best of {report['repeat']}",
             f"{'':<28}{'events/s':>10}{'us/event':>10}{'added':>9}{'alerts':>9}{'hits':>7}{'records':>9}"]
    for name, r in report["results"].items():
        lines.append(f"{name:<28}{r['events_per_second']:>10,.0f}{r['us_per_event']:>10.1f}"
                     f"{r['added_us_per_event']:>+9.1f}{r['alerts']:>9,}{r['watchlist_hits']:>7,}{r['records']:>9,}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
