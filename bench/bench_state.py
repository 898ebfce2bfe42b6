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
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from simdata import simulated  # noqa: E402


def interleaved(fns: dict, repeat: int) -> dict[str, dict[str, float]]:
    """Best and median seconds of each function, run in turn each round: on a shared machine, load that
    comes and goes then falls on every candidate alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: {"best": min(t), "median": sorted(t)[len(t) // 2]} for name, t in times.items()}


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

    data = simulated(args.seed, args.accounts, args.days)
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
    timed = interleaved({
        "pickle encode": bare_pickle, "envelope encode": envelope,
        "pickle decode": lambda: _plain_load(old, fresh_externals),
        "envelope decode": lambda: statecodec.decode_state(new, fresh_externals, fresh, key,
                                                           expect={"config": config.hash}),
    }, args.repeat)
    rows = {name: {"bytes": len(blob), "encode_s": timed[f"{name} encode"], "decode_s": timed[f"{name} decode"]}
            for name, blob in (("pickle", old), ("envelope", new))}
    print(f"{'format':<10}{'bytes':>12}{'encode ms best/median':>24}{'decode ms best/median':>24}   "
          f"({events:,} events, {len(proc.monitor.registry.accounts):,} accounts in state)")
    for name, row in rows.items():
        enc, dec = row["encode_s"], row["decode_s"]
        print(f"{name:<10}{row['bytes']:>12,}{enc['best'] * 1e3:>14.0f} / {enc['median'] * 1e3:<7.0f}"
              f"{dec['best'] * 1e3:>14.0f} / {dec['median'] * 1e3:<7.0f}")
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
