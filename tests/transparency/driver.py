"""A minimal ASGI client on anyio (asyncio and trio alike): HTTP, websocket and lifespan.

Written here rather than borrowed from httpx's ASGITransport, which is asyncio-centric and hides
the lifespan protocol, the very thing some of these tests look at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

Message = dict[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


def serve(app: Any, interface: str, scope: Message, receive: Any, send: Any) -> Awaitable[None]:
    """Call ``app`` as a server configured with ``interface`` (``"asgi3"`` or ``"asgi2"``) does."""
    if interface == "asgi2":
        return app(scope)(receive, send)  # type: ignore[no-any-return]
    return app(scope, receive, send)  # type: ignore[no-any-return]


TIMEOUT = 5.0
"""Seconds any one exchange may take: a hung app fails the test instead of hanging the run."""


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> list[bytes]:
        key = name.lower().encode("latin-1")
        return [v for k, v in self.headers if k.lower() == key]

    def headers_without(self, *names: str) -> list[tuple[bytes, bytes]]:
        """The headers, lower-cased names, in order, without ``names``."""
        drop = {n.lower().encode("latin-1") for n in names}
        return [(k.lower(), v) for k, v in self.headers if k.lower() not in drop]


def _headers(headers: Sequence[tuple[str, str]] | dict[str, str]) -> list[tuple[bytes, bytes]]:
    items = headers.items() if isinstance(headers, dict) else headers
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items]


def _scope(kind: str, path: str, headers: Any, root_path: str, query: str, state: dict[str, Any] | None) -> Message:
    full = root_path + path
    scope: Message = {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": "ws" if kind == "websocket" else "http",
        "path": full,
        "raw_path": full.encode("latin-1"),
        "root_path": root_path,
        "query_string": query.encode("latin-1"),
        "headers": [(b"host", b"testserver"), *_headers(headers)],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    if state is not None:
        scope["state"] = dict(state)  # what a server does: a shallow copy of the lifespan state
    return scope


async def call(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[str, str]] | dict[str, str] = (),
    body: bytes = b"",
    root_path: str = "",
    query: str = "",
    state: dict[str, Any] | None = None,
    interface: str = "asgi3",
) -> Response:
    """One HTTP request: the body in one message; ``http.disconnect`` only once the response is done."""
    scope = _scope("http", path, headers, root_path, query, state)
    scope["method"] = method
    sent: list[Message] = []
    finished = anyio.Event()
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished.set()

    with anyio.fail_after(TIMEOUT):
        await serve(app, interface, scope, receive, send)
    finished.set()
    start = [m for m in sent if m["type"] == "http.response.start"]
    assert len(start) == 1, f"expected one http.response.start, the app sent {sent}"
    return Response(
        status=start[0]["status"],
        headers=[(bytes(k), bytes(v)) for k, v in start[0].get("headers", [])],
        body=b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
    )


async def websocket(
    app: ASGIApp,
    path: str,
    texts: Sequence[str],
    *,
    headers: Sequence[tuple[str, str]] | dict[str, str] = (),
    root_path: str = "",
) -> list[Message]:
    """Connect, send each of ``texts`` once the app answered the one before, then disconnect.

    Returns every message the app sent (``websocket.accept``, ``websocket.send``, ``websocket.close``...).
    """
    scope = _scope("websocket", path, headers, root_path, "", None)
    scope["subprotocols"] = []
    sent: list[Message] = []
    answered = anyio.Event()
    pending = list(texts)
    connected = False

    async def receive() -> Message:
        nonlocal connected, answered
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        if not pending:
            return {"type": "websocket.disconnect", "code": 1000}
        if any(m["type"] == "websocket.send" for m in sent):
            await answered.wait()
        answered = anyio.Event()
        return {"type": "websocket.receive", "text": pending.pop(0)}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] in ("websocket.send", "websocket.close"):
            answered.set()

    with anyio.fail_after(TIMEOUT):
        await app(scope, receive, send)
    return sent


@dataclass
class Lifespan:
    """What the app did during one lifespan: the messages it sent, and what it raised."""

    sent: list[Message] = field(default_factory=list)
    raised: BaseException | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]


async def lifespan(
    app: ASGIApp,
    between: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    *,
    interface: str = "asgi3",
) -> Lifespan:
    """Send ``lifespan.startup``; once the app answered (or returned, or raised), run
    ``between(state)`` if the startup completed, then send ``lifespan.shutdown`` and wait for the
    app to return. ``raised`` is the exception the app raised, if any.
    """
    result = Lifespan()
    scope: Message = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": result.state}
    started = anyio.Event()
    go_down = anyio.Event()
    done = anyio.Event()
    steps = 0

    async def receive() -> Message:
        nonlocal steps
        steps += 1
        if steps == 1:
            return {"type": "lifespan.startup"}
        await started.wait()
        await go_down.wait()
        if steps == 2:
            return {"type": "lifespan.shutdown"}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        result.sent.append(message)
        if message["type"].startswith("lifespan.startup."):
            started.set()

    async def run_app() -> None:
        try:
            await serve(app, interface, scope, receive, send)
        except Exception as exc:
            result.raised = exc
        finally:
            started.set()  # an app that returned or raised without answering
            done.set()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(run_app)
            await started.wait()
            if between is not None and result.types[-1:] == ["lifespan.startup.complete"]:
                await between(result.state)
            go_down.set()
            await done.wait()
    return result
