"""What wiring the large-value reports into the Kafka worker costs per paid trade, by stage.

Stage 1 computes both parties' sides (payment kind, hashes) from the registry and puts them as a JSON
line before the forwarded event; stage 2 splits them off and aggregates. Measured on pre-parsed events
of one simulated stream (rules only), CPU time (`time.process_time`), best of `--repeat` runs, against
the strict parse of the same trades for scale. Then the aggregator's share of a stage-2 snapshot at the
end of the stream (one partition owning every customer): its pickled size (and compressed as the
state codec's envelope does, zlib level 1) and the CPU time to pickle and to load it. Prints a table and writes bench/results/report_wiring.json.

    python bench/bench_report_wiring.py [--accounts 3000] [--days 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import pickle
import tempfile
import time
import zlib
from pathlib import Path

import orjson

from amlwatch.config import Config
from amlwatch.detectors.monitor import Monitor
from amlwatch.events import TradeEvent, parse_event
from amlwatch.reporting.lvtr import LargeValueAggregator, Side, trade_sides
from amlwatch.simulator import simulate
from amlwatch.sources import read_lines
from amlwatch.streams.processors import PartitionOwner

RESULTS = Path(__file__).resolve().parent / "results"


def _best(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = Config()
    with tempfile.TemporaryDirectory() as tmp:
        simulate(Path(tmp), seed=7, days=args.days, accounts=args.accounts)
        raws = [raw for _, raw in read_lines(Path(tmp) / "events.jsonl.gz")]
    # The final registry (the cost of a lookup, not the state at each trade), and the paid trades.
    monitor = Monitor(config, only=frozenset())
    paid = []
    for raw in raws:
        event = parse_event(raw)
        monitor.observe(event)
        if isinstance(event, TradeEvent) and event.paid:
            paid.append((event, raw))
    registry = monitor.registry
    kinds = config.payment_kind
    heads: list[bytes] = []
    kept: list[LargeValueAggregator] = []

    def stage_one() -> None:
        heads.clear()
        for event, raw in paid:
            sides = trade_sides(event, registry, kinds)
            heads.append(orjson.dumps([list(s) for s in sides]) + b"\n" + raw)

    def stage_two() -> None:
        aggregator = LargeValueAggregator(config.lvtr, kinds, owns=PartitionOwner(0, 1))
        for (event, _), value in zip(paid, heads):
            head, _, raw = value.partition(b"\n")
            pay, receive = orjson.loads(head)
            aggregator.observe_trade(event, (Side(*pay), Side(*receive)))
        kept[:] = [aggregator]

    def parse_only() -> None:
        for _, raw in paid:
            parse_event(raw)

    stage_one()
    rows = {"stage 1: sides + JSON line": _best(args.repeat, stage_one),
            "stage 2: split + aggregate (both sides)": _best(args.repeat, stage_two),
            "strict parse of the same trade (scale)": _best(args.repeat, parse_only)}
    n = len(paid)
    blob = pickle.dumps(kept[0], pickle.HIGHEST_PROTOCOL)
    snapshot = {"pickled_bytes": len(blob), "enveloped_bytes": len(zlib.compress(blob, 1)), **kept[0].state_size(),
                "pickle_seconds": _best(args.repeat, lambda: pickle.dumps(kept[0], pickle.HIGHEST_PROTOCOL)),
                "load_seconds": _best(args.repeat, lambda: pickle.loads(blob))}
    print(f"{n:,} paid trades of {len(raws):,} events ({args.accounts:,} accounts, {args.days} days), "
          f"CPU seconds, best of {args.repeat}")
    print(f"{'':<42}{'us/paid trade':>16}")
    for name, seconds in rows.items():
        print(f"{name:<42}{seconds / n * 1e6:>16.2f}")
    print(f"aggregator snapshot: {snapshot['pickled_bytes'] / 1e6:.1f} MB pickled "
          f"({snapshot['enveloped_bytes'] / 1e6:.1f} MB compressed as the state codec does), pickle "
          f"{snapshot['pickle_seconds']:.3f} s, load {snapshot['load_seconds']:.3f} s (CPU); "
          + ", ".join(f"{k} {v:,}" for k, v in kept[0].state_size().items()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report_wiring.json").write_text(json.dumps(
        {"events": len(raws), "paid_trades": n, "accounts": args.accounts, "days": args.days,
         "repeat": args.repeat, "us_per_paid_trade": {k: v / n * 1e6 for k, v in rows.items()},
         "aggregator_snapshot": snapshot}, indent=2))


if __name__ == "__main__":
    main()
