"""Tracing: opentelemetry-instrumentation-asgi's middleware, named by route, with error-keeping sampling.

A request the sampler keeps goes through the stock ``OpenTelemetryMiddleware`` unchanged in its
span semantics, with three settings of its own hooks: the span is named ``"{method} {route}"``
and gets ``http.route`` once routing is done (the stock name is the raw path), the per-message
``http receive`` / ``http send`` spans are off unless asked for, and the correlation ID is an
attribute. Sensitive query parameters are replaced by ``REDACTED`` in the recorded URL.

A request the sampler drops does not go through it at all: the decision is made up front (see
:mod:`ops_observe.tracing.sampling`), and the request runs with the W3C *not sampled* context
as its current OpenTelemetry context: a non-recording span with real ids and no ``SAMPLED``
flag, so the app's own spans and other instrumentations (under a parent-based sampler) see a
real "not sampled" parent, and outgoing calls propagate ``-00``. If that request fails (a 5xx
or an exception), its server span is recorded after the fact, with those ids, its real start
time and the stock middleware's attributes, so every failed request is exported (with its held
children, under ``keep_error_children``). A kept request whose bytes the stock middleware cannot
read (a query string that is not UTF-8, some header bytes) runs the same way with a *sampled*
non-recording span, and its server span is always recorded after the fact with those ids.

With nothing to record (``exporter = "none"``), the middleware attaches nothing to the
OpenTelemetry context: the app's own spans get exactly the parents they have unwrapped (a root,
or the parent their own instrumentation extracts from the headers). The ids drawn for the
request (the incoming trace id, if any) are kept in :data:`request_ids` only, which the JSON log
renderer falls back to, so log lines written during the request still carry a trace id.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import (
    OpenTelemetryMiddleware,
    collect_request_attributes,
    set_status_code,
)
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from ops_observe import request
from ops_observe.correlation import get_correlation_id
from ops_observe.errors import MiddlewareNotUsed
from ops_observe.root import Settings
from ops_observe.routes import is_django_app, route_template
from ops_observe.secrets import secret_words
from ops_observe.suite import Suite
from ops_observe.tracing.http import (
    REDACTED,
    ServerParentTracer,
    clean_query,
    clean_url_attributes,
    headers_getter,
    readable_scope,
    stock_can_read,
)
from ops_observe.tracing.provider import TracingRuntime, runtime_var
from ops_observe.tracing.sampling import TRACE_ID_LOW_MASK, Handoff, Pending, handoff, pending
from ops_observe.tracing.settings import DEFAULT_SENSITIVE_PARAMS
from ops_observe.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CORRELATION_ATTRIBUTE", "REDACTED", "TracingMiddleware", "from_settings", "request_ids"]

CORRELATION_ATTRIBUTE = "correlation_id"
_METHODS = {m: m for m in request.STANDARD_METHODS}  # span names: other methods are "HTTP" (semconv)
# Root trace ids drawn here are random: say so (W3C trace context level 2), as the SDK does.
_RANDOM = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
_ROOT_FLAGS = {False: TraceFlags(_RANDOM), True: TraceFlags(TraceFlags.SAMPLED | _RANDOM)}

request_ids: ContextVar[SpanContext] = ContextVar("ops_observe_tracing_request_ids", default=INVALID_SPAN_CONTEXT)
"""The ids of the request being served when nothing is recorded (``exporter = "none"``).

Nothing is attached to the OpenTelemetry context then (the app's own spans keep their parents);
this is where the JSON log renderer finds the request's trace and span ids instead. Set for the
duration of each such request; :data:`~opentelemetry.trace.INVALID_SPAN_CONTEXT` outside one.
"""


class TracingMiddleware:
    """Traces HTTP requests into ``runtime``'s tracer provider; lifespan and websocket pass through.

    Args:
        app: The ASGI app to wrap.
        runtime: The app's tracing runtime (provider, propagator, sampling bound), from
            :func:`ops_observe.tracing.provider.build_runtime`.
        message_spans: Keep the stock per-message ``http receive`` / ``http send`` spans.
        keep_error_children: Record the child spans of unsampled requests too, and export them
            with the server span when the request fails (each child then costs a recorded span).
        sensitive_params: More secret words for query parameters (see :func:`ops_observe.secrets.secret_words`);
            a parameter whose name is secret for the vocabulary or these words has its value
            replaced by ``REDACTED`` in recorded URLs.
        exclude_paths: Paths never traced (the suite's own endpoints, typically).
        correlation_attribute: The span attribute for the correlation ID; ``None`` leaves it out.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        runtime: TracingRuntime,
        message_spans: bool = False,
        keep_error_children: bool = False,
        sensitive_params: Iterable[str] = DEFAULT_SENSITIVE_PARAMS,
        exclude_paths: Iterable[str] = (),
        correlation_attribute: str | None = CORRELATION_ATTRIBUTE,
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.tracer = runtime.tracer
        self.otel = OpenTelemetryMiddleware(
            self._named,
            default_span_details=_span_details,
            server_request_hook=self._on_server_span,
            tracer=ServerParentTracer(runtime.tracer),
            meter_provider=NoOpMeterProvider(),  # HTTP metrics are the metrics middleware's job
            exclude_spans=None if message_spans else ["receive", "send"],
        )
        self.semconv_mode = self.otel._sem_conv_opt_in_mode
        self.excluded = frozenset(exclude_paths)
        self.sensitive = secret_words(sensitive_params)
        self.correlation_attribute = correlation_attribute
        self.propagator = runtime.propagator
        self.fields = frozenset(f.lower().encode("latin-1") for f in runtime.propagator.fields)
        self.bound = runtime.bound
        self.record = runtime.record
        self.queue = runtime.queue
        self.keep_error_children = keep_error_children and runtime.queue is not None
        self.django = is_django_app(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._excluded(scope):
            await self.app(scope, receive, send)
            return
        # The request's facts (method, app path, route, outcome), shared with the inner middlewares.
        facts, receive, send, facts_token = request.enter(scope, receive, send, django=self.django)
        runtime_token = runtime_var.set(self.runtime)
        try:
            parent_context, parent = self._parent(scope)
            if parent.is_valid:
                trace_id, sampled = parent.trace_id, parent.trace_flags.sampled
            else:
                trace_id = random.getrandbits(128) or 1
                sampled = (trace_id & TRACE_ID_LOW_MASK) < self.bound
            # The stock middleware raises on a query string that is not UTF-8 and on some header
            # bytes: such a request takes the other path, which records it (if it fails) with
            # those bytes made printable.
            if sampled and self.record and stock_can_read(scope):
                # An empty context for a root: the stock middleware would otherwise pass the parent
                # that the process-global propagator found, a format this app may not accept.
                cell = Handoff(trace_id=0 if parent.is_valid else trace_id, context=parent_context or Context())
                token = handoff.set(cell)
                try:
                    await self.otel(scope, receive, send)
                finally:
                    handoff.reset(token)
            elif not self.record:
                await self._untraced(scope, receive, send, parent, trace_id, sampled)
            else:
                await self._unsampled(scope, receive, send, parent_context, parent, trace_id, sampled)
        except BaseException as exc:
            facts.fail(exc)
            raise
        finally:
            runtime_var.reset(runtime_token)
            request.leave(facts_token)

    def _excluded(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if path in self.excluded:
            return True
        root: str = scope.get("root_path", "")  # the suite's endpoints are matched below the root path
        return bool(root) and path.startswith(root) and path[len(root) :] in self.excluded

    def _parent(self, scope: Scope) -> tuple[Context | None, SpanContext]:
        """The parent context and span: the current span's when one is active, else the headers'."""
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            return context_api.get_current(), current
        headers = scope["headers"]
        fields = self.fields
        for name, _ in headers:
            if name in fields:  # only then is the propagator worth calling
                extracted = self.propagator.extract(headers, context=Context(), getter=headers_getter)
                return extracted, trace.get_current_span(extracted).get_span_context()
        return None, INVALID_SPAN_CONTEXT

    async def _named(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app as the stock middleware calls it: names the server span once routing is done."""
        span = trace.get_current_span()
        root_path = scope.get("root_path", "")
        named = False

        async def send_named(message: Message) -> None:
            nonlocal named
            if not named and message["type"] == "http.response.start":
                named = True
                self._name(span, scope, root_path)
            await send(message)

        try:
            await self.app(scope, receive, send_named)
        finally:
            if not named:
                self._name(span, scope, root_path)

    def _name(self, span: trace.Span, scope: Scope, root_path: str) -> str | None:
        facts = request.current()
        template = facts.route if facts is not None and facts.scope is scope else route_template(scope, root_path)
        if template is not None and span.is_recording():
            span.update_name(f"{_span_details(scope)[0]} {template}")
            span.set_attribute("http.route", template)
        return template

    def _on_server_span(self, span: trace.Span, scope: Scope) -> None:
        """The stock middleware's request hook: correlation ID, and sensitive query values out of URLs."""
        if self.correlation_attribute is not None:
            correlation_id = get_correlation_id()
            if correlation_id is not None:
                span.set_attribute(self.correlation_attribute, correlation_id)
        query = scope.get("query_string")
        if query:
            cleaned = clean_query(query.decode("utf-8", "replace"), self.sensitive)
            if cleaned is not None:
                clean_url_attributes(span, cleaned)

    async def _untraced(
        self, scope: Scope, receive: Receive, send: Send, parent: SpanContext, trace_id: int, sampled: bool
    ) -> None:
        """Run a request with nothing to record: the OpenTelemetry context is left as it is.

        Attaching a span here would give the app's own spans (its own provider, another
        instrumentation's server span) a parent that is never exported. The ids go to
        :data:`request_ids` only, for the log lines of the request.
        """
        flags = parent.trace_flags if parent.is_valid else _ROOT_FLAGS[sampled]
        ids = SpanContext(trace_id, random.getrandbits(64) or 1, False, flags, parent.trace_state)
        token = request_ids.set(ids)
        try:
            await self.app(scope, receive, send)
        finally:
            request_ids.reset(token)

    async def _unsampled(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        parent_context: Context | None,
        parent: SpanContext,
        trace_id: int,
        sampled: bool,
    ) -> None:
        """Run a request with a non-recording span carrying real ids; record its server span afterwards if needed.

        A request the sampler drops runs in the W3C *not sampled* context (the parent's flags,
        which have no ``SAMPLED``, or ``RANDOM`` alone for a root), and its server span is
        recorded only if it fails. A kept request the stock middleware cannot read (``sampled``)
        runs with a sampled non-recording span, and its server span is always recorded with
        those ids, so the app's spans under it are never left without their parent.
        """
        # ``sampled`` is the parent's flag when there is one: its flags as they came, else ours.
        flags = parent.trace_flags if parent.is_valid else _ROOT_FLAGS[sampled]
        span_id = random.getrandbits(64) or 1
        span_context = SpanContext(trace_id, span_id, False, flags, parent.trace_state)
        token = context_api.attach(trace.set_span_in_context(NonRecordingSpan(span_context), parent_context))
        start = time.time_ns()
        root_path = scope.get("root_path", "")
        facts = request.current()
        held = Pending(trace_id) if self.keep_error_children and not sampled else None
        held_token = pending.set(held) if held is not None else None
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            status = facts.response_status if facts is not None else 0
            self._keep_failed(scope, root_path, parent_context, span_context, start, status, exc, held)
            raise
        else:
            status = facts.response_status if facts is not None else 0
            if sampled or status >= 500:
                self._keep_failed(scope, root_path, parent_context, span_context, start, status, None, held)
        finally:
            if held_token is not None:
                pending.reset(held_token)
            context_api.detach(token)

    def _keep_failed(
        self,
        scope: Scope,
        root_path: str,
        parent_context: Context | None,
        ids: SpanContext,
        start: int,
        status: int,
        exc: Exception | None,
        held: Pending | None = None,
    ) -> None:
        """Record the server span of a request after the fact, as the stock middleware would have.

        That of a failed unsampled request, or of a kept one the stock middleware cannot read.

        The child spans ``held`` back during the request (``keep_error_children``) go with it.
        """
        readable = readable_scope(scope)
        attributes = collect_request_attributes(readable, self.semconv_mode)  # type: ignore[no-untyped-call]
        cell = Handoff(trace_id=ids.trace_id, span_id=ids.span_id, force=True)
        token = handoff.set(cell)
        try:
            span = self.tracer.start_span(
                # An empty context, not None: None would make our own non-recording span the parent.
                _span_details(scope)[0],
                parent_context or Context(),
                SpanKind.SERVER,
                attributes,
                start_time=start,
            )
        finally:
            handoff.reset(token)
        self._on_server_span(span, readable)
        self._name(span, scope, root_path)
        if status:
            set_status_code(span, status, None, self.semconv_mode)  # type: ignore[no-untyped-call]
        if exc is not None:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()
        if held is not None and held.spans and self.queue is not None:
            self.queue.release(held.spans)


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The span name before routing: the method only, never the raw path (unbounded values)."""
    return _METHODS.get(scope.get("method", ""), "HTTP"), {}


def from_settings(app: ASGIApp, settings: Settings, *, suite: Suite) -> ASGIApp:
    """The ``tracing`` entry point: the middleware around the suite's tracing runtime.

    The runtime (tracer provider, exporter, sampling) is built by the tracing feature's
    ``install(suite)`` when the app is wrapped.
    """
    from ops_observe.tracing.feature import STATE_KEY, install

    runtime = suite.state.get(STATE_KEY)
    if runtime is None:  # a suite built without the feature (a test, a hand-made stack)
        install(suite)
        runtime = suite.state.get(STATE_KEY)
    if runtime is None:
        raise MiddlewareNotUsed("tracing.enabled is false")
    section = settings.tracing
    return TracingMiddleware(
        app,
        runtime=runtime,
        message_spans=section.message_spans,
        keep_error_children=section.keep_error_children,
        sensitive_params=section.sensitive_params,
        exclude_paths=(*suite.endpoints, *section.exclude_paths),
    )
