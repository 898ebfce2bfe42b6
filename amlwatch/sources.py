"""Recorded streams: JSON Lines files, gzip-compressed or plain, or standard input."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path
from typing import BinaryIO, Iterator


def open_stream(path: str | Path) -> BinaryIO:
    """Open `path` for binary reading; '-' is stdin. Gzip is recognised by its magic bytes."""
    if str(path) == "-":
        raw = sys.stdin.buffer
        peek = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        return gzip.GzipFile(fileobj=raw) if peek == b"\x1f\x8b" else raw
    handle = open(path, "rb")
    if handle.read(2) == b"\x1f\x8b":
        handle.seek(0)
        return gzip.GzipFile(fileobj=handle)
    handle.seek(0)
    return handle


def read_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line without the newline); blank lines are skipped."""
    stream = open_stream(path)
    try:
        for number, line in enumerate(stream, 1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
