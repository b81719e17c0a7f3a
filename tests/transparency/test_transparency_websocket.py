"""The same websocket exchange with a ``WebSocketEndpoint``, mounted as a route and used as the app
itself, unwrapped and wrapped: the app sends the same messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import transparency_apps as apps
from compare import CORRELATION
from driver import websocket

import ops_observe

pytestmark = pytest.mark.anyio

CASES = [
    (apps.starlette_endpoints, "/ws", {}),
    (apps.starlette_endpoints, "/ws", {"root_path": "/prefix"}),
    (apps.websocket_endpoint_class, "/any/path", {}),
]


@pytest.mark.parametrize(
    ("make", "path", "kwargs"), CASES, ids=["mounted", "mounted-root-path", "the-class-as-the-app"]
)
async def test_same_exchange(
    make: Callable[[], Any], path: str, kwargs: dict[str, Any], settings: dict[str, Any]
) -> None:
    texts = ["one", "two", "three"]
    plain = await websocket(make(), path, texts, **kwargs)
    observed = await websocket(ops_observe.wrap(make(), settings=settings), path, texts, **kwargs)
    assert [m["type"] for m in plain] == ["websocket.accept"] + ["websocket.send"] * 3
    assert [without_correlation(m) for m in observed] == plain


def without_correlation(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` without the correlation header a wrapped app may add to ``websocket.accept``."""
    if message["type"] != "websocket.accept" or "headers" not in message:
        return message
    headers = [(k, v) for k, v in message["headers"] if bytes(k).lower() != CORRELATION.encode()]
    return {**message, "headers": headers}
