"""The comparison every transparency test makes: one request against the app, unwrapped and wrapped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from driver import Response, call

import ops_observe

CORRELATION = "x-correlation-id"


async def same_answer(
    make: Callable[[], Any],
    settings: dict[str, Any],
    method: str,
    path: str,
    *,
    interface: str = "asgi3",
    **kwargs: Any,
) -> Response:
    """Ask a fresh app (served as ``interface``) and a fresh wrapped app (always ASGI 3) the same
    request; assert the answers are the same, but for the one correlation header the wrapped app
    adds. Returns the wrapped answer."""
    plain = await call(make(), method, path, interface=interface, **kwargs)
    observed = await call(ops_observe.wrap(make(), settings=settings), method, path, **kwargs)
    assert (observed.status, observed.body) == (plain.status, plain.body)
    assert observed.headers_without(CORRELATION) == plain.headers_without(CORRELATION)
    assert plain.header(CORRELATION) == []
    assert len(observed.header(CORRELATION)) == 1, observed.headers
    return observed
