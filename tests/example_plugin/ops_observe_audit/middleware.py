"""The audit middleware: one trail entry per HTTP request."""

from __future__ import annotations

from typing import Any


class AuditMiddleware:
    """Appends ``METHOD path`` to the trail for each HTTP request."""

    def __init__(self, app: Any, trail: list[str]) -> None:
        self.app = app
        self.trail = trail

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.trail.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def from_settings(app: Any, settings: Any, *, suite: Any) -> AuditMiddleware:
    """The ``audit`` entry point: the trail comes from the feature's install step."""
    return AuditMiddleware(app, suite.state["audit.trail"])
