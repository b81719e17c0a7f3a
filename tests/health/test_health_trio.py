"""Health and /metrics under trio as well as asyncio (anyio's pytest plugin, both backends).

Starlette and FastAPI run on anyio, and users serve them with trio (hypercorn): nothing of the
runner may assume asyncio. Every test here runs once per backend.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from health_fixtures import Blackhole, blackhole_fixture  # noqa: F401 - pytest fixtures
from health_support import PlainApp, wrap

import ops_observe
from ops_observe.app import ObservedApp
from ops_observe.health import HealthCheck
from ops_observe.health.runner import TIMED_OUT, BoundCheck, HealthChecks
from ops_observe.metrics.exposition import MetricsEndpoint

from services import RedisServer

TIMEOUT = 0.5
MARGIN = 1.5  # a loaded two-core machine; a hang would take far longer


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """``wrap()`` with the metrics middleware installs the JSON log stream process-wide; take it back."""
    yield
    from ops_observe.logging.feature import uninstall

    uninstall()


class SleepsInThread(HealthCheck):
    """A sync check stuck on a dependency (until released at the end of the test)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def check(self) -> None:
        self.release.wait(30)


class Counting(HealthCheck):
    """Counts its runs; each takes ``delay`` seconds (an anyio sleep: any backend)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.runs = 0

    async def check(self) -> dict[str, int]:
        self.runs += 1
        await anyio.sleep(self.delay)
        return {"runs": self.runs}


def client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 123))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def redis_ping(redis: RedisServer) -> dict[str, Any]:
    """A real check of the Redis server: the core tcp check speaking RESP (the plugins are tested in test_plugins_trio)."""
    return {"plugin": "tcp", "host": redis.host, "port": redis.port, "send": "PING\r\n", "expect": "+PONG"}


class Lifespan:
    """Drives an app's lifespan on any backend: ``await start(group)``, ``await stop()``."""

    def __init__(self, app: ObservedApp) -> None:
        self.app = app
        self.to_app, self._app_in = anyio.create_memory_object_stream[dict[str, Any]](10)
        self._app_out, self.from_app = anyio.create_memory_object_stream[dict[str, Any]](10)

    async def start(self, group: anyio.abc.TaskGroup) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        group.start_soon(self.app, scope, self._app_in.receive, self._app_out.send)
        await self.to_app.send({"type": "lifespan.startup"})
        assert (await self.from_app.receive())["type"] == "lifespan.startup.complete"

    async def stop(self) -> None:
        await self.to_app.send({"type": "lifespan.shutdown"})
        assert (await self.from_app.receive())["type"] == "lifespan.shutdown.complete"
        for stream in (self.to_app, self._app_in, self._app_out, self.from_app):
            stream.close()


@pytest.mark.anyio
async def test_ready_passes_with_a_real_redis_check(redis_server: RedisServer) -> None:
    app = wrap({"timeout": TIMEOUT, "checks": {"redis": redis_ping(redis_server)}})
    async with client(app) as c:
        ready = await c.get("/health/ready")
        live = await c.get("/health")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "pass"
    assert body["checks"]["redis"]["status"] == "pass"
    assert body["checks"]["redis"]["details"] == {"address": f"{redis_server.host}:{redis_server.port}"}
    assert live.status_code == 200 and live.json()["status"] == "pass"


@pytest.mark.anyio
async def test_hung_checks_fail_within_their_timeout_and_the_others_answer(
    redis_server: RedisServer, blackhole: Blackhole
) -> None:
    app = wrap(
        {
            "timeout": TIMEOUT,
            "cache_seconds": 0,
            "checks": {
                "redis": redis_ping(redis_server),
                "hole": {"plugin": "tcp", "host": "127.0.0.1", "port": blackhole.port, "expect": "+PONG"},
            },
        }
    )
    service = app.suite.state["health"]
    stuck = SleepsInThread()
    service.checks = HealthChecks(
        [*service.checks.checks.values(), BoundCheck("stuck", stuck, timeout=TIMEOUT)], cache_seconds=0
    )
    try:
        started = time.monotonic()
        async with client(app) as c:
            ready = await c.get("/health/ready")
        elapsed = time.monotonic() - started
    finally:
        stuck.release.set()
    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert ready.json()["status"] == "fail"
    assert {name: c["status"] for name, c in checks.items()} == {"redis": "pass", "hole": "fail", "stuck": "fail"}
    assert checks["stuck"]["error"] == TIMED_OUT.format(timeout=TIMEOUT)
    assert checks["stuck"]["duration_ms"] >= TIMEOUT * 1000 * 0.8
    # Concurrently, each bounded: the whole answer within one timeout (plus a margin), not the sum.
    assert elapsed < TIMEOUT + MARGIN


@pytest.mark.anyio
async def test_detailed_reads_the_system_facts_beside_the_checks(redis_server: RedisServer) -> None:
    app = wrap({"timeout": TIMEOUT, "checks": {"redis": redis_ping(redis_server)}})
    async with client(app) as c:
        detailed = await c.get("/health/detailed")
    assert detailed.status_code == 200, detailed.text
    body = detailed.json()
    assert body["checks"]["redis"]["status"] == "pass"
    assert "error" not in body["system"] and {"uptime", "version", "python", "process"} <= set(body)


@pytest.mark.anyio
async def test_concurrent_probes_share_one_run_and_a_prober_going_away_does_not_cancel_it() -> None:
    counting = Counting(delay=0.2)
    checks = HealthChecks([BoundCheck("dep", counting)], cache_seconds=60)
    statuses: list[str] = []

    async def probe() -> None:
        statuses.append((await checks.run())["dep"].status)

    async def leaves_early() -> None:
        with anyio.move_on_after(0.05):  # a client that disconnects
            await checks.run()

    async with anyio.create_task_group() as group:
        group.start_soon(leaves_early)
        await anyio.sleep(0.01)  # it asked first: the run is its own
        for _ in range(50):
            group.start_soon(probe)  # these join the run in flight
    assert statuses == ["pass"] * 50
    assert counting.runs == 1


@pytest.mark.anyio
async def test_ready_requests_under_load_probe_the_dependency_once() -> None:
    counting = Counting(delay=0.1)
    app = wrap({"cache_seconds": 60})
    app.suite.state["health"].checks = HealthChecks([BoundCheck("dep", counting)], cache_seconds=60)
    codes: list[int] = []
    async with client(app) as c:

        async def ready() -> None:
            codes.append((await c.get("/health/ready")).status_code)

        async with anyio.create_task_group() as group:
            for _ in range(100):
                group.start_soon(ready)
    assert codes == [200] * 100
    assert counting.runs == 1


@pytest.mark.anyio
async def test_sigterm_drains_and_is_handed_on_from_the_loop() -> None:
    app = wrap({"drain_seconds": 0.1})
    received: list[tuple[int, bool]] = []

    def recorder(signum: int, frame: Any) -> None:
        received.append((signum, threading.current_thread() is threading.main_thread()))

    previous = signal.signal(signal.SIGTERM, recorder)
    try:
        async with anyio.create_task_group() as group, client(app) as c:
            lifespan = Lifespan(app)
            await lifespan.start(group)
            assert (await c.get("/health/ready")).status_code == 200
            signal.raise_signal(signal.SIGTERM)
            assert (await c.get("/health/ready")).status_code == 503
            assert (await c.get("/health")).status_code == 200
            assert received == []  # still draining
            with anyio.fail_after(5):
                while not received:
                    await anyio.sleep(0.02)
            await lifespan.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [(signal.SIGTERM, True)]  # once, on the loop's (main) thread


@pytest.mark.anyio
async def test_metrics_are_rendered_in_a_worker_thread_with_gzip_and_openmetrics() -> None:
    settings = {"service_name": "svc", "middleware": ["metrics"], "health": {}}
    app = ops_observe.wrap(PlainApp(), settings=settings)
    endpoint = app.suite.endpoints["/metrics"]
    assert isinstance(endpoint, MetricsEndpoint)
    threads: list[str] = []
    exposition = endpoint.exposition
    exposition.before_scrape = (*exposition.before_scrape, lambda: threads.append(threading.current_thread().name))
    async with client(app) as c:
        assert (await c.get("/app")).status_code == 200
        plain = await c.get("/metrics", headers={"Accept-Encoding": "gzip"})
        om = await c.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        head = await c.head("/metrics")
    assert plain.status_code == 200
    assert plain.headers["content-encoding"] == "gzip"
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "svc_http_requests" in plain.text
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")
    assert head.status_code == 200 and head.content == b""
    assert len(threads) == 3
    assert threading.main_thread().name not in threads  # never on the event loop's thread


@pytest.mark.anyio
async def test_metrics_access_rules_hold_off_the_loop_too() -> None:
    settings = {"service_name": "svc", "middleware": ["metrics"], "metrics": {"bearer_token": "t0k"}}
    app = ops_observe.wrap(PlainApp(), settings=settings)
    async with client(app) as c:
        refused = await c.get("/metrics")
        allowed = await c.get("/metrics", headers={"Authorization": "Bearer t0k"})
        posted = await c.post("/metrics", headers={"Authorization": "Bearer t0k"})
    assert refused.status_code == 403
    assert allowed.status_code == 200 and "svc_" in allowed.text
    assert posted.status_code == 405
