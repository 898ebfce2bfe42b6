"""The intake's fetch size: small batches while caught up (latency), large ones through a backlog."""

from __future__ import annotations

from amlwatch.streams.intake import BACKLOG_BATCH, BATCH, fetch_limit


def test_a_full_fetch_makes_the_next_one_larger_and_a_short_one_small_again():
    assert BACKLOG_BATCH > BATCH
    assert fetch_limit(0) == BATCH
    assert fetch_limit(BATCH - 1) == BATCH
    assert fetch_limit(BATCH) == BACKLOG_BATCH
    assert fetch_limit(BACKLOG_BATCH) == BACKLOG_BATCH
    assert fetch_limit(BACKLOG_BATCH - 1) == BACKLOG_BATCH, "a backlog fetch short of the large size is still a backlog"


def test_live_traffic_at_five_thousand_events_a_second_never_fills_a_batch():
    # 5,000 events/s arrive as about 250 per fetch (fetch_max_wait_ms=50): they keep the small size.
    assert fetch_limit(5000 * 50 // 1000) == BATCH
