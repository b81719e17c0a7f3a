"""One tracer provider per wrapped app, built from the settings; and the "current" provider.

The global OpenTelemetry tracer provider can be set once per process, so the suite never sets
it: each wrapped app gets its own :class:`TracingRuntime` (provider, sampler, exporter queue,
propagator), handed explicitly to its middleware. Code that has no app at hand (the decorators
of :mod:`ops_observe.tracing.api`, auto-instrumented libraries) uses :func:`current_runtime`:
the runtime of the request being served, else the one installed last, else none (then the
global OpenTelemetry provider is used, whatever the user set there).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.util.types import Attributes

from ops_observe.current import current_suite
from ops_observe.errors import SettingsError
from ops_observe.redaction import Redactor, get_redactor
from ops_observe.root import Settings
from ops_observe.tracing.config import TracingConfig, resolve
from ops_observe.tracing.export import ExportQueue
from ops_observe.tracing.sampling import (
    ErrorKeepingSampler,
    PresetIdGenerator,
    ratio_bound,
)

__all__ = [
    "INSTRUMENTATIONS",
    "CurrentTracerProvider",
    "TracingRuntime",
    "build_runtime",
    "current_runtime",
    "runtime_var",
]

TRACER_NAME = "ops_observe"

# Message templates, imported by the tests.
MISSING_PACKAGE = "{what} needs the package {package} (pip install {package}{extra})"

# name -> (module, instrumentor class, distribution)
INSTRUMENTATIONS: Mapping[str, tuple[str, str, str]] = {
    "httpx": (
        "opentelemetry.instrumentation.httpx",
        "HTTPXClientInstrumentor",
        "opentelemetry-instrumentation-httpx",
    ),
    "redis": (
        "opentelemetry.instrumentation.redis",
        "RedisInstrumentor",
        "opentelemetry-instrumentation-redis",
    ),
    "psycopg": (
        "opentelemetry.instrumentation.psycopg",
        "PsycopgInstrumentor",
        "opentelemetry-instrumentation-psycopg",
    ),
    "asyncpg": (
        "opentelemetry.instrumentation.asyncpg",
        "AsyncPGInstrumentor",
        "opentelemetry-instrumentation-asyncpg",
    ),
}

PROPAGATOR_CLASSES: Mapping[str, tuple[str, str, str]] = {
    "tracecontext": (
        "opentelemetry.trace.propagation.tracecontext",
        "TraceContextTextMapPropagator",
        "opentelemetry-api",
    ),
    "baggage": (
        "opentelemetry.baggage.propagation",
        "W3CBaggagePropagator",
        "opentelemetry-api",
    ),
    "b3": (
        "opentelemetry.propagators.b3",
        "B3SingleFormat",
        "opentelemetry-propagator-b3",
    ),
    "b3multi": (
        "opentelemetry.propagators.b3",
        "B3MultiFormat",
        "opentelemetry-propagator-b3",
    ),
}

OnDrop = Callable[[str, int], None]


class TracingRuntime:
    """The tracing of one wrapped app: its provider, tracer, propagator and sampling bound.

    Attributes:
        provider: The SDK tracer provider of this app (never the process-global one).
        tracer: ops_observe's tracer from ``provider``.
        propagator: Reads the parent context from requests (and writes it for outgoing calls).
        config: The resolved settings.
        record: Whether spans are recorded at all; default: when there is an export queue. False with
            ``exporter = "none"``: requests get ids for log lines only (nothing attached to the
            OpenTelemetry context, nothing propagated), nothing is recorded.
        bound: The ratio's bound on the low 64 bits of a root trace id (as ``TraceIdRatioBased``).
        queue: The export queue, or ``None`` with no exporter.
    """

    def __init__(
        self,
        provider: TracerProvider,
        propagator: TextMapPropagator,
        config: TracingConfig,
        queue: ExportQueue | None = None,
        *,
        record: bool | None = None,
    ) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer(TRACER_NAME)
        self.propagator = propagator
        self.config = config
        self.queue = queue
        self.record = queue is not None if record is None else record
        self.bound = ratio_bound(config.sample_ratio)
        self.tracers: dict[tuple[str, str | None, str | None], Tracer] = {}
        self._closed = False

    def flush(self) -> bool:
        """Export what is queued, bounded by ``shutdown_timeout``; False when time ran out."""
        if self.queue is None or self._closed:
            return True
        return self.queue.force_flush(int(self.config.shutdown_timeout * 1000))

    def shutdown(self) -> None:
        """Flush (bounded) and stop the export thread; later spans are dropped and counted."""
        if self._closed:
            return
        self._closed = True
        self.provider.shutdown()  # the queue's shutdown is bounded by shutdown_timeout


runtime_var: ContextVar[TracingRuntime | None] = ContextVar("ops_observe_tracing_runtime", default=None)
"""The runtime of the app serving the current request, set by the tracing middleware."""

_latest: list[TracingRuntime] = []  # a runtime built by hand (no wrapped app), for tests and benchmarks


def current_runtime() -> TracingRuntime | None:
    """The current request's tracing runtime; else one built by hand and set with :func:`set_latest`
    since the last app with tracing was wrapped; else that of :func:`ops_observe.current.current_suite`
    (the one way the suite finds "the current app"); else ``None``."""
    runtime = runtime_var.get()
    if runtime is not None:
        return runtime
    if _latest:
        return _latest[-1]
    suite = current_suite()
    found = suite.state.get("tracing") if suite is not None else None
    return found if isinstance(found, TracingRuntime) else None


def set_latest(runtime: TracingRuntime) -> None:
    """Use ``runtime`` outside requests (a runtime built by hand), until an app with tracing is wrapped."""
    _latest[:] = [runtime]


def forget_latest() -> None:
    """A newly wrapped app with tracing is the default again: drop the runtime :func:`set_latest` set."""
    _latest.clear()


def build_runtime(
    settings: Settings, *, on_drop: OnDrop | None = None, exporter: SpanExporter | None = None
) -> TracingRuntime:
    """Build the provider, exporter queue and propagator of one app; raises :class:`SettingsError`.

    Args:
        settings: The root settings (``tracing`` section, service identity, redaction).
        on_drop: Called ``on_drop(reason, count)`` for spans lost before export.
        exporter: Export there instead of the exporter the settings name (tests, benchmarks).
    """
    config = resolve(settings)
    propagator = build_propagator(config.propagators, settings.source)
    if exporter is None:
        exporter = build_exporter(config, settings.source)
    resource = build_resource(settings)
    provider = TracerProvider(
        sampler=ErrorKeepingSampler(config.sample_ratio),
        resource=resource,
        id_generator=PresetIdGenerator(),
        # Our runtime flushes at lifespan shutdown and registers its own bounded atexit flush;
        # the SDK's atexit hook would keep every provider alive for the life of the process.
        shutdown_on_exit=False,
    )
    queue = None
    if exporter is not None:
        queue = ExportQueue(
            exporter,
            max_queue_size=config.max_queue_size,
            max_export_batch_size=config.max_export_batch_size,
            schedule_delay=config.schedule_delay,
            on_drop=on_drop,
            transform=redacting(get_redactor(settings)),
            shutdown_timeout=config.shutdown_timeout,
        )
        provider.add_span_processor(queue)
    return TracingRuntime(provider, propagator, config, queue)


def build_resource(settings: Settings) -> Resource:
    """``service.name``, ``service.version``, ``deployment.environment`` over ``OTEL_RESOURCE_ATTRIBUTES``.

    ``OTEL_SERVICE_NAME`` is kept when ``service_name`` is left at its default.
    """
    base = Resource.create({})
    ours: dict[str, str] = {
        "service.version": settings.version,
        "deployment.environment": settings.environment,
    }
    default_name = Settings.__dataclass_fields__["service_name"].default
    from_env = str(base.attributes.get("service.name", "unknown_service"))
    if settings.service_name != default_name or from_env.startswith("unknown_service"):
        ours["service.name"] = settings.service_name
    return base.merge(Resource(ours))


def build_exporter(config: TracingConfig, source: str) -> SpanExporter | None:
    """The exporter named by ``config.exporter``; the OTLP one is imported only when chosen."""
    if config.exporter == "zipkin":
        from opentelemetry.exporter.zipkin.json import ZipkinExporter
        from opentelemetry.exporter.zipkin.json.v2 import JsonV2Encoder

        class SchemaValidEncoder(JsonV2Encoder):
            """The stock v2 encoder writes ``"kind": null`` for internal spans; the Zipkin v2 schema
            wants the key absent (the tests' schema-validating collector caught it)."""

            def _encode_span(self, span: Any, encoded_local_endpoint: Any) -> dict[str, Any]:
                encoded: dict[str, Any] = super()._encode_span(span, encoded_local_endpoint)
                if encoded.get("kind") is None:
                    encoded.pop("kind", None)
                return encoded

        # requests takes a float timeout; the exporter's annotation says int only.
        timeout: Any = config.export_timeout
        zipkin = ZipkinExporter(endpoint=config.zipkin_endpoint, timeout=timeout)
        zipkin.encoder = SchemaValidEncoder()  # type: ignore[assignment]
        return zipkin
    if config.exporter == "otlp":
        try:
            module = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        except ImportError as exc:
            problem = MISSING_PACKAGE.format(
                what='exporter = "otlp"',
                package="opentelemetry-exporter-otlp-proto-http",
                extra=", or pip install 'ops-observe[otlp]'",
            )
            raise SettingsError(source, "tracing.exporter", problem) from exc
        exporter: SpanExporter = module.OTLPSpanExporter(endpoint=config.otlp_endpoint, timeout=config.export_timeout)
        return exporter
    if config.exporter == "console":
        return ConsoleSpanExporter()
    return None


def build_propagator(names: Sequence[str], source: str) -> TextMapPropagator:
    """A composite of the named propagation formats, in order."""
    propagators: list[TextMapPropagator] = []
    for name in names:
        module_name, class_name, package = PROPAGATOR_CLASSES[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            problem = MISSING_PACKAGE.format(what=f"propagator {name!r}", package=package, extra="")
            raise SettingsError(source, "tracing.propagators", problem) from exc
        propagators.append(getattr(module, class_name)())
    return CompositePropagator(propagators)


def instrument(names: Sequence[str], source: str, propagator: TextMapPropagator | None = None) -> None:
    """Auto-instrument the named libraries, tracing into the current runtime's provider.

    Instrumentation patches the library for the whole process, once: a second wrapped app shares
    it, and its spans go to the provider of whichever app serves the request. The instrumented
    clients inject the process-global propagator into outgoing calls, so ``propagator`` (the app's)
    becomes the global one.
    """
    instrumentors = []
    for name in names:
        module_name, class_name, package = INSTRUMENTATIONS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            problem = MISSING_PACKAGE.format(what=f"instrument = [{name!r}]", package=package, extra="")
            raise SettingsError(source, "tracing.instrument", problem) from exc
        instrumentors.append(getattr(module, class_name)())
    if propagator is not None:
        from opentelemetry.propagate import set_global_textmap

        set_global_textmap(propagator)
    for instrumentor in instrumentors:  # only once every package is known to be there
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=CurrentTracerProvider())


def redacting(redactor: Redactor) -> Callable[[ReadableSpan], ReadableSpan]:
    """A transform giving a copy of a span whose attribute and event values went through ``redactor``."""

    def clean(attributes: Attributes) -> tuple[Attributes, bool]:
        if not attributes:
            return attributes, False
        changed = False
        out: dict[str, Any] = {}
        for key, value in attributes.items():
            new = redactor.field(key, value)
            if new is not value:
                changed = changed or new != value
            out[key] = new
        return (out if changed else attributes), changed

    def transform(span: ReadableSpan) -> ReadableSpan:
        attributes, changed = clean(span.attributes)
        events = list(span.events)
        for i, event in enumerate(events):
            event_attributes, event_changed = clean(event.attributes)
            if event_changed:
                events[i] = Event(event.name, event_attributes, event.timestamp)
                changed = True
        if not changed:
            return span
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes,
            events=events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    return transform


class CurrentTracerProvider(trace.TracerProvider):
    """A tracer provider whose tracers start spans in :func:`current_runtime`'s provider.

    Handed to auto-instrumentations, which take a provider once for the whole process.
    """

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> Tracer:
        return CurrentTracer(instrumenting_module_name, instrumenting_library_version, schema_url)


class CurrentTracer(trace.Tracer):
    """A tracer that looks up the current runtime's tracer (cached per provider) at each span."""

    def __init__(self, name: str, version: str | None = None, schema_url: str | None = None) -> None:
        self.name = name
        self.version = version
        self.schema_url = schema_url
        self._key = (name, version, schema_url)

    def _tracer(self) -> Tracer:
        runtime = current_runtime()
        if runtime is None:
            return trace.get_tracer(self.name, self.version, schema_url=self.schema_url)
        # Cached on the runtime, so it lives and dies with its app.
        tracer = runtime.tracers.get(self._key)
        if tracer is None:
            tracer = runtime.tracers[self._key] = runtime.provider.get_tracer(*self._key)
        return tracer

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        return self._tracer().start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> AbstractContextManager[Span]:
        manager: AbstractContextManager[Span] = self._tracer().start_as_current_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        )
        return manager
