"""Peak memory of a month's replay, with the digest of its alerts (so a memory change is shown not to
change one).

Replays the 1M-event simulated stream of bench_replay.py (20k accounts, 30 days, cached in
bench/data/) through `amlwatch replay` in a child process, with and without the anomaly model, and
reports each child's peak RSS, CPU seconds, alert count and the sha256 of its alerts (with the wall
clock `detected_at` removed). `--amlwatch PATH` measures another install, e.g. main's, for a before
figure on the same machine. Prints a table and writes bench/results/memory.json.
Usage: python bench/bench_memory.py [--accounts N --days D] [--no-model | --model-only] [--amlwatch PATH --label L]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from simdata import simulated  # noqa: E402


def alerts_digest(path: Path) -> tuple[int, str]:
    """How many alerts, and the sha256 of them one per line with `detected_at` dropped and keys sorted."""
    digest, count = hashlib.sha256(), 0
    with open(path, "rb") as lines:
        for line in lines:
            alert = orjson.loads(line)
            alert.pop("detected_at", None)
            digest.update(orjson.dumps(alert, option=orjson.OPT_SORT_KEYS) + b"\n")
            count += 1
    return count, digest.hexdigest()


def measure(amlwatch: str, events: Path, model: bool, out: Path) -> dict:
    """One replay in a child process: its own peak RSS and CPU, read from wait4's rusage."""
    alerts = out / ("alerts.jsonl" if model else "alerts-nomodel.jsonl")
    command = [amlwatch, "replay", str(events), "--alerts-out", str(alerts), "--dead-letter", str(out / "dl.jsonl")]
    if not model:
        command.append("--no-model")
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} exited {os.waitstatus_to_exitcode(status)}")
    count, digest = alerts_digest(alerts)
    return {"model": model, "peak_rss_mib": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "wall_seconds": wall, "alerts": count, "alerts_sha256": digest}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=20000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--no-model", action="store_true", help="rules only")
    parser.add_argument("--model-only", action="store_true", help="only the run with the model")
    parser.add_argument("--amlwatch", default=shutil.which("amlwatch") or "amlwatch",
                        help="the amlwatch executable to measure (default: the one on PATH)")
    parser.add_argument("--label", default="", help="results file bench/results/memory[-LABEL].json")
    args = parser.parse_args()

    data = simulated(args.seed, args.accounts, args.days)
    events_file = data / "events.jsonl.gz"
    with gzip.open(events_file, "rb") as lines:
        events = sum(1 for _ in lines)
    modes = [m for m in (True, False) if not (m and args.no_model) and not (not m and args.model_only)]
    with tempfile.TemporaryDirectory() as tmp:
        runs = [measure(args.amlwatch, events_file, model, Path(tmp)) for model in modes]
    result = {"label": args.label, "events": events, "stream": str(events_file), "amlwatch": args.amlwatch, "runs": runs,
              "python": platform.python_version(), "machine": f"{platform.machine()} x{os.cpu_count()}",
              "date": time.strftime("%Y-%m-%d", time.gmtime())}

    header = ("detectors", "peak RSS", "CPU s", "wall s", "alerts", "alerts sha256")
    rows = [("rules + model" if r["model"] else "rules only", f"{r['peak_rss_mib']:,.0f} MiB",
             f"{r['cpu_seconds']:.0f}", f"{r['wall_seconds']:.0f}", f"{r['alerts']:,}", r["alerts_sha256"][:16])
            for r in runs]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print(f"{events:,} events, {args.amlwatch}")
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    (HERE / "results").mkdir(exist_ok=True)
    name = f"memory-{args.label}.json" if args.label else "memory.json"
    (HERE / "results" / name).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
