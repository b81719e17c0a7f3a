"""Per-request overhead of ASGI middleware, measured in-process so that only our code is timed.

Each app gets the same synthetic HTTP request many times, driven straight through its ASGI
callable (no sockets, no server), in interleaved rounds so that machine noise hits every app
alike. The reported figure is the median time per request; overhead is the difference from the
app named ``bare``.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ops_observe.types import ASGIApp, Message

Headers = Sequence[tuple[bytes, bytes]]


def http_scope(path: str = "/", method: str = "GET", headers: Headers = ()) -> dict[str, Any]:
    """A fresh HTTP scope, as uvicorn would hand it to the app."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"user-agent", b"bench/1.0"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _one_request(app: ASGIApp, path: str, headers: Headers) -> int:
    status = 0
    request: Message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(http_scope(path, headers=headers), receive, send)
    return status


async def _time(app: ASGIApp, n: int, path: str, headers: Headers) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        await _one_request(app, path, headers)
    return (time.perf_counter_ns() - start) / n / 1000.0


def measure(
    apps: Mapping[str, ASGIApp],
    *,
    path: str = "/",
    headers: Headers = (),
    requests: int = 2000,
    rounds: int = 15,
    warmup: int = 300,
) -> dict[str, float]:
    """Median microseconds per request for each app, over interleaved rounds."""

    async def run() -> dict[str, float]:
        for app in apps.values():
            await _time(app, warmup, path, headers)
        samples: dict[str, list[float]] = {name: [] for name in apps}
        gc.disable()
        try:
            for _ in range(rounds):
                for name, app in apps.items():
                    samples[name].append(await _time(app, requests, path, headers))
                gc.collect()
        finally:
            gc.enable()
        return {name: statistics.median(values) for name, values in samples.items()}

    return asyncio.run(run())


def report(title: str, results: Mapping[str, float], baselines: Iterable[tuple[str, str]] = ()) -> str:
    """A Markdown table of µs/request and overhead; ``baselines`` maps each app to its bare app.

    By default every app is compared with the one named ``bare``.
    """
    base_of = dict(baselines)
    lines = [f"### {title}", "", "| app | µs/request | overhead µs |", "| --- | ---: | ---: |"]
    for name, value in results.items():
        base = results.get(base_of.get(name, "bare"))
        overhead = "" if base is None or name == base_of.get(name, "bare") else f"{value - base:+.1f}"
        lines.append(f"| {name} | {value:.1f} | {overhead} |")
    return "\n".join(lines)
