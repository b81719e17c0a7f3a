"""The warm-up at lifespan start-up: every check runs once, unreported, so that the first probe does not
report the one-off cost of first imports and connections; bounded by the timeouts, never failing start-up."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from health_fixtures import Blackhole, blackhole_fixture  # noqa: F401 - pytest fixtures
from health_support import Lifespan, client, wrap

import ops_observe
from ops_observe.health import HealthCheck, ServiceUnavailable
from ops_observe.health.runner import BoundCheck, CheckResult, HealthChecks
from ops_observe.health.service import HealthService

from services import free_port

FIRST_RUN_COST = 0.4


class ColdStart(HealthCheck):
    """Its first run blocks like a first import of a driver (holding the thread); later runs are instant."""

    def __init__(self) -> None:
        self.runs = 0
        self.lock = threading.Lock()

    def check(self) -> dict[str, int]:
        with self.lock:
            self.runs += 1
            if self.runs == 1:
                time.sleep(FIRST_RUN_COST)
        return {"runs": self.runs}


class Refused(HealthCheck):
    async def check(self) -> None:
        raise ServiceUnavailable("connection refused")


def service(*checks: BoundCheck, observed: list[CheckResult] | None = None) -> HealthService:
    settings = ops_observe.load_settings({"middleware": [], "health": {"handle_sigterm": False}})
    runner = HealthChecks(list(checks), observe=observed.append if observed is not None else None)
    return HealthService(settings, runner)


async def ready(health: HealthService) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=health.readiness)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        return dict((await c.get("/health/ready")).json())


def test_the_first_probe_after_start_up_reports_a_warm_run() -> None:
    cold = ColdStart()
    observed: list[CheckResult] = []
    health = service(BoundCheck("db", cold, plugin="cold"), observed=observed)

    async def go() -> dict[str, Any]:
        await health.startup()
        return await ready(health)

    body = asyncio.run(go())
    assert cold.runs == 2, "the warm-up ran it once, and the probe ran it again (nothing was cached)"
    assert body["checks"]["db"]["details"] == {"runs": 2}
    assert body["checks"]["db"]["duration_ms"] < FIRST_RUN_COST * 1000 / 2
    assert [r.details["runs"] for r in observed] == [2], "the warm-up's result never reaches the metrics"


def test_without_the_lifespan_the_first_probe_reports_the_cold_run() -> None:
    """What a server that skips the lifespan protocol (or ``ops-observe check``) shows: the honest cost."""
    health = service(BoundCheck("db", ColdStart(), plugin="cold"))
    body = asyncio.run(ready(health))
    assert body["checks"]["db"]["duration_ms"] >= FIRST_RUN_COST * 1000 * 0.9


def test_warm_up_keeps_no_result_and_runs_concurrently() -> None:
    first, second = ColdStart(), ColdStart()
    runner = HealthChecks([BoundCheck("a", first), BoundCheck("b", second)])

    async def go() -> tuple[dict[str, CheckResult], float]:
        started = time.perf_counter()
        results = await runner.warm_up()
        return results, time.perf_counter() - started

    results, elapsed = asyncio.run(go())
    assert list(results) == ["a", "b"] and all(r.status == "pass" for r in results.values())
    assert elapsed < FIRST_RUN_COST * 1.8, "the two ran together"
    assert runner._cache == {}


def test_a_hanging_or_failing_check_neither_fails_nor_stalls_start_up(
    blackhole: Blackhole, caplog: pytest.LogCaptureFixture
) -> None:
    timeout = 0.3
    app = wrap(
        {
            "handle_sigterm": False,
            "checks": {
                "hangs": {
                    "plugin": "tcp",
                    "host": "127.0.0.1",
                    "port": blackhole.port,
                    "send": "PING\r\n",
                    "expect": "+PONG",
                    "timeout": timeout,
                },
                "refused": {"plugin": "tcp", "host": "127.0.0.1", "port": free_port()},
                "disk": {"plugin": "disk", "critical": False},
            },
        }
    )

    async def go() -> tuple[float, int]:
        lifespan = Lifespan(app)
        started = time.perf_counter()
        with caplog.at_level(logging.INFO, logger="ops_observe.health"):
            await lifespan.start()
        took = time.perf_counter() - started
        records.extend(caplog.records)
        async with client(app) as c:
            status = (await c.get("/health/ready")).status_code
        await lifespan.stop()
        return took, status

    records: list[logging.LogRecord] = []
    took, status = asyncio.run(go())
    assert timeout * 0.9 <= took < timeout + 1.0, "start-up waited for the hanging check's timeout, no longer"
    assert status == 503
    warm_up = [r.getMessage() for r in records if "warm-up" in r.getMessage()]
    assert len(warm_up) == 1
    assert "hangs fail" in warm_up[0] and "timed out after 0.3 s" in warm_up[0]
    assert "refused fail" in warm_up[0] and "disk pass" in warm_up[0]
    # State changes are logged by the probes' runs (the 503 above), not by the warm-up's.
    assert not [r for r in records if r.getMessage().startswith("health check ")]
    probed = {r.getMessage().split(":")[0] for r in caplog.records if r.getMessage().startswith("health check ")}
    assert probed == {"health check hangs", "health check refused"}


def test_no_checks_no_warm_up(caplog: pytest.LogCaptureFixture) -> None:
    health = service()
    with caplog.at_level(logging.INFO, logger="ops_observe.health"):
        asyncio.run(health.startup())
    assert not [r for r in caplog.records if "warm-up" in r.getMessage()]


def test_warm_up_under_trio() -> None:
    trio = pytest.importorskip("trio")
    cold = ColdStart()
    health = service(BoundCheck("db", cold), BoundCheck("down", Refused()))

    async def go() -> dict[str, Any]:
        await health.startup()
        return await ready(health)

    body = trio.run(go)
    assert cold.runs == 2
    assert body["checks"]["db"]["duration_ms"] < FIRST_RUN_COST * 1000 / 2
    assert body["checks"]["down"]["status"] == "fail"


APP = textwrap.dedent(
    """
    import ops_observe

    async def inner(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    app = ops_observe.wrap(inner, settings={
        "middleware": ["logging"],
        "logging": {"root_level": "INFO"},  # the warm-up's summary is an INFO line
        "health": {"handle_sigterm": False, "checks": {
            "db": {"plugin": "postgres", "dsn": %r},
            "cache": {"plugin": "redis", "url": %r},
            "disk": {"plugin": "disk"},
        }},
    })
    """
)


def first_probe(tmp_path: Path, lifespan: str) -> tuple[dict[str, float], str]:
    """The check durations of the first ``/health/detailed`` of a fresh uvicorn, and what it wrote."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "warm_app:app", "--port", str(port), "--lifespan", lifespan,
         "--log-level", "warning"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:  # liveness touches no check: the first run of the checks is the probe below
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        checks = httpx.get(f"http://127.0.0.1:{port}/health/detailed", timeout=10).json()["checks"]
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=15)
    assert all(c["status"] == "pass" for c in checks.values()), checks
    return {name: c["duration_ms"] for name, c in checks.items()}, out.decode()


def test_under_uvicorn_the_first_probe_does_not_pay_for_first_imports(
    tmp_path: Path, postgres_server: Any, redis_server: Any
) -> None:
    """A fresh process: psycopg and redis are imported by the first run of their checks."""
    (tmp_path / "warm_app.py").write_text(APP % (postgres_server.dsn, redis_server.url))
    cold, _ = first_probe(tmp_path, "off")  # no lifespan, no warm-up: the first probe is the first run
    warm, output = first_probe(tmp_path, "on")
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    warm_up = [line["message"] for line in lines if "warm-up" in line["message"]]
    assert len(warm_up) == 1 and all(name in warm_up[0] for name in ("db pass", "cache pass", "disk pass")), output
    assert warm["db"] < cold["db"] and warm["cache"] < cold["cache"], (cold, warm)
