"""One work partition's detection state: reorder buffer in, the shared detection core, alerts out.

`WorkProcessor` (stage 1, keyed by collection) runs the collection-scoped
detectors; `KeyedProcessor` (stage 2, keyed by account) runs the account- and
pair-scoped ones, and raises an alert on the partition of the account its
detector names as owner (`Detector.scope`, `Detector.owner`). Both are plain objects so the ordering and routing can be
tested without Kafka, and both pickle to a snapshot that the Faust agents
keep in a changelog-backed table (the configuration and the anomaly model are
left out of the snapshot and supplied again on restore).
"""

from __future__ import annotations

import copyreg
import io
import math
import pickle
import zlib
from typing import Any, Callable

from amlwatch.alerts import Alert
from amlwatch.config import Config
from amlwatch.engine import build_monitor
from amlwatch.errors import AmlwatchError
from amlwatch.events import BadRecord, Event, TradeEvent, parse_event

from .codecs import WorkEvent, WorkMarker, decode_frame, encode_event, encode_marker
from .ordering import ReorderBuffer
from .routing import RANK, Out, keyed_targets, partition_for

STAGE_SCOPES = {1: frozenset({"collection"}), 2: frozenset({"account", "pair"})}
"""Which detector scopes (`Detector.scope`) each stage runs: stage 1 is keyed by collection, stage 2 by
account."""


class StateMismatch(AmlwatchError, RuntimeError):
    """A snapshot built under another detection config: reusing it would mix thresholds."""


def build_stage_monitor(config: Config, stage: int, with_model: bool):
    """The detection core of one stage: the detectors whose scope (`Detector.scope`) it serves."""
    return build_monitor(config, with_model=with_model, scopes=STAGE_SCOPES[stage])


class _Processor:
    stage = 0

    def __init__(self, partition: int, monitor, sources: list[str], out_topic: str, out_partitions: int):
        self.partition = partition
        self.monitor = monitor
        self.buffer = ReorderBuffer(sources)
        self.out_topic = out_topic
        self.out_partitions = out_partitions
        self.offset = -1
        """Last input offset this state reflects (buffered or applied)."""
        self.dirty = False
        self.events = 0
        self.bad = 0
        self.last_seq: dict[str, int] = {}
        """Per source, the last event seq taken: a copy sent again after a failover is not taken twice."""
        self.duplicates = 0
        self.forwarded = 0
        self._sent_marker: tuple[float, bool] | None = None

    def handle(self, offset: int, value: bytes, parse: Callable[[bytes], Event] = parse_event
               ) -> tuple[list[Alert], list[Out]]:
        """Take one Kafka message (a frame of work messages); late events are processed at once, others
        wait in the buffer. `parse` is the worker's shared one (streams/parsed.py); not kept, as the
        processor is pickled."""
        self.offset = offset
        alerts: list[Alert] = []
        outs: list[Out] = []
        for message in decode_frame(value):
            if isinstance(message, WorkMarker):
                if self.buffer.mark(message.source, message.t, message.idle):
                    self.dirty = True
                continue
            late = self._take(message, parse)
            if late is not None:
                a, o = self._process(*late)
                alerts.extend(a)
                outs.extend(o)
        return alerts, outs

    def _take(self, message: WorkEvent, parse: Callable[[bytes], Event]) -> tuple[Event, bytes] | None:
        """Buffer one event; the event itself when it is late (behind what was released)."""
        if message.seq <= self.last_seq.get(message.source, -1):
            # The sender restarted from an older snapshot (or its router re-read uncommitted input)
            # and replays what it had already sent: same seq, same event.
            self.duplicates += 1
            return None
        self.last_seq[message.source] = message.seq
        self.dirty = True
        try:
            event = parse(message.raw)
        except BadRecord:
            self.bad += 1
            return None
        if self.buffer.push(message.source, event.t, RANK[event.type], event.event_id, (event, message.raw)):
            return None
        return event, message.raw

    def drain(self, limit: int | None = None) -> tuple[list[Alert], list[Out]]:
        """Process what the watermark released, earliest first (at most `limit` events: `releasable`
        then says more are waiting); once all are, pass the progress on."""
        alerts: list[Alert] = []
        outs: list[Out] = []
        for event, raw in self.buffer.release(limit):
            a, o = self._process(event, raw)
            alerts.extend(a)
            outs.extend(o)
        if self.buffer.releasable:
            return alerts, outs
        bound = self.buffer.bound()
        if bound != math.inf:
            alerts.extend(self._keep(self.monitor.advance(bound), None))
        if self.out_topic:
            marker = (self.buffer.released_until, self.buffer.all_idle)
            if marker != self._sent_marker and marker[0] != -math.inf:
                self._sent_marker = marker
                self.dirty = True
                value = encode_marker(f"w{self.partition}", *marker)
                outs.extend(Out(self.out_topic, p, None, value) for p in range(self.out_partitions))
        return alerts, outs

    @property
    def releasable(self) -> bool:
        return self.buffer.releasable

    def _process(self, event: Event, raw: bytes) -> tuple[list[Alert], list[Out]]:
        self.events += 1
        return self._keep(self.monitor.observe(event), event), self._forward(event, raw)

    def _keep(self, alerts: list[Alert], event: Event | None) -> list[Alert]:
        return alerts

    def _forward(self, event: Event, raw: bytes) -> list[Out]:
        return []

    # -- snapshots ----------------------------------------------------------

    def snapshot(self) -> bytes:
        buffer = io.BytesIO()
        _Pickler(buffer, _externals(self.monitor)).dump(self)
        self.dirty = False
        return zlib.compress(buffer.getvalue(), 1)

    @classmethod
    def restore(cls, blob: bytes, monitor) -> "_Processor":
        """Rebuild from a snapshot; `monitor` (freshly built) supplies the config and model."""
        unpickler = _Unpickler(io.BytesIO(zlib.decompress(blob)), _externals(monitor))
        processor = unpickler.load()
        restored = processor.monitor.versions.get("config")
        if restored != monitor.config.hash:
            raise StateMismatch(
                f"partition {processor.partition} state was built with config {restored}, this worker runs "
                f"{monitor.config.hash}: start under a new [kafka] app_id to rebuild state with the new thresholds")
        # The snapshot may have been written before its last marker reached the broker (a crash between
        # the table write and the producer flush): send the progress again rather than trust it was sent.
        processor._sent_marker = None
        return processor


class WorkProcessor(_Processor):
    """Stage 1: every trade of some collections, the whole registry."""

    stage = 1

    def _keep(self, alerts: list[Alert], event: Event | None) -> list[Alert]:
        if self.partition == 0:
            return alerts
        # Registry-only alerts (no trades) are raised alike on every partition: partition 0 speaks for all.
        return [a for a in alerts if a.trade_ids]

    def _forward(self, event: Event, raw: bytes) -> list[Out]:
        if not self.out_topic or not isinstance(event, TradeEvent) or not event.paid:
            return []
        self.forwarded += 1
        value = encode_event(f"w{self.partition}", self.forwarded, raw)
        key = event.trade_id.encode()
        return [Out(self.out_topic, p, key, value, event.t) for p in keyed_targets(event, self.out_partitions)]


class KeyedProcessor(_Processor):
    """Stage 2: every paid trade of some accounts; raises only what this partition owns."""

    stage = 2

    def __init__(self, partition: int, partitions: int, monitor, sources: list[str]):
        super().__init__(partition, monitor, sources, "", 0)
        self.partitions = partitions

    def _keep(self, alerts: list[Alert], event: Event | None) -> list[Alert]:
        if not alerts or not isinstance(event, TradeEvent):
            return []
        owners = {detector.name: detector for detector in self.monitor.detectors}
        return [alert for alert in alerts
                if partition_for(owners[alert.detector].owner(alert, event), self.partitions) == self.partition]


def _externals(monitor) -> dict[str, Any]:
    """Objects a snapshot refers to by name, supplied again on restore: the config and the model."""
    refs: dict[str, Any] = {"config": monitor.config}
    for detector in monitor.detectors:
        model = getattr(detector, "model", None)
        if model is not None:
            refs["model"] = model
    return refs


def _external(name: str):
    """Placeholder the unpickler resolves to the restoring monitor's object of that name."""
    raise RuntimeError(f"{name} is supplied by the restoring worker")


class _Pickler(pickle.Pickler):
    """Pickles the state with the config and model left out by reference.

    A per-type dispatch table (looked up in C) rather than persistent_id, which Python calls for every
    object in the state: on large states that call alone cost as much as the rest of the pickling.
    """

    def __init__(self, file, externals: dict[str, Any]):
        super().__init__(file, protocol=5)
        table = dict(copyreg.dispatch_table)
        for name, obj in externals.items():
            table[type(obj)] = _by_reference(name, obj)
        self.dispatch_table = table


def _by_reference(name: str, target: Any):
    def reduce(obj):
        if obj is target:
            return _external, (name,)
        return obj.__reduce_ex__(5)
    return reduce


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, objects: dict[str, Any]):
        super().__init__(file)
        self._objects = objects

    def find_class(self, module: str, name: str):
        if module == __name__ and name == "_external":
            return self._objects.__getitem__
        return super().find_class(module, name)
