"""The detection core, built one way for file replay, the Kafka workers and backtests.

`build_monitor` is the single place that decides which detectors run and
whether the anomaly model joins them, so the same stream gives the same
alerts wherever it is run. The engine sits above `detectors` and `models`
and below `cli`, `records` and `streams` (DEVELOPERS.md, checked by
import-linter): those import it, never the other way round.
"""

from __future__ import annotations

from typing import Iterable

from amlwatch.config import Config
from amlwatch.detectors.monitor import Monitor
from amlwatch.detectors.watchlist import WatchlistDetector


def build_monitor(config: Config, *, with_model: bool = True, scopes: Iterable[str] | None = None,
                  monitor_type: type[Monitor] = Monitor, **options) -> Monitor:
    """The detection core, with the anomaly model when one is configured and available.

    `scopes` keeps only the detectors of those scopes (detectors/base.py: a streaming stage keyed by
    collection runs the collection-scoped ones, a stage keyed by account the account- and pair-scoped
    ones); `options` go to `monitor_type` (a `Monitor`, or a subclass such as `ShardMonitor`)."""
    extra, model_id = [], None
    if with_model and config.anomaly.enabled:
        try:
            from amlwatch.models.anomaly import IsolationForestDetector, load_anomaly_detector
        except ImportError:
            load_anomaly_detector = None
        # (the model is read only for a core that runs its scope)
        if load_anomaly_detector is not None and (scopes is None or IsolationForestDetector.scope in scopes):
            detector = load_anomaly_detector(config)
            if detector is not None:
                extra, model_id = [detector], detector.model_id
    if scopes is not None:
        options["scopes"] = frozenset(scopes)
    monitor = monitor_type(config, extra_detectors=extra, model_id=model_id, **options)
    _install_watchlist(monitor, config)
    return monitor


def _install_watchlist(monitor: Monitor, config: Config) -> None:
    """The lists of `[watchlist]` (files, topic), read once here: the detector itself does no I/O. Only a
    core that runs the screening detector reads them."""
    lists = config.watchlist
    screens = [d for d in monitor.detectors if isinstance(d, WatchlistDetector)]
    if screens and (lists.files or lists.topic):
        from amlwatch.reporting.watchlist import load_watchlist

        watchlist = load_watchlist(config)
        for detector in screens:
            detector.watchlist = watchlist
