"""Error-keeping sampling: a ratio of successful requests, every failed one.

A head sampler decides when a span starts, before the request's outcome is known. The tracing
middleware therefore decides *up front*, exactly as ``ParentBased(TraceIdRatioBased(ratio))``
would (the parent's flag, else the low 64 bits of the trace id against the ratio's bound), and
runs a request the sampler would drop on a cheap path with a non-recording span that still
carries real ids (for logs and downstream propagation). When such a request fails, the
middleware starts the server span after the fact with those same ids and its real start time,
forcing the decision through :class:`ErrorKeepingSampler`; :class:`PresetIdGenerator` hands the
SDK the ids chosen up front.

The hand-off is a one-shot cell in a context variable: set around one ``start_span`` call,
consumed by it, so spans started by the app never see it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

__all__ = [
    "ErrorKeepingSampler",
    "Handoff",
    "PresetIdGenerator",
    "handoff",
    "ratio_bound",
]

TRACE_ID_LOW_MASK = (1 << 64) - 1


class Handoff:
    """What the middleware hands the next span it starts itself.

    ``trace_id`` / ``span_id`` (0: let the generator choose), ``force`` (keep it whatever the
    ratio says) and ``context`` (the parent our propagator extracted); each is used once.
    """

    __slots__ = ("context", "force", "span_id", "trace_id")

    def __init__(
        self, trace_id: int = 0, span_id: int = 0, force: bool = False, context: Context | None = None
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.force = force
        self.context = context


handoff: ContextVar[Handoff | None] = ContextVar("ops_observe_tracing_handoff", default=None)
"""Set by the tracing middleware around the one ``start_span`` call it makes itself."""


class Pending:
    """The child spans of an unsampled request, recorded but held back until its outcome is known.

    With ``keep_error_children``, the sampler records (without sampling) the children of the
    request's non-recording span, the export queue holds them here when they end, and the
    middleware releases them for export only if the request fails; otherwise they are dropped
    with the request. At most ``limit`` spans are held per request.
    """

    __slots__ = ("limit", "spans", "trace_id")

    def __init__(self, trace_id: int, limit: int = 1000) -> None:
        self.trace_id = trace_id
        self.limit = limit
        self.spans: list[Any] = []


pending: ContextVar[Pending | None] = ContextVar("ops_observe_tracing_pending", default=None)
"""Set by the tracing middleware for the duration of an unsampled request, when children are kept."""


def ratio_bound(ratio: float) -> int:
    """The bound ``TraceIdRatioBased`` compares the low 64 bits of a trace id with."""
    return TraceIdRatioBased.get_bound_for_rate(ratio)


class PresetIdGenerator(IdGenerator):
    """Random ids like the SDK's, except the ones the middleware handed over for one span."""

    def generate_trace_id(self) -> int:
        cell = handoff.get()
        if cell is not None and cell.trace_id:
            trace_id, cell.trace_id = cell.trace_id, 0
            return trace_id
        trace_id = random.getrandbits(128)
        while not trace_id:  # pragma: no cover - one chance in 2**128
            trace_id = random.getrandbits(128)
        return trace_id

    def generate_span_id(self) -> int:
        cell = handoff.get()
        if cell is not None and cell.span_id:
            span_id, cell.span_id = cell.span_id, 0
            return span_id
        span_id = random.getrandbits(64)
        while not span_id:  # pragma: no cover - one chance in 2**64
            span_id = random.getrandbits(64)
        return span_id

    def is_trace_id_random(self) -> bool:
        return True


class ErrorKeepingSampler(Sampler):
    """``ParentBased(TraceIdRatioBased(ratio))``, plus a forced keep for a failed request's span.

    Args:
        ratio: The share of root traces kept, between 0 and 1.
    """

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self._delegate = ParentBased(TraceIdRatioBased(ratio))

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        cell = handoff.get()
        if cell is not None and cell.force:
            cell.force = False
            parent = get_current_span(parent_context).get_span_context()
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE,
                attributes,
                parent.trace_state if parent else None,
            )
        held = pending.get()
        if held is not None:
            parent = get_current_span(parent_context).get_span_context()
            if parent.trace_id == held.trace_id and not parent.trace_flags.sampled:
                # Recorded, not sampled: kept back by the export queue until the outcome is known.
                return SamplingResult(Decision.RECORD_ONLY, attributes, parent.trace_state)
        result: SamplingResult = self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        return result

    def get_description(self) -> str:
        return f"ErrorKeeping{{ParentBased{{root:TraceIdRatioBased{{{self.ratio}}}}}}}"

    def __repr__(self) -> str:
        return f"ErrorKeepingSampler({self.ratio!r})"
