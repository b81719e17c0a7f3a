"""The span active in this context, read in one step: the access log and the exemplars read it on
every request, and ``opentelemetry.trace.get_current_span()`` takes four Python frames to do it.

With OpenTelemetry's default runtime context (a context variable), :data:`current_context` is that
variable's own ``get`` and :data:`SPAN_KEY` the key the span is kept under: both private names of
``opentelemetry-api``, so each falls back to the public way when a release moves it (and a test
says so). :func:`active_span_context` is the one-frame reader; a hotter loop may inline it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import propagation

__all__ = ["INVALID", "SPAN_KEY", "active_span_context", "current_context"]

INVALID = trace.INVALID_SPAN_CONTEXT
"""The span context of no span."""
SPAN_KEY: str = getattr(propagation, "_SPAN_KEY", "")
"""The context key of the active span; empty when OpenTelemetry no longer has it (use ``get_current_span``)."""


def _context_getter() -> Callable[[], Mapping[str, object]]:
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if isinstance(var, ContextVar):
        return var.get
    return otel_context.get_current


current_context = _context_getter()
"""``current_context()``: the current OpenTelemetry context, in one call."""


def active_span_context() -> trace.SpanContext:
    """The context of the active span, :data:`INVALID` when there is none (as ``get_current_span()``)."""
    span = current_context().get(SPAN_KEY) if SPAN_KEY else trace.get_current_span()
    return span.get_span_context() if span is not None and isinstance(span, trace.Span) else INVALID
