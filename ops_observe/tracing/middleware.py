"""Tracing: the server span, built with the SDK, named by route, with error-keeping sampling.

A request the sampler keeps gets a server span started directly on the app's tracer, with the
attributes opentelemetry-instrumentation-asgi records for the configured semantic conventions
(``OTEL_SEMCONV_STABILITY_OPT_IN``), the correlation ID, and sensitive query values replaced by
``REDACTED``. No ``send`` or ``receive`` is wrapped for it: the outcome (status, route, exception,
client gone) is read from :mod:`ops_observe.request` once the app returned or raised, and the span
is named ``"{method} {route}"`` (the method only when no route matched) and ended then, so an
exception raised after the response (Starlette's 500, then its re-raise) is on it. A request whose
client went away is a 499, the client's doing: never ERROR. ``message_spans = true`` runs the stock
middleware instead, for its per-message ``http receive`` / ``http send`` spans.

A request the sampler drops runs with the W3C *not sampled* context (see
:mod:`ops_observe.tracing.sampling`) as its current OpenTelemetry context: a non-recording span with
real ids and no ``SAMPLED`` flag, so the app's own spans and other instrumentations (under a
parent-based sampler) see a real "not sampled" parent, and outgoing calls propagate ``-00``. If
that request fails (a 5xx or an exception), its server span is recorded after the fact, with those
ids, its real start time and the same shape as a sampled one (the same code builds both), so every
failed request is exported (with its held children, under ``keep_error_children``).

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
from opentelemetry.instrumentation._semconv import (
    _OpenTelemetrySemanticConventionStability,
    _OpenTelemetryStabilitySignalType,
    _StabilityMode,
)
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware, collect_custom_headers_attributes
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
from opentelemetry.util.http import (
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS,
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST,
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE,
    SanitizeValue,
    get_custom_headers,
    normalise_request_header_name,
    normalise_response_header_name,
)

from ops_observe import current as current_app
from ops_observe import request
from ops_observe.correlation import get_correlation_id
from ops_observe.errors import MiddlewareNotUsed
from ops_observe.root import Settings
from ops_observe.routes import is_django_app, route_template
from ops_observe.secrets import secret_words
from ops_observe.suite import Suite
from ops_observe.tracing.attributes import RequestAttributes
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
_ERROR = Status(StatusCode.ERROR)
_NO_ATTRIBUTES: dict[str, Any] = {}

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
        message_spans: Keep the stock per-message ``http receive`` / ``http send`` spans (the
            stock middleware then makes the server span).
        keep_error_children: Record the child spans of unsampled requests too, and export them
            with the server span when the request fails (each child then costs a recorded span).
        sensitive_params: More secret words for query parameters (see :func:`ops_observe.secrets.secret_words`);
            a parameter whose name is secret for the vocabulary or these words has its value
            replaced by ``REDACTED`` in recorded URLs.
        exclude_paths: Paths never traced (the suite's own endpoints, typically).
        correlation_attribute: The span attribute for the correlation ID; ``None`` leaves it out.
        announce_runtime: Make ``runtime`` the current one for each request (a context variable
            set and reset), for the tracing decorators and helpers of the code inside. ``False``
            in a wrapped app, whose runtime they find through :mod:`ops_observe.current`, with
            nothing set per request.
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
        announce_runtime: bool = True,
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.announce_runtime = announce_runtime
        self.tracer = runtime.tracer
        self.otel = (
            OpenTelemetryMiddleware(
                self._named,
                default_span_details=_span_details,
                server_request_hook=self._on_server_span,
                tracer=ServerParentTracer(runtime.tracer),
                meter_provider=NoOpMeterProvider(),  # HTTP metrics are the metrics middleware's job
            )
            if message_spans
            else None
        )
        self.semconv_mode = semconv_mode()
        self.request_attributes = RequestAttributes(self.semconv_mode)
        # Headers captured as attributes, as the stock middleware does (its environment variables).
        self.capture_request = get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST)
        self.capture_response = get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE)
        self.sanitize = SanitizeValue(get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS))
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
        facts, receive, send = request.enter(scope, receive, send, self.django)
        runtime_token = runtime_var.set(self.runtime) if self.announce_runtime else None
        try:
            parent_context, parent = self._parent(scope)
            if parent.is_valid:
                trace_id, sampled = parent.trace_id, parent.trace_flags.sampled
            else:
                trace_id = random.getrandbits(128) or 1
                sampled = (trace_id & TRACE_ID_LOW_MASK) < self.bound
            if not self.record:
                await self._untraced(scope, receive, send, parent, trace_id, sampled)
            elif sampled and self.otel is None:
                await self._traced(scope, receive, send, facts, parent_context, 0 if parent.is_valid else trace_id)
            elif sampled and stock_can_read(scope):  # message_spans: the stock middleware raises on some bytes
                await self._stock(scope, receive, send, facts, parent_context, 0 if parent.is_valid else trace_id)
            else:
                await self._unsampled(scope, receive, send, facts, parent_context, parent, trace_id, sampled)
        except BaseException as exc:
            facts.fail(exc)
            raise
        finally:
            if runtime_token is not None:
                runtime_var.reset(runtime_token)

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

    async def _traced(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        facts: request.RequestFacts,
        parent_context: Context | None,
        trace_id: int,
    ) -> None:
        """Run a kept request in its server span, ended once the app returned or raised."""
        span = self._start_span(scope, parent_context, trace_id)
        token = context_api.attach(trace.set_span_in_context(span, parent_context))
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            facts.fail(exc)  # before the span ends: this middleware's own except comes after
            raise
        finally:
            context_api.detach(token)
            self._end_span(span, facts)

    def _start_span(
        self, scope: Scope, parent_context: Context | None, trace_id: int, span_id: int = 0, start: int | None = None
    ) -> trace.Span:
        """Start the server span: the stock middleware's attributes, the correlation ID, a redacted query.

        The sampling decision was made up front, so it is forced; ``trace_id`` / ``span_id`` (0:
        the SDK draws them) are the ids the request was given.
        """
        readable = readable_scope(scope)  # the stock attribute code raises on some bytes: made printable
        attributes = self.request_attributes(readable)
        if self.correlation_attribute is not None:
            correlation_id = get_correlation_id()
            if correlation_id is not None:
                attributes[self.correlation_attribute] = correlation_id
        query = readable.get("query_string")
        if query:
            cleaned = clean_query(query.decode("utf-8", "replace"), self.sensitive)
            if cleaned is not None:
                attributes.update(clean_url_attributes(attributes, cleaned))
        if self.capture_request:
            attributes.update(
                collect_custom_headers_attributes(
                    readable, self.sanitize, self.capture_request, normalise_request_header_name
                )
            )
        # Under a span already active in this process (an outer instrumentation's server span), the
        # request's span is INTERNAL, as the stock middleware makes it: one SERVER span per hop.
        kind = SpanKind.INTERNAL if trace.get_current_span().get_span_context().is_valid else SpanKind.SERVER
        token = handoff.set(Handoff(trace_id=trace_id, span_id=span_id, force=True))
        try:
            # An empty context, not None: None would make the current (non-recording) span the parent.
            return self.tracer.start_span(
                _span_details(scope)[0], parent_context or Context(), kind, attributes, start_time=start
            )
        finally:
            handoff.reset(token)

    def _end_span(self, span: trace.Span, facts: request.RequestFacts) -> None:
        """Name the span by route, give it the request's status and exception, and end it."""
        status, route, error = _span_outcome(facts)
        attributes, code = self.request_attributes.response(status) if status else (_NO_ATTRIBUTES, StatusCode.UNSET)
        if route is not None:
            span.update_name(f"{_span_details(facts.scope)[0]} {route}")
            attributes = {**attributes, "http.route": route}
        if self.capture_response and facts.response_status:
            message = {"headers": facts.response_headers}
            captured = collect_custom_headers_attributes(
                message, self.sanitize, self.capture_response, normalise_response_header_name
            )
            attributes = {**attributes, **captured}
        if attributes:
            span.set_attributes(attributes)
        if error is not None:
            if isinstance(error, Exception):
                span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        elif code is StatusCode.ERROR:
            span.set_status(_ERROR)
        span.end()

    async def _stock(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        facts: request.RequestFacts,
        parent_context: Context | None,
        trace_id: int,
    ) -> None:
        """Run a kept request through the stock middleware (``message_spans``)."""
        assert self.otel is not None
        # An empty context for a root: the stock middleware would otherwise pass the parent that
        # the process-global propagator found, a format this app may not accept.
        token = handoff.set(Handoff(trace_id=trace_id, context=parent_context or Context()))
        # The stock middleware wraps receive, which hides the facts from the ones inside (and
        # from _name): published, they stay shared.
        published = request.publish(facts)
        try:
            await self.otel(scope, receive, send)
        finally:
            request.unpublish(published)
            handoff.reset(token)

    async def _named(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app as the stock middleware calls it: names the server span once routing is done."""
        span = trace.get_current_span()
        facts = request.shared(scope, receive)  # published by _stock
        named = False

        async def send_named(message: Message) -> None:
            nonlocal named
            if not named and message["type"] == "http.response.start":
                named = True
                self._name(span, scope, facts)
            await send(message)

        try:
            await self.app(scope, receive, send_named)
        finally:
            if not named:
                self._name(span, scope, facts)

    def _name(self, span: trace.Span, scope: Scope, facts: request.RequestFacts | None) -> None:
        template = facts.route if facts is not None else route_template(scope, scope.get("root_path", ""))
        if template is not None and span.is_recording():
            span.update_name(f"{_span_details(scope)[0]} {template}")
            span.set_attribute("http.route", template)

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
                span.set_attributes(clean_url_attributes(getattr(span, "attributes", None) or {}, cleaned))

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
        facts: request.RequestFacts,
        parent_context: Context | None,
        parent: SpanContext,
        trace_id: int,
        sampled: bool,
    ) -> None:
        """Run a request with a non-recording span carrying real ids; record its server span afterwards if needed.

        A request the sampler drops runs in the W3C *not sampled* context (the parent's flags,
        which have no ``SAMPLED``, or ``RANDOM`` alone for a root), and its server span is
        recorded only if it fails. A kept request the stock middleware cannot read (``sampled``,
        under ``message_spans``) runs with a sampled non-recording span, and its server span is
        always recorded with those ids, so the app's spans under it are never left without their parent.
        """
        # ``sampled`` is the parent's flag when there is one: its flags as they came, else ours.
        flags = parent.trace_flags if parent.is_valid else _ROOT_FLAGS[sampled]
        span_id = random.getrandbits(64) or 1
        span_context = SpanContext(trace_id, span_id, False, flags, parent.trace_state)
        token = context_api.attach(trace.set_span_in_context(NonRecordingSpan(span_context), parent_context))
        start = time.time_ns()
        held = Pending(trace_id) if self.keep_error_children and not sampled else None
        held_token = pending.set(held) if held is not None else None
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            facts.fail(exc)
            raise
        finally:
            if held_token is not None:
                pending.reset(held_token)
            context_api.detach(token)
            if sampled or _failed(facts):
                self._keep_failed(scope, facts, parent_context, span_context, start, held)

    def _keep_failed(
        self,
        scope: Scope,
        facts: request.RequestFacts,
        parent_context: Context | None,
        ids: SpanContext,
        start: int,
        held: Pending | None,
    ) -> None:
        """Record the server span of a request after the fact, as a kept request's would have been.

        That of a failed unsampled request, or of a kept one the stock middleware cannot read.
        The child spans ``held`` back during the request (``keep_error_children``) go with it.
        """
        span = self._start_span(scope, parent_context, ids.trace_id, ids.span_id, start)
        self._end_span(span, facts)
        if held is not None and held.spans and self.queue is not None:
            self.queue.release(held.spans)


def semconv_mode() -> _StabilityMode:
    """The HTTP semantic conventions opentelemetry-instrumentation-asgi records (``OTEL_SEMCONV_STABILITY_OPT_IN``)."""
    _OpenTelemetrySemanticConventionStability._initialize()  # type: ignore[no-untyped-call]
    mode: _StabilityMode = _OpenTelemetrySemanticConventionStability._get_opentelemetry_stability_opt_in_mode(
        _OpenTelemetryStabilitySignalType.HTTP
    )
    return mode


def _span_outcome(facts: request.RequestFacts) -> tuple[int, str | None, BaseException | None]:
    """``(status, route, error)`` for the server span.

    The status is the one sent, else the request's (500 when the app raised or never answered).
    A request whose client went away is the client's doing: a 499, never ERROR, unless a
    response under 500 had started (its status is what the client saw). A 5xx sent once the client
    was gone is the app's answer to the disconnect (Starlette's 500 for ``ClientDisconnect``),
    which the server drops.
    """
    status, route, error = facts.outcome()
    if status == request.CLIENT_CLOSED_STATUS:
        sent = facts.response_status
        return (sent if 0 < sent < 500 else status), route, None
    return status, route, error


def _failed(facts: request.RequestFacts) -> bool:
    """Whether a request's server span must be kept whatever the sampler said: a server error."""
    if facts.completed and facts.error is None:  # the common case, without the route's cost
        return facts.response_status >= 500
    status, _, error = _span_outcome(facts)
    return error is not None or status >= 500


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
        announce_runtime=not current_app.found(suite),  # else found through the suite, nothing set per request
    )
