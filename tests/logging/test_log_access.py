"""The access-log middleware: fields, levels, exclusions, proxies, users, failures, concurrency."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

import ops_observe
from ops_observe.correlation import correlation_id
from ops_observe.logging import setup
from ops_observe.logging.api import bind_request, get_logger
from ops_observe.logging.middleware import ACCESS_KIND, AccessLogMiddleware, client_address, from_settings
from ops_observe.settings import load_settings
from ops_observe.suite import Suite

from log_lines import Lines

App = Callable[..., Any]


def make_app(*, slow: float = 0.0) -> Starlette:
    async def item(request: Request) -> PlainTextResponse:
        get_logger("app").info("handling", item=request.path_params["item_id"])
        if slow:
            await asyncio.sleep(slow)
        return PlainTextResponse("item")

    async def missing(request: Request) -> PlainTextResponse:
        return PlainTextResponse("gone", status_code=404)

    async def crash(request: Request) -> PlainTextResponse:
        raise RuntimeError("handler crashed for bob@example.com")

    async def login(request: Request) -> PlainTextResponse:
        body = await request.body()
        bind_request(user_id="u-42")
        return PlainTextResponse(f"got {len(body)}")

    async def state_user(request: Request) -> PlainTextResponse:
        request.state.user_id = 99
        return PlainTextResponse("ok")

    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> Any:
            yield b"first"
            await asyncio.sleep(0.02)
            yield b"second"

        return StreamingResponse(chunks())

    return Starlette(
        routes=[
            Route("/items/{item_id}", item),
            Route("/missing", missing),
            Route("/crash", crash),
            Route("/login", login, methods=["POST"]),
            Route("/state", state_user),
            Route("/stream", stream),
        ]
    )


def call(app: App, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.1.2.3", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(run())


def access(lines: Lines) -> list[dict[str, Any]]:
    return [d for d in lines.parsed() if d.get("kind") == ACCESS_KIND]


def test_one_line_per_request_with_the_contract_fields(lines: Lines) -> None:
    lines.install()
    app = ops_observe.wrap(
        make_app(), settings={"middleware": ["correlation", "logging"], "logging": {"sink": "stderr"}}
    )
    lines.install()  # the wrapped app installed a stderr stream: write to the test's list instead
    response = call(app, "GET", "/items/42?token=abc&page=2", headers={"user-agent": "probe/1.0"})
    [line] = access(lines)
    assert line["logger"] == "ops_observe.access" and line["level"] == "INFO"
    assert line["message"] == "GET /items/42 200"
    assert (line["method"], line["path"], line["route"], line["status"]) == (
        "GET",
        "/items/42",
        "/items/{item_id}",
        200,
    )
    assert line["correlation_id"] == response.headers["x-correlation-id"]
    assert 0 <= line["ttfb_ms"] <= line["duration_ms"]
    assert (line["request_size"], line["response_size"]) == (None, 4)
    assert (line["client"], line["user_agent"], line["http_version"]) == ("10.1.2.3", "probe/1.0", "1.1")
    assert "query" not in line and "token" not in json.dumps(line) and "slow" not in line and "user_id" not in line
    handling = lines.one(message="handling")
    assert handling["correlation_id"] == line["correlation_id"]


def test_the_query_can_be_kept_redacted(lines: Lines) -> None:
    lines.install()
    app = AccessLogMiddleware(make_app(), query="redact")
    call(app, "GET", "/items/1?token=abc&email=bob%40example.com&page=2")
    assert access(lines)[0]["query"] == "token=[REDACTED:secret]&email=[REDACTED:email]&page=2"
    assert access(lines)[0]["path"] == "/items/1"


def test_pii_in_the_path_is_redacted(lines: Lines) -> None:
    lines.install()
    call(AccessLogMiddleware(make_app()), "GET", "/items/bob@example.com")
    assert access(lines)[0]["path"] == "/items/[REDACTED:email]"
    assert "bob@example.com" not in "".join(lines.raw)


@pytest.mark.parametrize(
    ("path", "status", "level"),
    [("/items/1", 200, "INFO"), ("/missing", 404, "WARNING"), ("/nope", 404, "WARNING"), ("/crash", 500, "ERROR")],
)
def test_level_follows_the_status_class(lines: Lines, path: str, status: int, level: str) -> None:
    lines.install()
    call(AccessLogMiddleware(make_app()), "GET", path)
    line = access(lines)[0]
    assert (line["status"], line["level"]) == (status, level)
    assert ("route" in line) is (path != "/nope")


def test_a_crash_is_logged_with_the_exception_and_re_raised(lines: Lines) -> None:
    lines.install()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("broken for bob@example.com")

    with pytest.raises(ValueError, match="broken"):
        call_raw(AccessLogMiddleware(app))
    line = access(lines)[0]
    assert (line["status"], line["level"], line["error"]) == (500, "ERROR", "ValueError")
    assert line["exception"]["message"] == "broken for [REDACTED:email]"


def test_the_servers_report_of_a_logged_crash_is_left_out(lines: Lines) -> None:
    """uvicorn logs "Exception in ASGI application" with the exception once the app raised: the
    access line has it already, with the request's context, so that record is not written again."""
    lines.install()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError) as raised:
        call_raw(AccessLogMiddleware(app))
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.error("Exception in ASGI application\n", exc_info=raised.value)  # as uvicorn does
    other = ValueError("not one the access log wrote")
    uvicorn.error("Exception in ASGI application\n", exc_info=other)
    logging.getLogger("app.outer").error("the app's own line about it", exc_info=raised.value)
    with_exception = [(d["logger"], d["exception"]["message"]) for d in lines.parsed() if "exception" in d]
    assert with_exception == [
        ("ops_observe.access", "broken"),
        ("uvicorn.error", "not one the access log wrote"),
        ("app.outer", "broken"),  # not a server's report: the app's own, kept
    ]


def test_a_crash_not_written_keeps_the_servers_report(lines: Lines) -> None:
    lines.install({"logging": {"level": "CRITICAL"}})  # the ERROR access line is below the level

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError) as raised:
        call_raw(AccessLogMiddleware(app))
    logging.getLogger("uvicorn.error").critical("Exception in ASGI application\n", exc_info=raised.value)
    assert [d["logger"] for d in lines.parsed()] == ["uvicorn.error"]


def test_a_crash_after_the_response_started_is_an_error_line(lines: Lines) -> None:
    lines.install()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("mid-stream")

    with pytest.raises(RuntimeError):
        call_raw(AccessLogMiddleware(app))
    line = access(lines)[0]
    assert (line["status"], line["level"], line["error"]) == (200, "ERROR", "RuntimeError")


def test_a_forwarded_client_is_redacted_and_bounded(lines: Lines) -> None:
    lines.install({"logging": {"max_field_length": 50}})
    forged = b"bob@example.com" + b"x" * 200
    call_raw(AccessLogMiddleware(ok_app, trusted_proxies=["127.0.0.1"]), headers=[(b"x-forwarded-for", forged)])
    client = access(lines)[0]["client"]
    assert client.startswith("[REDACTED:email]") and len(client) < 80


def test_a_cancelled_request_is_logged_as_499(lines: Lines) -> None:
    lines.install()
    started = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        await asyncio.sleep(10)

    async def run() -> None:
        task = asyncio.create_task(AccessLogMiddleware(app)(scope_for("/slow"), receive_nothing, ignore))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    line = access(lines)[0]
    assert (line["status"], line["level"]) == (499, "WARNING")
    assert "exception" not in line


def test_slow_requests_are_marked(lines: Lines) -> None:
    lines.install()
    call(AccessLogMiddleware(make_app(slow=0.05), slow_request_ms=10), "GET", "/items/1")
    call(AccessLogMiddleware(make_app(), slow_request_ms=0), "GET", "/items/2")
    slow, fast = access(lines)
    assert slow["slow"] is True and slow["level"] == "WARNING" and slow["duration_ms"] >= 10
    assert "slow" not in fast and fast["level"] == "INFO"


def test_time_to_first_byte_and_duration_are_told_apart(lines: Lines) -> None:
    lines.install()
    call(AccessLogMiddleware(make_app()), "GET", "/stream")
    line = access(lines)[0]
    assert line["response_size"] == len(b"firstsecond")
    assert line["duration_ms"] - line["ttfb_ms"] >= 15  # the second chunk came 20 ms after the headers


def test_request_size_from_the_body_header(lines: Lines) -> None:
    lines.install()
    call(AccessLogMiddleware(make_app()), "POST", "/login", content=b"x" * 123)
    line = access(lines)[0]
    assert (line["request_size"], line["user_id"]) == (123, "u-42")


def test_user_id_from_request_state_and_from_starlette_auth(lines: Lines) -> None:
    lines.install()
    call(AccessLogMiddleware(make_app()), "GET", "/state")

    class Backend(AuthenticationBackend):
        async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser]:
            return AuthCredentials(["authenticated"]), SimpleUser("alice")

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    authed = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthenticationMiddleware, backend=Backend())])
    call(AccessLogMiddleware(authed), "GET", "/")
    assert [line["user_id"] for line in access(lines)] == [99, "alice"]


def test_a_user_bound_in_the_handler_is_on_later_lines_too(lines: Lines) -> None:
    lines.install()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        get_logger("app").info("before auth")
        bind_request(user_id="u1", tenant="acme")
        get_logger("app").info("after auth")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    call_raw(AccessLogMiddleware(app))
    assert "user_id" not in lines.one(message="before auth")
    assert lines.one(message="after auth")["user_id"] == "u1"
    assert (access(lines)[0]["user_id"], access(lines)[0]["tenant"]) == ("u1", "acme")


class Unlistable(dict[str, Any]):
    """A mapping whose items cannot be read: rendering a field holding it raises."""

    def items(self) -> Any:
        raise RuntimeError("no items")


def test_a_line_that_cannot_be_rendered_is_written_in_its_place_and_the_request_answers(lines: Lines) -> None:
    lines.install()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        bind_request(profile=Unlistable(a=1))
        get_logger("app").info("inside", shape=Unlistable(b=2))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    response = call(AccessLogMiddleware(app, logger_name="acc"), "GET", "/")
    assert response.status_code == 200 and response.content == b"ok"
    parsed = lines.parsed()
    assert [(line["logger"], line["level"]) for line in parsed] == [("app", "INFO"), ("acc", "INFO")]
    for line in parsed:
        assert line["message"] == "log record could not be rendered" and line["render_error"] == "RuntimeError"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"]), line


class BrokenSpan(NonRecordingSpan):
    """Another library's span whose context cannot be read."""

    def get_span_context(self) -> Any:
        raise RuntimeError("no context")


def test_a_broken_current_span_costs_the_line_its_ids_only(lines: Lines) -> None:
    lines.install()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with trace.use_span(BrokenSpan(INVALID_SPAN_CONTEXT)):
        response = call(AccessLogMiddleware(app), "GET", "/items/7")
    assert response.status_code == 200
    (line,) = access(lines)
    assert line["render_error"] == "RuntimeError" and "trace_id" not in line
    assert (line["method"], line["path"], line["status"], line["message"]) == (
        "GET",
        "/items/7",
        200,
        "GET /items/7 200",
    )


@pytest.mark.parametrize(
    ("peer", "headers", "trusted", "client"),
    [
        ("10.0.0.5", [(b"x-forwarded-for", b"203.0.113.7")], ["10.0.0.0/8"], "203.0.113.7"),
        ("10.0.0.5", [(b"x-forwarded-for", b"198.51.100.1, 203.0.113.7, 10.0.0.9")], ["10.0.0.0/8"], "203.0.113.7"),
        ("10.0.0.5", [(b"x-forwarded-for", b"203.0.113.7")], [], "10.0.0.5"),
        ("198.51.100.9", [(b"x-forwarded-for", b"1.2.3.4")], ["10.0.0.0/8"], "198.51.100.9"),
        ("10.0.0.5", [(b"forwarded", b'for="[2001:db8::1]:4711";proto=https')], ["10.0.0.5"], "2001:db8::1"),
        ("10.0.0.5", [(b"forwarded", b"for=192.0.2.60:80, for=10.0.0.7")], ["10.0.0.0/8"], "192.0.2.60"),
        ("10.0.0.5", [(b"x-forwarded-for", b"10.0.0.3")], ["10.0.0.0/8"], "10.0.0.3"),
        ("10.0.0.5", [(b"x-forwarded-for", b"not-an-ip")], ["10.0.0.0/8"], "not-an-ip"),
    ],
)
def test_forwarded_headers_only_from_trusted_proxies(
    lines: Lines, peer: str, headers: list[tuple[bytes, bytes]], trusted: list[str], client: str
) -> None:
    lines.install()
    call_raw(AccessLogMiddleware(ok_app, trusted_proxies=trusted), headers=headers, client=(peer, 1))
    assert access(lines)[0]["client"] == client


def test_client_address_without_headers_is_the_peer() -> None:
    assert client_address("10.0.0.1", [], lambda host: True) == "10.0.0.1"


def test_excluded_paths_default_to_the_suite_endpoints(lines: Lines) -> None:
    lines.install()
    suite = Suite(load_settings({}))
    suite.add_endpoint("/health", ok_app)
    suite.add_endpoint("/metrics", ok_app)
    middleware = from_settings(ok_app, suite.settings, suite=suite)
    assert middleware.exclude == {"/health", "/metrics"}
    for path in ("/health", "/metrics", "/other"):
        call_raw(middleware, path=path)
    call_raw(middleware, path="/api/health", root_path="/api")
    assert [line["path"] for line in access(lines)] == ["/other"]
    explicit = from_settings(ok_app, load_settings({"logging": {"access": {"exclude_paths": ["/other"]}}}), suite=suite)
    assert explicit.exclude == {"/other"}
    assert from_settings(ok_app, load_settings({})).exclude == frozenset()


def test_lifespan_and_websocket_pass_straight_through(lines: Lines) -> None:
    lines.install()
    seen: list[tuple[str, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["type"], receive, send))

    middleware = AccessLogMiddleware(app)

    async def receive() -> Any:
        return {}

    async def send(message: Any) -> None:
        return None

    for kind in ("lifespan", "websocket"):
        asyncio.run(middleware({"type": kind, "path": "/ws", "headers": []}, receive, send))
    assert seen == [("lifespan", receive, send), ("websocket", receive, send)]  # the very same callables
    assert lines.raw == []


def test_without_an_installed_stream_the_line_goes_through_loguru() -> None:
    from loguru import logger

    records: list[Any] = []
    handler = logger.add(lambda m: records.append(m.record), format="{message}")
    try:
        call_raw(AccessLogMiddleware(ok_app), path="/a{b}")
    finally:
        logger.remove(handler)
    [record] = records
    assert record["message"] == "GET /a{b} 200"
    assert record["extra"]["_ops_kind"] == ACCESS_KIND and record["extra"]["status"] == 200


def test_bad_query_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="'omit' or 'redact'"):
        AccessLogMiddleware(ok_app, query="keep")


def test_500_concurrent_requests_keep_their_own_ids(lines: Lines) -> None:
    """The issue's "done when": no line carries another request's id, every line parses as JSON."""
    lines.install()

    async def handler(request: Request) -> PlainTextResponse:
        marker = request.query_params["n"]
        log = get_logger("app")
        log.info("start", n=marker)
        await asyncio.sleep(0.001 * (int(marker) % 7))
        import logging

        logging.getLogger("lib").warning("stdlib line", extra={"n": marker})  # root stays at WARNING

        async def child() -> None:
            await asyncio.sleep(0)
            log.info("child task", n=marker)

        await asyncio.gather(child(), child())
        return PlainTextResponse(marker)

    app = ops_observe.wrap(
        Starlette(routes=[Route("/work", handler)]),
        settings={"middleware": ["correlation", "logging"], "logging": {"access": {"query": "redact"}}},
    )
    lines.install({"logging": {"access": {"query": "redact"}}})

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(client.get(f"/work?n={n}") for n in range(500)))

    responses = asyncio.run(run())
    id_of = {r.text: r.headers["x-correlation-id"] for r in responses}
    assert len(set(id_of.values())) == 500
    counts: dict[str, int] = {}
    for line in lines.parsed():  # every line is one JSON object
        if line["logger"] == "httpx":  # the client's own lines, outside any request
            continue
        if line.get("kind") == ACCESS_KIND:
            marker = line["query"].removeprefix("n=")
        else:
            marker = line["n"]
        assert line["correlation_id"] == id_of[marker], line
        counts[line["message"]] = counts.get(line["message"], 0) + 1
    assert counts == {"start": 500, "stdlib line": 500, "child task": 1000, "GET /work 200": 500}
    assert correlation_id.get() is None


# -- raw ASGI helpers -----------------------------------------------------------------------------


async def ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def scope_for(
    path: str = "/",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 1),
    root_path: str = "",
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": headers or [],
        "client": client,
        "server": ("127.0.0.1", 80),
    }


async def receive_nothing() -> Any:
    return {"type": "http.request", "body": b"", "more_body": False}


async def ignore(message: Any) -> None:
    return None


def call_raw(app: App, **scope: Any) -> None:
    asyncio.run(app(scope_for(**scope), receive_nothing, ignore))


@settings(max_examples=80)
@given(
    path=st.text(max_size=60).map(lambda p: "/" + p),
    query=st.binary(max_size=60),
    agent=st.binary(max_size=300),
    forwarded=st.binary(max_size=80),
    method=st.sampled_from(["GET", "POST", "BREW", "x@y.io"]),
)
def test_whatever_the_request_holds_the_line_is_one_json_object(
    path: str, query: bytes, agent: bytes, forwarded: bytes, method: str
) -> None:
    sink = Lines()
    stream = setup.build_stream(load_settings({"logging": {"access": {"query": "redact"}}}), sink=sink)
    middleware = AccessLogMiddleware(ok_app, query="redact", trusted_proxies=["127.0.0.1"], stream=stream)
    scope = scope_for(
        path, headers=[(b"user-agent", agent), (b"x-forwarded-for", forwarded), (b"forwarded", forwarded)]
    )
    scope.update(method=method, query_string=query)
    asyncio.run(middleware(scope, receive_nothing, ignore))
    [line] = sink.parsed()
    assert line["status"] == 200 and line["kind"] == ACCESS_KIND
    assert isinstance(line["client"], str) and len(line["user_agent"]) <= 256
    assert "x@y.io" not in "".join(sink.raw)


@pytest.mark.parametrize(
    ("order", "traced"), [(["correlation", "logging", "tracing"], False), (["correlation", "tracing", "logging"], True)]
)
def test_the_access_line_carries_the_trace_when_tracing_is_outside_it(
    lines: Lines, order: list[str], traced: bool
) -> None:
    settings = {"middleware": order, "tracing": {"exporter": "none", "sample_ratio": 1.0}}
    app = ops_observe.wrap(make_app(), settings=settings)
    lines.install(settings)
    call(app, "GET", "/items/1")
    handling, line = lines.one(message="handling"), access(lines)[0]
    assert len(handling["trace_id"]) == 32
    assert line.get("trace_id") == (handling["trace_id"] if traced else None)


# -- the request facts: client disconnects, sharing with the metrics middleware ------------------


def test_a_client_disconnect_mid_request_is_a_499_warning_without_error(lines: Lines) -> None:
    lines.install()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        if (await receive())["type"] == "http.disconnect":
            raise OSError("the client went away")  # what a send on a closed connection raises

    async def disconnect() -> Any:
        return {"type": "http.disconnect"}

    with pytest.raises(OSError):
        asyncio.run(AccessLogMiddleware(app)(scope_for("/stream"), disconnect, ignore))
    line = access(lines)[0]
    assert (line["status"], line["level"], line["response_size"]) == (499, "WARNING", 4)
    assert "error" not in line and "exception" not in line


def test_an_app_error_is_still_an_error_line_and_re_raised(lines: Lines) -> None:
    lines.install()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise LookupError("a real bug")

    with pytest.raises(LookupError):
        call_raw(AccessLogMiddleware(app))
    line = access(lines)[0]
    assert (line["status"], line["level"], line["error"]) == (500, "ERROR", "LookupError")


class RouteCountingScope(dict[str, Any]):
    """A scope counting the route look-ups (``route_template`` reads ``ops_observe.route`` first)."""

    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        if key == "ops_observe.route":
            self.reads += 1
        return super().get(key, default)


def test_stacked_with_the_metrics_middleware_the_facts_are_computed_once(lines: Lines) -> None:
    from prometheus_client import CollectorRegistry

    from ops_observe.metrics.catalog import Catalog
    from ops_observe.metrics.middleware import MetricsMiddleware
    from ops_observe.metrics.settings import MetricsSettings
    from ops_observe.request import shared

    lines.install()
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(shared(scope, receive))
        scope["ops_observe.route"] = "/items/{id}"
        await ok_app(scope, receive, send)

    catalog = Catalog(CollectorRegistry(), "svc", MetricsSettings(), b"k")
    stack = AccessLogMiddleware(MetricsMiddleware(app, catalog=catalog))
    scope = RouteCountingScope(scope_for("/items/1"))
    asyncio.run(stack(scope, receive_nothing, ignore))
    assert scope.reads == 1 and seen[0] is not None and seen[0].scope is scope
    line = access(lines)[0]
    assert (line["route"], line["status"], line["response_size"]) == ("/items/{id}", 200, 2)
    labels = {"method": "GET", "endpoint": "/items/{id}", "status": "200"}
    assert catalog.registry.get_sample_value("svc_http_requests_total", labels) == 1
    assert catalog.registry.get_sample_value("svc_http_response_size_bytes_sum", labels) == 2


@settings(max_examples=60)
@given(
    root_path=st.sampled_from(["", "/api", "/a/b"]),
    rest=st.text(max_size=30).map(lambda p: "/" + p),
    method=st.text(min_size=1, max_size=12),
)
def test_excluded_paths_are_matched_inside_the_root_path(root_path: str, rest: str, method: str) -> None:
    sink = Lines()
    stream = setup.build_stream(load_settings({}), sink=sink)
    middleware = AccessLogMiddleware(ok_app, exclude_paths=[rest], stream=stream)
    scope = scope_for(root_path + rest, root_path=root_path)
    scope["method"] = method
    asyncio.run(middleware(scope, receive_nothing, ignore))
    other = scope_for(root_path + rest + "-x", root_path=root_path)
    other["method"] = method
    asyncio.run(middleware(other, receive_nothing, ignore))
    [line] = sink.parsed()
    assert line["status"] == 200


def streaming_app(*, wait_first: float, between: float, media_type: str) -> Starlette:
    async def events(request: Request) -> StreamingResponse:
        async def chunks() -> Any:
            for n in range(3):
                yield f"data: event {n}\n\n".encode()
                await asyncio.sleep(between)

        await asyncio.sleep(wait_first)
        return StreamingResponse(chunks(), media_type=media_type)

    return Starlette(routes=[Route("/events", events)])


@pytest.mark.parametrize(
    ("wait_first", "between", "media_type", "slow"),
    [
        (0.0, 0.03, "text/event-stream", False),  # open long, answered at once: not slow
        (0.0, 0.03, "application/x-ndjson", False),
        (0.08, 0.0, "text/event-stream", True),  # its first byte came late: slow
        (0.0, 0.03, "text/plain", True),  # not a stream type: its whole duration counts
    ],
)
def test_a_long_lived_stream_is_slow_by_its_first_byte(
    lines: Lines, wait_first: float, between: float, media_type: str, slow: bool
) -> None:
    lines.install()
    app = streaming_app(wait_first=wait_first, between=between, media_type=media_type)
    call(AccessLogMiddleware(app, slow_request_ms=60), "GET", "/events")
    [line] = access(lines)
    assert line["duration_ms"] >= 60
    assert line.get("slow", False) is slow
    assert line["level"] == ("WARNING" if slow else "INFO")


def test_the_stream_types_are_the_metrics_setting(lines: Lines) -> None:
    app = streaming_app(wait_first=0.0, between=0.03, media_type="text/plain")
    settings = load_settings(
        {"logging": {"access": {"slow_request_ms": 60}}, "metrics": {"stream_content_types": ["text/plain"]}}
    )
    lines.install()
    call(from_settings(app, settings), "GET", "/events")
    [line] = access(lines)
    assert line["duration_ms"] >= 60 and "slow" not in line and line["level"] == "INFO"
