"""Replay throughput: a recorded stream through every detector, against the parse floor of the same file.

Prints one table and writes bench/results/replay.json (or --out). Measures, each in its own process so
peak RSS is the run's own: the replay (events/s, CPU s, wall s, peak RSS) and the floor, reading the same
file the same way (gunzip, lines) and `orjson.loads` of every line and nothing else. The issue 15 target
is replay wall <= 10x the floor's wall, in the same run; under load compare CPU seconds too.

Streams: `--stream PATH` (e.g. sim30/events.jsonl.gz, the sim30 shape: `amlwatch simulate
--accounts 6000 --days 30`), else a simulation generated once and cached under bench/data/ (default
--accounts 20000 --days 30, about 1M events).

`--workers N` replays across N processes (`amlwatch replay --workers`); CPU seconds are then the
parent's and every shard's, and peak RSS the parent's plus each shard's peak (an upper bound of what
they held at once).

Usage: python bench/bench_replay.py [--stream PATH | --accounts N --days D --seed S] [--no-model] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from simdata import simulated  # noqa: E402

_MEASURE = """
import json, resource, sys, time
from amlwatch.sources import read_lines
started, cpu = time.perf_counter(), time.process_time()
{body}
print(json.dumps({{**result, "wall_seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

FLOOR = """
import orjson
loads, events = orjson.loads, 0
for _, line in read_lines({path!r}):
    loads(line)
    events += 1
result = {{"events": events}}
"""

REPLAY = """
from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.engine import build_monitor
from amlwatch.replay import replay
monitor = build_monitor(Config(), with_model={model})
count = [0]
def emit(alerts):
    for alert in alerts:
        alert.to_json("x")
    count[0] += len(alerts)
summary = replay(read_lines({path!r}), monitor, emit, DeadLetterFile(None))
result = {{"events": summary.events, "alerts": count[0], "model": monitor.versions["model"],
          "state": monitor.state_size()}}
"""

SHARDED = """
import resource, tempfile
from pathlib import Path
from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
import amlwatch.shardedreplay as sharded
scratch = Path(tempfile.mkdtemp())
shard_run = sharded._ShardRun.run
def run_and_note_rss(self, records, handle):
    shard_run(self, records, handle)
    (scratch / f"rss-{{self.shard}}").write_text(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
sharded._ShardRun.run = run_and_note_rss
count, model = [0], [None]
def emit(alerts):
    for alert in alerts:
        alert.to_json("x")
        model[0] = alert.versions["model"]
    count[0] += len(alerts)
summary = sharded.sharded_replay(lambda: read_lines({path!r}), Config(), emit, DeadLetterFile(None),
                                 shards={workers}, with_model={model})
children = resource.getrusage(resource.RUSAGE_CHILDREN)
result = {{"events": summary.events, "alerts": count[0], "model": model[0], "state": {{}},
          "children_cpu_seconds": children.ru_utime + children.ru_stime,
          "shard_peak_rss_mb": [float((scratch / f"rss-{{k}}").read_text()) for k in range({workers})]}}
"""


def measure(body: str) -> dict:
    code = _MEASURE.format(body=body)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream", help="replay this recorded stream (JSON Lines, gzip or plain)")
    parser.add_argument("--accounts", type=int, default=20000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--no-model", action="store_true", help="rules only")
    parser.add_argument("--workers", type=int, default=1,
                        help="replay across this many processes (amlwatch replay --workers)")
    parser.add_argument("--out", help="JSON results path (default bench/results/replay.json)")
    args = parser.parse_args()

    path = str(Path(args.stream)) if args.stream else str(simulated(args.seed, args.accounts, args.days)
                                                           / "events.jsonl.gz")
    floor = measure(FLOOR.format(path=path))
    if args.workers > 1:
        run = measure(SHARDED.format(path=path, model=not args.no_model, workers=args.workers))
        # the parent's own CPU and peak RSS, plus its shards' (each shard's peak; they run side by side)
        run["cpu_seconds"] += run["children_cpu_seconds"]
        run["peak_rss_mb"] += sum(run["shard_peak_rss_mb"])
    else:
        run = measure(REPLAY.format(path=path, model=not args.no_model))
    result = {
        "stream": path, "workers": args.workers, "events": run["events"], "alerts": run["alerts"],
        "model": run["model"], "shard_peak_rss_mb": run.get("shard_peak_rss_mb"),
        "replay": {k: run[k] for k in ("wall_seconds", "cpu_seconds", "peak_rss_mb")},
        "floor": {k: floor[k] for k in ("wall_seconds", "cpu_seconds", "peak_rss_mb")},
        "events_per_second": run["events"] / run["wall_seconds"],
        "events_per_cpu_second": run["events"] / run["cpu_seconds"],
        "wall_over_floor": run["wall_seconds"] / floor["wall_seconds"],
        "cpu_over_floor": run["cpu_seconds"] / floor["cpu_seconds"],
        "state": run["state"],
        "python": platform.python_version(),
        "machine": f"{platform.machine()} x{os.cpu_count()}",
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    rows = [
        ("stream", path), ("events", f"{result['events']:,}"), ("alerts", f"{result['alerts']:,}"),
        ("anomaly model", str(result["model"])),
        ("replay wall / CPU", f"{run['wall_seconds']:.1f} s / {run['cpu_seconds']:.1f} s"),
        ("events/s (wall / CPU)", f"{result['events_per_second']:,.0f} / {result['events_per_cpu_second']:,.0f}"),
        ("workers", str(args.workers)),
        ("peak RSS" + (" (parent + every shard's)" if args.workers > 1 else ""), f"{run['peak_rss_mb']:,.0f} MiB"),
        ("orjson.loads floor wall / CPU", f"{floor['wall_seconds']:.2f} s / {floor['cpu_seconds']:.2f} s"),
        ("replay / floor (wall, CPU)", f"{result['wall_over_floor']:.1f}x, {result['cpu_over_floor']:.1f}x"),
        ("target", "replay wall <= 10x floor"),
        ("load average", " ".join(f"{x:.1f}" for x in result["load_average"])),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    out = Path(args.out) if args.out else HERE / "results" / "replay.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
