"""Against throwaway PostgreSQL and Redis servers: outages, recovery, and no password anywhere."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest
from health_support import client, wrap

from ops_observe.app import ObservedApp

TIMEOUT = 2.0
MARGIN = 1.5


def ready(app: ObservedApp) -> tuple[httpx.Response, float]:
    async def go() -> httpx.Response:
        async with client(app) as c:
            return await c.get("/health/ready")

    started = time.monotonic()
    response = asyncio.run(go())
    return response, time.monotonic() - started


def statuses(response: httpx.Response) -> dict[str, str]:
    return {name: c["status"] for name, c in response.json()["checks"].items()}


def test_outage_of_redis_fails_readiness_and_recovery_restores_it(postgres_server: Any, redis_server: Any) -> None:
    app = wrap(
        {
            "timeout": TIMEOUT,
            "cache_seconds": 0,
            "checks": {
                "db": {"plugin": "postgres", "dsn": postgres_server.dsn},
                "cache": {"plugin": "redis", "url": redis_server.url, "info": True},
                "disk": {"plugin": "disk", "min_free_percent": 0, "warn_free_percent": None},
            },
        }
    )
    response, _ = ready(app)
    assert response.status_code == 200, response.text
    assert statuses(response) == {"db": "pass", "cache": "pass", "disk": "pass"}
    assert response.json()["checks"]["cache"]["details"]["clients"]["connected_clients"] >= 1

    redis_server.stop()
    response, elapsed = ready(app)
    assert response.status_code == 503
    assert elapsed < TIMEOUT + MARGIN
    assert statuses(response) == {"db": "pass", "cache": "fail", "disk": "pass"}
    assert "ConnectionError" in response.json()["checks"]["cache"]["error"]

    redis_server.start()
    response, _ = ready(app)
    assert response.status_code == 200
    assert statuses(response) == {"db": "pass", "cache": "pass", "disk": "pass"}


def test_outage_of_postgres_fails_only_its_check(postgres_server: Any, redis_server: Any) -> None:
    app = wrap(
        {
            "timeout": TIMEOUT,
            "cache_seconds": 0,
            "checks": {
                "db": {"plugin": "postgres", "dsn": postgres_server.dsn},
                "cache": {"plugin": "redis", "url": redis_server.url},
            },
        }
    )
    postgres_server.stop()
    response, elapsed = ready(app)
    assert response.status_code == 503
    assert elapsed < TIMEOUT + MARGIN
    assert statuses(response) == {"db": "fail", "cache": "pass"}
    postgres_server.start()
    assert ready(app)[0].status_code == 200


def test_postgres_pool_statistics_are_shown(postgres_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from psycopg_pool import AsyncConnectionPool

    async def go() -> dict[str, Any]:
        pool = AsyncConnectionPool(postgres_server.dsn, min_size=1, max_size=3, open=False)
        await pool.open(wait=True)
        module = types.ModuleType("health_test_pool")
        module.pool = pool  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "health_test_pool", module)
        app = wrap({"checks": {"db": {"plugin": "postgres", "pool": "health_test_pool:pool"}}})
        try:
            async with client(app) as c:
                return (await c.get("/health/ready")).json()
        finally:
            await pool.close()

    body = asyncio.run(go())
    assert body["status"] == "pass", body
    assert body["checks"]["db"]["details"]["pool"]["pool_max"] == 3


PASSWORD = "Sup3r-s3cret-pw"


def test_no_password_from_a_dsn_in_any_answer_or_log_line(
    postgres_server: Any, redis_server: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # The throwaway PostgreSQL trusts every password, so the check passes with one in its DSN;
    # the stopped Redis and a wrong port make the checks fail, so their errors are shown and logged.
    dsn = postgres_server.dsn.replace("postgres@", f"postgres:{PASSWORD}@")
    bad_dsn = f"host=127.0.0.1 port=1 user=postgres password={PASSWORD} dbname=postgres"
    redis_url = redis_server.url.replace("redis://", f"redis://:{PASSWORD}@")
    redis_server.stop()
    caplog.set_level(logging.INFO)
    app = wrap(
        {
            "timeout": TIMEOUT,
            "checks": {
                "db": {"plugin": "postgres", "dsn": dsn},
                "db_down": {"plugin": "postgres", "dsn": bad_dsn},
                # The server's error echoes the bad value: the password, which must be masked.
                "db_echo": {"plugin": "postgres", "dsn": dsn, "query": f"SELECT '{PASSWORD}'::int"},
                "cache": {"plugin": "redis", "url": redis_url},
                "api": {
                    "plugin": "http",
                    "url": f"http://admin:{PASSWORD}@127.0.0.1:1/",
                    "headers": {"Authorization": PASSWORD},
                },
            },
        }
    )

    async def go() -> list[httpx.Response]:
        async with client(app) as c:
            return [
                await c.get("/health/ready"),
                await c.get("/health/detailed"),
                await c.get("/readyz?verbose"),
                await c.get("/health/ready", headers={"accept": "application/health+json"}),
            ]

    responses = asyncio.run(go())
    assert [r.status_code for r in responses] == [503, 503, 503, 503]
    assert statuses(responses[0]) == {
        "db": "pass",
        "db_down": "fail",
        "db_echo": "fail",
        "cache": "fail",
        "api": "fail",
    }
    assert "invalid input syntax" in responses[0].json()["checks"]["db_echo"]["error"]
    assert "****" in responses[0].json()["checks"]["db_echo"]["error"]
    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert "db_down" in logged and "cache" in logged  # the failures were logged...
    for text in [r.text for r in responses] + [logged, repr(app.suite.state["health"].checks.checks["db"].instance)]:
        assert PASSWORD not in text  # ...without the password
