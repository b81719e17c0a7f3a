"""An app that makes its own spans (its own SDK TracerProvider, parent from the current context) sees
the same parents wrapped and unwrapped. An app that extracts the ``traceparent`` itself: a root span
when none is sent, a child of the sent span when one is. An app that does not: always a root."""

from __future__ import annotations

from typing import Any

import pytest
import transparency_apps as apps
from driver import call
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import ops_observe

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"


def _parent(span: ReadableSpan) -> tuple[str, str] | None:
    if span.parent is None:
        return None
    return format(span.parent.trace_id, "032x"), format(span.parent.span_id, "016x")


async def _app_span(app: Any, headers: dict[str, str], exporter: InMemorySpanExporter) -> ReadableSpan:
    exporter.clear()
    response = await call(app, "GET", "/work", headers=headers)
    assert (response.status, response.body) == (200, b"worked 16")
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["app-work"]
    return spans[0]


@pytest.mark.parametrize(
    ("extract", "headers", "expected"),
    [
        (True, {}, None),
        (True, {"traceparent": TRACEPARENT}, (TRACE_ID, SPAN_ID)),
        (False, {}, None),
        (False, {"traceparent": TRACEPARENT}, None),
    ],
    ids=["extracting-no-traceparent", "extracting-traceparent", "current-no-traceparent", "current-traceparent"],
)
async def test_the_apps_spans_keep_their_parents(
    extract: bool, headers: dict[str, str], expected: tuple[str, str] | None, settings: dict[str, Any]
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        plain = await _app_span(apps.traced_app(provider, extract=extract), headers, exporter)
        observed = await _app_span(
            ops_observe.wrap(apps.traced_app(provider, extract=extract), settings=settings), headers, exporter
        )
    finally:
        provider.shutdown()
    assert _parent(plain) == expected
    assert _parent(observed) == expected
    if expected is not None:
        assert format(observed.context.trace_id, "032x") == TRACE_ID
