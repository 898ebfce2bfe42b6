"""SortedWindow against a brute-force window: same values, in order, under time and size limits."""

from __future__ import annotations

import random

from amlwatch.detectors.windows import SortedWindow


def test_sorted_window_matches_brute_force_under_expiry_size_limit_and_eviction():
    rng = random.Random(1)
    window = SortedWindow(horizon=100.0, max_per_key=7)
    kept: dict[str, list[tuple[float, float]]] = {}
    t = 0.0
    for step in range(5000):
        t += rng.expovariate(0.3)
        key = rng.choice("abc")
        value = float(rng.choice([1, 2, 2, 3, 5, 8, 13]))
        window.add(key, t, value)
        kept.setdefault(key, []).append((t, value))
        kept[key] = kept[key][-7:]
        if step % 50 == 0:
            window.evict(t)
        probe = rng.choice("abcd")
        expected = sorted(v for s, v in kept.get(probe, []) if s >= t - 100.0)
        assert window.recent(probe, t) == expected
    window.evict(t + 1000.0)
    assert len(window) == 0
