"""The intake's fetch size: small batches while caught up (latency), large ones through a backlog; the
router waits for stage 1 when it trails far enough for the parse cache to miss."""

from __future__ import annotations

import asyncio

from amlwatch.streams.intake import BACKLOG_BATCH, BATCH, fetch_limit, pace, router_lead


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


def test_the_router_lead_is_what_it_routed_beyond_the_furthest_stage_one_partition():
    routed = {"trades:0": 5_000, "trades:1": 900, "accounts:0": 70}
    taken = [{"trades:0": 1_000, "trades:1": 900}, {"trades:0": 3_000}]
    # trades:0 from the furthest partition (3,000), trades:1 caught up, accounts:0 not taken here yet
    assert router_lead(routed, taken) == 2_000
    assert router_lead(routed, []) == 0, "a worker without stage-1 partitions never waits"


def test_pace_waits_while_the_stages_trail_and_no_longer_than_its_limit():
    lead = iter([20_000, 20_000, 100])
    waited = asyncio.run(pace(lambda: next(lead), limit=8_192, longest=5.0, poll=0))
    assert 0 <= waited < 5.0
    assert next(lead, None) is None, "stopped waiting once the lead fell under the limit"

    clock = iter(range(100))
    waited = asyncio.run(pace(lambda: 20_000, limit=8_192, longest=3, poll=0, clock=lambda: next(clock)))
    assert waited == 3, "a stage held up slows the router for at most `longest`"
