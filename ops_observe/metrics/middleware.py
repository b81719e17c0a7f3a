"""The HTTP metrics middleware: requests, latency, sizes, errors, in-progress, security counters.

Pure ASGI: it reads the request's :class:`ops_observe.request.RequestFacts` (shared with the other
middlewares of the app, whose wrapped ``receive`` and ``send`` record sizes, status and outcome) and
records in ``finally``, so an exception is counted (as 500 when no response had started) and still
propagates. A request whose client went away before the response completed is recorded as 499 and
is not counted in ``http_errors_total``: the client's doing, not the server's. The label
children of each ``(method, endpoint, status)`` are resolved once and cached, so a request after
the first of its kind costs dictionary look-ups and the observations themselves. The suite's own
endpoints (``/metrics``, ``/health``...) are counted but, unless asked, get no latency or size
histograms: decided once per label set, when its children are resolved, not per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ops_observe.metrics.catalog import Catalog, GuardedMetric
from ops_observe.metrics.http import BATCH, Series, batchable
from ops_observe.request import (
    CLIENT_CLOSED_STATUS,
    OTHER_METHOD,
    STANDARD_METHODS,
    RequestFacts,
    enter,
    media_types,
)
from ops_observe.root import Settings
from ops_observe.routes import is_django_app
from ops_observe.suite import Suite
from ops_observe.types import ASGIApp, Receive, Scope, Send

UNMATCHED = "<unmatched>"
"""The ``endpoint`` label of requests no route matched (never the raw path)."""
CANCELLED_STATUS = CLIENT_CLOSED_STATUS
"""Status recorded for a request whose client went away before the response completed."""
_CACHE_LIMIT = 10_000
BATCHED_SERIES = 1_000
"""Label sets whose samples are batched (``metrics.http``); the rarer ones past it are observed directly."""

_perf_counter = time.perf_counter


class _Children:
    """The label children of one ``(method, endpoint, status)``; the rare ones made on first use.

    ``series`` accumulates without locks (single-process mode); ``None`` means observe directly.
    """

    __slots__ = (
        "duration",
        "endpoint",
        "labels",
        "request_size",
        "requests",
        "response_size",
        "series",
        "status",
        "ttfb",
    )

    requests: Any
    duration: Any
    request_size: Any
    response_size: Any
    ttfb: Any
    series: Series | None

    def __init__(self, catalog: Catalog, labels: tuple[str, str, str], batched: bool, histograms: bool = True) -> None:
        m = catalog.metrics
        self.labels = labels
        self.endpoint = labels[1]
        self.status = labels[2]
        self.requests = m["http_requests_total"].metric.labels(*labels)
        if not histograms:
            # Counted only (a suite endpoint): no histogram child, so no series; observed directly,
            # which costs a lock, at the rate of probes and scrapes.
            self.duration = self.request_size = self.response_size = self.ttfb = _NOT_OBSERVED
            self.series = None
            return
        self.duration = m["http_request_duration_seconds"].metric.labels(*labels)
        self.request_size = m["http_request_size_bytes"].metric.labels(*labels)
        self.response_size = m["http_response_size_bytes"].metric.labels(*labels)
        self.ttfb = m["http_time_to_first_byte_seconds"].metric.labels(*labels)
        children = (self.duration, self.ttfb, self.request_size, self.response_size)
        self.series = Series(self.requests, children) if batched else None


class _NotObserved:
    """Stands for a histogram child that is not kept: observing it does nothing."""

    __slots__ = ()

    def observe(self, amount: float, exemplar: Mapping[str, str] | None = None) -> None:
        """Drop the observation."""


_NOT_OBSERVED = _NotObserved()


class MetricsMiddleware:
    """Records the HTTP metrics of the catalog for every HTTP request.

    Args:
        app: The ASGI app to wrap.
        catalog: The metric catalog of this wrapped app (its registry, guards and settings).
        stream_content_types: Media types of long-lived streams, kept out of the latency histogram.
        api_key_header: Request header counted (hashed) in ``api_key_usage_total``; empty: off.
        own_endpoints: Paths served by the suite itself (``/metrics``, ``/health``...), labelled as such.
        own_endpoint_histograms: Also keep the latency and size histograms of ``own_endpoints``;
            by default they are only counted.
        exemplars: Attach the active OpenTelemetry trace id to latency observations.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        catalog: Catalog,
        stream_content_types: Collection[str] = (),
        api_key_header: str = "",
        own_endpoints: Collection[str] = (),
        own_endpoint_histograms: bool = False,
        exemplars: bool = False,
    ) -> None:
        self.app = app
        self.catalog = catalog
        m = catalog.metrics
        self.in_progress: dict[str, Any] = {
            name: m["http_requests_in_progress"].metric.labels(name) for name in (*STANDARD_METHODS, OTHER_METHOD)
        }
        self.stream_types = media_types(stream_content_types)
        self.api_key_header = api_key_header.lower().encode("latin-1")
        self.own_endpoints: Mapping[str, str] = {path: path for path in own_endpoints}
        # Decided once per label set (in _children): the suite's endpoints are known at build time,
        # and an app route never has their label (the app's routes win: the suite then yields the path).
        self.counted_only = frozenset() if own_endpoint_histograms else frozenset(self.own_endpoints)
        self.cache: dict[tuple[str, str, int], _Children] = {}
        self.by_labels: dict[tuple[str, str, str], _Children] = {}
        self.endpoint_guard = m["http_requests_total"]
        self.errors = m["http_errors_total"]
        self.stream_duration = m["http_stream_duration_seconds"]
        self.auth_failures = m["auth_failures_total"]
        self.rate_limited = m["rate_limit_exceeded_total"]
        self.api_keys = m["api_key_usage_total"]
        self.trace_id = _trace_id_reader() if exemplars else None
        self.django = is_django_app(app)
        # Lock-free accumulation, folded in on collection; not in multiprocess mode, where another
        # worker may answer the scrape and so every value must reach the shared files at once.
        self.batched = not catalog.multiprocess and batchable()
        self.inflight = dict.fromkeys((*STANDARD_METHODS, OTHER_METHOD), 0)
        if self.batched:
            for name, child in self.in_progress.items():
                child.set_function(_reader(self.inflight, name))
            catalog.flusher.sources.append(self._all_series)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts, receive, send = enter(scope, receive, send, self.django)  # positional: cheaper
        method = facts.method
        trace_id = self.trace_id
        exemplars = _exemplars(facts, trace_id) if trace_id is not None else None
        batched = self.batched
        if batched:
            self.inflight[method] += 1
        else:
            self.in_progress[method].inc()
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            facts.fail(exc)
            raise
        finally:
            end = _perf_counter()
            if batched:
                self.inflight[method] -= 1
            else:
                self.in_progress[method].dec()
            status, route, error = facts.outcome()
            key = (method, route or self.own_endpoints.get(facts.path, UNMATCHED), status)
            children = self.cache.get(key)
            if children is None:
                children = self._children(key)
            start = facts.start
            started = facts.first_byte
            exemplar = exemplars[0] if exemplars else None
            # Only a response sent in several parts can be a stream: its type is looked at then.
            stream = facts.streamed and facts.is_stream(self.stream_types)
            series = children.series
            if series is not None and started and not stream and exemplar is None:
                # The common case: one append, no lock, no call into prometheus-client (metrics.http).
                samples = series.samples
                samples.append((end - start, started - start, facts.request_size, facts.response_size))
                if len(samples) >= BATCH:
                    series.fold()
            else:
                self._observe(children, facts, end - start, stream, exemplar)
            if error is not None:
                self.errors.labels(*children.labels, type(error).__name__).inc()
            if status in (401, 403, 429):
                self._security(scope, children, status)
            if self.api_key_header:
                self._api_key(scope, children)

    def _observe(
        self, children: _Children, facts: RequestFacts, duration: float, stream: bool, exemplar: dict[str, str] | None
    ) -> None:
        """Observe one request directly: multiprocess mode, a suite endpoint, a stream, an exemplar, or
        no response started."""
        children.requests.inc()
        if stream:
            self.stream_duration.labels(*children.labels).observe(duration)
        elif exemplar:
            children.duration.observe(duration, exemplar)
        else:
            children.duration.observe(duration)
        if facts.first_byte:
            children.ttfb.observe(facts.first_byte - facts.start)
        children.request_size.observe(facts.request_size)
        children.response_size.observe(facts.response_size)

    def _children(self, key: tuple[str, str, int]) -> _Children:
        method, endpoint, status = key
        # The endpoint goes through the cardinality cap once per new key, then the cache serves it.
        guarded = self.endpoint_guard.guard((method, endpoint, str(status)))
        labels = (guarded[0], guarded[1], guarded[2])
        histograms = endpoint not in self.counted_only
        if len(self.cache) < _CACHE_LIMIT:
            # Keys that fold into the same labels (past the cap) share one accumulator.
            children = self.by_labels.get(labels)
            if children is None:
                # Samples are held per series until folded: past BATCHED_SERIES label sets, observed
                # directly, so the memory held between scrapes stays bounded (BATCHED_SERIES x BATCH).
                batched = self.batched and len(self.by_labels) < BATCHED_SERIES
                children = self.by_labels[labels] = _Children(self.catalog, labels, batched, histograms)
            self.cache[key] = children
            return children
        # The cache is full: observe directly, so nothing waits for a flush it would never get.
        return self.by_labels.get(labels) or _Children(self.catalog, labels, batched=False, histograms=histograms)

    def _all_series(self) -> list[Series]:
        return [children.series for children in list(self.by_labels.values()) if children.series is not None]

    def _security(self, scope: Scope, children: _Children, status: int) -> None:
        if status == 429:
            self.rate_limited.labels(children.endpoint).inc()
            return
        if status == 403:
            reason = "forbidden"
        else:
            credentials = any(
                name == b"authorization" or name == self.api_key_header for name, _ in scope.get("headers", ())
            )
            reason = "invalid_credentials" if credentials else "missing_credentials"
        self.auth_failures.labels(reason, children.endpoint).inc()

    def _api_key(self, scope: Scope, children: _Children) -> None:
        header = self.api_key_header
        for name, value in scope["headers"]:
            if name == header:
                if value:
                    # GuardedMetric.labels hashes api_key_id (or drops it), never stores it raw.
                    self.api_keys.labels(value.decode("latin-1"), children.endpoint).inc()
                return


def _reader(counts: dict[str, int], name: str) -> Any:
    return lambda: counts[name]


def _exemplars(facts: RequestFacts, trace_id: Callable[[], dict[str, str] | None]) -> list[dict[str, str] | None]:
    """The exemplar of this request, read when its response starts (the app's span may be over in ``finally``)."""
    found: list[dict[str, str] | None] = []
    facts.on_response_start(lambda: found.append(trace_id()))
    return found


def _trace_id_reader() -> Any:
    """A function giving ``{"trace_id": ...}`` for the active sampled span, or ``None``."""
    try:
        from ops_observe.tracing.active import active_span_context
    except ImportError:  # tracing not installed: no exemplars, nothing else changes
        return None

    def read() -> dict[str, str] | None:
        context = active_span_context()
        if context.is_valid and context.trace_flags.sampled:
            return {"trace_id": format(context.trace_id, "032x")}
        return None

    return read


def from_settings(app: ASGIApp, settings: Settings, *, suite: Suite) -> ASGIApp:
    """The entry point of the metrics middleware: the app's catalog and settings from its suite."""
    from ops_observe.metrics.feature import catalog_of

    catalog = catalog_of(suite)
    section = settings.metrics
    return MetricsMiddleware(
        app,
        catalog=catalog,
        stream_content_types=section.stream_content_types,
        api_key_header=section.api_key_header,
        own_endpoints=tuple(suite.endpoints),
        own_endpoint_histograms=section.own_endpoint_histograms,
        exemplars=section.exemplars and "tracing" in settings.middleware and not catalog.multiprocess,
    )


__all__ = [
    "CANCELLED_STATUS",
    "OTHER_METHOD",
    "STANDARD_METHODS",
    "UNMATCHED",
    "GuardedMetric",
    "MetricsMiddleware",
    "from_settings",
]
