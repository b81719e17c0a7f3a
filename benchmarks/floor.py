"""The floor: the least a request can pay for being observed, to read every benchmark table against.

:class:`FloorMiddleware` is hand-written to do only the work no observability middleware can skip,
and nothing else: one request id (``os.urandom`` hex) in a response header, one counter increment
on a prometheus-client child resolved once, optionally one histogram observation, and one JSON line
(``json.dumps`` of six fields) written to a file object and flushed, as every access log does. No
settings, no redaction, no route templates, no context variables, no error handling beyond
recording in ``finally``. A row for it in each table shows how close a middleware is to the limit,
not only to its peers.

Each part can be switched off (``None``/``False``), so the per-middleware benchmarks get the floor of
their own feature: the id alone for correlation, counter + histogram for metrics, the line for logging.
"""

from __future__ import annotations

import json
import os
import time
from typing import IO, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from ops_observe.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FloorMiddleware", "floor_metrics"]

REQUEST_ID_HEADER = b"x-request-id"


def floor_metrics(registry: CollectorRegistry | None = None) -> tuple[Any, Any]:
    """A request counter child and a latency histogram child, labels resolved once, on their own registry."""
    registry = registry or CollectorRegistry()
    counter = Counter("floor_requests", "Requests.", ["method", "status"], registry=registry)
    histogram = Histogram("floor_request_duration_seconds", "Latency.", ["method"], registry=registry)
    return counter.labels(method="GET", status="200"), histogram.labels(method="GET")


class FloorMiddleware:
    """The minimal observing middleware: an id, a counter (and histogram), a JSON line.

    Args:
        app: The ASGI app to wrap.
        request_id: Put a fresh id in the ``x-request-id`` response header.
        counter: A counter child to ``inc()`` once a request, or ``None``.
        histogram: A histogram child to ``observe()`` the duration on, or ``None``.
        sink: A text file object that gets one JSON line a request, or ``None``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_id: bool = True,
        counter: Any = None,
        histogram: Any = None,
        sink: IO[str] | None = None,
    ) -> None:
        self.app = app
        self.request_id = request_id
        self.counter = counter
        self.histogram = histogram
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = os.urandom(16).hex() if self.request_id else None
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if request_id is not None:
                    message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            self._record(scope, status, start, request_id)

    def _record(self, scope: Scope, status: int, start: float, request_id: str | None) -> None:
        duration = time.perf_counter() - start
        if self.counter is not None:
            self.counter.inc()
        if self.histogram is not None:
            self.histogram.observe(duration)
        if self.sink is not None:
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round(duration * 1000.0, 3),
                "request_id": request_id,
                "client": scope["client"][0] if scope.get("client") else None,
            }
            self.sink.write(json.dumps(fields) + "\n")
            self.sink.flush()  # a log line is written when it reaches the sink, not when it sits in a buffer
