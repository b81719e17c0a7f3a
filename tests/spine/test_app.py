"""wrap(): any ASGI app, stacking in settings order, endpoints in front, lifespan and websockets untouched."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import ops_observe
from ops_observe import SettingsError
from ops_observe.app import ObservedApp
from ops_observe.types import Message, Receive, Scope, Send

from tests_support import get

PLAIN = {"middleware": ["correlation"]}


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    body = f"{scope['path']} {ops_observe.get_correlation_id()} {scope.get('order')}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def test_wraps_a_raw_asgi3_app() -> None:
    app = ops_observe.wrap(raw_app, settings=PLAIN)
    assert isinstance(app, ObservedApp)
    response = get(app, "/x", headers={"X-Correlation-ID": "req-1"})
    assert response.text == "/x req-1 None"
    assert response.headers["x-correlation-id"] == "req-1"


def test_wraps_an_asgi2_app() -> None:
    class Asgi2:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await raw_app(self.scope, receive, send)

    response = get(ops_observe.wrap(Asgi2, settings=PLAIN), "/two")
    assert response.status_code == 200
    assert response.text.startswith("/two ")


def test_wraps_starlette_and_fastapi() -> None:
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse(f"starlette {ops_observe.get_correlation_id()}")

    response = get(
        ops_observe.wrap(Starlette(routes=[Route("/hi", hello)]), settings=PLAIN),
        "/hi",
        headers={"X-Request-ID": "abc"},
    )
    assert response.text == "starlette abc"

    api = FastAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"item": item_id, "cid": ops_observe.get_correlation_id()}

    response = get(ops_observe.wrap(api, settings=PLAIN), "/items/3", headers={"X-Correlation-ID": "fa-1"})
    assert response.json() == {"item": 3, "cid": "fa-1"}


def test_wraps_django() -> None:
    import django
    from django.conf import settings as django_settings

    if not django_settings.configured:
        django_settings.configure(
            DEBUG=False, ROOT_URLCONF="django_urls", ALLOWED_HOSTS=["*"], SECRET_KEY="test-only", USE_TZ=True
        )
        django.setup()
    from django.core.asgi import get_asgi_application

    response = get(
        ops_observe.wrap(get_asgi_application(), settings=PLAIN), "/django/7/", headers={"X-Correlation-ID": "dj-1"}
    )
    assert response.status_code == 200
    assert response.text == "django 7 dj-1"
    assert response.headers["x-correlation-id"] == "dj-1"


def test_middlewares_stack_in_settings_order_first_outermost() -> None:
    settings = {"middleware": ["stack_units:First", "correlation", "stack_units.Second"]}
    assert get(ops_observe.wrap(raw_app, settings=settings)).text.endswith("['first', 'second']")
    settings = {"middleware": ["stack_units.Second", "stack_units:First"]}
    assert get(ops_observe.wrap(raw_app, settings=settings)).text.endswith("['second', 'first']")


def test_a_factory_may_ask_for_the_suite() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["suite"])
        await raw_app(scope, receive, send)

    wrapped = ops_observe.wrap(app, settings={"middleware": ["stack_units:with_suite"]})
    get(wrapped)
    assert seen == [wrapped.suite]


def test_a_middleware_may_decline(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ops_observe"):
        app = ops_observe.wrap(raw_app, settings={"middleware": ["stack_units:declines", "correlation"]})
    assert get(app).status_code == 200
    assert "middleware stack_units:declines not used: nothing to do here" in caplog.text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "<dict>: middleware[1]: ops_observe.middleware: no plugin named 'nope' is installed; installed: "),
        (
            "no_such_module_xyz:Thing",
            "<dict>: middleware[1]: cannot import 'no_such_module_xyz:Thing': module 'no_such_module_xyz' is not installed",
        ),
    ],
)
def test_unknown_middleware_is_a_settings_error(name: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        ops_observe.wrap(raw_app, settings={"middleware": ["correlation", name]})
    assert str(info.value).startswith(message)


def test_suite_endpoints_are_answered_in_front_of_the_app() -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await raw_app(scope, receive, send)

    wrapped = ops_observe.wrap(app, settings=PLAIN)
    assert wrapped.suite.endpoints, "the health and metrics features register endpoints"
    for path in wrapped.suite.endpoints:
        assert get(wrapped, path).headers.get("x-correlation-id")
    assert calls == []
    get(wrapped, "/app-path")
    assert calls == ["/app-path"]


def _run_lifespan(app: Any) -> list[str]:
    sent: list[str] = []

    async def run() -> None:
        queue: asyncio.Queue[Message] = asyncio.Queue()
        await queue.put({"type": "lifespan.startup"})
        await queue.put({"type": "lifespan.shutdown"})

        async def send(message: Message) -> None:
            sent.append(message["type"])

        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, queue.get, send)

    asyncio.run(run())
    return sent


def test_lifespan_passes_through_to_the_app_and_runs_the_suite_hooks() -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            events.append(f"app {message['type']}")
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    wrapped = ops_observe.wrap(app, settings=PLAIN)
    _hook_into(wrapped, events)
    assert _run_lifespan(wrapped) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["suite startup", "app lifespan.startup", "suite shutdown", "app lifespan.shutdown"]


def test_lifespan_is_answered_for_an_app_that_does_not_speak_it() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError(f"cannot handle {scope['type']}")  # what Django's handler does

    events: list[str] = []
    wrapped = ops_observe.wrap(app, settings=PLAIN)
    _hook_into(wrapped, events)
    assert _run_lifespan(wrapped) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["suite startup", "suite shutdown"]


def _hook_into(wrapped: ObservedApp, events: list[str]) -> None:
    # Hooks are registered while the app is built; tests add theirs to the built suite directly.
    wrapped.suite._startup.insert(0, lambda: events.append("suite startup"))
    wrapped.suite._shutdown.append(lambda: events.append("suite shutdown"))


def test_websocket_passes_through() -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"{text} {ops_observe.get_correlation_id()}")
        await websocket.close()

    wrapped = ops_observe.wrap(Starlette(routes=[WebSocketRoute("/ws", echo)]), settings=PLAIN)
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "hello"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "scheme": "ws",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"x-correlation-id", b"ws-1")],
        "subprotocols": [],
    }
    asyncio.run(wrapped(scope, receive, send))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "hello ws-1"


def test_two_wrapped_apps_share_nothing() -> None:
    first = ops_observe.wrap(raw_app, settings=PLAIN)
    second = ops_observe.wrap(raw_app, settings=PLAIN)
    assert first.suite is not second.suite
    assert first.suite.registry is not second.suite.registry


def test_setup_observability_in_place() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse(f"in place {ops_observe.get_correlation_id()}")

    app = Starlette(routes=[Route("/", hello)])
    observed = ops_observe.setup_observability(app, settings=PLAIN)
    assert app.state.ops_observe is observed
    response = get(app, "/", headers={"X-Correlation-ID": "old-api"})
    assert response.text == "in place old-api"
    assert response.headers["x-correlation-id"] == "old-api"
    for path in observed.suite.endpoints:
        assert get(app, path).status_code != 404


def test_setup_observability_refuses_other_apps() -> None:
    with pytest.raises(TypeError, match="use wrap"):
        ops_observe.setup_observability(raw_app, settings=PLAIN)
