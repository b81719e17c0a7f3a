"""Memory and cardinality: does the default stack stay bounded under raw paths and user ids without end?

One wrapped app takes ``--requests`` requests (1,000,000 by default) in-process, through its ASGI
callable as in ``harness.py``: the default stack (correlation, tracing at ratio 0.1 into an exporter
that drops the spans, the JSON access log to ``os.devnull``, metrics) over a Starlette app with one
route template, ``/items/{item_id}``. The requests cycle through 100,000 distinct raw paths, half
``/items/<n>`` (matched, 200) and half ``/nope/<n>`` (unmatched, 404), and 10,000 distinct user ids,
which an auth middleware inside the app turns into ``scope["user"]`` as Starlette's
``AuthenticationMiddleware`` does (the access log reads it there, see
``ops_observe.logging.request_info.user_id_of``).

The process RSS (psutil) is read after a warm-up of 10,000 requests and a ``gc.collect()``, then
every tenth of the run, and at the end; ``/metrics`` is fetched at the end and its size and series
counted. Targets: RSS grows by less than 20 MB after the warm-up; ``/metrics`` stays under 200 KB.

Run: ``cd benchmarks && python bench_memory.py`` (``--requests 100000`` for a quick check).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import psutil
from starlette.applications import Starlette
from starlette.authentication import SimpleUser
from starlette.requests import Request
from starlette.responses import PlainTextResponse

import ops_observe
from ops_observe.tracing.feature import STATE_KEY
from ops_observe.types import ASGIApp, Message, Receive, Scope, Send

from bench_tracing import DropExporter
from harness import http_scope

DISTINCT_PATHS = 100_000
DISTINCT_USERS = 10_000
WARMUP = 10_000
RSS_TARGET_MB = 20.0
METRICS_TARGET_KB = 200.0
USER_HEADER = b"x-user"


class HeaderAuth:
    """The app's own authentication: ``x-user`` becomes ``scope["user"]``, as Starlette's would set it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == USER_HEADER:
                    scope["user"] = SimpleUser(value.decode())
        await self.app(scope, receive, send)


def make_app() -> Starlette:
    """One route template behind the header auth; any other path is a 404 from Starlette's router."""

    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette()
    app.add_route("/items/{item_id}", item)
    app.add_middleware(HeaderAuth)
    return app


def wrapped() -> ops_observe.ObservedApp:
    """The default stack, access log to ``os.devnull``, spans sampled at 0.1 and dropped."""
    settings = {
        "service_name": "bench",
        "logging": {"sink": os.devnull},
        "tracing": {"exporter": "zipkin", "sample_ratio": 0.1},
    }
    app = ops_observe.wrap(make_app(), settings=settings)
    app.suite.state[STATE_KEY].queue.exporter = DropExporter()
    return app


def request_of(number: int) -> tuple[str, list[tuple[bytes, bytes]]]:
    """The path and headers of request ``number``: paths and users cycle independently of each other."""
    path_id = number % DISTINCT_PATHS
    path = f"/items/{path_id}" if path_id % 2 == 0 else f"/nope/{path_id}"
    user = f"user-{(number * 7) % DISTINCT_USERS}"
    return path, [(USER_HEADER, user.encode())]


async def call(app: ASGIApp, path: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> tuple[int, bytes]:
    """One request through ``app``: its status and body."""
    status = 0
    body: list[bytes] = []
    request: Message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(http_scope(path, headers=headers), receive, send)
    return status, b"".join(body)


def rss_mb(process: psutil.Process) -> float:
    """Resident set size in MB (10^6 bytes), after a full collection so that garbage does not count."""
    gc.collect()
    return process.memory_info().rss / 1e6


async def run(requests: int) -> dict[str, Any]:
    """Drive the requests; RSS after the warm-up, every tenth, at the end; the final ``/metrics``."""
    app = wrapped()
    process = psutil.Process()
    warmup = min(WARMUP, requests // 10)
    checkpoints = {warmup + (requests - warmup) * k // 10 for k in range(1, 11)}
    trend: list[tuple[int, float]] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    baseline = 0.0
    for number in range(requests):
        path, headers = request_of(number)
        status, _ = await call(app, path, headers)
        statuses[status] = statuses.get(status, 0) + 1
        done = number + 1
        if done == warmup:
            baseline = rss_mb(process)
            trend.append((done, baseline))
        elif done in checkpoints:
            trend.append((done, rss_mb(process)))
    elapsed = time.perf_counter() - start
    status, exposition = await call(app, "/metrics")
    app.suite.state[STATE_KEY].shutdown()
    series = [line for line in exposition.decode().splitlines() if line and not line.startswith("#")]
    return {
        "requests": requests,
        "warmup": warmup,
        "elapsed": elapsed,
        "statuses": statuses,
        "trend": trend,
        "baseline": baseline,
        "final": trend[-1][1],
        "metrics_status": status,
        "metrics_bytes": len(exposition),
        "series": len(series),
        "families": sum(1 for line in exposition.decode().splitlines() if line.startswith("# TYPE")),
    }


def report(figures: dict[str, Any]) -> str:
    """The figures as Markdown: the run, the RSS trend, the growth and ``/metrics`` against the targets."""
    requests = figures["requests"]
    paths = min(requests, DISTINCT_PATHS)
    users = min(requests, DISTINCT_USERS)
    growth = figures["final"] - figures["baseline"]
    kilobytes = figures["metrics_bytes"] / 1000
    statuses = ", ".join(f"{count:,} × {status}" for status, count in sorted(figures["statuses"].items()))
    lines = [
        f"### {requests:,} requests, {paths:,} distinct raw paths, {users:,} distinct user ids",
        "",
        f"{figures['elapsed']:.0f} s ({figures['elapsed'] / requests * 1e6:.0f} µs a request); responses: {statuses}.",
        "",
        "| requests done | RSS MB |",
        "| ---: | ---: |",
        *(f"| {done:,} | {rss:.1f} |" for done, rss in figures["trend"]),
        "",
        "| measure | value | target | met |",
        "| --- | ---: | ---: | --- |",
        f"| RSS growth after the {figures['warmup']:,}-request warm-up | {growth:+.1f} MB | < {RSS_TARGET_MB:.0f} MB"
        f" | {'yes' if growth < RSS_TARGET_MB else 'no'} |",
        f"| `/metrics` size (status {figures['metrics_status']}) | {kilobytes:.1f} KB | < {METRICS_TARGET_KB:.0f} KB"
        f" | {'yes' if kilobytes < METRICS_TARGET_KB else 'no'} |",
        f"| `/metrics` series (sample lines) / families | {figures['series']:,} / {figures['families']} | | |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests to send (default 1,000,000)")
    options = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # library log lines are not what is measured
    print(f"bench_memory: {options.requests:,} requests, about 100 µs each...", file=sys.stderr, flush=True)
    print(report(asyncio.run(run(options.requests))))


if __name__ == "__main__":
    main()
