"""The worker's collector policy: survivors frozen often, everything collected now and then."""

from __future__ import annotations

import asyncio
import gc
import weakref

from amlwatch.streams.worker import _collect_everything, _freeze_survivors


class Node:
    def __init__(self):
        self.other = self


def test_a_cycle_frozen_with_the_survivors_is_freed_by_the_periodic_full_collection():
    node = Node()
    alive = weakref.ref(node)
    try:
        asyncio.run(_freeze_survivors())
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert alive() is not None, "frozen objects are out of the collector's passes"
        asyncio.run(_collect_everything())
        assert alive() is None
    finally:
        gc.unfreeze()
