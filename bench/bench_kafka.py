"""End-to-end Kafka benchmark: events/s of one worker, and produce-to-alert latency at a fixed rate.

Throughput: a hand-made stream is produced first, then one worker is started
and timed from its first to its last alert (startup and rebalance excluded).
Latency: with the worker caught up, trades that each raise an alert (crypto
settlement) are produced at a fixed rate among normal traffic; latency is
alert arrival minus the trade's produce time. Prints a table and writes
bench/results/kafka.json. Needs AMLWATCH_KAFKA_BOOTSTRAP (or starts a local
broker with deploy/kafka).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "streams")]

import orjson  # noqa: E402
from service import Worker, kafka_config, kafka_env  # noqa: E402
from streamgen import make_stream  # noqa: E402

from amlwatch.streams.produce import produce  # noqa: E402
from amlwatch.streams.topics import create_topics  # noqa: E402


def throughput(bootstrap: str, tmp: Path, trades: int) -> dict:
    from kafka import KafkaConsumer

    env = kafka_env(bootstrap, partitions=4)
    kafka = kafka_config(env)
    lines = make_stream(seed=9, trades=trades, accounts=500, hours=24 * 10)
    create_topics(kafka)
    produce(lines, kafka, heartbeat=True)
    worker = Worker(env, tmp / "tp", "tp")
    consumer = KafkaConsumer(kafka.alerts_topic, bootstrap_servers=bootstrap.split(","),
                             auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=15000)
    first = last = None
    count = 0
    try:
        for message in consumer:
            now = time.monotonic()
            first = first or now
            last = now
            count += 1
    finally:
        consumer.close()
        worker.stop()
    seconds = (last - first) if first and last and last > first else float("nan")
    return {"events": len(lines), "alerts": count, "seconds": round(seconds, 2),
            "events_per_second": round(len(lines) / seconds) if seconds == seconds else None}


def latency(bootstrap: str, tmp: Path, rate: int, seconds: float) -> dict:
    from kafka import KafkaConsumer, KafkaProducer

    env = kafka_env(bootstrap, partitions=4)
    kafka = kafka_config(env)
    create_topics(kafka)
    base = make_stream(seed=10, trades=200, accounts=100)
    produce(base, kafka)
    worker = Worker(env, tmp / "lat", "lat")
    consumer = KafkaConsumer(kafka.alerts_topic, bootstrap_servers=bootstrap.split(","),
                             auto_offset_reset="latest", group_id=None, consumer_timeout_ms=200)
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks=1, linger_ms=1)
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    try:
        time.sleep(15)
        list(consumer)
        start = time.time()
        total = int(rate * seconds)
        t0 = 1774000000.0
        for n in range(total):
            due = start + n / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            # every event a trade on its own token; every 50th settles in crypto and so raises an alert
            crypto = n % 50 == 0
            record = {"type": "trade", "event_id": f"lat-{n}", "trade_id": f"lat-{n}",
                      "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + n / rate)) + f".{n % 1000:03d}Z",
                      "collection_id": f"col-{n % 8}", "token_id": f"lt-{n}", "kind": "secondary",
                      "seller_id": "acc-001", "buyer_id": "acc-002", "price": "10.00",
                      "currency": "USDT" if crypto else "CNY", "payment": {"method": "crypto" if crypto else "alipay"}}
            producer.send(kafka.trades_topic, orjson.dumps(record), key=record["token_id"].encode())
            if crypto:
                sent[record["trade_id"]] = time.time()
            if n % 500 == 0:
                for message in consumer.poll(timeout_ms=0).values():
                    for m in message:
                        _record(m, got)
        producer.flush()
        deadline = time.time() + 20
        while time.time() < deadline and len(got) < len(sent):
            for batch in consumer.poll(timeout_ms=200).values():
                for m in batch:
                    _record(m, got)
    finally:
        producer.close()
        consumer.close()
        worker.stop()
    lat = sorted((got[k] - sent[k]) * 1000 for k in sent if k in got)
    pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)) if lat else (lambda q: None)
    return {"rate": rate, "seconds": seconds, "alerts_expected": len(sent), "alerts_seen": len(lat),
            "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": round(lat[-1], 1) if lat else None}


def _record(message, got: dict) -> None:
    alert = orjson.loads(message.value)
    if alert["detector"] == "settlement.currency":
        got.setdefault(alert["trade_ids"][-1], time.time())


def main() -> None:
    bootstrap = os.environ.get("AMLWATCH_KAFKA_BOOTSTRAP")
    kafka = None
    if not bootstrap:
        from tests.kafka_broker import LocalKafka, free_port_base

        kafka = LocalKafka(home=tempfile.mkdtemp(), port=free_port_base(1))
        bootstrap = kafka.start(nodes=1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tp = throughput(bootstrap, Path(tmp), int(os.environ.get("BENCH_TRADES", "20000")))
            lat = latency(bootstrap, Path(tmp), int(os.environ.get("BENCH_RATE", "5000")),
                          float(os.environ.get("BENCH_SECONDS", "20")))
    finally:
        if kafka is not None:
            kafka.stop()
    result = {"throughput_one_worker": tp, "latency": lat, "targets": {"events_per_second": 20000, "p99_ms": 250}}
    print(f"{'events/s per worker (end to end)':<40}{tp['events_per_second']}")
    print(f"{'events':<40}{tp['events']}  in {tp['seconds']} s, {tp['alerts']} alerts")
    print(f"{'latency at ' + str(lat['rate']) + ' ev/s p50 / p99 / max ms':<40}"
          f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']}  ({lat['alerts_seen']}/{lat['alerts_expected']})")
    out = ROOT / "bench" / "results" / "kafka.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
