"""App factories: one per kind of ASGI app, each built fresh for every test (no module-level apps)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, FastAPI, Header
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint, WebSocketEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, Router, WebSocketRoute
from starlette.websockets import WebSocket

Scope = dict[str, Any]


# -- Starlette -------------------------------------------------------------------------------------


async def _item(request: Request) -> JSONResponse:
    return JSONResponse(
        {"item": request.path_params["item_id"], "q": request.query_params.get("q")},
        headers={"x-app": "item"},
    )


async def _echo(request: Request) -> Response:
    body = await request.body()
    return Response(
        body[::-1], status_code=201, media_type="application/octet-stream", headers={"x-len": str(len(body))}
    )


async def _where(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path, "root_path": request.scope.get("root_path", ""), "app": "sub"})


async def _own(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"the app's own {request.url.path}", headers={"x-own": "1"})


def starlette_routes() -> Starlette:
    """Routes with path parameters, a POST echo, a 404 and a 405."""
    return Starlette(
        routes=[
            Route("/items/{item_id:int}", _item),
            Route("/users/{name}/items/{item_id:int}", _item),
            Route("/echo", _echo, methods=["POST"]),
        ]
    )


def starlette_mounts() -> Starlette:
    """A Mount of a sub-app and a Mount of a sub-router."""
    sub_app = Starlette(routes=[Route("/where/{x}", _where)])
    sub_router = Router(routes=[Route("/where/{x}", _where), Route("/items/{item_id:int}", _item)])
    return Starlette(routes=[Mount("/app", app=sub_app), Mount("/router", app=sub_router), Route("/top", _where)])


class Hello(HTTPEndpoint):
    async def get(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.url.path}", headers={"x-endpoint": "Hello"})

    async def post(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"posted {(await request.body()).decode()}", status_code=202)


class Echo(WebSocketEndpoint):
    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        await websocket.send_text(f"echo {data} at {websocket.url.path}")


def starlette_endpoints() -> Starlette:
    """``HTTPEndpoint`` and ``WebSocketEndpoint`` classes mounted as routes."""
    return Starlette(routes=[Route("/hello", Hello), WebSocketRoute("/ws", Echo)])


def http_endpoint_class() -> type[Hello]:
    """An ``HTTPEndpoint`` class used directly as the ASGI app (a class with ``__await__``)."""
    return Hello


def websocket_endpoint_class() -> type[Echo]:
    """A ``WebSocketEndpoint`` class used directly as the ASGI app."""
    return Echo


# -- FastAPI ---------------------------------------------------------------------------------------


def _tenant(x_tenant: Annotated[str, Header()] = "none") -> str:
    return x_tenant.upper()


def _page(tenant: Annotated[str, Depends(_tenant)], limit: int = 10) -> dict[str, Any]:
    """A dependency with a dependency of its own (FastAPI resolves their string annotations in this module)."""
    return {"limit": limit, "tenant": tenant}


def fastapi_app(background: list[str] | None = None) -> FastAPI:
    """Dependencies, a background task, a StreamingResponse, and lifespan state."""
    ran = background if background is not None else []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"x": 1}

    api = FastAPI(lifespan=lifespan)

    @api.get("/items/{item_id}")
    async def item(item_id: int, paging: Annotated[dict[str, Any], Depends(_page)]) -> dict[str, Any]:
        return {"item": item_id, **paging}

    @api.post("/jobs")
    async def job(background_tasks: BackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(ran.append, "done")
        return {"queued": "yes"}

    @api.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"chunk {i}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain", headers={"x-stream": "1"})

    @api.get("/state")
    async def state(request: Request) -> dict[str, Any]:
        return {"x": request.state.x}

    return api


STARTUP_ERROR = "the database URL is not set"


def fastapi_failing_startup() -> FastAPI:
    """A FastAPI app whose lifespan raises at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError(STARTUP_ERROR)
        yield

    return FastAPI(lifespan=lifespan)


def starlette_failing_before_receive() -> Starlette:
    """A Starlette app whose middleware cannot be built: it raises before it ever calls ``receive()``."""
    from starlette.middleware import Middleware

    class Broken:
        def __init__(self, app: Any) -> None:
            raise RuntimeError(STARTUP_ERROR)

    return Starlette(middleware=[Middleware(Broken)])


def fastapi_own_endpoints() -> FastAPI:
    """A FastAPI app that serves ``/health`` and ``/metrics`` itself."""
    api = FastAPI()

    @api.get("/health")
    async def health() -> PlainTextResponse:
        return PlainTextResponse("the app's own /health")

    @api.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse("the app's own /metrics")

    return api


def starlette_own_endpoints() -> Starlette:
    """A Starlette app that serves ``/health`` and ``/metrics`` itself."""
    return Starlette(routes=[Route("/health", _own), Route("/metrics", _own)])


# -- Django ----------------------------------------------------------------------------------------

DJANGO_URLS = "transparency_django_urls"


def django_app() -> Iterator[Any]:
    """Django's ASGI handler, with this folder's URLconf (Django is configured once per process)."""
    import django
    from django.conf import settings as django_settings

    if not django_settings.configured:
        # The same settings as tests/spine/test_app.py and tests/metrics (which configure only when
        # nobody did), so that any of them may run first; this folder's URLconf is put in below.
        django_settings.configure(
            DEBUG=False, ROOT_URLCONF="django_urls", ALLOWED_HOSTS=["*"], SECRET_KEY="test-only", USE_TZ=True
        )
        django.setup()
    from django.core.asgi import get_asgi_application
    from django.test.utils import override_settings

    with override_settings(ROOT_URLCONF=DJANGO_URLS):
        yield get_asgi_application()


# -- raw ASGI --------------------------------------------------------------------------------------


def raw_asgi3() -> Any:
    """``async def app(scope, receive, send)``, speaking lifespan."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        request = await receive()
        text = f"raw3 {scope['method']} {scope['path']} {scope['query_string'].decode()} {request['body'].decode()}"
        status = 404 if scope["path"] == "/missing" else 200
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"x-raw", b"3"), (b"x-raw", b"again")],
            }
        )
        await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b" (end)"})

    return app


def raw_asgi2() -> Any:
    """An ASGI 2 double callable, ``def app(scope): async def inner(receive, send)``; no lifespan."""

    def app(scope: Scope) -> Any:
        assert scope["type"] == "http", "this app does not speak lifespan"

        async def inner(receive: Any, send: Any) -> None:
            request = await receive()
            text = f"raw2 {scope['method']} {scope['path']} {request['body'].decode()}"
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x-raw", b"2")]})
            await send({"type": "http.response.body", "body": text.encode()})

        return inner

    return app


# -- an app with its own OpenTelemetry spans -------------------------------------------------------


def traced_app(provider: Any, *, extract: bool) -> Starlette:
    """Starts a span of its own in ``provider`` (a separate SDK TracerProvider), its parent taken from
    the current context; with ``extract``, after putting any ``traceparent`` the request carries into
    that context first, as an app instrumented by hand does."""
    from opentelemetry import context, propagate

    tracer = provider.get_tracer("the-app")

    async def work(request: Request) -> PlainTextResponse:
        current = context.get_current()
        if extract:
            current = propagate.extract(dict(request.headers), context=current)
        token = context.attach(current)
        try:
            with tracer.start_as_current_span("app-work") as span:
                span_id = format(span.get_span_context().span_id, "016x")
        finally:
            context.detach(token)
        return PlainTextResponse(f"worked {len(span_id)}")

    return Starlette(routes=[Route("/work", work)])
