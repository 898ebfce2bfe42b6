"""`amlwatch worker`: one Faust worker process; start several with the same config to share the work."""

from __future__ import annotations

import gc
import logging
import os
import socket
import time
from pathlib import Path

from amlwatch.config import Config

log = logging.getLogger("amlwatch.streams.worker")

FREEZE_SECONDS = 0.25
"""How often what survived is moved out of the collector's sight (gc.freeze)."""
FULL_COLLECTION_SECONDS = 600.0
"""How often everything is collected once, frozen or not: reference cycles left among frozen objects
are freed at this pace, for the price of one pause (about a second per few hundred MB of state)."""


def _ops():
    """The metrics and JSON-logging hooks, when amlwatch.ops provides them."""
    try:
        from amlwatch.ops.logs import configure_logging
        from amlwatch.ops.metrics import HealthServer, WorkerMetrics
    except ImportError:
        return None, None, None
    return configure_logging, WorkerMetrics, HealthServer


def run_worker(config: Config, *, data_dir: str | None = None, web_port: int | None = None,
               metrics_port: int | None = 9464, with_model: bool = True, loglevel: str = "INFO",
               archive_dir: str | os.PathLike | None = None) -> int:
    import faust

    from .agents import StreamRuntime
    from .app import make_app
    from .topics import create_topics, report_topics

    worker_id = config.service.worker_id or f"{socket.gethostname()}-{os.getpid()}"
    configure_logging, WorkerMetrics, HealthServer = _ops()
    if configure_logging is not None:
        configure_logging(worker_id, loglevel)
    # One directory per worker id, so several workers on one host never share local table files.
    data_dir = Path(data_dir or Path(config.service.data_dir) / worker_id)
    data_dir.mkdir(parents=True, exist_ok=True)
    create_topics(config.kafka, extra=report_topics(config))
    app = make_app(config.kafka, data_dir, web_port)
    metrics = None
    if WorkerMetrics is not None:
        metrics = WorkerMetrics(worker_id=worker_id, config_hash=config.hash)
    archive = None
    if archive_dir is not None:
        from amlwatch.records.replay import open_archive

        # Each worker keeps its own hash-chained archive: archive streams are single-writer.
        on_seal = None if metrics is None else (lambda _path: metrics.archive_sealed(time.time()))
        # Segments are sealed on a thread: inline, verifying and compressing a full 256 MB segment
        # paused the worker for seconds, about once a minute at 5,000 events/s.
        archive = open_archive(Path(archive_dir) / worker_id, config, on_seal=on_seal, background_seals=True)
    # A worker allocates many short-lived objects beside a large, long-lived detector state, with next
    # to no reference cycles (reference counting frees nearly everything): the router and both stages
    # left 69 objects in cycles over a 20,000-trade backfill (bench/bench_worker_path.py). Collector
    # passes found nothing and cost: full ones over that state paused the worker for up to a second
    # (alert latency), and young ones, kept small (10,000 objects, a few ms each), still took 15-19% of
    # the worker path's CPU. So the collector runs only on the timer below, every ten minutes; survivors
    # are still frozen, so a pass that something else starts stays small.
    gc.disable()
    runtime = StreamRuntime(app, config, with_model=with_model, metrics=metrics, archive=archive)
    gc.freeze()
    app.timer(FREEZE_SECONDS, name="gc-freeze")(_freeze_survivors)
    app.timer(FULL_COLLECTION_SECONDS, name="gc-full")(_collect_everything)
    health = None
    if HealthServer is not None and metrics is not None and metrics_port:
        health = HealthServer(metrics, ready=lambda: runtime.ready, host=config.service.metrics_host,
                              port=metrics_port).start()
    from .statecodec import check_state_key

    check_state_key()                 # a short key stops the start; no key is one warning, here, not per snapshot
    log.info("worker starting", extra={"worker_id": worker_id, "bootstrap": config.kafka.bootstrap,
                                       "work_partitions": runtime.work_partitions})
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    if configure_logging is not None:
        worker._setup_logging = lambda: None  # keep the JSON lines configured above
    try:
        worker.execute_from_commandline()
    finally:
        if health is not None:
            health.stop()
        if archive is not None:
            archive.close()
    return 0


async def _freeze_survivors() -> None:
    """Move every object alive now out of the collector's passes.

    The detector state grows with the traffic: at 5,000 events/s the middle generation took 20-60 ms
    a pass, and a full pass, once the state held hundreds of MB, paused the worker for a second (the
    latency benchmark's p99 went from about 330 ms to 160 ms once survivors were frozen). The
    collector is left only the newest objects. Reference counting still frees frozen objects; only
    reference cycles among them wait for the next `_collect_everything` (the worker makes almost
    none: none in a 20 s run at 5,000 events/s, none from 10,000 bad records).
    """
    gc.freeze()


async def _collect_everything() -> None:
    """The only collection a worker makes (automatic passes are off): reference cycles anywhere, frozen
    or not, are freed at this pace."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
