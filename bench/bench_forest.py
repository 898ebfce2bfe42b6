"""Isolation-forest scoring speed: sklearn against the compiled forest, one event and batches.

A streaming worker scores one event at a time, where sklearn's per-tree Python
overhead dominates. Prints a table and writes bench/results/forest.json.
Usage: python bench/bench_forest.py [--trees 100 --features 20 --max-samples 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

from amlwatch.models.forest import CompiledForest

HERE = Path(__file__).resolve().parent


def best_of(repeats: int, run) -> float:
    """Fastest of `repeats` timings of `run()`, in seconds: the least disturbed by other load."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--max-samples", type=int, default=256)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    X_train = rng.normal(size=(20_000, args.features))
    X_test = rng.normal(size=(100_000, args.features)) * rng.choice([1.0, 4.0], p=[0.95, 0.05], size=(100_000, 1))
    model = IsolationForest(n_estimators=args.trees, max_samples=args.max_samples,
                            random_state=args.seed).fit(X_train)
    compiled = CompiledForest.from_sklearn(model)
    rows = list(X_test[:20_000])

    max_diff = float(np.abs(compiled.score_samples(X_test) - model.score_samples(X_test)).max())
    one_diff = max(abs(compiled.score_one(x) - s) for x, s in zip(rows[:2000], model.score_samples(X_test[:2000])))

    def singles(score, n):
        return lambda: [score(x) for x in rows[:n]]

    runs = [  # (method, events per run, repeats, run)
        ("sklearn score_samples, 1 event per call", 200, 3, singles(lambda x: model.score_samples(x[None, :]), 200)),
        ("sklearn score_samples, batch of 10k", 10_000, 3, lambda: model.score_samples(X_test[:10_000])),
        ("compiled score_one", 20_000, 5, singles(compiled.score_one, 20_000)),
        ("compiled score_samples, 1 event per call", 2_000, 5,
         singles(lambda x: compiled.score_samples(x[None, :]), 2_000)),
        ("compiled score_samples, batch of 10k", 10_000, 5, lambda: compiled.score_samples(X_test[:10_000])),
        ("compiled score_samples, batch of 100k", 100_000, 3, lambda: compiled.score_samples(X_test)),
    ]
    results = []
    for method, events, repeats, run in runs:
        seconds = best_of(repeats, run)
        results.append({"method": method, "events": events, "seconds": seconds,
                        "us_per_event": seconds / events * 1e6, "events_per_second": events / seconds})

    width = max(len(r["method"]) for r in results)
    print(f"{args.trees} trees, {args.features} features, max_samples {args.max_samples}; "
          f"max |compiled - sklearn| = {max_diff:.1e} (batch), {one_diff:.1e} (score_one)")
    print(f"{'method':<{width}}  {'us/event':>9}  {'events/s':>11}")
    for r in results:
        print(f"{r['method']:<{width}}  {r['us_per_event']:>9.2f}  {r['events_per_second']:>11,.0f}")

    report = {
        "trees": args.trees, "features": args.features, "max_samples": args.max_samples, "seed": args.seed,
        "max_abs_diff_batch": max_diff, "max_abs_diff_score_one": one_diff, "results": results,
        "python": platform.python_version(), "numpy": np.__version__, "sklearn": sklearn.__version__,
        "machine": f"{platform.machine()} x{os.cpu_count()}",
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "forest.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
