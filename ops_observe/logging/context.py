"""Log context: fields that every line written inside a block (or a request) carries.

Two layers, both on :mod:`contextvars`, so they follow ``await``, ``asyncio`` tasks (each task
starts with a copy of its parent's context) and threads started with asgiref's ``sync_to_async``:

- :func:`log_context` sets fields for a block or a decorated call and restores the previous ones
  on exit. Nested blocks add to (and may override) the outer fields.
- :func:`bind_request` adds fields to the *current request*: the access-log middleware opens one
  small mutable holder per request, so a field bound deep inside a handler (``user_id`` after
  authentication) shows on the request's access-log line and on every later line of the request,
  even though the handler's own context is gone by the time the access log is written.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any, TypeVar, cast

__all__ = ["bind_request", "current_fields", "log_context", "request_fields"]

F = TypeVar("F", bound=Callable[..., Any])

_EMPTY: Mapping[str, Any] = MappingProxyType({})

context_fields: ContextVar[Mapping[str, Any]] = ContextVar("ops_observe_log_context", default=_EMPTY)
"""The fields of the innermost :func:`log_context`; replaced (never mutated) on entry, reset on exit."""

request_holder: ContextVar[dict[str, Any] | None] = ContextVar("ops_observe_log_request", default=None)
"""One mutable dict per request, set by the access-log middleware; :func:`bind_request` writes to it."""


class log_context:
    """Add keyword fields to every log line written inside a ``with`` block or a decorated call.

    Works as a context manager (sync and ``async with``) and as a decorator of sync and async
    functions (the fields are set afresh for each call). Nestable; inner fields win.

    Example::

        with log_context(order_id=42):
            logger.info("charged")          # carries order_id=42
    """

    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        self._tokens: list[Token[Mapping[str, Any]]] = []

    def __enter__(self) -> log_context:
        merged = {**context_fields.get(), **self.fields}
        self._tokens.append(context_fields.set(merged))
        return self

    def __exit__(self, *exc_info: object) -> None:
        context_fields.reset(self._tokens.pop())

    async def __aenter__(self) -> log_context:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__()

    def __call__(self, func: F) -> F:
        fields = self.fields
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = context_fields.set({**context_fields.get(), **fields})
                try:
                    return await func(*args, **kwargs)
                finally:
                    context_fields.reset(token)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = context_fields.set({**context_fields.get(), **fields})
            try:
                return func(*args, **kwargs)
            finally:
                context_fields.reset(token)

        return cast(F, wrapper)


def bind_request(**fields: Any) -> bool:
    """Attach fields (``user_id=...``) to the current request's access-log line and later lines.

    Returns ``False`` (and does nothing) outside a request seen by the access-log middleware.
    """
    holder = request_holder.get()
    if holder is None:
        return False
    holder.update(fields)
    return True


def current_fields() -> dict[str, Any]:
    """The context fields a line written here would carry: :func:`log_context` plus :func:`bind_request`."""
    holder = request_holder.get()
    ctx = context_fields.get()
    return {**ctx, **holder} if holder else dict(ctx)


def request_fields() -> Mapping[str, Any]:
    """The fields bound to the current request with :func:`bind_request` (empty outside a request)."""
    return request_holder.get() or _EMPTY
