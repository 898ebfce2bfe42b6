"""The inbox, alert, account and collection pages and their JSON, through the app in-process."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from support.console import Browser, alert_line

from amlwatch.console.ingest import store_alerts

VENDOR = Path(__file__).resolve().parents[3] / "amlwatch" / "console" / "static" / "vendor"


def add_alerts(engine, n: int = 60) -> None:
    typologies = ["wash_trading", "speculation", "structuring"]
    with engine.begin() as conn:
        store_alerts(conn, [(str(i), alert_line(
            f"bulk-{i:03d}", typology=typologies[i % 3], detector=f"{typologies[i % 3]}.rule",
            severity=["low", "medium", "high", "critical"][i % 4], score=round(0.3 + i / 100, 2),
            ts=f"2026-04-{1 + i % 28:02d}T10:00:00+08:00", accounts=[f"acc-{100 + i % 5}"],
            collection_id=f"col-{i % 2}")) for i in range(n)], "bulk")


def ids(html: str) -> list[str]:
    return re.findall(r'href="/alerts/([^"]+)"', html)


def test_inbox_filters_sorts_counts_and_pages(console):
    app, engine = console
    add_alerts(engine)
    ana = Browser(app, "ana")
    api = ana.get("/api/inbox").json()
    assert api["total"] == 62 and api["by_typology"] == {"speculation": 20, "structuring": 21, "wash_trading": 21}
    assert api["by_severity"]["critical"] == 16
    only = ana.get("/api/inbox?typology=speculation&severity=high&collection=col-0").json()
    assert only["total"] > 0 and all(e["typology"] == "speculation" and e["severity"] == "high"
                                     and e["collection_id"] == "col-0" for e in only["episodes"])
    # counts per typology ignore the typology filter, so the other typologies stay visible
    assert set(only["by_typology"]) == {"speculation", "structuring", "wash_trading"}
    by_account = ana.get("/api/inbox?account=acc-102").json()
    assert by_account["total"] == 12
    by_detector = ana.get("/api/inbox?detector=structuring.rule").json()
    assert by_detector["total"] == 20
    scores = [e["score"] for e in ana.get("/api/inbox?sort=score&per_page=25").json()["episodes"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == 0.95
    times = [e["event_time"] for e in ana.get("/api/inbox?sort=time_asc&per_page=100").json()["episodes"]]
    assert times == sorted(times)
    window = ana.get("/api/inbox?since=2026-04-10&until=2026-04-10").json()
    assert window["total"] == 2
    first, second = (ana.get(f"/api/inbox?per_page=25&page={p}").json() for p in (1, 2))
    assert first["pages"] == 3 and not {e["episode_id"] for e in first["episodes"]} & {e["episode_id"] for e in second["episodes"]}
    html = ana.get("/inbox?typology=wash_trading").text
    assert "<b>21</b> alert episodes" in html and "next &rarr;" not in html


def test_bad_inbox_filters_get_a_clear_error(console):
    app, _ = console
    ana = Browser(app, "ana")
    for query, field in (("since=yesterday", "since"), ("severity=huge", "severity"), ("page=0", "page"),
                         ("per_page=7", "per_page"), ("sort=random", "sort")):
        response = ana.get(f"/api/inbox?{query}")
        assert response.status_code == 400 and response.json()["field"] == field, query
    assert "expected YYYY-MM-DD" in ana.get("/inbox?since=2026-13-40").text


def test_status_filter_follows_cases(console):
    app, _ = console
    ana = Browser(app, "ana")
    ana.post("/cases", {"title": "t", "episode_id": "al-1"})
    assert [e["episode_id"] for e in ana.get("/api/inbox?status=in_case").json()["episodes"]] == ["al-1"]
    assert [e["episode_id"] for e in ana.get("/api/inbox?status=open").json()["episodes"]] == ["al-2"]


def test_alert_page_shows_reason_evidence_trades_history_and_links(console):
    app, _ = console
    page = Browser(app, "ana").get("/alerts/al-1").text
    assert "went acc-1 -&gt; acc-2 -&gt; acc-1 within 2 days" in page
    flat = re.sub(r"\s+", " ", page)
    assert "<th>hours</th><td> 30.5 </td>" in flat and "<th>cycle</th><td> acc-1, acc-2, acc-1 </td>" in flat
    assert 'href="/accounts/acc-1"' in page and 'href="/accounts/acc-2"' in page
    assert 'href="/collections/col-1"' in page
    assert "<summary>Raw JSON</summary>" in page and 'href="/api/alerts/al-1"' in page
    assert page.count('<li class="hl">') == 2  # the alert's own trades on the token's timeline of three
    assert 'id="price-chart"' in page and '"trade":"tr-3"' in page.replace(" ", "")
    assert "/static/vendor/chart.js-4.6.1.umd.min.js" in page
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/static/") for a in assets), assets  # nothing from the internet


def test_raw_json_is_the_alert_as_received(console):
    app, _ = console
    raw = Browser(app, "ana").get("/api/alerts/al-1").json()
    assert raw["alert_id"] == "al-1" and "episode_id" not in raw


def test_account_page_shows_pii_only_as_hash_prefixes(console):
    app, _ = console
    page = Browser(app, "ana").get("/accounts/acc-1").text
    assert "a" * 64 not in page and "n1" * 32 not in page and "c" * 64 not in page
    assert "aaaaaaaa…" in page and "cccccccc…" in page
    assert "dev-1" not in page and "#" + hashlib.sha256(b"dev-1").hexdigest()[:8] in page
    assert "register" in page and "verify" in page and "tr-2" in page
    assert 'id="graph"' in page and "/static/vendor/cytoscape-3.35.0.min.js" in page


def test_graph_links_accounts_by_shared_attributes_and_counterparties(console):
    app, _ = console
    graph = Browser(app, "ana").get("/api/accounts/acc-1/graph").json()
    edges = {e["data"]["target"]: e["data"] for e in graph["elements"] if "source" in e["data"]}
    assert {t: (e["kind"], e["kinds"]) for t, e in edges.items()} == {
        "acc-2": ("national_id", ["card", "national_id", "trade"]), "acc-3": ("trade", ["trade"])}
    assert edges["acc-2"]["label"] == "national ID aaaaaaaa…, card cccccccc…, 2 trades"
    flagged = {e["data"]["id"]: e["data"]["flagged"] for e in graph["elements"] if "source" not in e["data"]}
    assert flagged == {"acc-1": True, "acc-2": True, "acc-3": True}
    # hop two: acc-3 links back only through trades
    hop = Browser(app, "ana").get("/api/accounts/acc-3/graph").json()
    assert [e["data"]["kinds"] for e in hop["elements"] if "source" in e["data"]] == [["trade"]]


def test_collection_page_and_unknown_ids(console):
    app, _ = console
    ana = Browser(app, "ana")
    page = ana.get("/collections/col-1").text
    assert "launch" in page and "99.00" in page and "of 3" in page
    assert ana.get("/alerts/nope").status_code == 404 and ana.get("/accounts/nobody").status_code == 404
    assert ana.get("/no/such/page").status_code == 404


def test_ingest_page_reports_malformed_records(console):
    app, engine = console
    with engine.begin() as conn:
        store_alerts(conn, [("9:1", b'{"alert_id": 5}')], "kafka:aml.alerts")
    page = Browser(app, "ana").get("/ingest").text
    assert "kafka:aml.alerts" in page and "alert_id" in page and "expected a non-empty string" in page


def test_vendored_libraries_are_the_pinned_upstream_files():
    table = (VENDOR / "README.md").read_text()
    for name, digest in re.findall(r"\| `([^`]+\.js)` \|.*\| `([0-9a-f]{64})` \|", table):
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert len(re.findall(r"\.js` \|", table)) == 2
