"""The server span built with the SDK: the stock middleware's attributes, ended after the app, 499s not errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tracing_support import memory_runtime, restore_logging, starlette_app  # noqa: F401 - restore_logging is a fixture

from ops_observe.correlation.context import correlation_id as correlation_id_var
from ops_observe.tracing.middleware import TracingMiddleware
from ops_observe.types import Message, Receive, Scope, Send

# Ours adds these; every other attribute must be the stock middleware's, key for key and value for value.
OURS_ONLY = {"http.route", "correlation_id"}


@pytest.fixture(params=["", "http", "http/dup"], ids=["old", "stable", "dup"])
def semconv(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``OTEL_SEMCONV_STABILITY_OPT_IN`` as set, read anew by the middlewares built in the test."""
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", request.param)
    monkeypatch.setattr(_OpenTelemetrySemanticConventionStability, "_initialized", False)
    monkeypatch.setattr(_OpenTelemetrySemanticConventionStability, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", {})
    yield request.param


def scope(path: str, query: bytes, method: str = "GET") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [
            (b"host", b"shop.test:8443"),
            (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) curl/8.5"),
            (b"accept", b"*/*"),
            (b"content-length", b"0"),
        ],
        "server": ("10.0.0.5", 8443),
        "client": ("192.0.2.7", 51234),
    }


def call(app: Any, request_scope: dict[str, Any]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def go() -> None:
        token = correlation_id_var.set("order-1234")
        try:
            await app(request_scope, receive, send)
        except RuntimeError:
            pass
        finally:
            correlation_id_var.reset(token)

    asyncio.run(go())
    return sent


def stock_span(request_scope: dict[str, Any]) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    call(
        OpenTelemetryMiddleware(starlette_app(), tracer_provider=provider, exclude_spans=["receive", "send"]),
        request_scope,
    )
    (span,) = exporter.get_finished_spans()
    provider.shutdown()
    return span


def our_span(request_scope: dict[str, Any]) -> ReadableSpan:
    runtime, exporter = memory_runtime(sample_ratio=1.0)
    call(TracingMiddleware(starlette_app(), runtime=runtime), request_scope)
    runtime.flush()
    (span,) = exporter.get_finished_spans()
    runtime.shutdown()
    return span


def test_under_an_active_span_the_request_span_is_internal_as_the_stock_middlewares() -> None:
    outer_provider = TracerProvider(shutdown_on_exit=False)
    with outer_provider.get_tracer("outer").start_as_current_span("outer server", kind=SpanKind.SERVER) as outer:
        stock = stock_span(scope("/items/42", b"", "GET"))
        ours = our_span(scope("/items/42", b"", "GET"))
    assert ours.kind is stock.kind is SpanKind.INTERNAL
    assert ours.parent is not None and ours.parent.span_id == outer.get_span_context().span_id
    # Without one, it is the hop's SERVER span (the test below compares the rest).
    assert our_span(scope("/items/42", b"", "GET")).kind is SpanKind.SERVER


@pytest.mark.parametrize(
    ("path", "query", "method", "status"),
    [
        ("/items/42", b"colour=red&size=%C3%A9", "GET", 200),
        ("/items/42", b"", "HEAD", 200),
        ("/fail", b"page=2", "GET", 500),  # the status attributes and error.type of a 5xx
        ("/items/7", b"", "PURGE", 405),  # a method outside the standard ones: _OTHER, and the original
    ],
)
def test_the_attributes_are_the_stock_middlewares_in_each_semconv_mode(
    semconv: str, path: str, query: bytes, method: str, status: int
) -> None:
    stock = stock_span(scope(path, query, method))
    ours = our_span(scope(path, query, method))
    assert dict(ours.attributes or {}).keys() - OURS_ONLY == dict(stock.attributes or {}).keys()
    assert {k: v for k, v in (ours.attributes or {}).items() if k not in OURS_ONLY} == dict(stock.attributes or {})
    assert ours.kind is stock.kind is SpanKind.SERVER
    assert ours.status.status_code is stock.status.status_code
    assert ours.attributes is not None and ours.attributes["correlation_id"] == "order-1234"
    # The attributes of the chosen mode are there: the comparison did not pass on two empty sets.
    key = "http.response.status_code" if semconv else "http.status_code"
    assert ours.attributes[key] == status


def test_a_redacted_query_differs_from_the_stock_span_in_the_query_only(semconv: str) -> None:
    stock = dict(stock_span(scope("/items/1", b"token=s3cr3t&page=2")).attributes or {})
    ours = dict(our_span(scope("/items/1", b"token=s3cr3t&page=2")).attributes or {})
    changed = {k for k in stock if stock[k] != ours[k]}
    assert changed and changed <= {"http.url", "url.full", "url.query", "http.target"}
    for key in changed:
        assert "s3cr3t" in str(stock[key]) and "s3cr3t" not in str(ours[key]) and "REDACTED" in str(ours[key])


def test_an_exception_raised_after_starlettes_500_is_on_the_span() -> None:
    """The stock middleware ends the span when the 500 completes, before the exception reaches it."""
    stock = stock_span(scope("/boom", b""))
    assert not stock.events  # the stock middleware's span, as it is: no exception
    ours = our_span(scope("/boom", b""))
    assert ours.status.status_code is StatusCode.ERROR
    assert ours.status.description == "RuntimeError: boom"
    (event,) = ours.events
    assert event.name == "exception" and event.attributes is not None
    assert event.attributes["exception.type"] == "RuntimeError"
    assert ours.attributes is not None and ours.attributes["http.status_code"] == 500
    assert ours.name == "GET /boom"


def _disconnecting_upload() -> Any:
    async def upload(request: Request) -> PlainTextResponse:
        body = await request.body()  # raises ClientDisconnect: the client went away mid-body
        return PlainTextResponse(f"{len(body)} bytes")

    return starlette_app([Route("/upload", upload, methods=["POST"])])


def run_gone_mid_body(app: Any) -> list[Message]:
    """A POST whose client goes away after the first part of its body."""
    messages = iter(
        [
            {"type": "http.request", "body": b"a" * 1000, "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: Message) -> None:
        sent.append(message)  # a server drops these once the client is gone; the app cannot tell

    async def go() -> None:
        try:
            await app(scope("/upload", b"", "POST"), receive, send)
        except Exception as exc:  # Starlette re-raises the ClientDisconnect after its 500
            assert type(exc).__name__ == "ClientDisconnect"

    asyncio.run(go())
    return sent


@pytest.mark.parametrize("ratio", [1.0, 0.0])
def test_a_client_gone_mid_body_is_a_499_never_an_error(ratio: float) -> None:
    runtime, exporter = memory_runtime(sample_ratio=ratio)
    sent = run_gone_mid_body(TracingMiddleware(_disconnecting_upload(), runtime=runtime))
    assert sent[0]["status"] == 500  # Starlette's answer to the ClientDisconnect, which a server drops
    runtime.flush()
    spans = exporter.get_finished_spans()
    runtime.shutdown()
    if ratio == 0.0:
        assert spans == ()  # the client's doing, not a failure: an unsampled request is not kept for it
        return
    (span,) = spans
    assert span.status.status_code is not StatusCode.ERROR
    assert span.attributes is not None and span.attributes["http.status_code"] == 499
    assert not span.events
    assert span.name == "POST /upload"


def test_a_client_gone_mid_response_keeps_the_status_it_saw() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"chunk 1\n", "more_body": True})
        assert (await receive())["type"] == "http.disconnect"

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        return None

    runtime, exporter = memory_runtime(sample_ratio=1.0)
    asyncio.run(TracingMiddleware(app, runtime=runtime)(scope("/stream", b""), receive, send))
    runtime.flush()
    (span,) = exporter.get_finished_spans()
    runtime.shutdown()
    assert span.attributes is not None and span.attributes["http.status_code"] == 200
    assert span.status.status_code is not StatusCode.ERROR


@pytest.mark.parametrize("ratio", [1.0, 0.0])
def test_sampled_and_after_the_fact_spans_have_the_same_shape(ratio: float) -> None:
    """A failed request's span is the same whether it was sampled or recorded after the fact."""
    runtime, exporter = memory_runtime(sample_ratio=ratio)
    call(TracingMiddleware(starlette_app(), runtime=runtime), scope("/boom", b"q=1"))
    runtime.flush()
    (span,) = exporter.get_finished_spans()
    runtime.shutdown()
    reference = our_span(scope("/boom", b"q=1"))
    assert span.name == reference.name == "GET /boom"
    assert dict(span.attributes or {}) == dict(reference.attributes or {})
    assert span.status.status_code is reference.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == [e.name for e in reference.events] == ["exception"]


def test_the_app_sees_the_unwrapped_send_and_receive() -> None:
    """No wrapper of our own per message: the app gets the request facts' callables only."""
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.extend([receive, send])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    runtime, exporter = memory_runtime(sample_ratio=1.0)
    asyncio.run(TracingMiddleware(app, runtime=runtime)(scope("/x", b""), receive, send))
    runtime.flush()
    (span,) = exporter.get_finished_spans()
    runtime.shutdown()
    assert [getattr(f, "__qualname__", "") for f in seen] == [
        "RequestFacts._observe_receive",
        "RequestFacts._observe_send",
    ]
    assert span.attributes is not None and span.attributes["http.status_code"] == 204


def test_captured_headers_are_the_stock_middlewares(monkeypatch: pytest.MonkeyPatch) -> None:
    """``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*``, read by both middlewares when they are built."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "accept,user-agent")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE", "content-type,content-length")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "accept")
    stock = dict(stock_span(scope("/items/42", b"")).attributes or {})
    ours = dict(our_span(scope("/items/42", b"")).attributes or {})
    assert stock["http.request.header.accept"] == ("[REDACTED]",)
    assert stock["http.response.header.content_type"] == ("text/plain; charset=utf-8",)
    assert {k: v for k, v in ours.items() if k not in OURS_ONLY} == stock
