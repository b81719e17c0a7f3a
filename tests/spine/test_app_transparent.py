"""wrap() changes nothing the settings did not ask for: ASGI detection, no double wrapping, the app's
own routes, startup failures, features installed only when enabled, the root logger's level."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from loguru import logger as loguru_logger
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, Router

import ops_observe
from ops_observe.app import ALREADY_WRAPPED, SHADOWED, ObservedApp
from ops_observe.app_paths import app_serves
from ops_observe.types import Message

from tests_support import get

QUIET = {"tracing": {"exporter": "none"}, "logging": {"sink": "stderr"}}


class Hello(HTTPEndpoint):
    async def get(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello from a class")


def test_a_class_with_await_is_asgi3() -> None:
    wrapped = ops_observe.wrap(Hello, settings={"middleware": ["correlation"]})
    response = get(wrapped, "/anything")
    assert response.status_code == 200
    assert response.text == "hello from a class"


def test_wrapping_a_wrapped_app_returns_it() -> None:
    wrapped = ops_observe.wrap(Hello, settings={"middleware": ["correlation"]})
    assert ops_observe.wrap(wrapped) is wrapped
    assert ops_observe.wrap(wrapped, settings={"middleware": ["correlation"]}) is wrapped
    with pytest.raises(ValueError) as error:
        ops_observe.wrap(wrapped, settings={"middleware": ["metrics"]})
    assert str(error.value) == ALREADY_WRAPPED.format(source="<dict>")


def _starlette_with_own_health() -> Starlette:
    async def own(request: Request) -> PlainTextResponse:
        return PlainTextResponse("the app's own " + request.url.path)

    sub = Router(routes=[Route("/metrics", own)])
    return Starlette(routes=[Route("/health", own), Mount("/api", routes=[Route("/x", own)]), Mount("/sub", app=sub)])


def test_app_paths_are_read_from_starlette_routes() -> None:
    app = _starlette_with_own_health()
    assert app_serves(app, "/health")
    assert app_serves(app, "/api/x")
    assert app_serves(app, "/sub/metrics")
    assert not app_serves(app, "/metrics")
    assert not app_serves(app, "/api/nope")
    assert not app_serves(Hello, "/health")  # cannot be asked: the suite answers first


def test_the_apps_own_route_wins_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ops_observe"):
        wrapped = ops_observe.wrap(_starlette_with_own_health(), settings=QUIET)
    assert get(wrapped, "/health").text == "the app's own /health"
    assert get(wrapped, "/health/ready").status_code == 200  # the suite's, the app has no such route
    assert "/health" not in wrapped.suite.endpoints and "/health/ready" in wrapped.suite.endpoints
    assert SHADOWED.format(path="/health", setting="health.path") in caplog.messages


def _lifespan(app: Any) -> list[Message]:
    sent: list[Message] = []

    async def run() -> None:
        queue: asyncio.Queue[Message] = asyncio.Queue()
        await queue.put({"type": "lifespan.startup"})
        await queue.put({"type": "lifespan.shutdown"})

        async def send(message: Message) -> None:
            sent.append(message)

        try:
            await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, queue.get, send)
        except Exception:
            sent.append({"type": "raised"})

    asyncio.run(run())
    return sent


def _starlette_failing_before_receive() -> Starlette:
    class Broken:
        def __init__(self, app: Any) -> None:
            raise RuntimeError("the database URL is not set")

    from starlette.middleware import Middleware

    return Starlette(middleware=[Middleware(Broken)])


def _starlette_failing_in_lifespan() -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("the database URL is not set")
        yield

    return Starlette(lifespan=lifespan)


@pytest.mark.parametrize("factory", [_starlette_failing_before_receive, _starlette_failing_in_lifespan])
def test_a_startup_failure_is_reported_as_it_is_unwrapped(factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    unwrapped = _lifespan(factory())
    wrapped = _lifespan(ops_observe.wrap(factory(), settings={"middleware": ["correlation"]}))
    assert [m["type"] for m in wrapped] == ["lifespan.startup.failed", "raised"]
    assert "the database URL is not set" in wrapped[0]["message"]
    if factory is _starlette_failing_in_lifespan:
        assert [m["type"] for m in unwrapped] == [m["type"] for m in wrapped]


def test_middleware_list_decides_what_is_installed() -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    sinks = len(loguru_logger._core.handlers)  # type: ignore[attr-defined]
    wrapped = ops_observe.wrap(Hello, settings={"middleware": ["correlation"]})
    assert isinstance(wrapped, ObservedApp)
    assert root.level == level and root.handlers == handlers
    assert len(loguru_logger._core.handlers) == sinks  # type: ignore[attr-defined]
    assert "/metrics" not in wrapped.suite.endpoints
    assert "metrics" not in wrapped.suite.state and "tracing" not in wrapped.suite.state
    assert get(wrapped, "/metrics").text == "hello from a class"  # the app answers it


def test_logging_leaves_the_root_level_unless_asked(restore_logging: None) -> None:
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    ops_observe.wrap(Hello, settings=QUIET)
    assert root.level == logging.WARNING
    ops_observe.wrap(Hello, settings={**QUIET, "logging": {"sink": "stderr", "root_level": "INFO"}})
    assert root.level == logging.INFO


@pytest.fixture
def restore_logging() -> Any:
    from ops_observe.logging.feature import uninstall

    root = logging.getLogger()
    level = root.level
    yield
    uninstall()
    root.setLevel(level)


def test_two_apps_serving_at_once_count_their_own_calls() -> None:
    """``ops_observe.metrics.<name>`` is the serving app's metric, not the last wrapped app's."""
    import httpx

    async def buy(request: Request) -> PlainTextResponse:
        await asyncio.sleep(0.001)
        ops_observe.metrics.credit_transactions_total.labels(
            transaction_type="purchase", user_id="u", organization_id="o"
        ).inc()
        return PlainTextResponse("ok")

    apps = {
        name: ops_observe.wrap(
            Starlette(routes=[Route("/buy", buy)]),
            settings={"service_name": name, "middleware": ["metrics"], "metrics": {"process_metrics": False}},
        )
        for name in ("shop_a", "shop_b")
    }

    async def run() -> None:
        clients = {
            name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            for name, app in apps.items()
        }
        calls = [clients["shop_a"].get("/buy") for _ in range(30)] + [clients["shop_b"].get("/buy") for _ in range(7)]
        responses = await asyncio.gather(*calls)
        assert {r.status_code for r in responses} == {200}
        for client in clients.values():
            await client.aclose()

    asyncio.run(run())
    for name, expected in (("shop_a", 30), ("shop_b", 7)):
        registry = apps[name].suite.registry
        total = sum(
            s.value for m in registry.collect() for s in m.samples if s.name == f"{name}_credit_transactions_total"
        )
        assert total == expected, name


def test_outside_requests_tracing_follows_the_same_current_app() -> None:
    from ops_observe.current import current_suite
    from ops_observe.tracing.provider import current_runtime

    first = ops_observe.wrap(Hello, settings={"middleware": ["tracing"]})
    assert current_suite() is first.suite and current_runtime() is first.suite.state["tracing"]
    second = ops_observe.wrap(Hello, settings={"middleware": ["tracing"]})
    assert current_suite() is second.suite and current_runtime() is second.suite.state["tracing"]
    for app in (first, second):
        app.suite.state["tracing"].shutdown()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_in_requests_tracing_follows_the_serving_app_with_nothing_set_per_request(backend: str) -> None:
    """The tracing decorators' runtime is the serving app's: found through ``ops_observe.current``
    (the sole app is the default; with two alive, the app sets ``serving``), so the tracing
    middleware of a wrapped app sets no context variable of its own. A middleware built by hand,
    in no wrapped app, sets it for its requests. Under asyncio and trio."""
    import anyio
    import httpx

    from ops_observe.tracing.middleware import TracingMiddleware
    from ops_observe.tracing.provider import current_runtime, runtime_var

    seen: list[tuple[str, object, object]] = []

    def shop(name: str) -> Starlette:
        async def buy(request: Request) -> PlainTextResponse:
            await anyio.sleep(0.001)  # the two apps' requests interleave
            seen.append((name, current_runtime(), runtime_var.get()))
            return PlainTextResponse("ok")

        return Starlette(routes=[Route("/buy", buy)])

    settings = {"middleware": ["tracing"], "tracing": {"exporter": "console", "sample_ratio": 0.0}}

    async def serve(apps: dict[str, Any], calls: dict[str, int]) -> None:
        clients = {
            name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            for name, app in apps.items()
        }
        statuses: list[int] = []

        async def buy(client: httpx.AsyncClient) -> None:
            statuses.append((await client.get("/buy")).status_code)

        async with anyio.create_task_group() as group:
            for name, n in calls.items():
                for _ in range(n):
                    group.start_soon(buy, clients[name])
        assert statuses == [200] * sum(calls.values())
        for client in clients.values():
            await client.aclose()

    alone = ops_observe.wrap(shop("alone"), settings=settings)
    anyio.run(serve, {"alone": alone}, {"alone": 3}, backend=backend)
    assert seen == [("alone", alone.suite.state["tracing"], None)] * 3

    seen.clear()
    apps = {name: ops_observe.wrap(shop(name), settings=settings) for name in ("shop_a", "shop_b")}
    anyio.run(serve, apps, {"shop_a": 20, "shop_b": 7}, backend=backend)
    assert sorted(name for name, _, _ in seen) == ["shop_a"] * 20 + ["shop_b"] * 7
    for name, runtime, announced in seen:
        assert runtime is apps[name].suite.state["tracing"] and announced is None, name

    seen.clear()
    by_hand = apps["shop_a"].suite.state["tracing"]
    hand_built = {"by_hand": TracingMiddleware(shop("by_hand"), runtime=by_hand)}
    anyio.run(serve, hand_built, {"by_hand": 2}, backend=backend)
    assert seen == [("by_hand", by_hand, by_hand)] * 2
    for app in (alone, *apps.values()):
        app.suite.state["tracing"].shutdown()
