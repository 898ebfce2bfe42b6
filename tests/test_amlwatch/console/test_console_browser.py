"""End to end in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium).

Log in, filter the inbox, open an alert, open the account graph and expand it,
open a case, propose it as confirmed, and have a second user approve it. Each
page is saved as a screenshot under tests/test_amlwatch/console/screenshots/ (not in git) for
a person to look at; the browser's console must show no error (a CSP
violation or a failed script would).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from support.console import PASSWORD, add_users, alert_line, event_lines

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).with_name("screenshots")
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000", "--disable-dev-shm-usage"]


def _require_chromium():
    missing = [p for p in (CHROMIUM, DRIVER) if not os.path.exists(p)]
    if not missing:
        return
    why = f"headless Chromium not installed ({', '.join(missing)} missing: apt-get install -y chromium chromium-driver)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"under CI=true the browser tests must run: {why}")
    pytest.skip(why)


@pytest.fixture
def live_console(tmp_path):
    """The console served by uvicorn on a free loopback port, on a SQLite store with test data."""
    import uvicorn

    from amlwatch.console.app import create_app
    from amlwatch.console.db import open_engine
    from amlwatch.console.ingest import store_alerts, store_events

    engine = open_engine(str(tmp_path / "console.db"))
    add_users(engine)
    extra = [b'{"type":"trade","event_id":"e-t9","ts":"2026-02-09T12:00:00+08:00","trade_id":"tr-9",'
             b'"collection_id":"col-1","token_id":"tok-2","kind":"primary","seller_id":"acc-3","buyer_id":"acc-4",'
             b'"price":"99.00","currency":"CNY"}']
    with engine.begin() as conn:
        store_events(conn, [(str(i), line) for i, line in enumerate(event_lines() + extra, 1)], "events")
        store_alerts(conn, [("1", alert_line("al-1", score=0.91, severity="critical")),
                            ("2", alert_line("al-2", typology="structuring", detector="structuring.split_payments",
                                             severity="medium", score=0.6, accounts=["acc-3"], trade_ids=["tr-1"])),
                            ("3", alert_line("al-3", typology="speculation", detector="speculation.price_spike",
                                             severity="high", score=0.8, accounts=["acc-2"], trade_ids=["tr-3"],
                                             reason="Token tok-1 sold at 320.00, 3.2x its collection's median."))],
                     "alerts")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    engine.dispose()


@pytest.fixture
def chromium():
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="amlwatch-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_triage_to_four_eyes_approval_in_a_real_browser(live_console, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver, base = chromium, live_console
    wait = WebDriverWait(driver, 15)
    SHOTS.mkdir(exist_ok=True)
    errors = []

    def shot(name: str) -> None:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, min(max(height + 140, 900), 4000))  # the whole page, not the first screen
        driver.save_screenshot(str(SHOTS / f"{name}.png"))
        errors.extend(entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE")

    def log_in(user: str) -> None:
        driver.get(f"{base}/inbox")
        wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys(user)
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        shot(f"01-login-{user}")
        driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table.inbox-table")))

    log_in("ana")
    assert "3</b> alert episodes" in driver.page_source
    shot("02-inbox")

    Select(driver.find_element(By.NAME, "typology")).select_by_visible_text("wash_trading")
    driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait.until(ec.url_contains("typology=wash_trading"))
    rows = driver.find_elements(By.CSS_SELECTOR, "table.inbox-table tbody tr")
    assert len(rows) == 1 and "wash_trading" in rows[0].text
    shot("03-inbox-filtered")

    rows[0].find_element(By.CSS_SELECTOR, "a[href^='/alerts/']").click()
    wait.until(ec.presence_of_element_located((By.ID, "price-chart")))
    wait.until(lambda d: d.execute_script("return !!(window.Chart && Chart.getChart('price-chart'))"))
    assert driver.execute_script("return Chart.getChart('price-chart').data.datasets[0].data.length") == 3
    driver.find_element(By.CSS_SELECTOR, "details.raw summary").click()
    assert '"alert_id": "al-1"' in driver.find_element(By.CSS_SELECTOR, "details.raw pre").text
    shot("04-alert")

    driver.find_element(By.CSS_SELECTOR, "dl.facts a[href='/accounts/acc-1']").click()
    wait.until(lambda d: d.execute_script("return window.amlwatchGraph && amlwatchGraph.nodes().length") == 3)
    shot("05-account-graph")
    driver.execute_script("amlwatchGraph.getElementById('acc-3').emit('tap')")
    wait.until(lambda d: d.execute_script("return amlwatchGraph.nodes().length") == 4)
    assert "4 accounts" in driver.find_element(By.ID, "graph-status").text
    shot("06-account-graph-expanded")

    driver.back()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "form[action='/cases'] button"))).click()
    wait.until(ec.url_matches(r"/cases/\d+$"))
    case_url = driver.current_url
    driver.find_element(By.NAME, "body").send_keys("acc-1 and acc-2 share a national ID and a card.")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/comment'] button").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "ol.comments"), "share a national ID"))
    shot("07-case")
    Select(driver.find_element(By.NAME, "disposition")).select_by_value("confirmed_suspicious")
    driver.find_element(By.NAME, "note").send_keys("round trip between linked accounts")
    driver.find_element(By.CSS_SELECTOR, "form.dispose button").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "h1"), "pending approval"))
    assert not driver.find_elements(By.CSS_SELECTOR, "form[action$='/approve']")
    shot("08-case-pending-approval")

    driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
    wait.until(ec.presence_of_element_located((By.NAME, "username")))
    log_in("sue")
    driver.get(case_url)
    driver.find_element(By.CSS_SELECTOR, "form[action$='/approve'] button").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "h1"), "closed"))
    assert "approved" in driver.page_source and "by sue" in driver.page_source
    shot("09-case-approved")
    # the approved case's report draft downloads in the browser and validates; then the reports page
    downloads = Path(tempfile.mkdtemp(prefix="amlwatch-downloads-"))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.find_element(By.CSS_SELECTOR, "form[action$='/report'] button.primary").click()
    deadline = time.monotonic() + 15
    while not [p for p in downloads.glob("case-*.xml")]:
        assert time.monotonic() < deadline, f"no report downloaded: {list(downloads.iterdir())}"
        time.sleep(0.1)
    from amlwatch.reporting.xml import validate

    [report] = downloads.glob("case-*.xml")
    time.sleep(0.3)
    validate(report.read_bytes(), "BSTR")
    shutil.rmtree(downloads, ignore_errors=True)
    driver.get(f"{base}/reports")
    assert "Large-value transaction reports" in driver.page_source
    shot("10-reports")
    driver.get(f"{base}/audit")
    assert "hash chain intact" in driver.page_source and "case.report_str" in driver.page_source
    shot("11-audit")
    print(f"\nscreenshots in {SHOTS}")
    assert not errors, "\n".join(e["message"] for e in errors)
