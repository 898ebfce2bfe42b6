"""Anomaly-model speed: the forest's scorer, and the whole anomaly path per trade before and after.

`scorer` (the default): sklearn against the compiled forest, one event and batches. A streaming
worker scores one event at a time, where sklearn's per-tree Python overhead dominates. Prints a
table and writes bench/results/forest.json.

`path`: the per-trade CPU cost of the anomaly detector (feature state, extraction, score_one, alert
budget) of this tree against the code of an earlier revision (`--before`, loaded from git), on the
same trades: those a Monitor without the model shows the detector on a recorded or simulated
stream, each with its parties' registry state as it was then. Both must give the same rows, scores
and alerts. Process CPU time, best of `--repeats` alternating runs. Writes bench/results/anomaly_path.json.

Usage: python bench/bench_forest.py [scorer] [--trees 100 --features 20 --max-samples 256]
       python bench/bench_forest.py path [--events F | --accounts N --days D] [--before REV]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

from amlwatch.models.forest import CompiledForest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from simdata import simulated  # noqa: E402

BEFORE = "982ca25"
"""main before the anomaly path was made cheaper."""
MODEL_MODULES = ("forest", "features", "artifact", "anomaly")
"""amlwatch.models modules of the anomaly path, in import order."""


def best_of(repeats: int, run) -> float:
    """Fastest of `repeats` timings of `run()`, in seconds: the least disturbed by other load."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=("scorer", "path"), default="scorer")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--max-samples", type=int, default=256)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", help="path: a recorded stream (default: a simulated one)")
    parser.add_argument("--accounts", type=int, default=3000, help="path: simulated stream size")
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--trades", type=int, default=0, help="path: only the first N trades (0: all)")
    parser.add_argument("--before", default=BEFORE, help="path: git revision to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    return bench_path(args) if args.what == "path" else bench_scorer(args)


def bench_scorer(args) -> int:
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


def captured_views(path: Path, limit: int) -> list:
    """The trades a stream-scoped detector sees on `path`, with their parties' registry state copied (the
    registry updates it in place), in the order a Monitor without the model shows them."""
    from amlwatch.config import Config
    from amlwatch.deadletter import DeadLetterFile
    from amlwatch.detectors.base import Detector, TradeView
    from amlwatch.detectors.monitor import Monitor
    from amlwatch.replay import replay
    from amlwatch.sources import read_lines

    class Capture(Detector):
        name, typology = "bench.capture", "anomaly"

        def __init__(self):
            self.views = []

        def observe(self, view):
            if not limit or len(self.views) < limit:
                self.views.append(TradeView(view.trade, copy.copy(view.buyer), copy.copy(view.seller),
                                            view.collection, view.acquisition))
            return []

    capture = Capture()
    replay(read_lines(path), Monitor(Config(), extra_detectors=[capture]), lambda alerts: None,
           DeadLetterFile(None))
    return capture.views


def models_at(revision: str) -> types.SimpleNamespace:
    """The anomaly-path modules as they were at `revision`, imported under a package of their own."""
    root = HERE.parent
    package = f"amlwatch_models_{revision}"
    sys.modules[package] = types.ModuleType(package)
    sys.modules[package].__path__ = []
    modules = {}
    for name in MODEL_MODULES:
        source = subprocess.run(["git", "-C", str(root), "show", f"{revision}:models/{name}.py"],
                                check=True, capture_output=True, text=True).stdout
        module = types.ModuleType(f"{package}.{name}")
        module.__package__, module.__file__ = package, f"{revision}:models/{name}.py"
        sys.modules[module.__name__] = modules[name] = module
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    return types.SimpleNamespace(**modules)


def run_detector(detector, views) -> tuple[float, list]:
    """CPU seconds of `detector.observe` over `views` (evicting every 60 s of event time, as the Monitor
    does; with replay's collector thresholds), and the alerts as JSON."""
    from amlwatch.replay import GC_THRESHOLDS

    alerts, last_evict = [], float("-inf")
    previous = gc.get_threshold()
    gc.collect()
    gc.set_threshold(*GC_THRESHOLDS)
    started = time.process_time()
    try:
        for view in views:
            alerts.extend(detector.observe(view))
            if view.trade.t - last_evict >= 60.0:
                detector.evict(view.trade.t)
                last_evict = view.trade.t
        seconds = time.process_time() - started
    finally:
        gc.set_threshold(*previous)
    return seconds, [alert.to_json("-") for alert in alerts]


def bench_path(args) -> int:
    from amlwatch.config import Config
    from amlwatch.models import anomaly, artifact, features

    path = Path(args.events) if args.events else simulated(args.seed, args.accounts, args.days) / "events.jsonl.gz"
    started = time.process_time()
    views = captured_views(path, args.trades)
    capture_seconds = time.process_time() - started
    before = models_at(args.before)
    config = Config().anomaly
    builds = {
        f"before ({args.before})": lambda: before.anomaly.IsolationForestDetector(
            before.artifact.load_model(artifact.DEFAULT_MODEL_DIR), config),
        "after (this tree)": lambda: anomaly.IsolationForestDetector(artifact.load_model(artifact.DEFAULT_MODEL_DIR),
                                                                     config),
    }
    timings = {name: [] for name in builds}
    outputs = {}
    for _ in range(args.repeats):
        for name, build in builds.items():
            seconds, alerts = run_detector(build(), views)
            timings[name].append(seconds)
            outputs[name] = alerts
    first, second = outputs.values()
    if first != second:
        print("ALERTS DIFFER between the two revisions", file=sys.stderr)
        return 1

    scored = sum(1 for view in views if features.is_scored(view))
    results = []
    for name, seconds in timings.items():
        best = min(seconds)
        results.append({"code": name, "trades": len(views), "scored_trades": scored, "cpu_seconds": best,
                        "cpu_seconds_all_runs": seconds, "us_per_trade": best / len(views) * 1e6,
                        "us_per_scored_trade": best / scored * 1e6 if scored else None})
    speedup = results[0]["cpu_seconds"] / results[1]["cpu_seconds"]
    width = max(len(r["code"]) for r in results)
    print(f"{path}: {len(views):,} trades, {scored:,} scored, {len(first):,} anomaly alerts "
          f"(identical before and after); CPU seconds, best of {args.repeats}")
    print(f"{'code':<{width}}  {'CPU s':>7}  {'us/trade':>9}  {'us/scored':>10}")
    for r in results:
        print(f"{r['code']:<{width}}  {r['cpu_seconds']:>7.2f}  {r['us_per_trade']:>9.2f}  "
              f"{r['us_per_scored_trade'] or 0:>10.2f}")
    print(f"speed-up {speedup:.2f}x")
    report = {"events": str(path), "before": args.before, "alerts": len(first), "identical_alerts": True,
              "speedup": speedup, "results": results, "capture_cpu_seconds": capture_seconds,
              "python": platform.python_version(), "numpy": np.__version__,
              "machine": f"{platform.machine()} x{os.cpu_count()}", "load_average": os.getloadavg()}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "anomaly_path.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
