"""`amlwatch console ...` and `amlwatch demo --console` as a user runs them."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty, Queue

import httpx
from support.console import alert_line

from amlwatch.cli import main

AMLWATCH = [sys.executable, "-m", "amlwatch.cli"]


def test_user_add_ingest_errors_audit_verify(tmp_path, capsys, monkeypatch):
    db = str(tmp_path / "c.db")
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
        assert main(["console", "user", "add", "alice", "--role", "supervisor", "--password-stdin", "--db", db]) == 0
    assert main(["console", "user", "add", "alice", "--role", "analyst", "--generate-password", "--db", db]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["console", "user", "add", "bob", "--role", "analyst", "--generate-password", "--db", db]) == 0
    assert re.search(r"password: \S{12,}", capsys.readouterr().out)
    main(["console", "user", "list", "--db", db])
    assert re.findall(r"^(\w+)\s+(\w+)", capsys.readouterr().out, re.M) == [("alice", "supervisor"),
                                                                            ("bob", "analyst")]
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_bytes(alert_line("al-1") + b"\nnot json\n")
    assert main(["console", "ingest", "--alerts", str(alerts), "--db", db]) == 0
    err = capsys.readouterr().err
    assert "1 new" in err and "1 malformed (<json> 1)" in err and "ingest-errors" in err
    main(["console", "ingest-errors", "--db", db])
    assert '"raw":"not json"' in capsys.readouterr().out
    assert main(["console", "audit", "verify", "--db", db]) == 0
    assert "2 entries" in capsys.readouterr().out
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_log SET detail = '{\"role\":\"admin\"}' WHERE seq = 1")
    assert main(["console", "audit", "verify", "--db", db]) == 1
    assert "seq 1: content does not match its hash" in capsys.readouterr().out


def test_labels_export_cli_writes_the_evaluate_format(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    assert main(["console", "labels", "export", str(tmp_path / "labels.jsonl"), "--negatives",
                 str(tmp_path / "neg.jsonl"), "--db", db]) == 0
    assert (tmp_path / "labels.jsonl").read_text() == "" and "0 labelled trades" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_console_serves_the_demos_alerts_and_prints_a_log_in(tmp_path):
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    demo = subprocess.Popen(AMLWATCH + ["demo", "--console", "--console-port", str(port), "--out", str(tmp_path),
                                        "--days", "6", "--accounts", "300"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    lines, queue = [], Queue()
    threading.Thread(target=lambda: [queue.put(line) for line in demo.stderr], daemon=True).start()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (lines and lines[-1].startswith("log in as")):
            try:
                lines.append(queue.get(timeout=1))
            except Empty:
                assert demo.poll() is None, "".join(lines)
        login = re.match(r"log in as analyst / (\S+) or supervisor / (\S+)", lines[-1])
        assert login, "".join(lines)
        assert any(f"http://127.0.0.1:{port}/" in line for line in lines)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, follow_redirects=True) as client:
            for _ in range(50):
                try:
                    page = client.get("/login")
                    break
                except httpx.ConnectError:
                    time.sleep(0.2)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            done = client.post("/login", data={"username": "analyst", "password": login.group(1),
                                               "csrf_token": token})
            assert done.status_code == 200 and "alert episodes" in done.text
            inbox = client.get("/api/inbox").json()
            alerts_file = (Path(tmp_path) / "alerts.jsonl").read_text().splitlines()
            assert inbox["total"] > 0 and sum(inbox["by_typology"].values()) == inbox["total"] <= len(alerts_file)
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(20)
        except subprocess.TimeoutExpired:
            demo.kill()
