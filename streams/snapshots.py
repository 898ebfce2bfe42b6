"""Partition snapshots in a changelog-backed Faust table, safe against a crash mid-write.

A snapshot is split into chunks (Kafka's message size limit) written under one
of two slots, then a meta record naming the slot, chunk count and the input
offset it covers. A new snapshot always goes to the slot the meta does not
name, and the meta is written last: a worker killed between the chunks and
the meta leaves the previous snapshot whole (a changelog replay sees the old
meta and its untouched chunks).

When only the offset moved (progress markers that changed nothing), just the
meta is rewritten: the state it names is still exact for the later offset.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, MutableMapping, NamedTuple

import orjson

from amlwatch.errors import AmlwatchError

CHUNK = 512 * 1024
"""Table values are at most this size (Kafka's message size limit)."""


class Snapshot(NamedTuple):
    blob: bytes
    offset: int


class SnapshotStore:
    """One stage's snapshots over a table's data (a Faust table's `.data`, rebuilt from its changelog).

    Writes update `data` and queue (partition, key, value) changelog records in `pending`: the caller
    sends them to the broker and flushes before it acks the input they cover.
    """

    def __init__(self, data: MutableMapping[bytes, bytes]):
        self.data = data
        self.pending: list[tuple[int, bytes, bytes]] = []
        self._meta: dict[int, dict] = {}

    def load(self, partition: int) -> Snapshot | None:
        meta = self.data.get(_meta_key(partition))
        if meta is None:
            return None
        info = orjson.loads(meta)
        self._meta[partition] = info
        slot = info.get("slot", 0)
        blob = b"".join(self.data[_chunk_key(partition, slot, i)] for i in range(info["chunks"]))
        return Snapshot(blob, info["offset"])

    def save(self, partition: int, blob: bytes, offset: int) -> None:
        previous = self._meta.get(partition)
        slot = 1 - previous["slot"] if previous is not None else 0
        chunks = [blob[i:i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
        for i, chunk in enumerate(chunks):
            self._put(partition, _chunk_key(partition, slot, i), chunk)
        self._write_meta(partition, {"slot": slot, "chunks": len(chunks), "offset": offset})

    def save_offset(self, partition: int, offset: int) -> bool:
        """Move the covered offset of an unchanged state; False when there is no snapshot to move."""
        info = self._meta.get(partition)
        if info is None or info["offset"] == offset:
            return False
        self._write_meta(partition, {**info, "offset": offset})
        return True

    def offset(self, partition: int) -> int | None:
        info = self._meta.get(partition)
        return None if info is None else info["offset"]

    def forget(self, partition: int) -> None:
        """Another worker may write this partition now: read the meta again before the next save."""
        self._meta.pop(partition, None)

    def _write_meta(self, partition: int, info: dict) -> None:
        self._put(partition, _meta_key(partition), orjson.dumps(info))
        self._meta[partition] = info

    def _put(self, partition: int, key: bytes, value: bytes) -> None:
        self.data[key] = value
        self.pending.append((partition, key, value))


def _meta_key(partition: int) -> bytes:
    return f"{partition}/meta".encode()


def _chunk_key(partition: int, slot: int, index: int) -> bytes:
    return f"{partition}/{slot}/{index}".encode()


class SnapshotFailed(AmlwatchError, RuntimeError):
    """The child process that pickled a partition's state did not finish."""


async def snapshot_in_child(proc: Any) -> bytes:
    """`proc.snapshot()` taken in a forked child, so the worker does not pause while it pickles.

    The fork is a consistent copy of the state at this instant (copy-on-write, a few milliseconds);
    the child pickles and compresses it on the other core, writes it to a pipe and exits without
    touching anything it inherited (sockets, threads, the event loop). Where fork is missing, the
    snapshot is taken inline.
    """
    if not hasattr(os, "fork"):
        return proc.snapshot()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:                                  # the child: pickle, write, leave at once
        code = 1
        try:
            os.close(read_end)
            _lowest_priority()
            view = memoryview(proc.snapshot())
            while view:
                view = view[os.write(write_end, view):]
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    loop = asyncio.get_running_loop()
    blob = await loop.run_in_executor(None, _read_all, read_end)
    _, status = await loop.run_in_executor(None, os.waitpid, pid, 0)
    if status != 0:
        raise SnapshotFailed(f"snapshot child exited with status {status}")
    return blob


def _lowest_priority() -> None:
    """The child takes only CPU nobody else wants: at normal priority, pickling a large state took a
    core from the worker and the broker and showed as alert latency (p99 at 5,000 events/s went from
    about 160 ms without snapshots to over 400 ms with them). A slower snapshot is only taken less
    often (the budget counts the child's time)."""
    try:
        os.nice(19)
    except OSError:
        pass


def _read_all(fd: int) -> bytes:
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)
