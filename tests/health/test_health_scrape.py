"""A scrape of /metrics alone keeps ``<ns>_health_check_status`` current (what the "down" alerts read).

Prometheus scrapes only /metrics; nobody probes the health endpoints. So a scrape reruns the checks
whose result is older than ``health.cache_seconds``, within the checks' timeout.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from health_support import Lifespan, PlainApp, client
from prometheus_client.parser import text_string_to_metric_families

import ops_observe
from ops_observe.health.feature import SCRAPE_MARGIN, ScrapeRefresh
from ops_observe.health.runner import FAIL, BoundCheck, HealthChecks
from ops_observe.metrics import SCRAPE_HOOKS

from services import free_port


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port that accepts connections until the test closes it (the dependency going away)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock
    finally:
        sock.close()


def _settings(check_port: int, **metrics: Any) -> dict[str, Any]:
    return {
        "service_name": "svc",
        "middleware": ["metrics"],
        "metrics": metrics,
        "health": {
            "cache_seconds": 0,
            "handle_sigterm": False,
            "timeout": 1.0,
            "checks": {"dep": {"plugin": "tcp", "host": "127.0.0.1", "port": check_port}},
        },
    }


def _status(text: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "svc_health_check_status" and sample.labels == {"check": "dep"}:
                return float(sample.value)
    return None


def test_a_scrape_alone_updates_the_status_after_a_dependency_stops(listener: socket.socket) -> None:
    app = ops_observe.wrap(PlainApp(), settings=_settings(listener.getsockname()[1]))

    async def scrape() -> str:
        async with client(app) as c:
            response = await c.get("/metrics")
            assert response.status_code == 200
            return response.text

    assert _status(asyncio.run(scrape())) == 1.0  # run by the scrape: no probe was ever made
    listener.close()
    assert _status(asyncio.run(scrape())) == 0.0


def test_a_scrape_on_the_metrics_port_refreshes_on_the_apps_loop(listener: socket.socket) -> None:
    port = free_port()
    app = ops_observe.wrap(PlainApp(), settings=_settings(listener.getsockname()[1], port=port, host="127.0.0.1"))

    async def main() -> tuple[float | None, float | None]:
        lifespan = Lifespan(app)
        await lifespan.start()  # the exporter's thread starts, and the refresh learns the app's loop
        try:
            # A thread that is not anyio's asks, as Prometheus does; the loop stays free to run the check.
            first = await anyio.to_thread.run_sync(httpx.get, f"http://127.0.0.1:{port}/metrics")
            listener.close()
            second = await anyio.to_thread.run_sync(httpx.get, f"http://127.0.0.1:{port}/metrics")
        finally:
            await lifespan.stop()
        return _status(first.text), _status(second.text)

    assert asyncio.run(main()) == (1.0, 0.0)


class _Counting:
    """A check that counts its runs and sleeps ``delay`` seconds in each."""

    def __init__(self, delay: float = 0.0) -> None:
        self.runs = 0
        self.delay = delay

    async def check(self) -> None:
        self.runs += 1
        await anyio.sleep(self.delay)


def test_a_fresh_result_is_reused_and_a_stale_one_rerun() -> None:
    counting = _Counting()
    now = [100.0]
    checks = HealthChecks([BoundCheck("dep", counting, timeout=1.0)], cache_seconds=10, clock=lambda: now[0])
    refresh = ScrapeRefresh(checks)

    async def main() -> None:
        await anyio.to_thread.run_sync(refresh)
        await anyio.to_thread.run_sync(refresh)
        assert counting.runs == 1  # the second scrape came within cache_seconds
        now[0] += 10
        await anyio.to_thread.run_sync(refresh)
        assert counting.runs == 2

    anyio.run(main)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_hanging_check_holds_the_scrape_no_longer_than_its_timeout(backend: str) -> None:
    observed: list[str] = []
    checks = HealthChecks(
        [BoundCheck("slow", _Counting(delay=60), timeout=0.3)],
        cache_seconds=0,
        observe=lambda result: observed.append(result.status),
    )
    refresh = ScrapeRefresh(checks)

    async def main() -> float:
        started = time.monotonic()
        await anyio.to_thread.run_sync(refresh)
        return time.monotonic() - started

    took = anyio.run(main, backend=backend)
    assert took < 0.3 + SCRAPE_MARGIN + 1.0  # the timeout, the margin, and slack for a loaded machine
    assert observed == [FAIL]


def test_a_scrape_rendered_outside_any_loop_keeps_the_last_results() -> None:
    counting = _Counting()
    checks = HealthChecks([BoundCheck("dep", counting, timeout=1.0)], cache_seconds=0)
    refresh = ScrapeRefresh(checks)
    refresh()  # no worker thread, no lifespan seen: nothing to run the checks on, and no error
    assert counting.runs == 0


def test_no_checks_no_hook() -> None:
    app = ops_observe.wrap(PlainApp(), settings={"service_name": "svc", "middleware": ["metrics"]})
    assert not [h for h in app.suite.state.get(SCRAPE_HOOKS, []) if isinstance(h, ScrapeRefresh)]
