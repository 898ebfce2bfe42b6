"""Writes the golden feature rows that tests/models/test_features.py holds the extractor to.

Run once with the code whose features are the reference (main at 982ca25, before the anomaly
path was made cheaper): `python tests/models/data/make_feature_golden.py`. It simulates a short
stream in which one trade in six arrives up to 40 hours late (so eviction meets out-of-order
event times) and stores its feature rows and trade ids as `collect_features` computes them (it
runs the very Monitor that scores live traffic), with the shipped model's `score_one` of each row.
"""

from __future__ import annotations

import gzip
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import orjson

from amlwatch.events import parse_time
from amlwatch.models.artifact import DEFAULT_MODEL_DIR, load_model
from amlwatch.models.training import collect_features
from amlwatch.simulator import simulate

HERE = Path(__file__).resolve().parent
LATE_SHARE = 1 / 6
MAX_LATE_SECONDS = 40 * 3600.0


def delayed(lines: list[bytes], seed: int) -> list[bytes]:
    """The same events with some trades delivered up to 40 hours after their event time."""
    rng = random.Random(seed)
    keyed = []
    for index, line in enumerate(lines):
        event = orjson.loads(line)
        late = event["type"] == "trade" and rng.random() < LATE_SHARE
        delivered = parse_time(event["ts"]).timestamp() + (rng.random() * MAX_LATE_SECONDS if late else 0.0)
        keyed.append((delivered, index, line))
    return [line for _, _, line in sorted(keyed)]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        simulate(Path(tmp), seed=5, days=8, accounts=400)
        lines = gzip.decompress((Path(tmp) / "events.jsonl.gz").read_bytes()).splitlines()
    path = HERE / "features-stream.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(delayed(lines, seed=5)) + b"\n", mtime=0))
    X, trade_ids, _ = collect_features([path])
    model = load_model(DEFAULT_MODEL_DIR)
    scores = np.array([model.anomaly_score(row) for row in X])
    np.savez_compressed(HERE / "features-golden.npz", rows=X, trade_ids=np.array(trade_ids), scores=scores,
                        model_id=np.array(model.model_id))
    print(X.shape, model.model_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
