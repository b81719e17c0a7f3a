"""A dead or hanging collector costs requests nothing: spans are dropped and counted, never waited for."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from tracing_support import (  # noqa: F401 - collector_fixture and restore_logging are fixtures
    ZipkinCollector,
    collector_fixture,
    restore_logging,
    tracing_settings,
    wrap,
)

from ops_observe.tracing.feature import STATE_KEY

from services import free_port

REQUESTS = 30


def dropped(app: Any, reason: str) -> float:
    value = app.suite.registry.get_sample_value("shop_tracing_spans_dropped_total", {"reason": reason})
    return value or 0.0


def timed_requests(app: Any, count: int) -> float:
    """Seconds ``count`` sequential requests took, all answered 200 (no shutdown: the queue stays as it is)."""

    async def run() -> float:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            start = time.perf_counter()
            for i in range(count):
                response = await client.get(f"/items/{i}")
                assert response.status_code == 200
            return time.perf_counter() - start

    return asyncio.run(run())


def test_a_dead_collector_costs_requests_nothing_and_every_lost_span_is_counted() -> None:
    dead = f"http://127.0.0.1:{free_port()}/api/v2/spans"
    app = wrap(tracing_settings(zipkin_endpoint=dead, export_timeout=1.0, schedule_delay=0.02))
    elapsed = timed_requests(app, REQUESTS)
    # Bound: were a request to wait for one export attempt, 30 of them would take many seconds.
    assert elapsed < 3.0, elapsed
    runtime = app.suite.state[STATE_KEY]
    assert runtime.flush()
    assert dropped(app, "export_failed") == REQUESTS
    asyncio.run(app.suite.shutdown())


def test_a_hanging_collector_costs_requests_nothing_and_the_full_queue_drops_are_counted(
    collector: ZipkinCollector,
) -> None:
    collector.hanging.set()  # accepts the export, never answers (until released)
    settings = tracing_settings(
        collector, export_timeout=2.0, max_queue_size=5, max_export_batch_size=1, shutdown_timeout=0.5
    )
    app = wrap(settings)
    elapsed = timed_requests(app, REQUESTS)
    # A request that waited for the stuck export would take the export timeout (2 s) by itself.
    assert elapsed < 2.0, elapsed
    # One span is stuck in the export, five wait in the queue: the rest were dropped on arrival.
    assert dropped(app, "queue_full") >= REQUESTS - 5 - 2
    start = time.perf_counter()
    asyncio.run(app.suite.shutdown())  # the lifespan shutdown's flush is bounded by shutdown_timeout
    assert time.perf_counter() - start < 0.5 + 1.0
    assert dropped(app, "shutdown") >= 1
    collector.release.set()


def test_the_drop_counter_is_served_on_the_metrics_endpoint() -> None:
    dead = f"http://127.0.0.1:{free_port()}/api/v2/spans"
    app = wrap(tracing_settings(zipkin_endpoint=dead, export_timeout=1.0))
    timed_requests(app, 2)
    app.suite.state[STATE_KEY].flush()

    async def scrape() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            return (await client.get("/metrics")).text

    text = asyncio.run(scrape())
    assert 'shop_tracing_spans_dropped_total{reason="export_failed"} 2.0' in text
    assert 'shop_tracing_spans_dropped_total{reason="queue_full"} 0.0' in text
    asyncio.run(app.suite.shutdown())
