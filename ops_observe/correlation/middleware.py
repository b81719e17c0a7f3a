"""Correlation IDs: keep a valid incoming ID or make one, expose it to the request, return it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ops_observe.correlation import correlation_id, generate_id, is_valid_id
from ops_observe.root import Settings
from ops_observe.types import ASGIApp, Message, Receive, Scope, Send


class CorrelationIdMiddleware:
    """Sets the correlation ID for each HTTP and WebSocket request and returns it on the response.

    Args:
        app: The ASGI app to wrap.
        header: The header read from the request and written on the response.
        accept_headers: Further request headers tried, in order, when ``header`` is absent.
        max_length: The longest incoming ID kept.
        generator: Makes a fresh ID when the request brings none, or an invalid one.
        validator: Decides whether an incoming ID (raw header bytes) is kept; ``None`` keeps any
            non-empty one up to ``max_length`` (not recommended: the ID is logged and echoed).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        header: str = "X-Correlation-ID",
        accept_headers: Sequence[str] = ("X-Request-ID",),
        max_length: int = 128,
        generator: Callable[[], str] = generate_id,
        validator: Callable[[bytes, int], bool] | None = is_valid_id,
    ) -> None:
        self.app = app
        self.header = header.lower().encode("latin-1")
        names = [self.header, *(h.lower().encode("latin-1") for h in accept_headers)]
        # Rank of each accepted header: the configured one wins whatever the order on the wire.
        self.rank = {name: i for i, name in reversed(list(enumerate(names)))}
        self.max_length = max_length
        self.generator = generator
        self.validator = validator or _length_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        value = self._incoming(scope["headers"]) or self.generator()
        header_value = value.encode("latin-1")
        token = correlation_id.set(value)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != self.header]
                headers.append((self.header, header_value))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)

    def _incoming(self, headers: Sequence[tuple[bytes, bytes]]) -> str | None:
        best: bytes | None = None
        best_rank = len(self.rank)
        rank = self.rank
        for name, raw in headers:
            position = rank.get(name)
            if position is None:
                position = rank.get(name.lower())
            if position is not None and position < best_rank and self.validator(raw, self.max_length):
                best, best_rank = raw, position
        return best.decode("latin-1") if best is not None else None


def _length_only(raw: bytes, max_length: int) -> bool:
    return 0 < len(raw) <= max_length and all(32 < byte < 127 for byte in raw)


def from_settings(app: ASGIApp, settings: Settings) -> CorrelationIdMiddleware:
    """The ``correlation`` entry point: the middleware configured from ``[ops_observe.correlation]``."""
    section = settings.correlation
    return CorrelationIdMiddleware(
        app, header=section.header, accept_headers=section.accept_headers, max_length=section.max_length
    )
