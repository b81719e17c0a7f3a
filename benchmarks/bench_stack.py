"""The whole suite against the peers combined: what a request pays for all of ops_observe at once.

The same Starlette app, GET /items/42, in one interleaved run:

* ``ops_observe.wrap()`` with the default middleware list (correlation, tracing at ratio 0.1,
  the JSON access log to ``/dev/null`` with redaction on, metrics);
* the peers stacked the way a user would stack them: asgi-correlation-id, the stock
  opentelemetry-instrumentation-asgi middleware (ratio 0.1), a structlog JSON access-log
  middleware (to ``/dev/null``, no redaction) and starlette-exporter;
* the floor (``floor.py``): one id, one counter, one JSON line, and nothing else.

Both tracers export to an exporter that drops the spans, so no network is timed.

Run: ``cd benchmarks && python bench_stack.py``.
"""

from __future__ import annotations

import logging
import os

from asgi_correlation_id import CorrelationIdMiddleware
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from starlette_exporter import PrometheusMiddleware

import ops_observe
from ops_observe.tracing.feature import STATE_KEY

from bench_logging import PeerAccessLog, structlog_logger
from bench_metrics import starlette_app as make_app
from bench_tracing import DropExporter
from floor import FloorMiddleware, floor_metrics
from harness import measure, report

RATIO = 0.1


def ours() -> ops_observe.ObservedApp:
    settings = {
        "service_name": "bench",
        "logging": {"sink": os.devnull},
        # A real exporter is configured, then swapped for the dropping one the peer gets too.
        "tracing": {"exporter": "zipkin", "sample_ratio": RATIO},
    }
    app = ops_observe.wrap(make_app(), settings=settings)
    queue = app.suite.state[STATE_KEY].queue
    queue.exporter = DropExporter()
    return app


def peers(devnull: object) -> CorrelationIdMiddleware:
    inner = make_app()
    inner.add_middleware(PrometheusMiddleware, group_paths=True)
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(RATIO)), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    traced = OpenTelemetryMiddleware(PeerAccessLog(inner, structlog_logger(devnull).info), tracer_provider=provider)
    return CorrelationIdMiddleware(traced)


def main() -> None:
    logging.disable(logging.CRITICAL)  # the peers' own library logging is not what is measured
    with open(os.devnull, "w") as devnull:
        apps = {
            "bare": make_app(),
            "ops_observe, whole suite": ours(),
            "the peers combined": peers(devnull),
            # The least any stack can do: one id, one counter, one JSON line (see floor.py).
            "floor": FloorMiddleware(make_app(), counter=floor_metrics()[0], sink=devnull),
        }
        results = measure(apps, path="/items/42")
    print(report(f"Whole stack, GET /items/42, tracing ratio {RATIO}", results))
    mine, theirs = (results[name] - results["bare"] for name in ("ops_observe, whole suite", "the peers combined"))
    print()
    print(f"ops_observe adds {mine:.1f} µs, the peers combined {theirs:.1f} µs: {mine / theirs:.0%} of theirs")
    least = results["floor"] - results["bare"]
    print(f"the floor adds {least:.1f} µs: ops_observe is {mine / least:.1f}x the floor")


if __name__ == "__main__":
    main()
