"""Manual spans: decorators, span attributes and events, and the current trace and span ids.

The decorators trace into the provider of the app serving the current request (the last wrapped
app outside requests, the global OpenTelemetry provider when no app was wrapped). They work on
plain and ``async`` functions, record an exception with an error status and re-raise it, and
return the function's value unchanged. Attribute values are redacted (PII, secrets) on the
export thread, before they leave the process.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from opentelemetry import trace
from opentelemetry.trace import SpanContext, SpanKind, get_current_span
from opentelemetry.util.types import AttributeValue

from ops_observe.tracing.middleware import request_ids
from ops_observe.tracing.provider import CurrentTracer, current_runtime
from ops_observe.tracing.sampling import pending

__all__ = [
    "add_span_attribute",
    "add_span_event",
    "get_span_id",
    "get_trace_id",
    "trace_db_query",
    "trace_external_call",
    "trace_request",
]

F = TypeVar("F", bound=Callable[..., Any])

_tracer = CurrentTracer("ops_observe.tracing.api")

# Message templates, imported by the tests.
NOT_A_FUNCTION = "{decorator} decorates a function, got {value!r}"
GENERATOR = "{decorator} cannot time a generator function ({name}): decorate the function that consumes it"


def _decorator(
    name: str | None, kind: SpanKind, attributes: Mapping[str, AttributeValue], what: str
) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        if not callable(func):
            raise TypeError(NOT_A_FUNCTION.format(decorator=what, value=func))
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(GENERATOR.format(decorator=what, name=func.__qualname__))
        span_name = name or func.__qualname__
        span_attributes = {
            "code.function": func.__qualname__,
            "code.namespace": func.__module__,
            **attributes,
        }

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                if _nothing_to_record():
                    return await func(*args, **kwargs)
                with _tracer.start_as_current_span(span_name, kind=kind, attributes=span_attributes):
                    return await func(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _nothing_to_record():
                return func(*args, **kwargs)
            with _tracer.start_as_current_span(span_name, kind=kind, attributes=span_attributes):
                return func(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def _nothing_to_record() -> bool:
    """True inside an unsampled trace of a wrapped app, where a child span would record nothing.

    The app's sampler (parent-based) drops every child of an unsampled span, unless the request
    holds its children back (``keep_error_children``); skipping the span then saves the few
    microseconds of a non-recording span. The one visible difference: ``get_span_id()`` inside
    the function gives the request's span id, the one that is exported if the request fails.
    """
    runtime = current_runtime()
    if runtime is not None and not runtime.record:
        return True  # no exporter: a span would be recorded for nobody
    span_context = get_current_span().get_span_context()
    return (
        span_context.is_valid
        and not span_context.trace_flags.sampled
        and pending.get() is None
        and current_runtime() is not None
    )


def trace_request(name: str | None = None) -> Callable[[F], F]:
    """Trace each call of the decorated function as an internal span named ``name`` (default: its qualified name).

    Example::

        @trace_request("process_payment")
        async def process_payment(user_id: str, amount: float) -> Receipt: ...
    """
    return _decorator(name, SpanKind.INTERNAL, {}, "trace_request")


def trace_db_query(operation: str, table: str) -> Callable[[F], F]:
    """Trace each call as a client span ``"{operation} {table}"`` with ``db.operation`` and ``db.sql.table``.

    Example::

        @trace_db_query("SELECT", "users")
        async def get_user(user_id: str) -> Row: ...
    """
    attributes = {
        "db.operation": operation,
        "db.sql.table": table,
        "db.operation.name": operation,
        "db.collection.name": table,
    }
    return _decorator(f"{operation} {table}", SpanKind.CLIENT, attributes, "trace_db_query")


def trace_external_call(service: str, operation: str) -> Callable[[F], F]:
    """Trace each call as a client span ``"{service} {operation}"`` with ``peer.service`` and ``external.operation``.

    Example::

        @trace_external_call("stripe", "create_payment")
        async def create_stripe_payment(amount: float) -> Payment: ...
    """
    attributes = {"peer.service": service, "external.service": service, "external.operation": operation}
    return _decorator(f"{service} {operation}", SpanKind.CLIENT, attributes, "trace_external_call")


def add_span_attribute(key: str, value: AttributeValue) -> None:
    """Set an attribute on the current span (a no-op outside a recorded span)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(key, value)


def add_span_event(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> None:
    """Add a timestamped event to the current span (a no-op outside a recorded span)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, dict(attributes) if attributes else None)


def get_trace_id() -> str | None:
    """The current trace id as 32 lowercase hex digits, or ``None`` outside any trace.

    Inside a request it is set even when the request is not sampled, so logs and responses can
    quote it; with no exporter it is the request's id (incoming or drawn), kept apart from the
    OpenTelemetry context so that the app's own spans keep their parents.
    """
    span_context = _ids()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def get_span_id() -> str | None:
    """The current span id as 16 lowercase hex digits, or ``None`` outside any trace."""
    span_context = _ids()
    return format(span_context.span_id, "016x") if span_context.is_valid else None


def _ids() -> SpanContext:
    """The current span's ids, else those the tracing middleware keeps for a request it records nothing of."""
    span_context = trace.get_current_span().get_span_context()
    return span_context if span_context.is_valid else request_ids.get()
