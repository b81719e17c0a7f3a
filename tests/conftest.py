"""Fixtures shared by every test: throwaway PostgreSQL and Redis servers, promtool, and `need`.

The servers are real ones on free loopback ports, one per test, so that a test can stop and
restart them to simulate an outage without touching the machine's own services. A test that
needs a tool or service this machine lacks is skipped with the reason, except under ``CI=true``,
where a skip would hide a broken set-up, so it fails instead.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from services import PostgresServer, RedisServer, _as_postgres, _chown_postgres, _pg_bin, need

# Timing-based health checks and deadlines make property tests flaky on a loaded two-core machine;
# what a property test asserts is behaviour, never speed.
hypothesis_settings.register_profile(
    "ops_observe", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
hypothesis_settings.load_profile("ops_observe")


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


@pytest.fixture(autouse=True)
def _restore_process_logging() -> Iterator[None]:
    """Undo the JSON logging any wrapped app installed, and put the root logger's handlers and level
    back: loguru and ``logging`` are process-wide, every test leaves them as it found them."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    from ops_observe.logging import setup

    setup.reset()
    root.handlers = handlers
    root.setLevel(level)
