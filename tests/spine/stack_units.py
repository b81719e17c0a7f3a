"""Middlewares the stacking tests name by dotted path, as a user's settings would."""

from __future__ import annotations

from typing import Any

from ops_observe import MiddlewareNotUsed
from ops_observe.types import ASGIApp, Receive, Scope, Send


class Recorder:
    """Appends its name to ``scope["order"]`` on the way in."""

    name = "recorder"

    def __init__(self, app: ASGIApp, settings: Any) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("order", []).append(self.name)
        await self.app(scope, receive, send)


class First(Recorder):
    name = "first"


class Second(Recorder):
    name = "second"


def with_suite(app: ASGIApp, settings: Any, *, suite: Any) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        scope["suite"] = suite
        await app(scope, receive, send)

    return middleware


def declines(app: ASGIApp, settings: Any) -> ASGIApp:
    raise MiddlewareNotUsed("nothing to do here")
