"""Helpers of the health tests: a tiny app, requests through the wrapped app, lifespan driving."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

import ops_observe
from ops_observe.app import ObservedApp


def settings(health: Mapping[str, Any] | None = None, **root: Any) -> dict[str, Any]:
    """Settings with only the correlation middleware, so that other features cannot interfere."""
    return {"middleware": ["correlation"], "health": dict(health or {}), **root}


class PlainApp:
    """The user's app, one per test: answers ``app`` and speaks lifespan, recording its own events."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"app"})


def wrap(health: Mapping[str, Any] | None = None, **root: Any) -> ObservedApp:
    """A fresh wrapped app with the given ``[health]`` settings."""
    return ops_observe.wrap(PlainApp(), settings=settings(health, **root))


def client(app: ObservedApp, client_addr: tuple[str, int] = ("127.0.0.1", 123)) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=client_addr)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def get(app: ObservedApp, path: str, **kwargs: Any) -> httpx.Response:
    """One GET through the wrapped app, in a loop of its own."""

    async def go() -> httpx.Response:
        async with client(app) as c:
            return await c.get(path, **kwargs)

    return asyncio.run(go())


class Lifespan:
    """Drives an app's lifespan by hand: ``await start()``, ``await stop()``."""

    def __init__(self, app: ObservedApp) -> None:
        self.app = app
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.get_running_loop().create_task(self.app(scope, self.to_app.get, self.from_app.put))
        await self.to_app.put({"type": "lifespan.startup"})
        assert (await self.from_app.get())["type"] == "lifespan.startup.complete"

    async def stop(self) -> None:
        await self.to_app.put({"type": "lifespan.shutdown"})
        assert (await self.from_app.get())["type"] == "lifespan.shutdown.complete"
        assert self.task is not None
        await self.task
