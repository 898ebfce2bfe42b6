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


def test_count_window_counts_per_key_within_the_window_in_buckets():
    from amlwatch.detectors.windows import CountWindow

    window = CountWindow(horizon=10.0, bucket=1.0)
    for t in (0.0, 0.5, 3.0, 9.5):
        window.add("a", t)
    window.add("b", 2.0)
    assert window.count("a", 9.9) == 4
    assert window.count("a", 10.5) == 4  # the bucket [0, 1) ends at 1, after 10.5 - 10: still in
    assert window.count("a", 11.0) == 2  # ...and is out once 11.0 - 10 reaches its end
    assert window.count("b", 12.9) == 1 and window.count("b", 13.0) == 0
    window.evict(30.0)
    assert len(window) == 0 and window.count("a", 30.0) == 0
