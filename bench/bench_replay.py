"""Replay throughput: a simulated stream of >= 1M events through every detector.

Prints a table and writes bench/results/replay.json. The stream is generated
once (cached under bench/data/) in a separate process so the replay's peak
RSS is its own. Usage: python bench/bench_replay.py [--accounts N --days D]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from simdata import simulated  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=20000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--no-model", action="store_true", help="rules only")
    args = parser.parse_args()

    data = simulated(args.seed, args.accounts, args.days)

    code = f"""
import json, resource, sys, time
from amlwatch.engine import build_monitor
from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.replay import replay
from amlwatch.sources import read_lines
monitor = build_monitor(Config(), with_model={not args.no_model})
count = [0]
def emit(alerts):
    for alert in alerts:
        alert.to_json("x")
    count[0] += len(alerts)
summary = replay(read_lines({str(data / 'events.jsonl.gz')!r}), monitor, emit, DeadLetterFile(None))
print(json.dumps({{"events": summary.events, "seconds": summary.seconds, "alerts": count[0],
                  "model": monitor.versions["model"], "state": monitor.state_size(),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["events_per_second"] = result["events"] / result["seconds"]
    result["wall_seconds"] = time.perf_counter() - started
    result["python"] = platform.python_version()
    result["machine"] = f"{platform.machine()} x{__import__('os').cpu_count()}"

    rows = [("events", f"{result['events']:,}"), ("alerts", f"{result['alerts']:,}"),
            ("anomaly model", str(result["model"])), ("replay seconds", f"{result['seconds']:.1f}"),
            ("events/s", f"{result['events_per_second']:,.0f}"), ("peak RSS", f"{result['peak_rss_mb']:,.0f} MiB"),
            ("target", ">= 100,000 events/s")]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "replay.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
