"""``wrap()`` and ``setup_observability()``: the suite around any ASGI app."""

from __future__ import annotations

import importlib
import os
from typing import Any

from asgiref.compatibility import guarantee_single_callable

from ops_observe.settings import Settings, load_settings
from ops_observe.stack import build_stack
from ops_observe.suite import Suite
from ops_observe.types import ASGIApp, Message, Receive, Scope, Send

# The first-party features, installed in this order into every wrapped app's suite. Each module
# has ``install(suite)``: it registers endpoints and lifespan hooks according to the settings.
FEATURES = (
    "ops_observe.logging.feature",
    "ops_observe.metrics.feature",
    "ops_observe.tracing.feature",
    "ops_observe.health.feature",
)

SettingsSource = Settings | dict[str, Any] | str | os.PathLike[str] | None


class EndpointRouter:
    """Answers the suite's own endpoints (``/health``, ``/metrics``...) and hands everything else to the app."""

    def __init__(self, app: ASGIApp, suite: Suite) -> None:
        self.app = app
        self.endpoints = suite.endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            root = scope.get("root_path")
            if root and path.startswith(root):
                path = path[len(root) :]
            endpoint = self.endpoints.get(path)
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ObservedApp:
    """The wrapped app: the configured middlewares, the suite's endpoints, then the user's app."""

    def __init__(self, app: Any, settings: SettingsSource = None) -> None:
        self.settings = load_settings(settings)
        self.app: ASGIApp = guarantee_single_callable(app)  # type: ignore[no-untyped-call]
        self.suite = Suite(self.settings)
        for feature in FEATURES:
            importlib.import_module(feature).install(self.suite)
        self.suite.freeze()
        self.router = EndpointRouter(self.app, self.suite)
        self.stack = build_stack(self.router, self.suite)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.stack(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the suite's hooks beside the app's own lifespan, which still runs untouched.

        An app that does not speak lifespan (Django's handler raises on it) gets the protocol
        answered by the suite, so the hooks run all the same.
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
        except Exception:
            if received:
                raise
            await self._answer_lifespan(receive, send)

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
    """
    return ObservedApp(app, settings)


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
