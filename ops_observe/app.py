"""``wrap()`` and ``setup_observability()``: the suite around any ASGI app."""

from __future__ import annotations

import inspect
import logging
import os
import traceback
from typing import Any

from asgiref.compatibility import guarantee_single_callable

from ops_observe import plugins, request
from ops_observe.app_paths import app_serves
from ops_observe.current import serving, set_default
from ops_observe.routes import is_django_app
from ops_observe.settings import Settings, load_settings, validate
from ops_observe.stack import build_stack
from ops_observe.suite import Suite
from ops_observe.types import ASGIApp, Message, Receive, Scope, Send

SettingsSource = Settings | dict[str, Any] | str | os.PathLike[str] | None

logger = logging.getLogger("ops_observe")

# Message templates, imported by the tests.
ALREADY_WRAPPED = (
    "this app is already wrapped by ops_observe with other settings (from {source}); "
    "wrap the original app, or pass no settings to keep the ones it has"
)
SHADOWED = (
    "the app serves {path} itself, so ops_observe leaves it to the app; "
    "set {setting} to serve the suite's endpoint elsewhere"
)
STARTUP_FAILED = "the app failed at startup: {error}"


class EndpointRouter:
    """Answers the suite's own endpoints (``/health``, ``/metrics``...) and hands everything else to the app."""

    def __init__(self, app: ASGIApp, suite: Suite) -> None:
        self.app = app
        self.endpoints = suite.endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if scope.get("root_path"):  # stripped once, for every middleware, where the facts are
                facts = request.shared(scope, receive)
                path = facts.path if facts is not None else request.app_path(scope)
            endpoint = self.endpoints.get(path)
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ObservedApp:
    """The wrapped app: the configured middlewares, the suite's endpoints, then the user's app."""

    def __init__(self, app: Any, settings: SettingsSource = None) -> None:
        # Every plugin the settings name is resolved before any feature installs anything.
        self.settings = validate(load_settings(settings))
        self.original = app
        self.app: ASGIApp = as_asgi3(app)
        self.suite = Suite(self.settings)
        # Every feature, ours as a third party's, comes from the entry-point group, sorted by name;
        # each ``install(suite)`` adds what the settings ask for (endpoints, hooks, state).
        for spec in plugins.find(plugins.FEATURES):
            spec.load().install(self.suite)
        for path in list(self.suite.endpoints):
            if app_serves(app, path):
                setting = self.suite.yield_endpoint(path)
                logger.warning(SHADOWED.format(path=path, setting=setting or "its setting"))
        self.suite.freeze()
        set_default(self.suite)
        self.router = EndpointRouter(self.app, self.suite)
        self.stack = build_stack(self.router, self.suite)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if self.suite.alone:  # the only app alive is the default already
            await self.stack(scope, receive, send)
            return
        token = serving.set(self.suite)
        try:
            await self.stack(scope, receive, send)
        finally:
            serving.reset(token)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the suite's hooks beside the app's own lifespan, which still runs untouched.

        An app that raises before it ever calls ``receive()`` does not speak lifespan (Django's
        handler, a raw app asserting ``scope["type"] == "http"``): the ASGI spec has servers carry
        on without it, so the suite answers the protocol itself and its hooks run all the same.
        A Starlette or FastAPI app does speak it; its exception there is a failed startup, reported
        to the server as ``lifespan.startup.failed`` with its message, logged, and re-raised.
        """
        received = False

        async def receive_and_hook() -> Message:
            nonlocal received
            received = True
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.suite.startup()
            elif message["type"] == "lifespan.shutdown":
                await self.suite.shutdown()
            return message

        try:
            await self.stack(scope, receive_and_hook, send)
        except Exception as exc:
            if received:
                raise
            if not _speaks_lifespan(self.original):
                await self._answer_lifespan(receive, send)
                return
            message = await receive()  # lifespan.startup: answered, as the app could not
            if message["type"] == "lifespan.startup":
                logger.error(STARTUP_FAILED.format(error=f"{type(exc).__name__}: {exc}"), exc_info=exc)
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                await send({"type": "lifespan.startup.failed", "message": text})
            raise

    async def _answer_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.suite.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.suite.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def wrap(app: Any, settings: SettingsSource = None) -> ObservedApp:
    """Wrap any ASGI app (ASGI 3, ASGI 2, Starlette, FastAPI, Django) in the suite.

    ``settings`` is a TOML file path, a dict shaped like the ``[ops_observe]`` table, a
    :class:`Settings`, or ``None`` for ``$OPS_OBSERVE_SETTINGS``, then ``./ops_observe.toml``,
    then the defaults. Raises :class:`ops_observe.SettingsError` on bad settings.

    An app wrapped already comes back as it is when ``settings`` is ``None`` or equal to its own:
    the suite never stacks twice. Other settings raise ``ValueError``.
    """
    if isinstance(app, ObservedApp):
        if settings is None or load_settings(settings) == app.settings:
            return app
        raise ValueError(ALREADY_WRAPPED.format(source=app.settings.source))
    return ObservedApp(app, settings)


def as_asgi3(app: Any) -> ASGIApp:
    """``app`` as an ASGI 3 callable, telling ASGI 2 double callables apart as Starlette does.

    A class with ``__await__`` (Starlette's ``HTTPEndpoint``, ``WebSocketEndpoint``) is ASGI 3:
    ``Cls(scope, receive, send)`` makes an awaitable. asgiref takes every class for ASGI 2.
    """
    if inspect.isclass(app) and hasattr(app, "__await__"):
        return app  # type: ignore[return-value]
    return guarantee_single_callable(app)  # type: ignore[no-any-return, no-untyped-call]


def _speaks_lifespan(app: Any) -> bool:
    """Whether ``app`` implements the lifespan protocol: Starlette and FastAPI apps and routers do."""
    if is_django_app(app):
        return False
    from starlette.applications import Starlette
    from starlette.routing import Router

    return isinstance(app, Starlette | Router)


def setup_observability(app: Any, settings: SettingsSource = None) -> ObservedApp:
    """Install the suite into a Starlette or FastAPI app in place, for code written for the old API.

    The app object stays the same; its middleware stack is rebuilt inside the suite. Returns the
    :class:`ObservedApp`, also kept as ``app.state.ops_observe``.
    """
    build_original = getattr(app, "build_middleware_stack", None)
    if build_original is None:
        raise TypeError(f"setup_observability() needs a Starlette or FastAPI app, got {type(app).__name__}; use wrap()")
    observed = ObservedApp(_not_built_yet, settings)

    def build_middleware_stack() -> ASGIApp:
        observed.router.app = build_original()
        return observed

    app.build_middleware_stack = build_middleware_stack
    app.middleware_stack = None
    app.state.ops_observe = observed
    return observed


async def _not_built_yet(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("the Starlette middleware stack has not been built yet")
