"""The first-party postgres and redis checks under trio as well as asyncio, against the real servers.

Their async drivers (psycopg's ``AsyncConnection``, ``redis.asyncio``) need asyncio's loop; under
trio each check runs its blocking driver in a worker thread instead. Both ways must tell the truth
and stay within the runner's timeout when the server hangs.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from health_fixtures import Blackhole, blackhole_fixture  # noqa: F401 - pytest fixtures
from health_support import wrap

from services import PostgresServer, RedisServer

TIMEOUT = 0.5
MARGIN = 1.5  # a loaded two-core machine; a hang would take far longer


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def ready(app: Any) -> tuple[int, dict[str, Any], float]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        start = time.monotonic()
        response = await client.get("/health/detailed")
        return response.status_code, response.json(), time.monotonic() - start


@pytest.mark.anyio
async def test_postgres_and_redis_checks_pass_on_either_backend(
    postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    app = wrap(
        {
            "timeout": 5.0,
            "checks": {
                "db": {"plugin": "postgres", "dsn": postgres_server.dsn},
                "cache": {"plugin": "redis", "url": f"redis://{redis_server.host}:{redis_server.port}/0", "info": True},
            },
        }
    )
    status, body, _ = await ready(app)
    assert status == 200, body
    db, cache = body["checks"]["db"], body["checks"]["cache"]
    assert db["status"] == "pass" and db["details"]["server_version"] > 100000
    assert cache["status"] == "pass" and cache["details"]["memory"]["used_memory"] > 0
    assert "connected_clients" in cache["details"]["clients"]


@pytest.mark.anyio
async def test_stopped_servers_fail_their_checks_on_either_backend(
    postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    postgres_server.stop()
    redis_server.stop()
    app = wrap(
        {
            "timeout": 5.0,
            "checks": {
                "db": {"plugin": "postgres", "dsn": postgres_server.dsn},
                "cache": {"plugin": "redis", "url": f"redis://{redis_server.host}:{redis_server.port}/0"},
            },
        }
    )
    status, body, _ = await ready(app)
    assert status == 503, body
    for name in ("db", "cache"):
        check = body["checks"][name]
        assert check["status"] == "fail", check
        assert "OperationalError" in check["error"] or "ConnectionError" in check["error"], check


@pytest.mark.anyio
async def test_a_hung_server_costs_each_check_its_timeout_on_either_backend(blackhole: Blackhole) -> None:
    app = wrap(
        {
            "timeout": TIMEOUT,
            "checks": {
                "db": {"plugin": "postgres", "dsn": f"postgresql://nobody@127.0.0.1:{blackhole.port}/test"},
                "cache": {"plugin": "redis", "url": f"redis://127.0.0.1:{blackhole.port}/0"},
            },
        }
    )
    status, body, elapsed = await ready(app)
    assert status == 503, body
    assert {name: c["status"] for name, c in body["checks"].items()} == {"db": "fail", "cache": "fail"}
    assert elapsed < TIMEOUT + MARGIN
