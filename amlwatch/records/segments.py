"""Segment files of one stream: their names (`<first_seq:012d>-<YYYY-MM-DD>.<suffix>`), which of the open
file, sealed file and manifest exist, and listing streams and segments in sequence order."""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import orjson


from .lineformat import KIND_DIRS

SEGMENT_RE = re.compile(r"^(\d{12})-(\d{4}-\d{2}-\d{2})\.(jsonl|jsonl\.gz|manifest\.json)$")
OPEN, SEALED, MANIFEST = "jsonl", "jsonl.gz", "manifest.json"


@dataclass(frozen=True)
class SegmentName:
    first_seq: int
    day: str

    @property
    def base(self) -> str:
        return f"{self.first_seq:012d}-{self.day}"

    def file(self, suffix: str) -> str:
        return f"{self.base}.{suffix}"


def parse_segment_name(name: str) -> tuple[SegmentName, str] | None:
    match = SEGMENT_RE.match(name)
    if not match:
        return None
    return SegmentName(int(match.group(1)), match.group(2)), match.group(3)


@dataclass
class Segment:
    """One segment of a stream as found on disk."""

    stream: str
    directory: Path
    name: SegmentName
    has_open: bool = False
    has_sealed: bool = False
    has_manifest: bool = False

    @property
    def first_seq(self) -> int:
        return self.name.first_seq

    @property
    def day(self) -> str:
        return self.name.day

    @property
    def sealed(self) -> bool:
        return self.has_sealed and self.has_manifest

    @property
    def label(self) -> str:
        """`events/p0/000000000001-2026-03-01.jsonl.gz` (what verify names)."""
        suffix = OPEN if self.has_open and not self.sealed else SEALED
        return f"{self.stream}/{self.name.file(suffix)}"

    def path(self, suffix: str) -> Path:
        return self.directory / self.name.file(suffix)

    def manifest(self) -> dict | None:
        if not self.has_manifest:
            return None
        return orjson.loads(self.path(MANIFEST).read_bytes())

    def lines(self) -> Iterator[bytes]:
        """Complete lines (newline included) of the segment; a torn last line of an open one is left out."""
        if self.sealed:
            with gzip.open(self.path(SEALED), "rb") as handle:
                yield from handle
            return
        with open(self.path(OPEN), "rb") as handle:
            for line in handle:
                if line.endswith(b"\n"):
                    yield line


def list_segments(directory: Path, stream: str) -> list[Segment]:
    """Segments of one stream directory in sequence order (temporary files ignored)."""
    found: dict[SegmentName, Segment] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for entry in names:
        parsed = parse_segment_name(entry)
        if parsed is None:
            continue
        name, suffix = parsed
        seg = found.setdefault(name, Segment(stream, directory, name))
        if suffix == OPEN:
            seg.has_open = True
        elif suffix == SEALED:
            seg.has_sealed = True
        else:
            seg.has_manifest = True
    return sorted(found.values(), key=lambda s: (s.first_seq, s.day))


def list_streams(root: str | os.PathLike) -> list[str]:
    """Stream ids present under an archive root: audit first, then events and alerts by partition."""
    root = Path(root)
    streams = []
    if (root / "audit").is_dir():
        streams.append("audit")
    for kind in ("event", "alert"):
        base = root / KIND_DIRS[kind]
        if not base.is_dir():
            continue
        parts = []
        for entry in os.listdir(base):
            if re.fullmatch(r"p\d+", entry) and (base / entry).is_dir():
                parts.append(int(entry[1:]))
        streams.extend(f"{KIND_DIRS[kind]}/p{p}" for p in sorted(parts))
    return streams
