"""End-to-end Kafka benchmark: events/s of one worker, and produce-to-alert latency at a fixed rate.

Throughput: a hand-made stream (BENCH_TRADES trades, default 100,000: the
detector state must grow to a realistic size, a short stream flatters) is
produced first, then one worker is started and timed from its first to its
last alert (startup and rebalance excluded).
Latency: with the worker caught up, trades that each raise an alert (crypto
settlement) are produced at a fixed rate among clean traffic (BENCH_RATES,
default 5000 and 2000 events/s); latency is alert arrival (taken by a
listener thread as soon as it is fetched) minus the trade's produce time.
`--model` runs the worker with the default anomaly model, as a deployed worker runs (rules only
without). AMLWATCH_PROFILE_DIR=DIR runs each worker under cProfile. Prints a table and writes
bench/results/kafka.json. Needs AMLWATCH_KAFKA_BOOTSTRAP (or starts a local
broker with deploy/kafka).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import orjson  # noqa: E402
from support.service import Worker, kafka_config, kafka_env  # noqa: E402
from support.streamgen import _h, make_stream  # noqa: E402

from amlwatch.streams.produce import produce  # noqa: E402
from amlwatch.streams.topics import create_topics  # noqa: E402


def _env(bootstrap: str, model: bool) -> dict[str, str]:
    env = kafka_env(bootstrap, partitions=4)
    if model:
        env["AMLWATCH_ANOMALY__ENABLED"] = "true"
    return env


def throughput(bootstrap: str, tmp: Path, trades: int, model: bool = False) -> dict:
    from kafka import KafkaConsumer

    env = _env(bootstrap, model)
    kafka = kafka_config(env)
    lines = make_stream(seed=9, trades=trades, accounts=500, hours=24 * 10)
    create_topics(kafka)
    produce(lines, kafka, heartbeat=True)
    worker = Worker(env, tmp / "tp", "tp", model=model)
    consumer = KafkaConsumer(kafka.alerts_topic, bootstrap_servers=bootstrap.split(","),
                             auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=15000)
    first = last = None
    cpu_first = cpu_last = None
    count = 0
    try:
        for message in consumer:
            now = time.monotonic()
            if first is None:
                first, cpu_first = now, _cpu_seconds(worker.proc.pid)
            elif count % 500 == 0:
                cpu_last = _cpu_seconds(worker.proc.pid)
            last = now
            count += 1
        cpu_last = _cpu_seconds(worker.proc.pid) if cpu_last is None else cpu_last
    finally:
        consumer.close()
        worker.stop()
    _delete_topics(bootstrap, kafka.app_id.removeprefix("t-"))
    seconds = (last - first) if first and last and last > first else float("nan")
    cpu = (cpu_last - cpu_first) if cpu_first is not None and cpu_last is not None else float("nan")
    return {"events": len(lines), "alerts": count, "seconds": round(seconds, 2),
            "events_per_second": round(len(lines) / seconds) if seconds == seconds else None,
            "worker_cpu_seconds": round(cpu, 2),
            "events_per_worker_cpu_second": round(len(lines) / cpu) if cpu == cpu and cpu > 0 else None}


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the worker process has used: unlike its wall time, next to nothing of
    what other processes on a shared machine take from it. None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _delete_topics(bootstrap: str, tag: str) -> None:
    """Drop a finished phase's topics: compacting its changelogs (tens of MB of snapshots, rolled a
    minute after creation) would otherwise take the broker's share of this machine's two cores in the
    middle of the next phase and show there as a one-second stall."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        admin.delete_topics([name for name in admin.list_topics() if tag in name])
    finally:
        admin.close()


def latency(bootstrap: str, tmp: Path, rate: int, seconds: float, model: bool = False) -> dict:
    from kafka import KafkaConsumer

    tmp.mkdir(parents=True, exist_ok=True)
    env = _env(bootstrap, model)
    kafka = kafka_config(env)
    create_topics(kafka)
    base = make_stream(seed=10, trades=200, accounts=100)
    produce(base, kafka)
    worker = Worker(env, tmp / "lat", "lat", model=model)
    send, flush = _load_producer(bootstrap)
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    listening = threading.Event()
    done = threading.Event()

    def listen() -> None:
        """Alert arrival times, taken as soon as they are fetched (not when the producer loop looks)."""
        consumer = KafkaConsumer(kafka.alerts_topic, bootstrap_servers=bootstrap.split(","),
                                 auto_offset_reset="latest", group_id=None, fetch_max_wait_ms=10)
        try:
            consumer.poll(timeout_ms=1000)
            listening.set()
            while not done.is_set():
                for batch in consumer.poll(timeout_ms=20).values():
                    now = time.time()
                    for message in batch:
                        _record(message, got, now)
        finally:
            consumer.close()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        time.sleep(15)
        listening.wait(30)
        start = time.time()
        total = int(rate * seconds)
        for n in range(total):
            due = start + n / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            record = latency_trade(n, rate)
            send(kafka.trades_topic, orjson.dumps(record), record["token_id"].encode())
            if record["currency"] != "CNY":
                sent[record["trade_id"]] = time.time()
        flush()
        deadline = time.time() + 20
        while time.time() < deadline and not set(sent) <= set(got):
            time.sleep(0.2)
    finally:
        done.set()
        listener.join(10)
        flush()
        worker.stop()
        _delete_topics(bootstrap, kafka.app_id.removeprefix("t-"))
    lat = sorted((got[k] - sent[k]) * 1000 for k in sent if k in got)
    pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)) if lat else (lambda q: None)
    return {"rate": rate, "seconds": seconds, "alerts_expected": len(sent), "alerts_seen": len(lat),
            "p50_ms": pick(0.50), "p90_ms": pick(0.90), "p99_ms": pick(0.99), "max_ms": round(lat[-1], 1) if lat else None,
            "missing": sorted(set(sent) - set(got))[:10],
            "worst_ms_by_second": _worst_by_second(sent, got)}


def _load_producer(bootstrap: str):
    """(send(topic, value, key), flush()) of the load generator. librdkafka (confluent-kafka, a bench
    extra) when installed: kafka-python took three quarters of a core at 5,000 messages/s, on the
    machine the worker and broker share, and so inflated the latency measured."""
    try:
        from confluent_kafka import Producer
    except ImportError:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks=1, linger_ms=1)
        return (lambda topic, value, key: producer.send(topic, value, key=key)), producer.flush
    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 1})

    def send(topic: str, value: bytes, key: bytes) -> None:
        producer.produce(topic, value, key)
        producer.poll(0)
    return send, producer.flush


def _worst_by_second(sent: dict, got: dict) -> list:
    """The slowest alert of each second of the run: steady lag, or pauses at intervals."""
    if not sent:
        return []
    start = min(sent.values())
    worst: dict[int, float] = {}
    for key, at in sent.items():
        if key in got:
            second = int(at - start)
            worst[second] = max(worst.get(second, 0.0), (got[key] - at) * 1000)
    return [round(worst.get(second, -1)) for second in range(max(worst) + 1)] if worst else []


LATENCY_T0 = 1780000000.0
"""Months after the base stream: none of its windows reach the measured traffic."""
CLEAN = [f"acc-{i:03d}" for i in range(10, 90) if i % 17 != 16]
"""Base-stream accounts registered early with full KYC and their own national IDs."""


def latency_trade(n: int, rate: int) -> dict:
    """Clean traffic that raises nothing, except every 50th trade, settled in crypto: one alert each.

    Each trade is on its own token, sellers and buyers never swap roles (no pair trades both ways),
    the payer is the buyer, and no collection is prohibited or transfer-locked."""
    sellers, buyers = CLEAN[::2], CLEAN[1::2]
    seller, buyer = sellers[n % len(sellers)], buyers[(n // len(sellers) + n) % len(buyers)]
    t = LATENCY_T0 + n / rate
    crypto = n % 50 == 0
    return {"type": "trade", "event_id": f"lat-{n}", "trade_id": f"lat-{n}",
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z",
            "collection_id": f"col-{(0, 1, 2, 4, 6, 7)[n % 6]}", "token_id": f"lt-{n}", "kind": "secondary",
            "seller_id": seller, "buyer_id": buyer, "price": "10.00", "currency": "USDT" if crypto else "CNY",
            "payment": {"method": "crypto" if crypto else "alipay", "payer_name_hash": _h("name", buyer),
                        "instrument_hash": _h("card", buyer)}}


def _record(message, got: dict, now: float) -> None:
    alert = orjson.loads(message.value)
    if alert["detector"] == "settlement.currency":
        got.setdefault(alert["trade_ids"][-1], now)


def parse_args(argv: list[str] | None = None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default=os.environ.get("BENCH_RATES", "5000,2000"),
                        help="latency phase rates, events/s, comma-separated (BENCH_RATES)")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "20")),
                        help="seconds per latency rate (BENCH_SECONDS)")
    parser.add_argument("--trades", type=int, default=int(os.environ.get("BENCH_TRADES", "100000")),
                        help="trades of the throughput stream (BENCH_TRADES)")
    parser.add_argument("--model", action="store_true",
                        help="the worker runs the default anomaly model (a deployed worker's default); rules only without")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bootstrap = os.environ.get("AMLWATCH_KAFKA_BOOTSTRAP")
    kafka = None
    if not bootstrap:
        from support.kafka_broker import LocalKafka, free_port_base

        kafka = LocalKafka(home=tempfile.mkdtemp(), port=free_port_base(1))
        bootstrap = kafka.start(nodes=1)
    rates = [int(r) for r in args.rates.split(",")]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Latency first: the backfill leaves the broker work (deleting and compacting its logs) that
            # would land in the middle of a later phase on this shared machine.
            lats = [latency(bootstrap, Path(tmp) / str(rate), rate, args.seconds, args.model) for rate in rates]
            tp = throughput(bootstrap, Path(tmp), args.trades, args.model)
    finally:
        if kafka is not None:
            kafka.stop()
    result = {"model": args.model, "throughput_one_worker": tp, "latency": lats, "targets": {"events_per_second": 20000, "p99_ms": 250}}
    print(f"{'events/s per worker (end to end)':<40}{tp['events_per_second']}")
    print(f"{'events':<40}{tp['events']}  in {tp['seconds']} s, {tp['alerts']} alerts")
    print(f"{'events per worker CPU second':<40}{tp['events_per_worker_cpu_second']}"
          f"  ({tp['worker_cpu_seconds']} CPU s, first to last alert)")
    for lat in lats:
        print(f"{'latency at ' + str(lat['rate']) + ' ev/s p50 / p99 / max ms':<40}"
              f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']}  ({lat['alerts_seen']}/{lat['alerts_expected']})")
    print(f"written {write_result(result, ROOT / 'bench' / 'results' / 'kafka.json')}")


def write_result(result: dict, out: Path) -> Path:
    """The JSON beside the table; `bench/results/` is made when a fresh clone lacks it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
