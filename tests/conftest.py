"""Fixtures shared by every test: throwaway PostgreSQL and Redis servers, promtool, and `need()`.

The servers are real ones on free loopback ports, one per test, so that a test can stop and
restart them to simulate an outage without touching the machine's own services. A test that
needs a tool or service this machine lacks is skipped with the reason, except under ``CI=true``,
where a skip would hide a broken set-up, so it fails instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

IN_CI = os.environ.get("CI", "").lower() == "true"

# Timing-based health checks and deadlines make property tests flaky on a loaded two-core machine;
# what a property test asserts is behaviour, never speed.
hypothesis_settings.register_profile(
    "ops_observe", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
hypothesis_settings.load_profile("ops_observe")


def need(condition: object, reason: str) -> None:
    """Skip the test when ``condition`` is false; under ``CI=true`` fail it instead."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI is missing a requirement: {reason}")
        pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


# -- PostgreSQL ---------------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return shutil.which(name)


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the Debian package's "postgres" user runs it instead.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


class PostgresServer:
    """A PostgreSQL server of its own, on a free port, that a test may stop and start again."""

    def __init__(self, template: Path, workdir: Path) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.datadir = workdir / "data"
        shutil.copytree(template, self.datadir, symlinks=True)
        self.socketdir = workdir / "sock"
        self.socketdir.mkdir()
        for path in (workdir, self.socketdir):
            _chown_postgres(path)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.datadir)], check=True)
        self.dsn = f"postgresql://postgres@{self.host}:{self.port}/postgres?connect_timeout=5"
        self.start()

    def _ctl(self, *args: str) -> None:
        cmd = _as_postgres([_pg_bin("pg_ctl") or "pg_ctl", "-D", str(self.datadir), "-s", *args])
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socketdir} -c listen_addresses={self.host} -c fsync=off"
        self._ctl("-w", "-l", str(self.datadir / "server.log"), "-o", options, "start")
        wait_for_port(self.port)

    def stop(self) -> None:
        self._ctl("-w", "-m", "immediate", "stop")


@pytest.fixture(scope="session")
def _postgres_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    initdb = _pg_bin("initdb")
    need(initdb and _pg_bin("pg_ctl"), "PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    assert initdb is not None
    base = Path(tempfile.mkdtemp(prefix="ops-observe-pg-"))
    _chown_postgres(base)
    template = base / "template"
    subprocess.run(
        _as_postgres([initdb, "-D", str(template), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    yield template
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_server(_postgres_template: Path) -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server (``.dsn``, ``.host``, ``.port``, ``.stop()``, ``.start()``)."""
    workdir = Path(tempfile.mkdtemp(prefix="ops-observe-pg-"))
    server = PostgresServer(_postgres_template, workdir)
    try:
        yield server
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped by the test
        shutil.rmtree(workdir, ignore_errors=True)


# -- Redis --------------------------------------------------------------------------------------


class RedisServer:
    """A Redis server of its own, on a free port, that a test may stop and start again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        self.url = f"redis://{self.host}:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        cmd = [self.binary, "--port", str(self.port), "--bind", self.host, "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh Redis server (``.url``, ``.host``, ``.port``, ``.stop()``, ``.start()``)."""
    binary = shutil.which("redis-server")
    need(binary, "redis-server is not installed")
    assert binary is not None
    server = RedisServer(binary)
    try:
        yield server
    finally:
        server.stop()


# -- promtool -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of ``promtool`` (Debian's ``prometheus`` package)."""
    path = shutil.which("promtool")
    need(path, "promtool is not installed (apt-get install prometheus)")
    assert path is not None
    return path


@pytest.fixture(name="need")
def _need_fixture() -> object:
    """:func:`need` for tests: ``need(condition, reason)`` skips locally and fails under CI."""
    return need
