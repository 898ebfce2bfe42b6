"""Local Apache Kafka for tests: a thin wrapper around ``deploy/kafka/kafka.sh``.

Typical use from a fixture::

    ok, why = kafka_available()
    if not ok:
        pytest.skip(why)
    with kafka_cluster(nodes=1) as bootstrap:   # honours AMLWATCH_KAFKA_BOOTSTRAP
        ...

or, when a test needs to kill and restart brokers::

    kafka = LocalKafka(home=tmp_path / "kafka", port=free_port_base(3))
    bootstrap = kafka.start(nodes=3)
    try:
        kafka.kill_node(1)          # SIGKILL, data kept
        kafka.start_node(1)         # back on the same data, waits until ready
        kafka.restart_node(0)       # SIGTERM + start
    finally:
        kafka.stop()                # TERM -> KILL, removes the data dir

Only the standard library is used here; the clients (kafka-python, aiokafka)
are the tests' business.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import weakref
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"
DEFAULT_LIB = REPO_ROOT / "deploy" / "kafka" / ".work" / "lib"

#: Env var naming an already running cluster; when set no broker is started.
BOOTSTRAP_ENV = "AMLWATCH_KAFKA_BOOTSTRAP"

# Extra seconds on top of the broker wait for the first run's jar download.
_FETCH_ALLOWANCE = 600


class KafkaHarnessError(RuntimeError):
    """kafka.sh failed; the message carries its output (incl. the broker log tail)."""


def _java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        return os.path.join(java_home, "bin", "java")
    return shutil.which("java")


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run(
            [java, "-XshowSettings:properties", "-version"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    for line in (out.stderr + out.stdout).splitlines():
        line = line.strip()
        if line.startswith("java.specification.version ="):
            v = line.split("=", 1)[1].strip()
            try:
                return int(v.split(".")[1] if v.startswith("1.") else v.split(".")[0])
            except (IndexError, ValueError):
                return None
    return None


def _jars_present() -> bool:
    lib = Path(os.environ.get("AMLWATCH_KAFKA_LIB", DEFAULT_LIB))
    return (lib / ".complete").is_file() and any(lib.glob("kafka_2.13-*.jar"))


def local_kafka_available() -> tuple[bool, str]:
    """Can deploy/kafka/kafka.sh start a broker here (ignores AMLWATCH_KAFKA_BOOTSTRAP)?"""
    if shutil.which("bash") is None:
        return False, "bash not found: deploy/kafka/kafka.sh cannot run"
    if not SCRIPT.is_file():
        return False, f"{SCRIPT} is missing"
    java = _java()
    if java is None:
        return False, (
            "java not on PATH (Kafka 4.0 needs Java 17+); install a JDK "
            f"or point {BOOTSTRAP_ENV} at a running Kafka"
        )
    major = _java_major(java)
    if major is not None and major < 17:
        return False, f"{java} is Java {major}; Kafka 4.0 needs Java 17+"
    if not _jars_present() and shutil.which(os.environ.get("MVN", "mvn")) is None:
        return False, (
            "mvn not on PATH and the Kafka jars are not fetched yet "
            f"(install Maven or set {BOOTSTRAP_ENV})"
        )
    return True, "local Kafka via deploy/kafka/kafka.sh"


def kafka_available() -> tuple[bool, str]:
    """(True, how) if tests can get a Kafka cluster, else (False, one-line reason)."""
    bootstrap = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if bootstrap:
        return True, f"external Kafka {BOOTSTRAP_ENV}={bootstrap}"
    return local_kafka_available()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base(nodes: int = 1, start: int = 19300, stop: int = 29000) -> int:
    """A broker port base P with P..P+nodes-1 and controllers P+100.. all free."""
    for base in range(start, stop, 10):
        ports = [base + i for i in range(nodes)] + [base + 100 + i for i in range(nodes)]
        if all(_port_free(p) for p in ports):
            return base
    raise KafkaHarnessError(f"no free port range for {nodes} Kafka node(s) in {start}..{stop}")


_live: "weakref.WeakSet[LocalKafka]" = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:  # pragma: no cover - only on abnormal test exits
    for kafka in list(_live):
        with contextlib.suppress(Exception):
            kafka.stop()


class LocalKafka:
    """One local KRaft cluster managed through deploy/kafka/kafka.sh.

    ``home`` is the harness dir (the cluster lives in ``home/cluster``),
    default ``$AMLWATCH_KAFKA_HOME`` or ``deploy/kafka/.work``; ``port`` is the
    first broker port (nodes use port, port+1, ...; controllers port+100, ...),
    default ``$AMLWATCH_KAFKA_PORT`` or 19092. The jars are shared
    (``deploy/kafka/.work/lib``) whatever ``home`` is.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        port: int | None = None,
        timeout: float = 90,
        env: dict[str, str] | None = None,
        script: str | os.PathLike[str] = SCRIPT,
    ) -> None:
        self.script = Path(script)
        self.timeout = timeout
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        if home is not None:
            self.env["AMLWATCH_KAFKA_HOME"] = str(home)
        if port is not None:
            self.env["AMLWATCH_KAFKA_PORT"] = str(port)
            self.env.pop("AMLWATCH_KAFKA_CONTROLLER_PORT", None)
        self.env["AMLWATCH_KAFKA_TIMEOUT"] = str(int(timeout))
        self.bootstrap: str | None = None
        self.nodes = 0

    # -- plumbing -----------------------------------------------------------

    def _run(self, *args: str, timeout: float | None = None) -> str:
        cmd = ["bash", str(self.script), *args]
        try:
            proc = subprocess.run(
                cmd, env=self.env, capture_output=True, text=True,
                stdin=subprocess.DEVNULL,
                timeout=timeout if timeout is not None else self.timeout + 60,
            )
        except subprocess.TimeoutExpired as e:
            err = e.stderr or ""
            if isinstance(err, bytes):
                err = err.decode(errors="replace")
            raise KafkaHarnessError(
                f"{' '.join(cmd[1:])} timed out after {e.timeout:.0f}s\n{err}".rstrip()
            ) from None
        if proc.returncode != 0:
            raise KafkaHarnessError(
                f"{' '.join(cmd[1:])} failed (exit {proc.returncode}):\n"
                f"{proc.stderr.strip()}\n{proc.stdout.strip()}".rstrip()
            )
        return proc.stdout

    @staticmethod
    def _bootstrap_of(stdout: str) -> str:
        for line in reversed(stdout.strip().splitlines()):
            if line.startswith("bootstrap="):
                return line.split("=", 1)[1].strip()
        raise KafkaHarnessError(f"kafka.sh printed no bootstrap= line:\n{stdout}")

    # -- API ----------------------------------------------------------------

    def fetch(self) -> None:
        """Resolve the broker jars (Maven Central) unless already present."""
        self._run("fetch", timeout=_FETCH_ALLOWANCE)

    def start(self, nodes: int = 1) -> str:
        """Start a fresh cluster of ``nodes`` combined nodes; returns bootstrap servers."""
        out = self._run("start", "--nodes", str(nodes), timeout=self.timeout + _FETCH_ALLOWANCE)
        self.nodes = nodes
        self.bootstrap = self._bootstrap_of(out)
        _live.add(self)
        return self.bootstrap

    def stop(self, keep: bool = False) -> None:
        """Stop every node (TERM, then KILL) and remove the data unless ``keep``."""
        args = ["stop", "--keep"] if keep else ["stop"]
        self._run(*args, timeout=120)
        _live.discard(self)

    def kill_node(self, i: int, signal: str = "KILL") -> None:
        """Stop node ``i`` with SIGKILL (default) or SIGTERM; its data stays."""
        self._run("kill-node", str(i), "--signal", signal, timeout=120)

    def stop_node(self, i: int) -> None:
        """Controlled shutdown (SIGTERM) of node ``i``; its data stays."""
        self.kill_node(i, signal="TERM")

    def start_node(self, i: int) -> str:
        """Start node ``i`` again on its data; waits until all running nodes see it."""
        return self._bootstrap_of(self._run("start-node", str(i)))

    def restart_node(self, i: int, signal: str = "TERM") -> str:
        """Stop node ``i`` (SIGTERM by default, or ``signal="KILL"``) and start it again."""
        return self._bootstrap_of(
            self._run("restart-node", str(i), "--signal", signal, timeout=self.timeout + 120)
        )

    def status(self) -> str:
        """kafka.sh status output (does not raise when nothing runs)."""
        proc = subprocess.run(
            ["bash", str(self.script), "status"], env=self.env,
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        )
        return proc.stdout

    def __enter__(self) -> "LocalKafka":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def kafka_cluster(nodes: int = 1, **kwargs: object) -> Iterator[str]:
    """Yield bootstrap servers: ``$AMLWATCH_KAFKA_BOOTSTRAP`` if set (nothing is
    started or stopped), else a fresh LocalKafka(**kwargs) that is stopped after."""
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    kafka = LocalKafka(**kwargs)  # type: ignore[arg-type]
    bootstrap = kafka.start(nodes=nodes)
    try:
        yield bootstrap
    finally:
        kafka.stop()


def require_kafka(check) -> None:
    """Skip with `check`'s one-line reason, or fail under CI=true where Kafka must be there."""
    import pytest

    ok, why = check()
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Kafka is required under CI=true: {why}")
    pytest.skip(why)
