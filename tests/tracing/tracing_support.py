"""What the tracing tests share: a loopback Zipkin collector that validates every span, apps, requests.

The collector is a real HTTP server on a free loopback port, in a thread. Every span it receives
is validated against the ``Span`` definition of the Zipkin v2 API (``shared/specs/zipkin2-api.yaml``,
its ``#/definitions/...`` references resolved); an invalid span is kept in ``errors`` and fails
the test that reads the spans. It can also hang (accept the request and never answer, until
released) or be stopped (nothing listens: a dead collector).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import ops_observe

SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "zipkin2-api.yaml"


def span_validator() -> jsonschema.protocols.Validator:
    """A validator for one Zipkin v2 span: the spec's Span with every ``#/definitions`` ref resolvable."""
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    schema = {"$ref": "#/definitions/Span", "definitions": spec["definitions"]}
    # Swagger 2.0 schemas are JSON Schema draft 4.
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


class ZipkinCollector:
    """A loopback Zipkin v2 ``POST /api/v2/spans`` endpoint that validates what it receives."""

    def __init__(self) -> None:
        self.validator = span_validator()
        self.spans: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.posts = 0
        self.hanging = threading.Event()  # set: requests wait for `release`
        self.release = threading.Event()
        self._lock = threading.Condition()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if collector.hanging.is_set():
                    collector.release.wait(30)
                collector._receive(self.path, body)
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/api/v2/spans"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _receive(self, path: str, body: bytes) -> None:
        with self._lock:
            self.posts += 1
            if path != "/api/v2/spans":
                self.errors.append(f"POST to {path}")
            try:
                spans = json.loads(body)
            except ValueError as exc:
                self.errors.append(f"not JSON: {exc}")
                spans = []
            if not isinstance(spans, list):
                self.errors.append(f"not a list of spans: {spans!r}")
                spans = []
            for span in spans:
                for error in self.validator.iter_errors(span):
                    self.errors.append(f"{error.message} in {span}")
                self.spans.append(span)
            self._lock.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The spans received, once there are at least ``count`` (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.spans) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"the collector got {len(self.spans)} spans, expected {count}: {self.spans}")
                self._lock.wait(left)
            return self.valid_spans()

    def valid_spans(self) -> list[dict[str, Any]]:
        """Every span received so far; fails the test if one broke the Zipkin schema."""
        assert not self.errors, self.errors
        return list(self.spans)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class OtlpReceiver:
    """A loopback OTLP/HTTP ``POST /v1/traces`` endpoint that decodes the protobuf requests it gets."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.requests: list[Any] = []
        self.content_types: list[str] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver._lock:
                    receiver.content_types.append(self.headers.get("content-type", ""))
                    receiver.requests.append(request)
                    receiver._lock.notify_all()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self, count: int, timeout: float = 10.0) -> list[tuple[Any, Any]]:
        """``(resource, span)`` pairs received, once there are at least ``count``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [
                    (rs.resource, span)
                    for request in self.requests
                    for rs in request.resource_spans
                    for ss in rs.scope_spans
                    for span in ss.spans
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"the OTLP receiver got {len(found)} spans, expected {count}")
                self._lock.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- apps and requests ----------------------------------------------------------------------------


def starlette_app(extra: list[Route] | None = None) -> Starlette:
    """``/items/{item_id}`` answers 200, ``/fail`` 500, ``/boom`` raises; plus any ``extra`` routes."""

    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"item {request.path_params['item_id']}")

    async def fail(request: Request) -> PlainTextResponse:
        return PlainTextResponse("failed", status_code=500)

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("boom")

    routes = [Route("/items/{item_id}", item), Route("/fail", fail), Route("/boom", boom), *(extra or [])]
    return Starlette(routes=routes)


def tracing_settings(collector: ZipkinCollector | None = None, **tracing: Any) -> dict[str, Any]:
    """Settings for an app that exports to ``collector`` (or ``tracing["zipkin_endpoint"]``), fast."""
    section: dict[str, Any] = {"exporter": "zipkin", "schedule_delay": 0.05, "export_timeout": 2.0}
    if collector is not None:
        section["zipkin_endpoint"] = collector.endpoint
    section.update(tracing)
    return {"service_name": "shop", "version": "1.2.3", "environment": "test", "tracing": section}


Requester = Callable[..., list[httpx.Response]]


def run_requests(app: Any, *requests: tuple[str, dict[str, Any]]) -> list[httpx.Response]:
    """Send ``(path, kwargs)`` GETs through the wrapped app in-process, then run its lifespan shutdown.

    The shutdown flushes the export queue, as a server stopping would.
    """

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            responses = [await client.get(path, **kwargs) for path, kwargs in requests]
        await app.suite.shutdown()
        return responses

    return asyncio.run(run())


def by_name(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {span["name"].lower(): span for span in spans}


@pytest.fixture(name="collector")
def collector_fixture() -> Iterator[ZipkinCollector]:
    """A loopback Zipkin collector, for one test."""
    server = ZipkinCollector()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """``wrap()`` installs the process-wide JSON log stream; put loguru and logging back after each test."""
    yield
    from ops_observe.logging import feature

    uninstall = getattr(feature, "uninstall", None)
    if uninstall is not None:
        uninstall()


def wrap(settings: dict[str, Any], app: Any = None) -> Any:
    """``ops_observe.wrap`` of the test app (or ``app``)."""
    return ops_observe.wrap(app if app is not None else starlette_app(), settings=settings)


def memory_runtime(**tracing: Any) -> tuple[Any, Any]:
    """A real tracing runtime exporting to the SDK's in-memory exporter: ``(runtime, exporter)``.

    Spans reach the exporter through the export queue's thread: call ``runtime.flush()`` first.
    """
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ops_observe.settings import load_settings
    from ops_observe.tracing.provider import build_runtime, set_latest

    exporter = InMemorySpanExporter()
    section = {"exporter": "console", "schedule_delay": 0.05, **tracing}
    runtime = build_runtime(load_settings({"service_name": "shop", "tracing": section}), exporter=exporter)
    set_latest(runtime)
    return runtime, exporter
