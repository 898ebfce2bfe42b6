"""Snapshot cost: the authenticated, allow-listed envelope (streams/statecodec.py) against a bare pickle.

A work partition is fed a simulated stream, then its state is snapshotted and
restored both ways, best of --repeat. Prints a table and writes
bench/results/state.json. Usage: python bench/bench_state.py [--accounts N --days D]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from amlwatch.config import Config
    from amlwatch.sources import read_lines
    from amlwatch.streams import statecodec
    from amlwatch.streams.codecs import encode_event
    from amlwatch.streams.processors import WorkProcessor, _externals, build_stage_monitor

    data = HERE / "data" / f"sim-{args.seed}-{args.accounts}-{args.days}"
    if not (data / "events.jsonl.gz").exists():
        print(f"generating {data} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "amlwatch.cli", "simulate", str(data), "--seed", str(args.seed),
                        "--accounts", str(args.accounts), "--days", str(args.days)], check=True)
    config = Config()
    proc = WorkProcessor(0, build_stage_monitor(config, 1, True), ["in:0"], "", 0)
    events = 0
    for number, raw in read_lines(str(data / "events.jsonl.gz")):
        proc.handle(number, encode_event("in:0", number, raw))
        proc.drain()
        events += 1
    externals = _externals(proc.monitor)
    key = b"k" * 32

    def bare_pickle() -> bytes:
        buffer = io.BytesIO()
        statecodec._Pickler(buffer, externals).dump(proc)
        return zlib.compress(buffer.getvalue(), 1)

    def envelope() -> bytes:
        return statecodec.encode_state(proc, externals, key, {"config": config.hash})

    old, new = bare_pickle(), envelope()
    fresh = build_stage_monitor(config, 1, True)
    fresh_externals = _externals(fresh)
    rows = {
        "pickle": {"bytes": len(old), "encode_s": best(bare_pickle, args.repeat),
                   "decode_s": best(lambda: _plain_load(old, fresh_externals), args.repeat)},
        "envelope": {"bytes": len(new), "encode_s": best(envelope, args.repeat),
                     "decode_s": best(lambda: statecodec.decode_state(new, fresh_externals, fresh, key,
                                                                      expect={"config": config.hash}),
                                      args.repeat)},
    }
    print(f"{'format':<10}{'bytes':>12}{'encode ms':>12}{'decode ms':>12}   ({events:,} events, "
          f"{len(proc.monitor.registry.accounts):,} accounts in state)")
    for name, row in rows.items():
        print(f"{name:<10}{row['bytes']:>12,}{row['encode_s'] * 1e3:>12.1f}{row['decode_s'] * 1e3:>12.1f}")
    result = {"events": events, "rows": rows, "python": platform.python_version(),
              "machine": f"{platform.machine()} x{os.cpu_count()}", "date": time.strftime("%Y-%m-%d")}
    out = HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "state.json").write_text(json.dumps(result, indent=2))
    return 0


def _plain_load(blob: bytes, externals: dict):
    """The old restore: an unrestricted unpickler that only resolves the externals."""
    import pickle

    from amlwatch.streams import statecodec

    class Old(pickle.Unpickler):
        def find_class(self, module, name):
            if module == statecodec.__name__ and name == "_external":
                return externals.__getitem__
            return super().find_class(module, name)

    return Old(io.BytesIO(zlib.decompress(blob))).load()


if __name__ == "__main__":
    sys.exit(main())
