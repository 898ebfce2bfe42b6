"""The worker's shared parse: one parse per event bytes, bounded, bad records never kept."""

from __future__ import annotations

import pytest
from support.streamgen import make_stream

from amlwatch.events import BadRecord, parse_event
from amlwatch.streams.parsed import ParsedEventCache


def _good(lines: list[bytes]) -> list[bytes]:
    good = []
    for raw in lines:
        try:
            parse_event(raw)
            good.append(raw)
        except BadRecord:
            pass
    return good


class CountingParse:
    def __init__(self):
        self.calls = 0

    def __call__(self, raw: bytes):
        self.calls += 1
        return parse_event(raw)


def test_equal_bytes_from_another_message_reuse_the_first_parse():
    raw = _good(make_stream(seed=1, trades=5))[0]
    counting = CountingParse()
    cache = ParsedEventCache(parse=counting)
    first = cache.parse(raw)
    again = cache.parse(bytes(bytearray(raw)))       # a copy, as a frame slice is
    assert again is first and again == parse_event(raw)
    assert counting.calls == 1 and (cache.hits, cache.misses) == (1, 1)


def test_the_cache_holds_at_most_two_generations_and_forgets_the_oldest():
    lines = _good(make_stream(seed=2, trades=40))[:25]
    counting = CountingParse()
    cache = ParsedEventCache(capacity=10, parse=counting)
    for raw in lines:
        cache.parse(raw)
        assert len(cache) <= 20
    assert counting.calls == 25
    cache.parse(lines[-1])                          # young generation
    cache.parse(lines[12])                          # old generation: found, and made young again
    assert counting.calls == 25
    cache.parse(lines[0])                           # two generations back: parsed again
    assert counting.calls == 26


def test_a_bad_record_raises_every_time_and_is_not_kept():
    cache = ParsedEventCache()
    for _ in range(2):
        with pytest.raises(BadRecord):
            cache.parse(b'{"type": "trade", "event_id": "x-1", "ts": "2026-03-02T10:00:00+08:00"}')
    assert len(cache) == 0


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity"):
        ParsedEventCache(capacity=0)
