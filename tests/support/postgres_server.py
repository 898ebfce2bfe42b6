"""A throwaway PostgreSQL server for the console tests, from the machine's Debian packages.

`initdb` into a temporary directory, `pg_ctl start` on loopback with a free
port and the socket inside that directory, fsync off (test data), and stop +
remove on exit. PostgreSQL refuses to run as root, so as root the server runs
as the unprivileged `postgres` user the Debian package creates (or `nobody`).
$AMLWATCH_CONSOLE_PG_URL names an existing server instead (nothing started).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

URL_ENV = "AMLWATCH_CONSOLE_PG_URL"


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


def postgres_available() -> tuple[bool, str]:
    if os.environ.get(URL_ENV):
        return True, f"external PostgreSQL {URL_ENV}"
    if not _bin("initdb") or not _bin("pg_ctl"):
        return False, "PostgreSQL server binaries not installed (apt-get install -y postgresql) and no " + URL_ENV
    return True, "local PostgreSQL via initdb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="amlwatch-pg-"))
        self.port = _free_port()
        self.user = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = list(args)
        if self.user is not None:
            command = ["runuser", "-u", self.user.pw_name, "--"] + command
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if done.returncode != 0:
            log = (self.dir / "server.log").read_text(errors="replace")[-2000:] if (self.dir / "server.log").exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stdout[-1500:]} "
                               f"{done.stderr[-1500:]} {log}")

    def start(self) -> str:
        data = self.dir / "data"
        self._run(_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c full_page_writes=off"
        self._run(_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.dir / "server.log"), "-w",
                  "-t", "60", "start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def new_database(admin_url: str, name: str) -> str:
    """Create an empty database `name` on the server and return its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    for attempt in range(20):
        try:
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            break
        except Exception:  # the server may still be starting up
            if attempt == 19:
                raise
            time.sleep(0.5)
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)
