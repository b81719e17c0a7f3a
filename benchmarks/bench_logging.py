"""JSON logging: ours (with and without redaction) against loguru ``serialize=True`` and structlog's JSON.

Two measurements, side by side in one run, every logger writing to ``os.devnull`` so that I/O is equal:

1. An access-log middleware over the same bare Starlette app (in-process, interleaved rounds,
   see ``harness.py``): ours, a plain structlog JSON access-log middleware, and the same middleware
   written on loguru with ``serialize=True``.
2. One application log line with five keyword fields.

Run: ``cd benchmarks && python bench_logging.py`` (or ``tox -e bench``).
"""

from __future__ import annotations

import copy
import gc
import logging
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import structlog
from loguru import logger as loguru_logger
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ops_observe.logging import setup
from ops_observe.logging.api import StructuredLogger
from ops_observe.logging.middleware import AccessLogMiddleware
from ops_observe.settings import load_settings
from ops_observe.types import ASGIApp, Message, Receive, Scope, Send

from floor import FloorMiddleware
from harness import measure, report


def make_app() -> Starlette:
    async def item(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/items/{item_id}", item)])


def _fields(scope: Scope, status: int, start: float) -> dict[str, Any]:
    headers = dict(scope["headers"])
    client = scope.get("client")
    return {
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "duration_ms": round((time.perf_counter() - start) * 1000.0, 3),
        "client": client[0] if client else None,
        "user_agent": headers.get(b"user-agent", b"").decode("latin-1"),
    }


class PeerAccessLog:
    """The access-log middleware a structlog or loguru user would write: pure ASGI, fields as kwargs."""

    def __init__(self, app: ASGIApp, log: Callable[..., Any]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            self.log("request", **_fields(scope, status, start))


def structlog_logger(devnull: Any) -> Any:
    """structlog's JSON set-up as its docs recommend for production, writing to ``devnull``."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(20),
        logger_factory=structlog.WriteLoggerFactory(file=devnull),
        cache_logger_on_first_use=True,
    )
    return structlog.get_logger("access")


def loguru_serialize_logger(devnull: Any) -> Any:
    """An independent loguru logger (``copy.deepcopy``, as loguru's docs show) with ``serialize=True``."""
    peer = copy.deepcopy(loguru_logger)
    peer.remove()
    peer.add(devnull, serialize=True, level="INFO")
    return peer


def time_calls(calls: dict[str, Callable[[], None]], n: int = 5000, rounds: int = 15) -> dict[str, float]:
    """Median µs per call of each function, over interleaved rounds."""
    for fn in calls.values():
        for _ in range(500):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in calls.items():
                start = time.perf_counter_ns()
                for _ in range(n):
                    fn()
                samples[name].append((time.perf_counter_ns() - start) / n / 1000.0)
            gc.collect()
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    devnull = open(os.devnull, "w")
    loguru_logger.remove()
    peer_loguru = loguru_serialize_logger(devnull)
    peer_structlog = structlog_logger(devnull)

    # Both of our variants side by side: each gets its own stream, handed to it explicitly.
    redacting = setup.build_stream(load_settings({"logging": {"redaction": {"enabled": True}}}), sink=devnull)
    plain = setup.build_stream(load_settings({"logging": {"redaction": {"enabled": False}}}), sink=devnull)
    # loguru.logger and logging routed into our stream: the path of lines that are not the suite's own.
    setup.configure(load_settings({}), sink=devnull)

    apps = {
        "bare": make_app(),
        "ops_observe, redaction on": AccessLogMiddleware(make_app(), stream=redacting),
        "ops_observe, redaction off": AccessLogMiddleware(make_app(), stream=plain),
        "structlog JSON (no redaction)": PeerAccessLog(make_app(), peer_structlog.info),
        "loguru serialize=True": PeerAccessLog(make_app(), lambda msg, **kw: peer_loguru.info(msg, **kw)),
        "floor (one json.dumps line of six fields, written and flushed)": FloorMiddleware(
            make_app(), request_id=False, sink=devnull
        ),
    }
    print(report("Access log: one line per request (GET /items/42, Starlette)", measure(apps, path="/items/42")))

    fields = {"amount": 100, "method": "stripe", "currency": "USD", "order_id": 42, "customer": "c_123"}
    ours_on = StructuredLogger("bench", redacting)
    stdlib = logging.getLogger("bench.stdlib")
    stdlib.setLevel(logging.INFO)  # the root logger stays at WARNING (wrap() lowers no level): say INFO here
    ours_off = StructuredLogger("bench", plain)
    lines: dict[str, Callable[[], None]] = {
        "ops_observe, redaction on": lambda: ours_on.info("Processing payment", **fields),
        "ops_observe, redaction off": lambda: ours_off.info("Processing payment", **fields),
        "loguru.logger into our stream (redaction on)": lambda: loguru_logger.info("Processing payment", **fields),
        "logging (stdlib) into our stream (redaction on)": lambda: stdlib.info("Processing payment", extra=fields),
        "structlog JSON (no redaction)": lambda: peer_structlog.info("Processing payment", **fields),
        "loguru serialize=True": lambda: peer_loguru.info("Processing payment", **fields),
    }
    print()
    print("### One application log line with five fields")
    print()
    print("| logger | µs/line |")
    print("| --- | ---: |")
    for name, value in time_calls(lines).items():
        print(f"| {name} | {value:.1f} |")
    setup.reset()
    devnull.close()


if __name__ == "__main__":
    main()
