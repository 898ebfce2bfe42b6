"""The simulated streams the benchmarks read, generated once into bench/data/ (in a separate process, so a
benchmark's own peak memory is its own)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def simulated(seed: int, accounts: int, days: int) -> Path:
    """The directory holding `events.jsonl.gz` of that simulation, made if missing."""
    data = HERE / "data" / f"sim-{seed}-{accounts}-{days}"
    if not (data / "events.jsonl.gz").exists():
        print(f"generating {data} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "amlwatch.cli", "simulate", str(data), "--seed", str(seed),
                        "--accounts", str(accounts), "--days", str(days)], check=True)
    return data
