"""The throwaway servers really serve, and really stop."""

from __future__ import annotations

import socket
import subprocess

import pytest

from services import PostgresServer, RedisServer


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_postgres_server_stops_and_starts(postgres_server: PostgresServer) -> None:
    query = ["psql", postgres_server.dsn, "-tAc", "select 40 + 2"]
    assert subprocess.run(query, capture_output=True, text=True, check=True).stdout.strip() == "42"
    postgres_server.stop()
    assert not _answers(postgres_server.port)
    postgres_server.start()
    assert subprocess.run(query, capture_output=True, text=True, check=True).stdout.strip() == "42"


def test_redis_server_stops_and_starts(redis_server: RedisServer) -> None:
    ping = ["redis-cli", "-p", str(redis_server.port), "ping"]
    assert subprocess.run(ping, capture_output=True, text=True, check=True).stdout.strip() == "PONG"
    redis_server.stop()
    assert not _answers(redis_server.port)
    redis_server.start()
    assert subprocess.run(ping, capture_output=True, text=True, check=True).stdout.strip() == "PONG"


def test_promtool_runs(promtool: str) -> None:
    result = subprocess.run([promtool, "--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("ci", ["true", ""])
def test_need_skips_locally_and_fails_in_ci(ci: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import services

    monkeypatch.setattr(services, "IN_CI", ci == "true")
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected):
        services.need(False, "a missing tool")
    services.need(True, "present")
