"""Detection quality: alert volume per detector on the simulator and on recorded streams.

For the simulator (labelled): recall and precision per typology, hard
negatives flagged, and per detector the alerts, the share of trades and the
share of honest (unlabelled) trades they name. For every recorded stream given
(unlabelled, e.g. a platform's own history or /work/shared/real/axie-sales.jsonl.gz):
the same alert-volume table. Prints the tables and writes
bench/results/quality.json. Targets (docs/ANOMALY.md, docs/DETECTORS.md): the
anomaly detector within its budget (0.2% of scored trades) everywhere; on real
traffic every rule <= 0.5% of trades, all rules <= 1.5%, everything <= 2%; on
the simulator recall >= 0.95 per typology, rule precision >= 0.95, hard
negatives flagged <= 0.3%.

Usage: python bench/bench_quality.py [STREAM ...] [--seed 11 --days 30 --accounts 2000] [--no-model]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = Path("/work/shared/real/axie-sales.jsonl.gz")


def replay_alerts(path: Path, config, with_model: bool) -> tuple[list[dict], float]:
    """Every alert of one stream through the detection core, as dicts, and the replay's seconds."""
    import orjson

    from amlwatch.deadletter import DeadLetterFile
    from amlwatch.replay import replay
    from amlwatch.sources import read_lines

    try:
        from amlwatch.engine import build_monitor
    except ImportError:
        from amlwatch.cli import build_monitor

    alerts: list[dict] = []

    def collect(batch) -> None:
        alerts.extend(orjson.loads(alert.to_json("")) for alert in batch)

    started = time.perf_counter()
    replay(read_lines(path), build_monitor(config, with_model=with_model), collect, DeadLetterFile(None),
           source=str(path))
    return alerts, time.perf_counter() - started


def check_targets(volume, labelled: bool, budget: float) -> list[str]:
    """Which quality targets this stream misses (empty when all are met)."""
    missed = []
    rows = {r.detector: r for r in volume.rows}
    anomaly = rows.get("anomaly.isolation_forest")
    if anomaly and len(anomaly.trades) > budget * volume.scored_trades:
        missed.append(f"anomaly over its budget: {len(anomaly.trades)} > {budget:.1%} of {volume.scored_trades}")
    if not labelled:
        for name, row in rows.items():
            share = volume.share(len(row.trades))
            if name == "all rules" and share > 0.015:
                missed.append(f"all rules {share:.2%} > 1.5%")
            elif name == "all detectors" and share > 0.02:
                missed.append(f"everything {share:.2%} > 2%")
            elif name not in ("all rules", "all detectors", "anomaly.isolation_forest") and share > 0.005:
                missed.append(f"{name} {share:.2%} > 0.5%")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("streams", nargs="*", type=Path, help=f"recorded streams (default: {REAL} if present)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--config", help="TOML file with detector thresholds")
    parser.add_argument("--no-model", action="store_true", help="rules only")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "quality.json")
    args = parser.parse_args()

    from amlwatch.config import load_config
    from amlwatch.evaluation import alert_volume, count_trades, evaluate, load_labels, load_negatives
    from amlwatch.simulator import simulate

    config = load_config(args.config)
    streams = args.streams or ([REAL] if REAL.exists() else [])
    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "machine": f"{platform.node()} {platform.machine()}, Python {platform.python_version()}",
                     "with_model": not args.no_model, "budget": config.anomaly.budget, "streams": {}}
    with tempfile.TemporaryDirectory() as tmp:
        sim = Path(tmp) / "sim"
        summary = simulate(sim, seed=args.seed, days=args.days, accounts=args.accounts, config=config)
        labels = load_labels(sim / "labels.jsonl")
        alerts, seconds = replay_alerts(sim / "events.jsonl.gz", config, not args.no_model)
        evaluation = evaluate(labels, alerts, load_negatives(sim / "negatives.jsonl"))
        volume = alert_volume(count_trades(sim / "events.jsonl.gz"), alerts, labels)
        name = f"simulator seed {args.seed}, {args.days} days, {args.accounts:,} accounts"
        print(f"== {name} ({summary['events']:,} events, replay {seconds:.0f} s)\n{evaluation.table()}\n")
        print(volume.table())
        missed = check_targets(volume, True, config.anomaly.budget)
        scores = evaluation.to_dict()
        for typology, row in scores["typologies"].items():
            if row["labelled"] and (row["recall"] or 0) < 0.95:
                missed.append(f"{typology} recall {row['recall']:.3f} < 0.95")
            if row["flagged"] and (row["precision"] or 0) < 0.95:
                missed.append(f"{typology} precision {row['precision']:.3f} < 0.95")
        negatives = scores["hard_negatives"]
        flagged = sum(v["flagged"] for v in negatives.values())
        total = sum(v["trades"] for v in negatives.values())
        if total and flagged / total > 0.003:
            missed.append(f"hard negatives flagged {flagged / total:.2%} > 0.3%")
        print("targets: " + ("all met" if not missed else "; ".join(missed)) + "\n")
        results["streams"][name] = {"evaluation": scores, "volume": volume.to_dict(), "replay_seconds": round(seconds, 1),
                                    "hard_negatives_flagged_share": round(flagged / total, 6) if total else None,
                                    "targets_missed": missed}
    for path in streams:
        alerts, seconds = replay_alerts(path, config, not args.no_model)
        volume = alert_volume(count_trades(path), alerts)
        print(f"== {path} (replay {seconds:.0f} s)\n{volume.table()}")
        missed = check_targets(volume, False, config.anomaly.budget)
        print("targets: " + ("all met" if not missed else "; ".join(missed)) + "\n")
        results["streams"][str(path)] = {"volume": volume.to_dict(), "replay_seconds": round(seconds, 1),
                                         "targets_missed": missed}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
