"""Reading the archive: streams, segments, and records in sequence order, filtered by kind, partition and
event time (sealed segments skipped by their manifest's time range)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import orjson


from .lineformat import stream_kind
from .segments import Segment, list_segments, list_streams

class ArchiveReader:
    """Reads records in order: one stream by sequence, or several merged by event time.

    The reader does not check hashes (that is `verify_archive`); it skips a
    torn last line of an open segment, so it can read an archive being written.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no record archive at {self.root}")

    def streams(self, kinds: Iterable[str] | None = None, partitions: Iterable[int] | None = None) -> list[str]:
        kinds = set(kinds) if kinds is not None else None
        partitions = set(partitions) if partitions is not None else None
        out = []
        for sid in list_streams(self.root):
            kind, partition = stream_kind(sid)
            if kinds is not None and kind not in kinds:
                continue
            if partitions is not None and partition is not None and partition not in partitions:
                continue
            out.append(sid)
        return out

    def segments(self, stream: str) -> list[Segment]:
        return list_segments(self.root / stream, stream)

    def iter_stream(self, stream: str, since: float | None = None, until: float | None = None) -> Iterator[dict]:
        """Records of one stream in sequence order, each the parsed line (`hash` included).

        With since/until, whole sealed segments outside the period are skipped
        by their manifest, and records are filtered by event time (a record
        without one takes the time of the record before it).
        """
        last_t = None
        for seg in self.segments(stream):
            if not (seg.has_open or seg.sealed):
                continue
            if seg.has_open and seg.has_manifest:
                seg.has_open = False  # leftover of a completed seal
            if seg.sealed and (since is not None or until is not None):
                manifest = seg.manifest()
                lo, hi = manifest.get("min_t"), manifest.get("max_t")
                if hi is not None and since is not None and hi < since:
                    last_t = hi
                    continue
                if lo is not None and until is not None and lo > until:
                    continue
            for line in seg.lines():
                record = orjson.loads(line)
                t = record.get("t")
                if t is None:
                    t = last_t
                else:
                    last_t = t
                if t is not None:
                    if since is not None and t < since:
                        continue
                    if until is not None and t > until:
                        continue
                record["_t"] = t
                record["_stream"] = stream
                yield record

    def records(self, kinds: Iterable[str] = ("event",), partitions: Iterable[int] | None = None,
                since: float | None = None, until: float | None = None) -> Iterator[dict]:
        """Records of several streams merged by event time (then stream, then sequence)."""
        import heapq

        streams = self.streams(kinds, partitions)
        if len(streams) == 1:
            yield from self.iter_stream(streams[0], since, until)
            return

        def keyed(index: int, sid: str):
            for record in self.iter_stream(sid, since, until):
                t = record["_t"]
                yield (t if t is not None else float("-inf"), index, record["seq"]), record

        for _, record in heapq.merge(*(keyed(i, s) for i, s in enumerate(streams)), key=lambda item: item[0]):
            yield record
