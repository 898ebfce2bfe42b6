"""Benchmarks are tools: `--help` explains and exits, it never starts a run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"


@pytest.mark.parametrize("script", ["bench_kafka.py", "bench_state.py", "bench_replay.py"])
def test_help_prints_usage_and_runs_nothing(script, tmp_path):
    done = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "AMLWATCH_KAFKA_BOOTSTRAP": "x:1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and "--help" in done.stdout


def test_kafka_results_directory_is_created_when_missing(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_kafka", BENCH / "bench_kafka.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.write_result({"x": 1}, tmp_path / "missing" / "results" / "kafka.json")
    assert out.read_text() == '{\n  "x": 1\n}\n'
    assert module.parse_args(["--rates", "100", "--trades", "5"]).trades == 5
