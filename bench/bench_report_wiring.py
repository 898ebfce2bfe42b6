"""What wiring the large-value reports and the risk ratings into the Kafka worker costs, by stage.

Stage 1 computes both parties' sides (payment kind, hashes) from the registry and puts them as a JSON
line before the forwarded event; stage 2 splits them off and aggregates. Measured on pre-parsed events
of one simulated stream (rules only), CPU time (`time.process_time`), best of `--repeat` runs, against
the strict parse of the same trades for scale. Then the aggregator's share of a stage-2 snapshot at the
end of the stream (one partition owning every customer): its pickled size (and compressed as the
state codec's envelope does, zlib level 1) and the CPU time to pickle and to load it.
The rating stage (stage 3) is timed on the rating facts
the two stages sent for the same stream (one partition each, in slices of 500 events), per event it
rated, beside the replay hook's rater fed the same events and alerts directly. Prints a table and
writes bench/results/report_wiring.json.

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
from amlwatch.reporting.risk import RiskRater
from amlwatch.streams.codecs import encode_event, encode_marker, encode_frame
from amlwatch.streams.processors import KeyedProcessor, PartitionOwner, RatingProcessor, WorkProcessor, \
    build_stage_monitor

RESULTS = Path(__file__).resolve().parent / "results"


def _best(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def rating_facts(config: Config, raws: list[bytes], facts: bool = True) -> list[bytes]:
    """The rating stage's input frames from one stage-1 and one stage-2 partition fed the stream in slices
    of 500 events (without `facts`: the same two stages sending none, for their own added cost)."""
    work = WorkProcessor(0, build_stage_monitor(config, 1, False), ["s"], "keyed", 1)
    keyed = KeyedProcessor(0, 1, build_stage_monitor(config, 2, False), ["w0"])
    if facts:
        work.rating_topic = keyed.rating_topic = "rating"
    frames = []

    def sent(outs, topic):
        return [out.value for out in outs if out.topic == topic]

    for start in range(0, len(raws), 500):
        chunk = raws[start:start + 500]
        values = [encode_event("s", start + i, raw) for i, raw in enumerate(chunk)]
        last = len(raws) <= start + 500
        values.append(encode_marker("s", parse_event(chunk[-1]).t + (1e9 if last else 0), last))
        _, outs = work.handle(start, encode_frame(values))
        _, more = work.drain()
        outs += more
        to_keyed, to_rating = sent(outs, "keyed"), sent(outs, "rating")
        if to_keyed:
            _, kouts = keyed.handle(start, encode_frame(to_keyed))
            _, more = keyed.drain()
            to_rating += sent(kouts + more, "rating")
        frames.append(encode_frame(to_rating))
    return frames


def hook_inputs(config: Config, raws: list[bytes]) -> list:
    """(event, alerts) as the replay hook hands them to its rater."""
    replay, observed = Monitor(config), []
    for raw in raws:
        event = parse_event(raw)
        before = replay.duplicates
        alerts = replay.observe(event)
        if replay.duplicates == before and not replay.take_rejected():
            observed.append((event, [a.to_dict("") for a in alerts]))
    return observed


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

    frames, observed = rating_facts(config, raws), hook_inputs(config, raws)
    rated = {}

    def stage_three() -> None:
        stage = RatingProcessor(build_stage_monitor(config, 3, False), ["w0"])
        records = []
        for offset, frame in enumerate(frames):
            stage.handle(offset, frame)
            records += stage.take_records()
        rated["events"], rated["stage"] = stage.events, records
        rated["snapshot_bytes"] = len(stage.snapshot())

    def replay_rater() -> None:
        rater = RiskRater(config.risk, Monitor(config, only=frozenset()).registry)
        registry, records = rater.registry, []
        for event, alerts in observed:
            if event.type == "account":
                registry.apply_account(event)
            elif event.type == "collection":
                registry.apply_collection(event)
            records.extend(rater.observe(event, alerts))
        rated["replay"] = records

    stage_one()
    rows = {"stage 1: sides + JSON line": _best(args.repeat, stage_one),
            "stage 2: split + aggregate (both sides)": _best(args.repeat, stage_two),
            "strict parse of the same trade (scale)": _best(args.repeat, parse_only)}
    per_event = {"stage 3: facts -> ratings": _best(args.repeat, stage_three),
                 "replay hook's rater, same events": _best(args.repeat, replay_rater),
                 "stages 1+2 with rating facts": _best(args.repeat, lambda: rating_facts(config, raws)),
                 "stages 1+2 without": _best(args.repeat, lambda: rating_facts(config, raws, facts=False))}
    assert rated["stage"] == rated["replay"], "the rating stage rates as the replay hook does"
    fact_bytes = sum(len(f) for f in frames)
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
    m = rated["events"]
    print(f"\nrating stage: {m:,} events rated, {fact_bytes / len(raws):,.0f} bytes of rating facts per event, "
          f"final snapshot {rated['snapshot_bytes']:,} bytes")
    print(f"{'':<42}{'us/event':>16}")
    for name, seconds in per_event.items():
        print(f"{name:<42}{seconds / m * 1e6:>16.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report_wiring.json").write_text(json.dumps(
        {"events": len(raws), "paid_trades": n, "accounts": args.accounts, "days": args.days,
         "repeat": args.repeat, "us_per_paid_trade": {k: v / n * 1e6 for k, v in rows.items()},
         "aggregator_snapshot": snapshot,
         "rated_events": m, "rating_fact_bytes_per_event": fact_bytes / len(raws),
         "rating_snapshot_bytes": rated["snapshot_bytes"],
         "us_per_rated_event": {k: v / m * 1e6 for k, v in per_event.items()}}, indent=2))


if __name__ == "__main__":
    main()
