"""The archive writer: appends records to each stream's open segment, commits (fsync) before the caller
acks, rolls segments per UTC day and size, seals them (gzip + manifest through atomic renames, in a
background thread if asked), and recovers an interrupted seal or a torn last line on open.

Crash safety: see amlwatch/records/archive.py; `_crash_point` marks each step of a seal for the crash tests.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import gzip
import hashlib
import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable

import orjson

from amlwatch.alerts import json_default
from amlwatch.events import BadRecord

from .lineformat import (
    ArchiveBusy,
    ArchiveError,
    DAY_SECONDS,
    RecordFormatError,
    mkdirs,
    time_of,
    event_time,
    fsync_dir,
    genesis_hash,
    seal_line,
    split_line,
    stream_id,
    stream_kind,
    utc_day,
    utc_iso,
)
from .manifests import SegmentStats
from .segments import MANIFEST, OPEN, SEALED, SegmentName, list_segments, list_streams

DEFAULT_SEGMENT_MAX_BYTES = 256 << 20


def _crash_point(name: str) -> None:
    """No-op hook between the steps of a seal; the crash tests replace it with os._exit."""


class _OpenSegment:
    __slots__ = ("name", "path", "handle", "bytes")

    def __init__(self, name: SegmentName, path: Path, handle, nbytes: int):
        self.name = name
        self.path = path
        self.handle = handle
        self.bytes = nbytes


class _Stream:
    __slots__ = ("id", "kind", "partition", "dir", "lock_fd", "next_seq", "last_hash", "last_t",
                 "open", "dirty", "dir_dirty", "day_lo", "day_hi", "day_text")

    def __init__(self, sid: str, directory: Path):
        self.id = sid
        self.kind, self.partition = stream_kind(sid)
        self.dir = directory
        self.lock_fd: int | None = None
        self.next_seq = 1
        self.last_hash = genesis_hash(sid)
        self.last_t: float | None = None
        self.open: _OpenSegment | None = None
        self.dirty = False
        self.dir_dirty = False
        self.day_lo = self.day_hi = 0.0
        self.day_text = ""

    def day_of(self, t: float) -> str:
        if not (self.day_lo <= t < self.day_hi):
            self.day_lo = (t // DAY_SECONDS) * DAY_SECONDS
            self.day_hi = self.day_lo + DAY_SECONDS
            self.day_text = utc_day(self.day_lo)
        return self.day_text


class RecordArchive:
    """Append-only writer of the record archive (one per process and stream; streams are locked).

    Nothing is durable until `commit()` returns; acknowledge input (commit a
    Kafka offset, report a file replayed) only after it.
    """

    def __init__(self, root: str | os.PathLike, *, segment_max_bytes: int = DEFAULT_SEGMENT_MAX_BYTES,
                 fsync: bool = True, compress_level: int = 6, lock_timeout: float = 0.0,
                 buffer_bytes: int = 1 << 20, on_seal: Callable[[Path], None] | None = None,
                 background_seals: bool = False):
        self.root = Path(root)
        self.on_seal = on_seal
        """Told of each sealed segment (the worker's last-seal-time metric)."""
        self.segment_max_bytes = segment_max_bytes
        self.fsync = fsync
        self.compress_level = compress_level
        self.lock_timeout = lock_timeout
        self.buffer_bytes = buffer_bytes
        self._streams: dict[str, _Stream] = {}
        self._event_streams: dict[int, _Stream] = {}
        self._closed = False
        self._sealer = _Sealer() if background_seals else None
        """Seals a full segment on a thread while appends go on (a long-running writer: the Kafka
        worker); a 256 MB segment takes seconds to verify and compress, which inline is a pause."""
        mkdirs(self.root)

    # ---- public API

    def append_event(self, raw: bytes | str, source: dict | None, outcome="ok", ts=None, *,
                     partition: int | None = None, field: str | None = None) -> int:
        """Archive one input record as received; returns its sequence number in its stream.

        `source` is where it came from ({"file", "line"} or {"topic", "partition",
        "offset"}); `outcome` is "ok", the dead-letter reason, or the `BadRecord`;
        `ts` (ISO text, epoch seconds or datetime) saves re-reading the event time
        from `raw`. The partition defaults to `source["partition"]`, else 0.
        """
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        if isinstance(outcome, BadRecord):
            field = outcome.field if field is None else field
            outcome = outcome.reason
        elif not isinstance(outcome, str) or not outcome:
            raise ValueError("outcome must be 'ok', a dead-letter reason or a BadRecord")
        if partition is None:
            partition = source.get("partition", 0) if isinstance(source, dict) else 0
        st = self._event_streams.get(partition)
        if st is None:
            st = self._event_streams[partition] = self._stream(stream_id("event", partition))
        t = time_of(ts) if ts is not None else event_time(raw)
        record = {"kind": "event", "partition": partition, "t": t, "received": round(time.time(), 3),
                  "source": source, "outcome": outcome}
        if outcome != "ok" and field is not None:
            record["field"] = field
        try:
            record["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record["raw_base64"] = base64.b64encode(raw).decode("ascii")
        return self._append(st, record, t)

    def append_alert(self, alert, *, partition: int = 0, detected_at: str | None = None) -> int:
        """Archive one alert (an `Alert` or its contract dict); returns its sequence number."""
        if not isinstance(alert, dict):
            alert = alert.to_dict(detected_at)
        st = self._stream(stream_id("alert", partition))
        t = time_of(alert.get("ts"))
        record = {"kind": "alert", "partition": partition, "t": t, "alert": alert}
        return self._append(st, record, t)

    def append_audit(self, action: str, **details) -> int:
        """Archive one audit record (hold changes, purges); stamped with the wall clock."""
        st = self._stream("audit")
        now = time.time()
        record = {"kind": "audit", "t": round(now, 3), "at": utc_iso(now), "action": action, **details}
        return self._append(st, record, now)

    def commit(self) -> dict[str, int]:
        """Make everything appended so far durable; returns each written stream's last sequence number."""
        if self._sealer is not None:
            self._sealer.raise_failure()
        heads = {}
        for st in self._streams.values():
            if st.dirty and st.open is not None:
                st.open.handle.flush()
                if self.fsync:
                    os.fsync(st.open.handle.fileno())
                st.dirty = False
            if st.dir_dirty:
                if self.fsync:
                    fsync_dir(st.dir)
                st.dir_dirty = False
            heads[st.id] = st.next_seq - 1
        return heads

    def seal(self, kind: str | None = None, partition: int | None = None) -> list[Path]:
        """Seal the open segments (of one kind / partition, or all): commit, compress, manifest."""
        self._wait_for_seals()
        self.commit()
        sealed = []
        for st in list(self._streams.values()):
            if (kind is None or st.kind == kind) and (partition is None or st.partition == partition):
                path = self._seal_stream(st)
                if path is not None:
                    sealed.append(path)
        return sealed

    def seal_all_open(self) -> list[Path]:
        """Seal every open segment under the root, recovering (and locking) streams not yet opened."""
        for sid in list_streams(self.root):
            self._stream(sid)
        return self.seal()

    def release(self, partition: int | None = None, kind: str | None = None) -> None:
        """Commit, then let go of streams (all, or one partition's / kind's), e.g. when a Kafka partition is
        revoked: files closed and locks released; open segments stay open for the next owner to resume."""
        self._wait_for_seals()
        self.commit()
        for sid, st in list(self._streams.items()):
            if (kind is None or st.kind == kind) and (partition is None or st.partition == partition):
                _let_go(st)
                del self._streams[sid]
                if st.kind == "event":
                    self._event_streams.pop(st.partition, None)

    def head(self, stream: str) -> tuple[int, str]:
        """(last sequence number, last hash) of a stream (0 and the genesis hash when empty)."""
        st = self._stream(stream)
        return st.next_seq - 1, st.last_hash

    def close(self) -> None:
        """Commit and release the streams; open segments stay open (the next writer resumes them)."""
        if self._closed:
            return
        try:
            self._wait_for_seals()
            self.commit()
        finally:
            if self._sealer is not None:
                self._sealer.stop()
            for st in self._streams.values():
                _let_go(st)
            self._streams.clear()
            self._event_streams.clear()
            self._closed = True

    def __enter__(self) -> "RecordArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- internals

    def _stream(self, sid: str) -> _Stream:
        st = self._streams.get(sid)
        if st is None:
            if self._closed:
                raise ArchiveError("archive is closed")
            st = _Stream(sid, self.root / sid)
            mkdirs(st.dir)
            self._lock(st)
            try:
                self._recover(st)
            except BaseException:
                os.close(st.lock_fd)
                raise
            self._streams[sid] = st
        return st

    def _lock(self, st: _Stream) -> None:
        fd = os.open(st.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + (self.lock_timeout if st.kind != "audit" else max(self.lock_timeout, 30.0))
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    os.close(fd)
                    raise ArchiveBusy(f"{st.dir}: stream {st.id} is being written by another process") from None
                time.sleep(0.05)
        st.lock_fd = fd

    def _recover(self, st: _Stream) -> None:
        """Finish or roll back an interrupted seal, drop a torn tail, and find the chain's head."""
        for entry in os.listdir(st.dir):
            if entry.endswith(".tmp"):
                os.unlink(st.dir / entry)
                st.dir_dirty = True
        segments = list_segments(st.dir, st.id)
        opens = []
        last_sealed = None
        for seg in segments:
            if seg.has_open and seg.has_manifest:
                if not seg.has_sealed:
                    raise ArchiveError(f"{seg.label}: manifest without its sealed file; run `amlwatch records verify`")
                os.unlink(seg.path(OPEN))  # the seal had completed
                st.dir_dirty = True
                seg.has_open = False
            elif seg.has_open and seg.has_sealed:
                os.unlink(seg.path(SEALED))  # the seal had not completed: the open file is authoritative
                st.dir_dirty = True
                seg.has_sealed = False
            elif seg.has_sealed != seg.has_manifest:
                raise ArchiveError(f"{seg.label}: sealed segment without its "
                                   f"{'manifest' if seg.has_sealed else 'file'}; run `amlwatch records verify`")
            if seg.has_open:
                opens.append(seg)
            elif seg.sealed:
                last_sealed = seg
        if st.dir_dirty:
            fsync_dir(st.dir)
            st.dir_dirty = False
        if len(opens) > 1:
            # A writer that seals in the background stopped before sealing these. Each was closed
            # (complete and durable) before the next began, so its seal is finished now.
            for seg in opens[:-1]:
                self._finish_seal(st.id, st.dir, _OpenSegment(seg.name, seg.path(OPEN), None, 0))
            return self._recover(st)
        opened = opens[0] if opens else None
        if last_sealed is not None:
            manifest = last_sealed.manifest()
            st.next_seq = manifest["last_seq"] + 1
            st.last_hash = manifest["last_hash"]
            st.last_t = manifest.get("max_t")
        if opened is None:
            return
        if last_sealed is not None and last_sealed.first_seq > opened.first_seq:
            raise ArchiveError(f"{opened.label}: open segment older than sealed {last_sealed.label}")
        path = opened.path(OPEN)
        last_line = _truncate_torn_tail(path)
        if last_line is None:
            os.unlink(path)  # created, nothing complete written: never acknowledged
            fsync_dir(st.dir)
            return
        try:
            body, stored = split_line(last_line)
            if hashlib.sha256(body).hexdigest() != stored:
                raise RecordFormatError("hash mismatch")
            record = orjson.loads(body)
        except (RecordFormatError, orjson.JSONDecodeError) as error:
            raise ArchiveError(f"{opened.label}: last record does not verify ({error}); "
                               "run `amlwatch records verify`") from None
        st.next_seq = record["seq"] + 1
        st.last_hash = stored
        if record.get("t") is not None:
            st.last_t = record["t"]
        handle = open(path, "ab", buffering=self.buffer_bytes)
        st.open = _OpenSegment(opened.name, path, handle, handle.tell())

    def _append(self, st: _Stream, record: dict, t: float | None) -> int:
        if t is None:
            t = st.last_t if st.last_t is not None else time.time()
        else:
            st.last_t = t
        day = st.day_of(t)
        seg = st.open
        if seg is None or day > seg.name.day or seg.bytes >= self.segment_max_bytes:
            if seg is not None:
                if self._sealer is None:
                    self._seal_stream(st)
                else:
                    self._sealer.raise_failure()
                    closed = self._close_segment(st)
                    if closed is not None:
                        self._sealer.submit(self._finish_seal, st.id, st.dir, closed)
            seg = self._create_segment(st, day)
        seq = st.next_seq
        body = orjson.dumps({"seq": seq, "prev": st.last_hash, **record}, default=json_default)
        line, digest = seal_line(body)
        seg.handle.write(line)
        seg.bytes += len(line)
        st.next_seq = seq + 1
        st.last_hash = digest
        st.dirty = True
        return seq

    def _create_segment(self, st: _Stream, day: str) -> _OpenSegment:
        name = SegmentName(st.next_seq, day)
        path = st.dir / name.file(OPEN)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        handle = os.fdopen(fd, "ab", buffering=self.buffer_bytes)
        st.open = _OpenSegment(name, path, handle, 0)
        st.dir_dirty = True
        return st.open

    def _wait_for_seals(self) -> None:
        if self._sealer is not None:
            self._sealer.wait()
            self._sealer.raise_failure()

    def _seal_stream(self, st: _Stream) -> Path | None:
        seg = self._close_segment(st)
        if seg is None:
            return None
        sealed = self._finish_seal(st.id, st.dir, seg)
        st.dir_dirty = False
        return sealed

    def _close_segment(self, st: _Stream) -> _OpenSegment | None:
        """Make the open segment durable and stop writing to it (None when it was empty and removed)."""
        seg = st.open
        if seg is None:
            return None
        seg.handle.flush()
        if self.fsync:
            os.fsync(seg.handle.fileno())
        seg.handle.close()
        st.open = None
        st.dirty = False
        if seg.bytes == 0:
            os.unlink(seg.path)
            fsync_dir(st.dir)
            st.dir_dirty = False
            return None
        return seg

    def _finish_seal(self, sid: str, directory: Path, seg: _OpenSegment) -> Path:
        """Verify, compress and manifest a closed segment. Touches only that segment's files, so it
        may run on the sealer thread while the stream's next segment is written."""
        _crash_point("seal.start")
        sealed = directory / seg.name.file(SEALED)
        tmp = sealed.with_name(sealed.name + ".tmp")
        stats = SegmentStats(sid)
        digest = hashlib.sha256()
        with open(seg.path, "rb") as src, open(tmp, "wb") as raw_out:
            tee = _HashingWriter(raw_out, digest)
            with gzip.GzipFile(filename="", mode="wb", fileobj=tee, compresslevel=self.compress_level,
                               mtime=0) as gz:
                expected_prev = None
                batch, size = [], 0
                for line in src:
                    body, stored = split_line(line)
                    if hashlib.sha256(body).hexdigest() != stored:
                        raise ArchiveError(f"{seg.path}: a record does not verify; not sealing")
                    record = orjson.loads(body)
                    if expected_prev is not None and record.get("prev") != expected_prev:
                        raise ArchiveError(f"{seg.path}: chain broken at seq {record.get('seq')}; not sealing")
                    expected_prev = stored
                    stats.add(record, stored, len(line))
                    batch.append(line)
                    size += len(line)
                    if size >= 1 << 20:
                        gz.write(b"".join(batch))
                        batch, size = [], 0
                gz.write(b"".join(batch))
            raw_out.flush()
            os.fsync(raw_out.fileno())
            nbytes = raw_out.tell()
        _crash_point("seal.gz_written")
        os.replace(tmp, sealed)
        fsync_dir(directory)
        _crash_point("seal.gz_renamed")
        manifest_path = directory / seg.name.file(MANIFEST)
        mtmp = manifest_path.with_name(manifest_path.name + ".tmp")
        manifest = stats.manifest(seg.name, digest.hexdigest(), nbytes)
        with open(mtmp, "wb") as out:
            out.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        _crash_point("seal.manifest_written")
        os.replace(mtmp, manifest_path)
        fsync_dir(directory)
        _crash_point("seal.manifest_renamed")
        os.unlink(seg.path)
        fsync_dir(directory)
        _crash_point("seal.done")
        if self.on_seal is not None:
            self.on_seal(sealed)
        return sealed


class _Sealer:
    """One thread sealing closed segments in the order they were closed. After a failure it seals
    nothing more (those segments stay open, finished when the streams are next opened) and the
    writer's next commit raises."""

    def __init__(self):
        self._jobs: queue.Queue = queue.Queue()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="archive-sealer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable, *args) -> None:
        self._jobs.put((fn, args))

    def wait(self) -> None:
        self._jobs.join()

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise ArchiveError(f"sealing a segment failed: {self._failure}") from self._failure

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._failure is None:
                    fn, args = job
                    fn(*args)
            except BaseException as error:
                self._failure = error
            finally:
                self._jobs.task_done()


class _HashingWriter:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, handle, digest):
        self.handle = handle
        self.digest = digest

    def write(self, data) -> int:
        self.digest.update(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def _truncate_torn_tail(path: Path) -> bytes | None:
    """Cut an open segment after its last newline; return its last complete line (None if none)."""
    size = os.path.getsize(path)
    if size == 0:
        return None
    with open(path, "r+b") as handle:
        chunk = 1 << 16
        end = size
        tail = b""
        newline = -1
        while end > 0:
            start = max(0, end - chunk)
            handle.seek(start)
            tail = handle.read(end - start) + tail
            end = start
            newline = tail.rfind(b"\n")
            if newline >= 0:
                break
            chunk *= 2
        if newline < 0:
            handle.truncate(0)
            handle.flush()
            os.fsync(handle.fileno())
            return None
        keep = end + newline + 1
        if keep < size:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        previous = tail.rfind(b"\n", 0, newline)
        while previous < 0 and end > 0:  # the last line is longer than what was read
            start = max(0, end - chunk)
            handle.seek(start)
            tail = handle.read(end - start) + tail
            newline += end - start
            end = start
            previous = tail.rfind(b"\n", 0, newline)
        return tail[previous + 1:newline + 1]


def _let_go(st) -> None:
    """Close a stream's open file and release its lock; its open segment stays for the next writer."""
    if st.open is not None:
        st.open.handle.close()
        st.open = None
    if st.lock_fd is not None:
        os.close(st.lock_fd)
        st.lock_fd = None
