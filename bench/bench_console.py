"""Console inbox page time with a million alerts: p50/p95 per filter, sort and page.

Fills a SQLite store once (cached under bench/data/) through the console's own
ingest path (`store_alerts`), with alerts spread over 7 typologies, 4
severities, 28 detectors, 20,000 accounts, 2,000 collections and 90 days, one
in ten an update of an earlier episode. Then requests inbox pages through the
app in-process as a logged-in analyst (log-in check, query, counts, template:
the whole page) and prints p50/p95 per scenario. Writes
bench/results/console.json. Usage: python bench/bench_console.py [--alerts N]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
TYPOLOGIES = ["wash_trading", "speculation", "identity_mismatch", "prohibited_settlement", "prohibited_asset",
              "structuring", "anomaly"]
SEVERITIES = ["low", "medium", "high", "critical"]
START = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))
BATCH = 10_000


def alert(i: int, rng: random.Random) -> bytes:
    typology = TYPOLOGIES[rng.randrange(7)]
    episode = i if rng.random() > 0.1 or i < 100 else rng.randrange(i - 100, i)
    accounts = [f"acc-{rng.randrange(20000):05d}" for _ in range(rng.choice((1, 2, 2, 3)))]
    ts = START + timedelta(seconds=rng.randrange(90 * 86400))
    return orjson.dumps({
        "alert_id": f"al-{i:010d}", "episode_id": f"ep-{episode:010d}", "episode_seq": 1 if episode == i else 2 + i % 5,
        "detector": f"{typology}.rule{rng.randrange(4)}", "typology": typology,
        "severity": SEVERITIES[min(3, int(rng.random() ** 2 * 4))], "score": round(rng.random(), 4),
        "ts": ts.isoformat(timespec="milliseconds"), "detected_at": ts.isoformat(), "accounts": accounts,
        "collection_id": f"col-{rng.randrange(2000):04d}", "token_ids": [f"tok-{rng.randrange(10**6)}"],
        "trade_ids": [f"tr-{i}-{k}" for k in range(rng.choice((1, 1, 2, 4)))],
        "reason": f"{typology.replace('_', ' ')} pattern among {', '.join(accounts)}: figures in the evidence.",
        "evidence": {"observed": rng.random(), "threshold": 0.5}, "versions": {"monitor": "0.1.0", "config": "x"}})


def fill(engine, n: int) -> float:
    """Store n alerts through the console's ingest; the secondary indexes are built once at the end.

    Maintaining a dozen indexes row by row made the fill take half an hour on this machine; building
    them after the load gives the same database (the indexes are the schema's own) in minutes."""
    from amlwatch.console.db import analyze
    from amlwatch.console.ingest import store_alerts
    from amlwatch.console.schema import alert_trades, alerts, episode_accounts, episodes

    indexes = [index for table in (alerts, alert_trades, episodes, episode_accounts) for index in table.indexes]
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    rng = random.Random(13)
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        batch = [(str(i), alert(i, rng)) for i in range(start, min(n, start + BATCH))]
        with engine.begin() as conn:
            store_alerts(conn, batch, "bench")
        print(f"\r  {min(n, start + BATCH):,} alerts stored", end="", file=sys.stderr)
    print("\n  building indexes", file=sys.stderr)
    with engine.begin() as conn:
        for index in indexes:
            index.create(conn)
    analyze(engine)  # as the console's own ingest does after a load
    return time.perf_counter() - started


def window(rng: random.Random, days: int) -> dict:
    since = START + timedelta(days=rng.randrange(90 - days))
    return {"since": since.date().isoformat(), "until": (since + timedelta(days=days - 1)).date().isoformat()}


SCENARIOS = {
    "newest first, no filter": lambda rng: {},
    "highest score first": lambda rng: {"sort": "score"},
    "typology": lambda rng: {"typology": rng.choice(TYPOLOGIES)},
    "typology + severity": lambda rng: {"typology": rng.choice(TYPOLOGIES), "severity": rng.choice(SEVERITIES)},
    "detector, by score": lambda rng: {"detector": f"{rng.choice(TYPOLOGIES)}.rule{rng.randrange(4)}", "sort": "score"},
    "status open": lambda rng: {"status": "open"},
    "account": lambda rng: {"account": f"acc-{rng.randrange(20000):05d}"},
    "collection": lambda rng: {"collection": f"col-{rng.randrange(2000):04d}"},
    "one week": lambda rng: window(rng, 7),
    "one month": lambda rng: window(rng, 30),
    "page 20 of a typology": lambda rng: {"typology": rng.choice(TYPOLOGIES), "page": 20},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30, help="requests per scenario")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    from sqlalchemy import func, select
    from starlette.testclient import TestClient

    from amlwatch.console.app import create_app
    from amlwatch.console.auth import add_user
    from amlwatch.console.db import open_engine
    from amlwatch.console.schema import alerts, episodes, users

    path = HERE / "data" / f"console-{args.alerts}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild:
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
    engine = open_engine(str(path))
    fill_seconds = None
    with engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(alerts)).scalar_one()
    if have < args.alerts:
        print(f"filling {path} with {args.alerts:,} alerts ...", file=sys.stderr)
        fill_seconds = fill(engine, args.alerts)
    with engine.begin() as conn:
        if not conn.execute(select(users.c.id).where(users.c.username == "bench")).first():
            add_user(conn, "bench", "bench password 1", "analyst")
        counts = (conn.execute(select(func.count()).select_from(alerts)).scalar_one(),
                  conn.execute(select(func.count()).select_from(episodes)).scalar_one())

    client = TestClient(create_app(engine))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"username": "bench", "password": "bench password 1", "csrf_token": token},
                       follow_redirects=False).status_code == 303
    client.get("/inbox")  # warm the caches once, as a running console has them
    rng = random.Random(7)
    rows, every = [], []
    for name, make in SCENARIOS.items():
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            response = client.get("/inbox", params=make(rng))
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text[:300]
        every += times
        rows.append({"scenario": name, "p50_ms": statistics.median(times),
                     "p95_ms": statistics.quantiles(times, n=20, method="inclusive")[-1], "max_ms": max(times)})
    overall = statistics.quantiles(every, n=20, method="inclusive")[-1]
    print(f"\nconsole inbox, {counts[0]:,} alerts in {counts[1]:,} episodes (SQLite), {args.requests} pages per scenario")
    print(f"{'scenario':<28}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for row in rows:
        print(f"{row['scenario']:<28}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}{row['max_ms']:>9.1f}")
    print(f"{'all pages':<28}{statistics.median(every):>9.1f}{overall:>9.1f}{max(every):>9.1f}")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "console.json").write_text(json.dumps({
        "alerts": counts[0], "episodes": counts[1], "database": "sqlite", "requests_per_scenario": args.requests,
        "fill_seconds": fill_seconds, "scenarios": rows, "p95_ms": overall, "p50_ms": statistics.median(every),
        "machine": platform.platform(), "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
