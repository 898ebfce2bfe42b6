"""The detection core compiled with mypyc against the same sources under CPython: a measurement, not a build.

Issue 15 weighed compiling the hot path. This answers what mypyc buys as the sources stand: it copies the
tree's own `amlwatch/`, `detectors/`, `models/` and `streams/` into a scratch package (the layout a wheel
installs), compiles `COMPILED` there with mypyc, replays one stream with the compiled copy and with the
tree as installed, each in its own process, and checks both raise the same alerts (every field but
`detected_at`) and dead-letter the same events. One change is made to the scratch copy, never to the tree:
`Detector` is marked `allow_interpreted_subclasses`, since the anomaly detector of the shipped model and the
tests' detectors subclass it and a compiled class refuses that otherwise.

Under load a run's CPU seconds swing by more than the difference, so `--rounds N` alternates the two
N times and keeps each one's fastest. Prints one table (CPU seconds of each replay, and each detector's
seconds from the Monitor's sampled timing, a wall clock) and writes bench/results/compiled.json (or
--out). Needs mypy (`pip install mypy`) and a C compiler.

Usage: python bench/bench_compiled.py --stream sim30/events.jsonl.gz [--no-model] [--rounds N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ROOTS = {"amlwatch": "amlwatch", "detectors": "amlwatch/detectors", "models": "amlwatch/models",
         "streams": "amlwatch/streams"}
"""Tree folder -> its place in the installed package (setup.py's mapping)."""

COMPILED = [
    *(f"amlwatch/detectors/{name}.py" for name in (
        "asset", "base", "evidence", "identity", "ledger", "monitor", "registry", "settlement",
        "speculation", "structuring", "wash", "watchlist", "windows")),
    "amlwatch/models/anomaly.py", "amlwatch/models/features.py", "amlwatch/models/forest.py",
]
"""The detection core's per-trade code. Left out: detectors/watchlist_index.py (a frozen slotted dataclass
built once per watchlist load, not per trade)."""

MYPY_FLAGS = ["--follow-imports=silent", "--ignore-missing-imports", "--disable-error-code=annotation-unchecked"]

SETUP = """
from setuptools import setup
from mypyc.build import mypycify
setup(name="amlwatch-compiled-scratch", py_modules=[],
      ext_modules=mypycify({flags!r} + {paths!r}, opt_level="3", group_name="amlwatch._core"))
"""

REPLAY = """
import hashlib, json, sys, time
import amlwatch.detectors.monitor
from amlwatch.config import Config
from amlwatch.deadletter import DeadLetterFile
from amlwatch.engine import build_monitor
from amlwatch.replay import replay
from amlwatch.sources import read_lines
monitor = build_monitor(Config(), with_model={model})
digest, count = hashlib.sha256(), [0]
def emit(alerts):
    for alert in alerts:
        digest.update(alert.to_json("-") + b"\\n")
    count[0] += len(alerts)
started, cpu = time.perf_counter(), time.process_time()
summary = replay(read_lines({path!r}), monitor, emit, DeadLetterFile({dead!r}))
print(json.dumps({{"cpu_seconds": time.process_time() - cpu, "wall_seconds": time.perf_counter() - started,
                  "events": summary.events, "alerts": count[0], "alerts_sha256": digest.hexdigest()[:16],
                  "compiled": amlwatch.detectors.monitor.__file__.endswith(".so"),
                  "detector_seconds": monitor.detector_seconds}}))
"""


def stage(scratch: Path) -> None:
    """The package as a wheel lays it out, from the tree's sources; only `Detector` is marked."""
    for folder, target in ROOTS.items():
        shutil.copytree(ROOT / folder, scratch / target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
    base = scratch / "amlwatch/detectors/base.py"
    text = base.read_text()
    marked = text.replace("\nclass Detector:", "\n@mypyc_attr(allow_interpreted_subclasses=True)\nclass Detector:", 1)
    marked = marked.replace("from __future__ import annotations\n",
                            "from __future__ import annotations\n\nfrom mypy_extensions import mypyc_attr\n", 1)
    if marked.count("mypyc_attr") != 2:
        raise SystemExit("bench_compiled: detectors/base.py no longer has `class Detector:` to mark")
    base.write_text(marked)


def build(scratch: Path) -> float:
    """Compile COMPILED in place; returns the build's CPU seconds (mypy, C generation, the C compiler)."""
    (scratch / "setup_compiled.py").write_text(SETUP.format(flags=MYPY_FLAGS, paths=COMPILED))
    before = os.times()
    done = subprocess.run([sys.executable, "setup_compiled.py", "build_ext", "--inplace"], cwd=scratch,
                          capture_output=True, text=True)
    after = os.times()
    if done.returncode:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit("bench_compiled: the mypyc build failed (output above)")
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


def run(path: str, model: bool, pythonpath: str | None, dead: Path) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    code = REPLAY.format(model=model, path=path, dead=str(dead))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env,
                         cwd=tempfile.gettempdir()).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["dead_letters"] = dead.read_bytes().count(b"\n") if dead.exists() else 0
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream", required=True, help="replay this recorded stream (JSON Lines, gzip or plain)")
    parser.add_argument("--no-model", action="store_true", help="rules only")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two runs this many times")
    parser.add_argument("--keep", help="build the compiled copy in this directory and keep it")
    parser.add_argument("--out", help="JSON results path (default bench/results/compiled.json)")
    args = parser.parse_args()
    try:
        import mypyc  # noqa: F401
    except ImportError:
        raise SystemExit("bench_compiled: needs mypy (pip install mypy)") from None

    scratch = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="amlwatch-mypyc-"))
    if scratch.exists() and any(scratch.iterdir()):
        raise SystemExit(f"bench_compiled: {scratch} is not empty")
    try:
        stage(scratch)
        build_cpu = build(scratch)
        runs: dict[str, list[dict]] = {"pure": [], "compiled": []}
        for _ in range(max(args.rounds, 1)):
            for name, pythonpath in (("pure", None), ("compiled", str(scratch))):
                runs[name].append(run(args.stream, not args.no_model, pythonpath, scratch / f"{name}.dl.jsonl"))
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if any(r["compiled"] for r in runs["pure"]) or not all(r["compiled"] for r in runs["compiled"]):
        raise SystemExit("bench_compiled: the pure run loaded compiled modules or the compiled run did not")
    pure, compiled = (min(runs[name], key=lambda r: r["cpu_seconds"]) for name in ("pure", "compiled"))
    outcomes = {tuple(r[k] for k in ("events", "alerts", "alerts_sha256", "dead_letters"))
                for r in runs["pure"] + runs["compiled"]}
    same = len(outcomes) == 1
    result = {
        "stream": args.stream, "model": not args.no_model, "modules": COMPILED, "build_cpu_seconds": build_cpu,
        "pure": pure, "compiled": compiled, "same_alerts": same, "rounds": runs,
        "speedup_cpu": pure["cpu_seconds"] / compiled["cpu_seconds"],
        "python": platform.python_version(), "machine": f"{platform.machine()} x{os.cpu_count()}",
        "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    rows = [("stream", args.stream), ("detectors", "all + model" if not args.no_model else "rules only"),
            ("events", f"{pure['events']:,}"),
            ("alerts (pure / compiled)", f"{pure['alerts']:,} / {compiled['alerts']:,}"),
            ("same alerts and dead letters", "yes" if same else "NO"),
            ("build CPU s (16 modules)", f"{build_cpu:.1f}"),
            ("replay CPU s (pure / compiled)", f"{pure['cpu_seconds']:.1f} / {compiled['cpu_seconds']:.1f}"
             + (f" (fastest of {len(runs['pure'])})" if len(runs["pure"]) > 1 else "")),
            ("speed-up (CPU)", f"{result['speedup_cpu']:.2f}x")]
    rows.append(("per detector, sampled wall s", "pure / compiled"))
    names = sorted(pure["detector_seconds"], key=lambda n: -pure["detector_seconds"][n])
    rows += [(f"  {name} s", f"{pure['detector_seconds'][name]:.2f} / "
              f"{compiled['detector_seconds'].get(name, 0.0):.2f}") for name in names]
    rows.append(("load average", " ".join(f"{x:.1f}" for x in result["load_average"])))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    out = Path(args.out) if args.out else HERE / "results" / "compiled.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
