"""Wrapping leaves the app's own tracing alone: no phantom parent, a real "not sampled" one when dropping.

The app here traces into its own SDK ``TracerProvider`` (an in-memory exporter; never the global
provider), by hand and through the stock ``OpenTelemetryMiddleware`` inside it. Each case runs
under asyncio and trio.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tracing_support import (  # noqa: F401 - collector_fixture and restore_logging are fixtures
    ZipkinCollector,
    collector_fixture,
    restore_logging,
    starlette_app,
    tracing_settings,
    wrap,
)

from ops_observe import trace_request
from ops_observe.tracing.middleware import request_ids
from ops_observe.types import Message, Receive, Scope, Send

INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
INCOMING_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
INCOMING_SPAN_ID = 0xB7AD6B7169203331


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TracedApp:
    """A raw ASGI app tracing into its own provider: ``/ok`` answers 200, ``/fail`` 500.

    ``stock``: the app is wrapped inside by the stock ``OpenTelemetryMiddleware`` (its server span
    extracts its own parent from the headers); either way the handler starts a span of its own
    under the current context, and notes the current span and the ``traceparent`` it would send.
    """

    def __init__(self, stock: bool) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()  # the default sampler: ParentBased(ALWAYS_ON)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("the-app")
        self.seen: list[trace.SpanContext] = []
        self.outgoing: list[dict[str, str]] = []
        self.asgi: Any = OpenTelemetryMiddleware(self.handler, tracer_provider=self.provider) if stock else self.handler

    async def handler(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append(trace.get_current_span().get_span_context())
        with self.tracer.start_as_current_span("app-work"):
            carrier: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(carrier)
            self.outgoing.append(carrier)
            await anyio.sleep(0)
        status = 500 if scope["path"] == "/fail" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.asgi(scope, receive, send)

    def shape(self) -> list[tuple[str, Any]]:
        """Each finished span's name and parent: ``None`` (a root), ``("app", name)`` (a span of the
        app) or the parent's span id; the trace ids must be the incoming one or a root's own."""
        spans: tuple[ReadableSpan, ...] = self.exporter.get_finished_spans()
        names = {span.context.span_id: span.name for span in spans}
        out = []
        for span in spans:
            parent = span.parent
            if parent is None:
                out.append((span.name, None))
            elif parent.span_id in names:
                assert parent.trace_id == span.context.trace_id
                out.append((span.name, ("app", names[parent.span_id])))
            else:
                out.append((span.name, parent.span_id))
        self.exporter.clear()
        return sorted(out, key=repr)


async def get(app: Any, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        return await client.get(path, headers=headers or {})


# -- nothing recorded: nothing attached --------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("stock", [False, True], ids=["own-spans", "stock-middleware"])
@pytest.mark.parametrize("incoming", [None, INCOMING], ids=["root", "traceparent"])
@pytest.mark.parametrize("sample_ratio", [0.0, 1.0])
async def test_with_no_exporter_the_apps_spans_have_the_parents_they_have_unwrapped(
    stock: bool, incoming: str | None, sample_ratio: float
) -> None:
    headers = {"traceparent": incoming} if incoming else {}
    plain = TracedApp(stock)
    await get(plain, "/ok", headers)
    unwrapped = plain.shape()

    traced = TracedApp(stock)
    app = wrap({"service_name": "shop", "tracing": {"exporter": "none", "sample_ratio": sample_ratio}}, traced)
    try:
        response = await get(app, "/ok", headers)
        assert response.status_code == 200
        wrapped = traced.shape()
    finally:
        await app.suite.shutdown()

    assert wrapped == unwrapped
    if stock:  # the stock server span: a root, or the incoming parent's child
        assert ("GET /ok", INCOMING_SPAN_ID if incoming else None) in wrapped
    else:  # the app's span is a root, whatever came in: the app does not read headers itself
        assert wrapped == [("app-work", None)]
    # The app sees the current span it sees unwrapped (none, or the stock server span)...
    assert traced.seen[-1].is_valid is plain.seen[-1].is_valid is stock
    # ... and its outgoing calls carry its own trace, sampled by its own sampler.
    (outgoing,) = traced.outgoing
    _, trace_id, _, flags = outgoing["traceparent"].split("-")
    assert flags == plain.outgoing[-1]["traceparent"].split("-")[3] and int(flags, 16) & 1
    assert (trace_id == format(INCOMING_TRACE_ID, "032x")) is bool(incoming and stock)


@pytest.mark.anyio
async def test_with_no_exporter_the_log_ids_live_in_request_ids_only() -> None:
    seen: list[tuple[trace.SpanContext, trace.SpanContext]] = []

    async def ids(request: Request) -> PlainTextResponse:
        seen.append((trace.get_current_span().get_span_context(), request_ids.get()))
        return PlainTextResponse("ok")

    app = wrap({"service_name": "shop", "tracing": {"exporter": "none"}}, starlette_app([Route("/ids", ids)]))
    try:
        await get(app, "/ids")
        await get(app, "/ids", {"traceparent": INCOMING})
    finally:
        await app.suite.shutdown()
    (current_root, held_root), (current_child, held_child) = seen
    assert current_root == current_child == trace.INVALID_SPAN_CONTEXT
    assert held_root.is_valid and held_child.is_valid
    assert held_child.trace_id == INCOMING_TRACE_ID and held_child.span_id != INCOMING_SPAN_ID
    assert request_ids.get() == trace.INVALID_SPAN_CONTEXT


@pytest.mark.anyio
async def test_with_no_exporter_log_lines_still_carry_the_requests_ids() -> None:
    """The JSON renderer falls back to ``request_ids`` when no span is current."""
    import json
    import logging

    from ops_observe.logging import setup
    from ops_observe.logging.api import get_logger
    from ops_observe.settings import load_settings

    raw: list[str] = []
    held: list[trace.SpanContext] = []

    async def handler(request: Request) -> PlainTextResponse:
        held.append(request_ids.get())
        get_logger("shop").info("handling")
        return PlainTextResponse("ok")

    settings = {"service_name": "shop", "tracing": {"exporter": "none"}}
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    app = wrap(settings, starlette_app([Route("/h", handler)]))
    setup.configure(load_settings(settings), sink=raw.append)
    try:
        await get(app, "/h", {"traceparent": INCOMING})
        get_logger("shop").info("after")
    finally:
        await app.suite.shutdown()
        setup.reset()
        root.handlers = handlers
        root.setLevel(level)
    lines = {line["message"]: line for line in map(json.loads, raw)}
    (ids,) = held
    assert lines["handling"]["trace_id"] == format(INCOMING_TRACE_ID, "032x")
    assert lines["handling"]["span_id"] == format(ids.span_id, "016x")
    assert "trace_id" not in lines["after"]


# -- recorded, but dropped by the ratio: the W3C "not sampled" context -------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("stock", [False, True], ids=["own-spans", "stock-middleware"])
async def test_a_dropped_request_runs_in_a_not_sampled_context(collector: ZipkinCollector, stock: bool) -> None:
    traced = TracedApp(stock)
    app = wrap(tracing_settings(collector, sample_ratio=0.0), traced)
    try:
        response = await get(app, "/ok")
        assert response.status_code == 200
    finally:
        await app.suite.shutdown()
    (seen,) = traced.seen
    assert seen.is_valid and not seen.trace_flags.sampled
    assert int(traced.outgoing[-1]["traceparent"].split("-")[3], 16) & 1 == 0  # propagated as not sampled
    assert traced.exporter.get_finished_spans() == ()  # the app's parent-based sampler dropped them
    assert collector.valid_spans() == []


@pytest.mark.anyio
async def test_a_failed_dropped_request_is_still_exported_with_the_ids_the_app_saw(collector: ZipkinCollector) -> None:
    traced = TracedApp(stock=False)
    app = wrap(tracing_settings(collector, sample_ratio=0.0), traced)
    try:
        response = await get(app, "/fail")
        assert response.status_code == 500
    finally:
        await app.suite.shutdown()
    (seen,) = traced.seen
    assert not seen.trace_flags.sampled
    (span,) = collector.wait_for(1)
    assert span["kind"] == "SERVER" and "parentId" not in span
    assert (span["traceId"], span["id"]) == (format(seen.trace_id, "032x"), format(seen.span_id, "016x"))


@pytest.mark.anyio
async def test_held_children_of_a_failed_dropped_request_are_exported(collector: ZipkinCollector) -> None:
    seen: list[trace.SpanContext] = []

    @trace_request("inner")
    async def inner() -> None:
        await anyio.sleep(0)

    async def fail(request: Request) -> PlainTextResponse:
        seen.append(trace.get_current_span().get_span_context())
        await inner()
        return PlainTextResponse("failed", status_code=503)

    async def ok(request: Request) -> PlainTextResponse:
        await inner()
        return PlainTextResponse("ok")

    settings = tracing_settings(collector, sample_ratio=0.0, keep_error_children=True)
    app = wrap(settings, starlette_app([Route("/held", fail), Route("/fine", ok)]))
    try:
        await get(app, "/fine")  # a success: its held child goes nowhere
        await get(app, "/held", {"traceparent": INCOMING.replace("-01", "-00")})
    finally:
        await app.suite.shutdown()
    (parent,) = seen
    assert parent.trace_id == INCOMING_TRACE_ID and not parent.trace_flags.sampled
    spans = {span["name"].lower(): span for span in collector.wait_for(2)}
    assert set(spans) == {"get /held", "inner"}
    server, child = spans["get /held"], spans["inner"]
    assert server["parentId"] == format(INCOMING_SPAN_ID, "016x")
    assert child["parentId"] == server["id"] == format(parent.span_id, "016x")
    assert child["traceId"] == server["traceId"] == format(INCOMING_TRACE_ID, "032x")


@pytest.mark.anyio
async def test_a_kept_request_the_stock_middleware_cannot_read_records_its_server_span(
    collector: ZipkinCollector,
) -> None:
    """A query string that is not UTF-8 keeps the request off the stock middleware; the app's spans
    under it still get their parent exported (it is recorded after the fact, failed or not)."""
    traced = TracedApp(stock=False)
    app = wrap(tracing_settings(collector, sample_ratio=1.0), traced)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/ok",
        "raw_path": b"/ok",
        "query_string": b"q=\xff",
        "headers": [(b"host", b"shop.test")],
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
        "http_version": "1.1",
        "root_path": "",
    }
    try:
        await app(scope, receive, send)
    finally:
        await app.suite.shutdown()
    assert sent[0]["status"] == 200
    (seen,) = traced.seen
    assert seen.trace_flags.sampled
    (server,) = collector.wait_for(1)
    assert (server["traceId"], server["id"]) == (format(seen.trace_id, "032x"), format(seen.span_id, "016x"))
    (work,) = traced.exporter.get_finished_spans()
    assert work.parent is not None and work.parent.span_id == seen.span_id


# -- lifespan ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_lifespan_shutdown_of_a_traced_app_flushes(collector: ZipkinCollector, anyio_backend: str) -> None:
    """The shutdown hook runs the flush in a worker thread with anyio: under trio too."""
    app = wrap(tracing_settings(collector, sample_ratio=1.0, schedule_delay=30.0))
    response = await get(app, "/items/7")
    assert response.status_code == 200
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    # Exported by the shutdown flush, well before the 30 s schedule delay.
    (span,) = collector.valid_spans()
    assert span["name"].lower() == "get /items/{item_id}"
