"""The tracing middleware on its own: pass-through scopes, the up-front sampling decision, ids, propagation."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from tracing_support import memory_runtime, restore_logging, starlette_app  # noqa: F401 - restore_logging is a fixture

from ops_observe import get_span_id, get_trace_id
from ops_observe.secrets import is_secret_key, secret_words
from ops_observe.tracing.middleware import TracingMiddleware
from ops_observe.types import Message, Receive, Scope, Send


def run(app: Any, *requests: tuple[str, dict[str, Any]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            return [await client.get(path, **kwargs) for path, kwargs in requests]

    return asyncio.run(go())


@pytest.mark.parametrize("scope_type", ["lifespan", "websocket"])
def test_lifespan_and_websocket_pass_straight_through(scope_type: str) -> None:
    seen: list[tuple[Scope, Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    runtime, _ = memory_runtime()
    scope = {"type": scope_type, "path": "/ws", "headers": []}
    asyncio.run(TracingMiddleware(app, runtime=runtime)(scope, receive, send))
    assert seen == [(scope, receive, send)]  # the very same objects: nothing wrapped
    runtime.shutdown()


def test_an_excluded_path_passes_straight_through() -> None:
    seen: list[Send] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(send)

    async def send(message: Message) -> None:
        return None

    runtime, exporter = memory_runtime()
    middleware = TracingMiddleware(app, runtime=runtime, exclude_paths=["/metrics"])
    asyncio.run(middleware({"type": "http", "path": "/metrics", "headers": []}, send, send))  # type: ignore[arg-type]
    assert seen == [send]
    runtime.flush()
    assert exporter.get_finished_spans() == ()
    runtime.shutdown()


def _echo_ids_app() -> Any:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ids(request: Request) -> JSONResponse:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        return JSONResponse({"trace_id": get_trace_id(), "span_id": get_span_id(), "outgoing": carrier})

    return starlette_app([Route("/ids", ids)])


def test_an_unsampled_request_still_has_ids_and_propagates_them_unsampled() -> None:
    runtime, memory = memory_runtime(sample_ratio=0.0)
    app = TracingMiddleware(_echo_ids_app(), runtime=runtime)
    (response,) = run(app, ("/ids", {}))
    body = response.json()
    assert len(body["trace_id"]) == 32 and len(body["span_id"]) == 16
    version, trace_id, span_id, flags = body["outgoing"]["traceparent"].split("-")
    assert (trace_id, span_id) == (body["trace_id"], body["span_id"])
    assert int(flags, 16) & 1 == 0  # not sampled
    runtime.flush()
    assert memory.get_finished_spans() == ()
    runtime.shutdown()


@pytest.mark.parametrize("sample_ratio", [0.0, 1.0])
def test_with_nothing_recorded_no_span_is_attached_and_the_ids_are_the_log_lines_only(sample_ratio: float) -> None:
    """``exporter = "none"``: the app's OpenTelemetry context is left alone (no phantom parent, nothing
    propagated on our behalf); the request's ids are in ``request_ids``, for the log renderer."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ops_observe.tracing.middleware import request_ids

    async def ids(request: Request) -> JSONResponse:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        held = request_ids.get()
        return JSONResponse(
            {"trace_id": get_trace_id(), "outgoing": carrier, "ids": [held.trace_id, held.span_id, held.is_valid]}
        )

    runtime, memory = memory_runtime(sample_ratio=sample_ratio)
    runtime.record = False
    app = TracingMiddleware(starlette_app([Route("/ids", ids)]), runtime=runtime)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    root, child = run(app, ("/ids", {}), ("/ids", {"headers": {"traceparent": parent}}))
    for body in (root.json(), child.json()):
        assert body["outgoing"] == {}
        trace_id, span_id, valid = body["ids"]
        assert valid and trace_id and span_id
        assert body["trace_id"] == format(trace_id, "032x")  # get_trace_id() quotes what the log lines carry
    assert child.json()["ids"][0] == 0x0AF7651916CD43DD8448EB211C80319C  # the incoming trace id
    assert request_ids.get().is_valid is False  # reset after the request
    runtime.flush()
    assert memory.get_finished_spans() == ()
    runtime.shutdown()


def test_an_unsampled_incoming_parent_keeps_its_trace_id_downstream() -> None:
    runtime, memory = memory_runtime(sample_ratio=1.0)
    app = TracingMiddleware(_echo_ids_app(), runtime=runtime)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    (response,) = run(app, ("/ids", {"headers": {"traceparent": parent}}))
    body = response.json()
    assert body["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert body["outgoing"]["traceparent"].endswith("-00")
    runtime.flush()
    assert memory.get_finished_spans() == ()
    runtime.shutdown()


def test_a_failed_unsampled_request_is_recorded_with_the_ids_the_request_saw() -> None:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def broken(request: Request) -> JSONResponse:
        return JSONResponse({"trace_id": get_trace_id(), "span_id": get_span_id()}, status_code=502)

    runtime, memory = memory_runtime(sample_ratio=0.0)
    app = TracingMiddleware(starlette_app([Route("/orders/{order_id}", broken)]), runtime=runtime)
    (response,) = run(app, ("/orders/9", {}))
    runtime.flush()
    (span,) = memory.get_finished_spans()
    assert format(span.context.trace_id, "032x") == response.json()["trace_id"]
    assert format(span.context.span_id, "016x") == response.json()["span_id"]
    assert span.kind is SpanKind.SERVER and span.parent is None
    assert span.name == "GET /orders/{order_id}"
    assert span.attributes["http.route"] == "/orders/{order_id}"
    assert span.attributes["http.status_code"] == 502
    assert span.status.is_ok is False
    assert span.start_time < span.end_time
    runtime.shutdown()


def test_an_unmatched_path_is_named_by_method_only() -> None:
    runtime, memory = memory_runtime()
    run(TracingMiddleware(starlette_app(), runtime=runtime), ("/no/such/thing/42", {}))
    runtime.flush()
    (span,) = memory.get_finished_spans()
    assert span.name == "GET"
    assert "http.route" not in span.attributes
    runtime.shutdown()


@settings(max_examples=40, deadline=None)
@given(
    trace_id=st.integers(min_value=1, max_value=2**128 - 1),
    span_id=st.integers(min_value=1, max_value=2**64 - 1),
    sampled=st.booleans(),
    ratio=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
)
def test_the_up_front_decision_is_the_parent_based_ratio_samplers(
    trace_id: int, span_id: int, sampled: bool, ratio: float
) -> None:
    """Whatever the incoming context, a successful request is recorded iff the stock sampler keeps it."""
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    runtime, memory = memory_runtime(sample_ratio=ratio)
    header = f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"
    run(TracingMiddleware(starlette_app(), runtime=runtime), ("/items/1", {"headers": {"traceparent": header}}))
    runtime.flush()
    parent = NonRecordingSpan(SpanContext(trace_id, span_id, True, TraceFlags(int(sampled))))
    stock = ParentBased(TraceIdRatioBased(ratio)).should_sample(set_span_in_context(parent), trace_id, "GET")
    assert bool(memory.get_finished_spans()) == stock.decision.is_sampled()
    runtime.shutdown()


def test_roots_are_kept_at_about_the_ratio() -> None:
    runtime, memory = memory_runtime(sample_ratio=0.5)
    run(TracingMiddleware(starlette_app(), runtime=runtime), *[("/items/1", {})] * 400)
    runtime.flush()
    kept = len(memory.get_finished_spans())
    assert 140 <= kept <= 260  # 400 draws at p = 0.5: 200 ± 6 standard deviations
    runtime.shutdown()


def test_an_excluded_path_below_the_root_path_passes_straight_through() -> None:
    seen: list[Send] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(send)

    async def send(message: Message) -> None:
        return None

    runtime, _ = memory_runtime()
    middleware = TracingMiddleware(app, runtime=runtime, exclude_paths=["/metrics"])
    scope = {"type": "http", "path": "/api/metrics", "root_path": "/api", "headers": []}
    asyncio.run(middleware(scope, send, send))  # type: ignore[arg-type]
    assert seen == [send]
    runtime.shutdown()


_EXTRA = frozenset({"sid"})
# Names the vocabulary (or the extra word) would not mask: the rest of the query must stay as it was.
_NAMES = st.from_regex(r"[a-z]{1,8}", fullmatch=True).filter(lambda n: not is_secret_key(n, _EXTRA))


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(st.tuples(_NAMES, st.from_regex(r"[0-9]{0,6}", fullmatch=True)), max_size=4),
    after=st.lists(st.tuples(_NAMES, st.from_regex(r"[0-9]{0,6}", fullmatch=True)), max_size=4),
    name=st.sampled_from(
        ["token", "TOKEN", "Token", "to%6Ben", "sid", "api_key", "apiKey", "client_secret", "password"]
    ),
    # Never a name (lowercase), a value (digits) or a piece of the marker.
    secret=st.from_regex(r"[A-Z]{6,20}", fullmatch=True).filter(lambda s: s not in "REDACTED"),
    separator=st.sampled_from(["&", ";"]),
)
def test_clean_query_never_leaves_a_sensitive_value(
    before: list[tuple[str, str]], after: list[tuple[str, str]], name: str, secret: str, separator: str
) -> None:
    from urllib.parse import unquote

    from ops_observe.tracing.http import REDACTED, clean_query

    pairs = [f"{k}={v}" for k, v in before] + [f"{name}={secret}"] + [f"{k}={v}" for k, v in after]
    query = separator.join(pairs)
    cleaned = clean_query(query, _EXTRA)
    assert cleaned is not None
    assert secret not in cleaned and secret not in unquote(cleaned)
    assert f"{name}={REDACTED}" in cleaned
    for k, v in before + after:  # the rest is kept as it was
        assert f"{k}={v}" in cleaned


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # The one secrets vocabulary decides, as for settings masking and log redaction ...
        ("api_key=A&page=2", "api_key=REDACTED&page=2"),
        ("apiKey=A&x-auth-token=B", "apiKey=REDACTED&x-auth-token=REDACTED"),
        ("client_secret=A;db_password=B", "client_secret=REDACTED;db_password=REDACTED"),
        ("session_id=A&max_tokens=5", "session_id=REDACTED&max_tokens=5"),  # "tokens" is a count
        # ... and the default extra words add what only URLs carry.
        ("code=A&state=s", "code=REDACTED&state=s"),
        ("sig=A&key=B&author=me", "sig=REDACTED&key=REDACTED&author=me"),
    ],
)
def test_default_sensitive_params_are_the_vocabulary_plus_url_words(query: str, expected: str) -> None:
    from ops_observe.tracing.http import clean_query
    from ops_observe.tracing.settings import DEFAULT_SENSITIVE_PARAMS

    assert clean_query(query, secret_words(DEFAULT_SENSITIVE_PARAMS)) == expected


def test_a_query_without_secrets_is_left_alone() -> None:
    from ops_observe.tracing.http import clean_query

    assert clean_query("page=2&sort=name&author=me", secret_words(["sid"])) is None


# B3 headers are read too when its propagator is installed (the nooptionals env runs without it).
PROPAGATORS_UNDER_TEST = ["tracecontext", "baggage"] + (
    ["b3"] if importlib.util.find_spec("opentelemetry.propagators.b3") else []
)


@settings(max_examples=60, deadline=None)
@given(
    query=st.binary(max_size=40),
    traceparent=st.binary(max_size=80).filter(lambda b: b"\r" not in b and b"\n" not in b),
    b3=st.binary(max_size=60),
    ratio=st.sampled_from([0.0, 1.0]),
)
@example(query=b"", traceparent=b"\x80\\", b3=b"", ratio=1.0)  # unicode_escape raises on it
@example(query=b"", traceparent=b"\\\x80", b3=b"", ratio=1.0)  # unicode_escape warns on it
@example(query=b"q=\xff", traceparent=b"", b3=b"", ratio=1.0)  # not UTF-8
def test_any_query_string_and_propagation_headers_leave_the_request_unharmed(
    query: bytes, traceparent: bytes, b3: bytes, ratio: float
) -> None:
    """Whatever arrives from outside, the app answers and the ids stay well-formed."""
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["trace_id"] = get_trace_id()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    runtime, _ = memory_runtime(sample_ratio=ratio, propagators=PROPAGATORS_UNDER_TEST)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "raw_path": b"/x",
        "query_string": query,
        "headers": [(b"host", b"shop.test"), (b"traceparent", traceparent), (b"b3", b3), (b"baggage", b3)],
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
        "http_version": "1.1",
    }
    asyncio.run(TracingMiddleware(app, runtime=runtime)(scope, receive, send))
    assert sent[0]["status"] == 200
    assert seen["trace_id"] is not None and len(seen["trace_id"]) == 32
    runtime.shutdown()


def test_a_failed_request_with_a_non_utf8_query_is_still_recorded_with_a_printable_query() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("bad")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    runtime, memory = memory_runtime(sample_ratio=1.0)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "query_string": b"q=\xff\xfe&token=abc",
        "headers": [(b"host", b"shop.test")],
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
    }
    with pytest.raises(RuntimeError, match="bad"):
        asyncio.run(TracingMiddleware(app, runtime=runtime)(scope, receive, send))
    runtime.flush()
    (span,) = memory.get_finished_spans()
    assert "q=%FF%FE" in span.attributes["http.url"] or "q=\ufffd" in span.attributes["http.url"]
    assert "abc" not in span.attributes["http.url"]
    runtime.shutdown()


def test_a_header_the_stock_middleware_cannot_decode_does_not_break_a_sampled_request() -> None:
    """``traceparent: \\x80\\`` makes opentelemetry-instrumentation-asgi raise; our request still answers."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    def scope() -> dict[str, Any]:
        headers = [(b"host", b"shop.test"), (b"traceparent", b"\x80\\")]
        return {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": headers}

    runtime, _ = memory_runtime(sample_ratio=1.0)
    with pytest.raises(UnicodeDecodeError):  # the stock middleware, as it is
        asyncio.run(OpenTelemetryMiddleware(app, tracer_provider=runtime.provider)(scope(), receive, send))
    asyncio.run(TracingMiddleware(app, runtime=runtime)(scope(), receive, send))
    assert sent[-2]["status"] == 200
    runtime.shutdown()


@pytest.mark.parametrize("keep", [False, True])
def test_a_decorated_function_in_an_unsampled_request(keep: bool) -> None:
    """No span of its own (it would record nothing), unless children are kept for a failure."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ops_observe import trace_request

    @trace_request("inner")
    def inner() -> str | None:
        return get_span_id()

    async def handler(request: Request) -> JSONResponse:
        return JSONResponse({"request": get_span_id(), "inner": inner()})

    runtime, memory = memory_runtime(sample_ratio=0.0)
    app = TracingMiddleware(starlette_app([Route("/h", handler)]), runtime=runtime, keep_error_children=keep)
    (response,) = run(app, ("/h", {}))
    ids = response.json()
    assert (ids["inner"] == ids["request"]) is not keep
    runtime.flush()
    assert memory.get_finished_spans() == ()  # a success: nothing exported either way
    runtime.shutdown()
