"""Worker metrics scraped over HTTP from a running HealthServer; health and readiness endpoints."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from amlwatch.alerts import Alert
from amlwatch.config import Config
from amlwatch.ops.metrics import DEFAULT_METRICS_PORT, METRIC_NAMES, HealthServer, WorkerMetrics


def _alert(typology: str, severity: str) -> Alert:
    return Alert(detector="x", typology=typology, severity=severity, score=0.9, ts="2026-03-01T10:00:00+08:00",
                 event_id="ev-1", accounts=["a"], collection_id="c", token_ids=["t"], trade_ids=["tr"],
                 reason="r", evidence={})


def _get(server: HealthServer, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.fixture
def served():
    state = {"ready": False}
    metrics = WorkerMetrics(worker_id="w-test", config_hash=Config().hash, model_id="m-1")
    server = HealthServer(metrics, lambda: state["ready"], host="127.0.0.1", port=0).start()
    try:
        yield metrics, server, state
    finally:
        server.stop()


def test_default_port_is_the_service_config_default():
    assert DEFAULT_METRICS_PORT == Config().service.metrics_port == 9464
    assert HealthServer(WorkerMetrics(), lambda: True).port == DEFAULT_METRICS_PORT


def test_counters_move_and_appear_in_the_scrape(served):
    metrics, server, _ = served
    metrics.event_in("trade")
    metrics.event_in("trade")
    metrics.event_in("account")
    metrics.bad_record("price")
    metrics.events_rejected(1, {"event_time_skew": 2, "duplicate_event_id_conflict": 1})
    metrics.events_rejected(1, {"event_time_skew": 1, "late_beyond_dedupe_window": 0})
    metrics.events_rejected(2, {"detector_error": 1})
    metrics.alerts_out([_alert("wash_trading", "high"), _alert("wash_trading", "high"),
                        _alert("structuring", "medium")])
    metrics.alerts_out([])
    metrics.detector_seconds("wash.round_trip", 0.25)
    metrics.detector_seconds("wash.round_trip", 0.5)
    metrics.detector_timings({"structuring": 0.125})
    metrics.set_lag("aml.work", 3, 42)
    metrics.archive_written(1000)
    metrics.archive_written(24)
    metrics.archive_sealed(1_772_330_400.0)
    metrics.events_rated(5)
    metrics.events_rated(2)
    metrics.rating_out("account", "high")
    metrics.rating_out("account", "high")
    metrics.rating_out("person", "low")
    metrics.labels_refused()

    status, text = _get(server, "/metrics")
    assert status == 200
    s = _samples(text)
    assert s[("amlwatch_events_total", (("type", "trade"),))] == 2
    assert s[("amlwatch_events_total", (("type", "account"),))] == 1
    assert s[("amlwatch_bad_records_total", (("field", "price"),))] == 1
    rejected = {labels: v for (name, labels), v in s.items() if name == "amlwatch_events_rejected_total"}
    assert rejected == {(("reason", "event_time_skew"), ("stage", "1")): 3,
                        (("reason", "duplicate_event_id_conflict"), ("stage", "1")): 1,
                        (("reason", "detector_error"), ("stage", "2")): 1}
    assert s[("amlwatch_alerts_total", (("severity", "high"), ("typology", "wash_trading")))] == 2
    assert s[("amlwatch_alerts_total", (("severity", "medium"), ("typology", "structuring")))] == 1
    assert s[("amlwatch_detector_seconds_total", (("detector", "wash.round_trip"),))] == 0.75
    assert s[("amlwatch_detector_seconds_total", (("detector", "structuring"),))] == 0.125
    assert s[("amlwatch_consumer_lag_messages", (("partition", "3"), ("topic", "aml.work")))] == 42
    assert s[("amlwatch_archive_written_bytes_total", ())] == 1024
    assert s[("amlwatch_archive_last_seal_timestamp_seconds", ())] == 1_772_330_400.0
    assert s[("amlwatch_rated_events_total", ())] == 7
    assert s[("amlwatch_ratings_total", (("level", "high"), ("subject_kind", "account")))] == 2
    assert s[("amlwatch_ratings_total", (("level", "low"), ("subject_kind", "person")))] == 1
    assert s[("amlwatch_rating_labels_refused_total", ())] == 1
    build = [labels for (name, labels) in s if name == "amlwatch_build_info"]
    assert dict(build[0])["worker_id"] == "w-test" and dict(build[0])["config_hash"] == Config().hash

    metrics.event_in("trade")
    metrics.set_lag("aml.work", 3, 7)
    s = _samples(_get(server, "/metrics")[1])
    assert s[("amlwatch_events_total", (("type", "trade"),))] == 3
    assert s[("amlwatch_consumer_lag_messages", (("partition", "3"), ("topic", "aml.work")))] == 7


def test_every_documented_family_is_exported_with_the_amlwatch_prefix(served):
    metrics, server, _ = served
    metrics.event_in("trade")
    metrics.bad_record("ts")
    metrics.events_rejected(1, {"event_time_skew": 1})
    metrics.alerts_out([_alert("anomaly", "low")])
    metrics.detector_seconds("anomaly.isolation_forest", 0.1)
    metrics.set_lag("aml.work", 0, 0)
    metrics.archive_written(1)
    metrics.rating_out("account", "medium")
    samples = {name for name, _ in _samples(_get(server, "/metrics")[1])}
    assert set(METRIC_NAMES) <= samples
    assert all(name.startswith("amlwatch_") for name in samples)
    assert all(re.fullmatch(r"amlwatch_[a-z_]+", name) for name in METRIC_NAMES)


def test_own_registry_not_the_global_one():
    metrics = WorkerMetrics()
    metrics.event_in("trade")
    assert metrics.registry is not REGISTRY
    assert REGISTRY.get_sample_value("amlwatch_events_total", {"type": "trade"}) is None
    assert WorkerMetrics().registry.get_sample_value("amlwatch_events_total", {"type": "trade"}) is None


def test_revoked_partition_lag_is_forgotten():
    metrics = WorkerMetrics()
    metrics.set_lag("aml.work", 1, 5)
    metrics.forget_partition("aml.work", 1)
    metrics.forget_partition("aml.work", 1)
    assert b'partition="1"' not in metrics.exposition()


def test_health_is_200_and_readiness_flips(served):
    _, server, state = served
    assert _get(server, "/healthz") == (200, "ok\n")
    assert _get(server, "/readyz")[0] == 503
    state["ready"] = True
    assert _get(server, "/readyz") == (200, "ready\n")
    state["ready"] = False
    assert _get(server, "/readyz")[0] == 503
    assert _get(server, "/healthz")[0] == 200
    assert _get(server, "/nope")[0] == 404


def test_readiness_check_that_raises_is_not_ready():
    def broken() -> bool:
        raise RuntimeError("no assignment yet")

    with HealthServer(WorkerMetrics(), broken, host="127.0.0.1", port=0) as server:
        assert _get(server, "/readyz")[0] == 503
        assert _get(server, "/healthz")[0] == 200


def test_stop_releases_the_port_and_a_taken_port_fails_at_start():
    server = HealthServer(WorkerMetrics(), lambda: True, host="127.0.0.1", port=0).start()
    port = server.port
    with pytest.raises(OSError):
        HealthServer(WorkerMetrics(), lambda: True, host="127.0.0.1", port=port).start()
    server.stop()
    again = HealthServer(WorkerMetrics(), lambda: True, host="127.0.0.1", port=port).start()
    try:
        assert _get(again, "/healthz")[0] == 200
    finally:
        again.stop()


def test_the_endpoint_binds_loopback_unless_configured_otherwise():
    """No authentication on /metrics: reachable from other hosts only when an operator says so."""
    from amlwatch.config import Config, load_config

    assert Config().service.metrics_host == "127.0.0.1"
    assert load_config(None, env={"AMLWATCH_SERVICE__METRICS_HOST": '"0.0.0.0"'}).service.metrics_host == "0.0.0.0"
    with HealthServer(WorkerMetrics(), lambda: True, port=0) as server:
        assert server._server.server_address[0] == "127.0.0.1"
