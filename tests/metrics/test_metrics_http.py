"""The HTTP metrics middleware on Starlette apps and raw ASGI apps."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_support import (
    NS,
    call,
    label_values,
    restore_logging,  # noqa: F401 - an autouse fixture
    run,
    samples,
    scrape,
    value,
    wrap,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, Router

from ops_observe.metrics.catalog import Catalog
from ops_observe.metrics.http import BATCH
from ops_observe.metrics.middleware import OTHER_METHOD, STANDARD_METHODS, UNMATCHED, MetricsMiddleware
from ops_observe.metrics.settings import MetricsSettings
from ops_observe.types import Message, Receive, Scope, Send


def starlette_app() -> Starlette:
    async def item(request: Request) -> Response:
        return PlainTextResponse(f"item {request.path_params['item_id']}")

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    async def echo(request: Request) -> Response:
        return Response(await request.body())

    async def user(request: Request) -> Response:
        return PlainTextResponse("u")

    async def raw_static(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("static")(scope, receive, send)

    inner = Starlette(routes=[Route("/users/{user_id}", user)])
    router = Router(routes=[Route("/deep/{x}", user)])
    return Starlette(
        routes=[
            Route("/items/{item_id:int}", item, methods=["GET"]),
            Route("/boom", boom),
            Route("/echo", echo, methods=["POST"]),
            Mount("/api", app=inner),
            Mount("/t/{tenant}", routes=[Mount("/r", app=router)]),
            Mount("/static", app=raw_static),
        ]
    )


def test_exact_counts_and_route_templates() -> None:
    app = wrap(starlette_app())
    statuses = call(
        app,
        "/items/1",
        "/items/2",
        "/items/3",
        "/api/users/42",
        "/t/acme/r/deep/9",
        "/static/css/site.css",
        "/nope",
        "/api/nope",
        ("OPTIONS", "/items/1"),
        ("DELETE", "/items/1"),
    )
    assert statuses == [200, 200, 200, 200, 200, 200, 404, 404, 405, 405]
    text = scrape(app)
    total = f"{NS}_http_requests_total"
    assert value(text, total, method="GET", endpoint="/items/{item_id}", status="200") == 3
    assert value(text, total, method="GET", endpoint="/api/users/{user_id}", status="200") == 1
    assert value(text, total, method="GET", endpoint="/t/{tenant}/r/deep/{x}", status="200") == 1
    assert value(text, total, method="GET", endpoint="/static/{path}", status="200") == 1
    assert value(text, total, method="GET", endpoint=UNMATCHED, status="404") == 2
    assert value(text, total, method="OPTIONS", endpoint="/items/{item_id}", status="405") == 1
    assert value(text, total, method="DELETE", endpoint="/items/{item_id}", status="405") == 1
    # Never a raw path, whatever was requested.
    endpoints = label_values(text, total, "endpoint")
    assert not any(e in endpoints for e in ("/items/1", "/nope", "/api/nope", "/t/acme/r/deep/9"))
    duration = f"{NS}_http_request_duration_seconds_count"
    assert value(text, duration, method="GET", endpoint="/items/{item_id}", status="200") == 3
    assert value(text, f"{NS}_http_requests_in_progress", method="GET") == 1  # the scrape itself


def test_unhandled_exception_counts_as_500_and_propagates() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("missing")

    app = wrap(failing)
    with pytest.raises(KeyError):
        run(app({"type": "http", "method": "GET", "path": "/x", "headers": []}, _receive_nothing, _discard))
    text = scrape(app)
    assert value(text, f"{NS}_http_requests_total", method="GET", endpoint=UNMATCHED, status="500") == 1
    errors = f"{NS}_http_errors_total"
    assert value(text, errors, method="GET", endpoint=UNMATCHED, status="500", error_type="KeyError") == 1
    assert value(text, f"{NS}_http_requests_in_progress", method="GET") == 1  # the scrape itself


def test_starlette_500_route() -> None:
    app = wrap(starlette_app())
    assert call(app, "/boom") == [500]
    text = scrape(app)
    assert value(text, f"{NS}_http_requests_total", method="GET", endpoint="/boom", status="500") == 1
    errors = f"{NS}_http_errors_total"
    assert value(text, errors, method="GET", endpoint="/boom", status="500", error_type="RuntimeError") == 1


def test_cancellation_is_counted_and_propagates() -> None:
    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(10)

    app = wrap(slow)

    _cancel_midway(app)
    text = scrape(app)
    assert value(text, f"{NS}_http_requests_total", method="GET", endpoint=UNMATCHED, status="499") == 1
    assert value(text, f"{NS}_http_requests_in_progress", method="GET") == 1  # the scrape itself


def test_methods_outside_the_standard_set_collapse() -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("ok")(scope, receive, send)

    app = wrap(ok)
    call(app, ("PROPFIND", "/"), ("BREW", "/"), ("X" * 300, "/"), ("GET", "/"))
    text = scrape(app)
    methods = label_values(text, f"{NS}_http_requests_total", "method")
    assert methods == {"GET", OTHER_METHOD}
    assert value(text, f"{NS}_http_requests_total", method=OTHER_METHOD, endpoint=UNMATCHED, status="200") == 3


def test_sizes_are_the_bytes_actually_sent_and_received() -> None:
    async def chunks() -> Any:
        for part in (b"abc", b"", b"defgh"):
            yield part

    async def streamed(request: Request) -> Response:
        # A wrong Content-Length would fool a header-based count; the bytes sent are 8.
        return StreamingResponse(chunks(), media_type="application/octet-stream")

    async def echo(request: Request) -> Response:
        return Response(await request.body())

    app = wrap(Starlette(routes=[Route("/s", streamed), Route("/e", echo, methods=["POST"])]))

    async def post() -> None:
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/e", content=b"x" * 1234)
            assert response.content == b"x" * 1234

    run(post())
    call(app, "/s")
    text = scrape(app)
    labels = {"method": "GET", "endpoint": "/s", "status": "200"}
    assert value(text, f"{NS}_http_response_size_bytes_sum", **labels) == 8
    assert value(text, f"{NS}_http_request_size_bytes_sum", **labels) == 0
    post_labels = {"method": "POST", "endpoint": "/e", "status": "200"}
    assert value(text, f"{NS}_http_request_size_bytes_sum", **post_labels) == 1234
    assert value(text, f"{NS}_http_response_size_bytes_sum", **post_labels) == 1234


def test_streams_stay_out_of_the_latency_histogram() -> None:
    async def events() -> Any:
        for i in range(3):
            yield f"data: {i}\n\n"
            await asyncio.sleep(0.01)

    async def sse(request: Request) -> Response:
        return StreamingResponse(events(), media_type="text/event-stream")

    async def plain(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = wrap(Starlette(routes=[Route("/events", sse), Route("/plain", plain)]))
    call(app, "/events", "/plain")
    text = scrape(app)
    stream = {"method": "GET", "endpoint": "/events", "status": "200"}
    assert value(text, f"{NS}_http_requests_total", **stream) == 1
    assert value(text, f"{NS}_http_request_duration_seconds_count", **stream) in (None, 0)
    assert value(text, f"{NS}_http_stream_duration_seconds_count", **stream) == 1
    # The stream took at least its three sleeps; its time to first byte came before them.
    assert value(text, f"{NS}_http_stream_duration_seconds_sum", **stream) >= 0.02  # type: ignore[operator]
    ttfb = value(text, f"{NS}_http_time_to_first_byte_seconds_sum", **stream)
    assert ttfb is not None and ttfb < value(text, f"{NS}_http_stream_duration_seconds_sum", **stream)  # type: ignore[operator]
    plain_labels = {"method": "GET", "endpoint": "/plain", "status": "200"}
    assert value(text, f"{NS}_http_request_duration_seconds_count", **plain_labels) == 1
    assert value(text, f"{NS}_http_stream_duration_seconds_count", **plain_labels) in (None, 0)


def test_security_metrics_fill_themselves() -> None:
    async def guarded(request: Request) -> Response:
        key = request.headers.get("x-api-key")
        if key is None:
            return PlainTextResponse("no", status_code=401)
        if key == "bad":
            return PlainTextResponse("no", status_code=401)
        if key == "readonly":
            return PlainTextResponse("no", status_code=403)
        if key == "busy":
            return PlainTextResponse("slow down", status_code=429)
        return PlainTextResponse("ok")

    app = wrap(Starlette(routes=[Route("/g", guarded)]))
    call(app, "/g")
    call(app, "/g", headers={"X-API-Key": "bad"})
    call(app, "/g", headers={"X-API-Key": "readonly"})
    call(app, "/g", headers={"X-API-Key": "busy"})
    call(app, "/g", "/g", headers={"X-API-Key": "sk-live-1234567890"})
    text = scrape(app)
    failures = f"{NS}_auth_failures_total"
    assert value(text, failures, reason="missing_credentials", endpoint="/g") == 1
    assert value(text, failures, reason="invalid_credentials", endpoint="/g") == 1
    assert value(text, failures, reason="forbidden", endpoint="/g") == 1
    assert value(text, f"{NS}_rate_limit_exceeded_total", endpoint="/g") == 1
    ids = label_values(text, f"{NS}_api_key_usage_total", "api_key_id")
    assert len(ids) == 4
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert "sk-live-1234567890" not in text and "readonly" not in text


def test_two_wrapped_apps_keep_separate_counts() -> None:
    first, second = wrap(starlette_app()), wrap(starlette_app())
    call(first, "/items/1", "/items/2")
    call(second, "/items/1")
    total = f"{NS}_http_requests_total"
    labels = {"method": "GET", "endpoint": "/items/{item_id}", "status": "200"}
    assert value(scrape(first), total, **labels) == 2
    assert value(scrape(second), total, **labels) == 1
    assert first.suite.registry is not second.suite.registry


def test_own_endpoints_are_labelled_by_their_path() -> None:
    app = wrap(starlette_app())
    scrape(app)
    text = scrape(app)
    assert value(text, f"{NS}_http_requests_total", method="GET", endpoint="/metrics", status="200") == 1


def test_lifespan_and_websocket_pass_straight_through() -> None:
    seen: list[tuple[str, Any, Any]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["type"], receive, send))

    catalog = Catalog(_registry(), NS, MetricsSettings(), b"k")
    middleware = MetricsMiddleware(inner, catalog=catalog)
    for kind in ("lifespan", "websocket"):
        run(middleware({"type": kind}, _receive_nothing, _discard))
    # The very same callables: nothing wrapped, nothing recorded.
    assert seen == [("lifespan", _receive_nothing, _discard), ("websocket", _receive_nothing, _discard)]
    assert catalog.registry.get_sample_value(f"{NS}_http_requests_total", {}) is None
    assert not [s for s in samples(_exposition(catalog)) if s[0] == f"{NS}_http_requests_total"]


def test_exposition_passes_promtool(promtool: str) -> None:
    app = wrap(starlette_app())
    call(app, "/items/1", "/boom", "/nope", ("OPTIONS", "/items/1"), "/api/users/7")
    text = scrape(app)
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_exemplars_carry_the_active_trace_id() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    trace_ids: list[str] = []

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        with tracer.start_as_current_span("request") as span:
            trace_ids.append(format(span.get_span_context().trace_id, "032x"))
            await PlainTextResponse("ok")(scope, receive, send)

    catalog = Catalog(_registry(), NS, MetricsSettings(), b"k")
    middleware = MetricsMiddleware(traced, catalog=catalog, exemplars=True)
    run(middleware({"type": "http", "method": "GET", "path": "/", "headers": []}, _receive_nothing, _discard))
    from prometheus_client.openmetrics.exposition import generate_latest

    text = generate_latest(catalog.registry).decode()
    assert f'# {{trace_id="{trace_ids[0]}"}}' in text


# -- helpers -------------------------------------------------------------------------------------


async def _receive_nothing() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Message) -> None:
    return None


def _registry() -> Any:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


def _exposition(catalog: Catalog) -> str:
    from prometheus_client import generate_latest

    return generate_latest(catalog.registry).decode()


def test_histograms_are_consistent_and_reading_the_registry_sees_everything() -> None:
    async def hello(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("hello")(scope, receive, send)

    app = wrap(hello)
    call(app, *["/"] * 25)
    get = app.suite.registry.get_sample_value
    labels = {"method": "GET", "endpoint": UNMATCHED, "status": "200"}
    # Read straight from the registry (no scrape): the accumulated values are folded in first.
    assert get(f"{NS}_http_requests_total", labels) == 25
    assert get(f"{NS}_http_request_duration_seconds_count", labels) == 25
    assert get(f"{NS}_http_request_duration_seconds_bucket", {**labels, "le": "+Inf"}) == 25
    assert get(f"{NS}_http_response_size_bytes_bucket", {**labels, "le": "100.0"}) == 25
    assert get(f"{NS}_http_response_size_bytes_sum", labels) == 125
    assert get(f"{NS}_http_request_size_bytes_bucket", {**labels, "le": "100.0"}) == 25
    buckets = [
        get(f"{NS}_http_time_to_first_byte_seconds_bucket", {**labels, "le": str(b)}) for b in (0.005, 0.1, 10.0)
    ]
    assert buckets == sorted(buckets)  # type: ignore[type-var]
    assert get(f"{NS}_http_time_to_first_byte_seconds_count", labels) == 25


def test_no_count_lost_when_scrapes_race_with_requests() -> None:
    import threading

    async def hello(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("hello")(scope, receive, send)

    app = wrap(hello)
    stop = threading.Event()
    reads: list[float] = []

    def scraper() -> None:
        while not stop.is_set():
            reads.append(app.suite.registry.get_sample_value(f"{NS}_http_requests_total", LABELS_200) or 0.0)

    thread = threading.Thread(target=scraper)
    thread.start()
    try:
        call(app, *["/"] * (2 * BATCH + 50))  # across folds made by the middleware itself
    finally:
        stop.set()
        thread.join(timeout=30)
    assert reads == sorted(reads)  # counts never go back
    assert app.suite.registry.get_sample_value(f"{NS}_http_requests_total", LABELS_200) == 2 * BATCH + 50
    assert (
        app.suite.registry.get_sample_value(f"{NS}_http_request_duration_seconds_count", LABELS_200) == 2 * BATCH + 50
    )


LABELS_200 = {"method": "GET", "endpoint": UNMATCHED, "status": "200"}


@given(paths=st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30), max_size=8))
@settings(max_examples=30)
def test_endpoint_label_is_never_a_raw_path(paths: list[str]) -> None:
    app = wrap(starlette_app())

    async def send_all() -> None:
        for path in paths:
            # Raw ASGI scopes: any decoded path a server could hand over, not only what httpx accepts.
            scope = {"type": "http", "method": "GET", "path": "/" + path, "root_path": "", "headers": [],
                     "query_string": b""}  # fmt: skip
            with contextlib.suppress(Exception):
                await app(scope, _receive_nothing, _discard)

    run(send_all())
    text = scrape(app)
    templates = {
        "/items/{item_id}", "/boom", "/echo", "/api/users/{user_id}", "/t/{tenant}/r/deep/{x}", "/static/{path}",
        UNMATCHED, "/metrics",
    }  # fmt: skip
    assert label_values(text, f"{NS}_http_requests_total", "endpoint") <= templates
    assert sum(v for (n, _), v in samples(text).items() if n == f"{NS}_http_requests_total") == len(paths)


# -- the request facts: client disconnects, sharing with the access log --------------------------


def _catalog() -> Catalog:
    return Catalog(_registry(), NS, MetricsSettings(), b"k")


def test_a_client_disconnect_mid_request_is_a_499_and_no_error() -> None:
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        if (await receive())["type"] == "http.disconnect":
            raise OSError("the client went away")

    async def disconnect() -> Message:
        return {"type": "http.disconnect"}

    catalog = _catalog()
    middleware = MetricsMiddleware(streaming, catalog=catalog)
    with pytest.raises(OSError):
        run(middleware({"type": "http", "method": "GET", "path": "/s", "headers": []}, disconnect, _discard))
    text = _exposition(catalog)
    assert value(text, f"{NS}_http_requests_total", method="GET", endpoint=UNMATCHED, status="499") == 1
    assert value(text, f"{NS}_http_requests_total", method="GET", endpoint=UNMATCHED, status="200") is None
    assert not [s for s in samples(text) if s[0] == f"{NS}_http_errors_total"]


def test_a_cancellation_is_not_a_server_error() -> None:
    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(10)

    catalog = _catalog()
    middleware = MetricsMiddleware(slow, catalog=catalog)

    _cancel_midway(middleware)
    text = _exposition(catalog)
    assert value(text, f"{NS}_http_requests_total", method="GET", endpoint=UNMATCHED, status="499") == 1
    assert not [s for s in samples(text) if s[0] == f"{NS}_http_errors_total"]


def test_an_app_error_after_the_response_started_is_still_counted() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ValueError("mid-stream")

    catalog = _catalog()
    middleware = MetricsMiddleware(failing, catalog=catalog)
    with pytest.raises(ValueError):
        run(middleware({"type": "http", "method": "GET", "path": "/", "headers": []}, _receive_nothing, _discard))
    text = _exposition(catalog)
    errors = f"{NS}_http_errors_total"
    assert value(text, errors, method="GET", endpoint=UNMATCHED, status="200", error_type="ValueError") == 1


class _RouteCountingScope(dict[str, Any]):
    """A scope counting the route look-ups (``route_template`` reads ``ops_observe.route`` first)."""

    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        if key == "ops_observe.route":
            self.reads += 1
        return super().get(key, default)


def test_stacked_with_the_access_log_the_facts_are_computed_once() -> None:
    from ops_observe.logging import setup
    from ops_observe.logging.middleware import AccessLogMiddleware
    from ops_observe.request import shared
    from ops_observe.settings import load_settings

    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(shared(scope, receive))
        scope["ops_observe.route"] = "/r/{id}"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"abc"})

    lines: list[str] = []
    stream = setup.build_stream(load_settings({}), sink=lines.append)
    catalog = _catalog()
    # Both orders: whichever is outside creates the facts, the other reads them.
    for stack in (
        MetricsMiddleware(AccessLogMiddleware(app, stream=stream), catalog=catalog),
        AccessLogMiddleware(MetricsMiddleware(app, catalog=catalog), stream=stream),
    ):
        scope = _RouteCountingScope({"type": "http", "method": "GET", "path": "/r/1", "headers": []})
        run(stack(scope, _receive_nothing, _discard))
        assert scope.reads == 1 and seen[-1].scope is scope
    assert len(lines) == 2 and all('"route":"/r/{id}"' in line for line in lines)
    labels = {"method": "GET", "endpoint": "/r/{id}", "status": "200"}
    assert catalog.registry.get_sample_value(f"{NS}_http_requests_total", labels) == 2
    assert catalog.registry.get_sample_value(f"{NS}_http_response_size_bytes_sum", labels) == 6


@given(
    method=st.text(max_size=12),
    root_path=st.sampled_from(["", "/api"]),
    path=st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20),
)
@settings(max_examples=40)
def test_method_label_is_bounded_and_own_endpoints_are_app_paths(method: str, root_path: str, path: str) -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    catalog = _catalog()
    middleware = MetricsMiddleware(ok, catalog=catalog, own_endpoints=["/metrics"])
    for p in ("/" + path, "/metrics"):
        scope = {"type": "http", "method": method, "path": root_path + p, "root_path": root_path, "headers": []}
        run(middleware(scope, _receive_nothing, _discard))
    text = _exposition(catalog)
    total = f"{NS}_http_requests_total"
    assert label_values(text, total, "method") == {method if method in STANDARD_METHODS else OTHER_METHOD}
    assert label_values(text, total, "endpoint") <= {UNMATCHED, "/metrics"}
    assert value(text, total, method=next(iter(label_values(text, total, "method"))), endpoint="/metrics",
                 status="200") == (2 if path == "metrics" else 1)  # fmt: skip


def _cancel_midway(app: Any) -> None:
    """Start a GET / on ``app``, cancel it 10 ms in (a client gone), and see the cancellation propagate."""

    async def main() -> None:
        task = asyncio.create_task(
            app({"type": "http", "method": "GET", "path": "/", "headers": []}, _receive_nothing, _discard)
        )
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
