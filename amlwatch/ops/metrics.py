"""Prometheus metrics and health endpoints of one worker process.

`WorkerMetrics` keeps its own `CollectorRegistry` (never the global one), so
two workers in one process (tests) or a library user's own metrics never
collide. `HealthServer` serves it with `/healthz` and `/readyz` from a daemon
thread using only the standard library's HTTP server.

Metric names follow the Prometheus conventions: an `amlwatch_` prefix, base
units in the name (`_seconds`, `_bytes`), `_total` on counters. Label values
come from closed sets (event types, contract field names, rejection reasons,
typologies, severities, detector names, topic partitions) so cardinality
stays bounded.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Info, generate_latest

from amlwatch import __version__
from amlwatch.config import ServiceConfig

DEFAULT_METRICS_PORT: int = ServiceConfig.metrics_port
"""9464, the Prometheus exporter port OpenTelemetry uses by convention; clear of Kafka's and Faust's."""

METRIC_NAMES = (
    "amlwatch_build_info",
    "amlwatch_events_total",
    "amlwatch_bad_records_total",
    "amlwatch_events_rejected_total",
    "amlwatch_alerts_total",
    "amlwatch_detector_seconds_total",
    "amlwatch_consumer_lag_messages",
    "amlwatch_archive_written_bytes_total",
    "amlwatch_archive_last_seal_timestamp_seconds",
    "amlwatch_rated_events_total",
    "amlwatch_ratings_total",
    "amlwatch_rating_labels_refused_total",
)
"""Every family a worker exports (README, "Read metrics"); tests check the scrape against it."""


class WorkerMetrics:
    """The counters and gauges one worker updates; the Faust worker calls these methods."""

    def __init__(self, *, worker_id: str = "", config_hash: str = "", model_id: str | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._build = Info("amlwatch_build", "Version, configuration hash and model of this worker.", registry=r)
        self._build.info({"version": __version__, "worker_id": worker_id, "config_hash": config_hash,
                          "model_id": model_id or ""})
        self._events = Counter("amlwatch_events_total", "Input events read, by event type.",
                               ["type"], registry=r)
        self._bad = Counter("amlwatch_bad_records_total",
                            "Input records sent to the dead-letter topic, by offending contract field.",
                            ["field"], registry=r)
        self._rejected = Counter("amlwatch_events_rejected_total",
                                 "Events the detection core refused or a detector failed on, dead-lettered, by "
                                 "reason (event_time_skew, late_beyond_dedupe_window, "
                                 "duplicate_event_id_conflict, detector_error, monitor_error).",
                                 ["stage", "reason"], registry=r)
        self._alerts = Counter("amlwatch_alerts_total", "Alerts emitted, by typology and severity.",
                               ["typology", "severity"], registry=r)
        self._detector = Counter("amlwatch_detector_seconds_total",
                                 "Time spent in each detector, estimated from sampled trades.",
                                 ["detector"], registry=r)
        self._lag = Gauge("amlwatch_consumer_lag_messages",
                          "Messages between the committed offset and the partition's end.",
                          ["topic", "partition"], registry=r)
        self._archive_bytes = Counter("amlwatch_archive_written_bytes_total",
                                      "Bytes appended to the record archive.", registry=r)
        self._rated = Counter("amlwatch_rated_events_total", "Events the rating stage (stage 3) rated.", registry=r)
        self._ratings = Counter("amlwatch_ratings_total", "Risk ratings published, by subject kind and level.",
                                ["subject_kind", "level"], registry=r)
        self._labels_refused = Counter("amlwatch_rating_labels_refused_total",
                                       "Times the rating stage could not use its labels file (`[risk] labels`).",
                                       registry=r)
        self._archive_sealed = Gauge("amlwatch_archive_last_seal_timestamp_seconds",
                                     "Unix time the record archive last sealed a segment.", registry=r)

    def event_in(self, event_type: str, count: int = 1) -> None:
        self._events.labels(event_type).inc(count)

    def bad_record(self, field: str) -> None:
        self._bad.labels(field or "<record>").inc()

    def events_rejected(self, stage: int, counts: dict[str, int]) -> None:
        """Add one stage's rejections by reason (what its `Monitor.rejections` moved by): what the time guards
        and the event-id check refused, and detector failures."""
        for reason, count in counts.items():
            if count > 0:
                self._rejected.labels(str(stage), reason).inc(count)

    def alerts_out(self, alerts: Iterable) -> None:
        """Count `amlwatch.alerts.Alert`s (anything with `typology` and `severity`)."""
        for alert in alerts:
            self._alerts.labels(alert.typology, alert.severity).inc()

    def events_rated(self, count: int) -> None:
        self._rated.inc(count)

    def rating_out(self, subject_kind: str, level: str) -> None:
        self._ratings.labels(subject_kind, level).inc()

    def labels_refused(self) -> None:
        self._labels_refused.inc()

    def detector_seconds(self, detector: str, seconds: float) -> None:
        if seconds > 0:
            self._detector.labels(detector).inc(seconds)

    def detector_timings(self, timings: dict[str, float]) -> None:
        """Add a `Monitor.take_detector_seconds()` result: `{detector: seconds}`."""
        for detector, seconds in timings.items():
            self.detector_seconds(detector, seconds)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self._lag.labels(topic, str(partition)).set(max(lag, 0))

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop a revoked partition's lag so a rebalance leaves no stale series behind."""
        try:
            self._lag.remove(topic, str(partition))
        except KeyError:
            pass

    def archive_written(self, nbytes: int) -> None:
        if nbytes > 0:
            self._archive_bytes.inc(nbytes)

    def archive_sealed(self, epoch_seconds: float) -> None:
        self._archive_sealed.set(epoch_seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (what `/metrics` returns)."""
        return generate_latest(self.registry)


class HealthServer:
    """`/metrics`, `/healthz` (the process serves: 200) and `/readyz` (200 iff `ready()`, else 503).

    Liveness deliberately checks nothing but the process: restarting a worker
    because Kafka is away would only add a rebalance. Readiness is what the
    worker says, e.g. partitions assigned and their state recovered.
    """

    def __init__(self, metrics: WorkerMetrics, ready: Callable[[], bool], host: str = "127.0.0.1",
                 port: int = DEFAULT_METRICS_PORT):
        self.metrics = metrics
        self.ready = ready
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "HealthServer":
        """Bind (an `OSError` if the port is taken) and serve from a daemon thread; port 0 picks a free one."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="amlwatch-health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def is_ready(self) -> bool:
        """`ready()`, with an exception counting as not ready (a probe must not crash the server)."""
        try:
            return bool(self.ready())
        except Exception:
            return False

    def __enter__(self) -> "HealthServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _handler(health: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "amlwatch"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(HTTPStatus.OK, health.metrics.exposition(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(HTTPStatus.OK, b"ok\n")
            elif path == "/readyz":
                if health.is_ready():
                    self._reply(HTTPStatus.OK, b"ready\n")
                else:
                    self._reply(HTTPStatus.SERVICE_UNAVAILABLE, b"not ready\n")
            else:
                self._reply(HTTPStatus.NOT_FOUND, b"not found\n")

        def _reply(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            """Scrapes and probes every few seconds are not worth a log line each."""

    return Handler
