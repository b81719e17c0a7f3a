"""The request's correlation ID: validation, generation and the context variable that holds it."""

from __future__ import annotations

import os
from contextvars import ContextVar

__all__ = ["correlation_id", "generate_id", "get_correlation_id", "is_valid_id"]

correlation_id: ContextVar[str | None] = ContextVar("ops_observe_correlation_id", default=None)
"""Set by the correlation middleware for the duration of each request, reset after it."""

# Bytes an incoming ID may hold: enough for UUIDs, ULIDs, nginx $request_id, AWS X-Amzn-Trace-Id
# ("Root=1-5e1b...") and W3C-like ids, while nothing that could break a log line or a header.
ALLOWED_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:=;+/"


def get_correlation_id() -> str | None:
    """The current request's correlation ID, or ``None`` outside a request."""
    return correlation_id.get()


def generate_id() -> str:
    """A fresh 128-bit random ID, as 32 lowercase hex digits (the shape of ``uuid4().hex``)."""
    return os.urandom(16).hex()


def is_valid_id(raw: bytes, max_length: int = 128) -> bool:
    """True when ``raw`` is short enough and holds only :data:`ALLOWED_BYTES`.

    ``bytes.translate`` deletes the allowed bytes in C; anything left over is a byte we refuse.
    """
    return 0 < len(raw) <= max_length and not raw.translate(None, ALLOWED_BYTES)
