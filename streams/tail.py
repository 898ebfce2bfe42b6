"""`amlwatch alerts tail`: follow the alerts topic as readable lines or JSON."""

from __future__ import annotations

import sys
import time

import orjson

from amlwatch.config import KafkaConfig
from amlwatch.events import parse_time


def format_alert(alert: dict) -> str:
    trades = ",".join(alert.get("trade_ids") or []) or "-"
    return (f"{alert.get('ts', '?')}  {alert.get('severity', '?'):<8} {alert.get('detector', '?'):<30} "
            f"{alert.get('alert_id', '?')}  trades={trades}  {alert.get('reason', '')}")


def tail(kafka: KafkaConfig, *, typology: str | None = None, severity: str | None = None,
         since: str | None = None, as_json: bool = False, from_beginning: bool = False,
         max_alerts: int | None = None, idle_timeout: float | None = None, out=None) -> int:
    """Print alerts as they arrive; `since` (event time) implies reading from the beginning."""
    from kafka import KafkaConsumer

    out = out or sys.stdout
    since_t = parse_time(since, "--since").timestamp() if since else None
    consumer = KafkaConsumer(kafka.alerts_topic, bootstrap_servers=kafka.bootstrap.split(","),
                             auto_offset_reset="earliest" if (from_beginning or since) else "latest",
                             enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=int(idle_timeout * 1000) if idle_timeout else float("inf"))
    shown = 0
    last = time.monotonic()
    try:
        for message in consumer:
            last = time.monotonic()
            try:
                alert = orjson.loads(message.value)
            except orjson.JSONDecodeError:
                continue
            if typology and alert.get("typology") != typology:
                continue
            if severity and alert.get("severity") != severity:
                continue
            if since_t is not None and parse_time(alert["ts"]).timestamp() < since_t:
                continue
            out.write((message.value.decode() if as_json else format_alert(alert)) + "\n")
            out.flush()
            shown += 1
            if max_alerts and shown >= max_alerts:
                break
    finally:
        consumer.close()
    del last
    return shown
