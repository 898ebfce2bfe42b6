"""The event-time skew guard: an event far ahead of the watermark is a jump only once a second confirms it.

One rule, shared by the detection core (which refuses such a trade, `event_time_skew`) and by the
streaming stages' progress (a router's marker and a reorder buffer must not count an event the core
will refuse, or they would vouch for a time the stream never reached: docs/STREAMING.md).
"""

from __future__ import annotations

NEG_INF = float("-inf")


def unconfirmed_jump(t: float, watermark: float, ahead_t: float | None, max_skew: float
                     ) -> tuple[bool, float | None]:
    """(whether `t` is more than `max_skew` ahead of `watermark` and unconfirmed, the ahead time to keep).

    Unconfirmed: no earlier event was itself that far ahead within `max_skew` of `t` (`ahead_t`, the
    last such event's time, which the caller keeps). A confirmed jump clears it; the first event of
    a stream (`watermark` -inf) anchors event time and is never a jump."""
    if watermark == NEG_INF or t <= watermark + max_skew:
        return False, ahead_t
    if ahead_t is not None and abs(t - ahead_t) <= max_skew:
        return False, None
    return True, t
