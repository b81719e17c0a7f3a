"""The one-step read of the active span (``ops_observe.tracing.active``), used by the access log and the exemplars."""

from __future__ import annotations

from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from ops_observe.tracing import active


def test_the_fast_way_is_the_one_in_use() -> None:
    """Private names of opentelemetry-api: a release that moves them would silently slow every log
    line and exemplar down to ``get_current_span()``; this says so instead."""
    assert active.SPAN_KEY, "opentelemetry.trace.propagation._SPAN_KEY is gone"
    assert isinstance(getattr(active.current_context, "__self__", None), ContextVar), "the fallback is in use"


def test_it_reads_what_get_current_span_reads() -> None:
    tracer = TracerProvider().get_tracer("active")
    assert active.active_span_context() is active.INVALID
    assert trace.get_current_span().get_span_context() is active.INVALID
    with tracer.start_as_current_span("outer") as outer:
        assert active.current_context().get(active.SPAN_KEY) is outer is trace.get_current_span()
        assert active.active_span_context() == outer.get_span_context()
        remote = SpanContext(trace_id=7, span_id=9, is_remote=True, trace_flags=TraceFlags(0))
        with trace.use_span(NonRecordingSpan(remote)):
            assert active.active_span_context() is remote
        assert active.active_span_context() == outer.get_span_context()
    assert active.active_span_context() is active.INVALID
