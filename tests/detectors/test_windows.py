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


def test_keyed_window_matches_brute_force_under_expiry_size_limit_and_eviction():
    from amlwatch.detectors.windows import KeyedWindow

    rng = random.Random(2)
    for limit in (1, 3, 64):
        window = KeyedWindow(horizon=100.0, max_per_key=limit)
        kept: dict[str, list[tuple[float, int]]] = {}
        t = 0.0
        for step in range(4000):
            t += rng.expovariate(0.2)
            key = rng.choice("abcdefg")
            entry = (t, step)
            kept[key] = (kept.get(key, []) + [entry])[-limit:]
            expected = [e for e in kept[key] if e[0] >= t - 100.0]
            if step % 2:
                assert list(window.push(key, entry)) == expected
            else:
                window.add(key, t, step)
            if step % 40 == 0:
                window.evict(t)
            probe = rng.choice("abcdefgh")
            assert list(window.recent(probe, t)) == [e for e in kept.get(probe, []) if e[0] >= t - 100.0]
        assert window.entries() <= 7 * limit
        window.evict(t + 100.1)
        assert len(window) == 0 and window.entries() == 0 and not window._expiry


def test_keyed_window_holds_a_single_entry_bare_and_shares_the_callers_tuple():
    from amlwatch.detectors.windows import KeyedWindow

    window = KeyedWindow(horizon=10.0, max_per_key=4)
    entry = (1.0, "x")
    assert window.push("k", entry) == (entry,)
    assert window._entries["k"] is entry            # no list, no copy: one tuple for every window
    second = (2.0, "y")
    assert window.push("k", second) == [entry, second]
    assert window.recent("k", 11.5) == [second]
    assert window.recent("k", 30.0) == [] and window.recent("absent", 0.0) == ()


def test_keyed_window_add_does_not_trim_so_a_late_lookup_still_sees_what_it_did():
    # A late trade (behind the watermark, within the dedupe window) looks back from its own time:
    # adding a newer entry must not drop entries only the newer time has left behind.
    from amlwatch.detectors.windows import KeyedWindow

    window = KeyedWindow(horizon=10.0)
    window.add("k", 0.0, "old")
    window.add("k", 10.5, "new")
    assert [item for _, item in window.recent("k", 9.0)] == ["old", "new"]


def test_count_window_matches_brute_force_buckets_with_eviction():
    from amlwatch.detectors.windows import CountWindow

    rng = random.Random(3)
    window = CountWindow(horizon=50.0, bucket=5.0)
    seen: dict[str, list[float]] = {}
    t = 0.0
    for step in range(3000):
        t += rng.expovariate(0.5)
        key = rng.choice("abcde")
        window.add(key, t)
        seen.setdefault(key, []).append(t - t % 5.0)
        if step % 30 == 0:
            window.evict(t)
        probe = rng.choice("abcdef")
        assert window.count(probe, t) == sum(1 for start in seen.get(probe, ()) if start + 5.0 > t - 50.0)
    window.evict(t + 60.0)
    assert len(window) == 0 and not window._expiry


def test_count_window_restarts_a_key_its_count_emptied_before_eviction():
    # count() can trim a key to nothing between two evictions; the next add starts it afresh
    # (the deque-based window raised IndexError here and lost the trade's alerts as a monitor_error).
    from amlwatch.detectors.windows import CountWindow

    window = CountWindow(horizon=10.0, bucket=1.0)
    window.add("a", 0.5)
    assert window.count("a", 11.5) == 0
    window.add("a", 11.6)
    assert window.count("a", 11.7) == 1
