"""Tracing middleware: ours against opentelemetry-instrumentation-asgi set up the stock way.

Both export to an exporter that drops every batch (so the collector is not measured), through a
batch processor on a background thread; both sample with ``ParentBased(TraceIdRatioBased(r))``.
Ours also keeps every failed request, which costs nothing on this (successful) request.

Run: ``python benchmarks/bench_tracing.py`` (or ``tox -e bench``).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ops_observe.middleware.tracing import TracingMiddleware
from ops_observe.settings import load_settings
from ops_observe.tracing.provider import TracingRuntime, build_runtime

from harness import measure, report


class DropExporter(SpanExporter):
    """Accepts every batch and throws it away."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def make_app() -> Starlette:
    async def item(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/items/{item_id}", item)])


def ours(ratio: float) -> tuple[TracingMiddleware, TracingRuntime]:
    settings = load_settings({"service_name": "bench", "tracing": {"exporter": "console", "sample_ratio": ratio}})
    runtime = build_runtime(settings, exporter=DropExporter())
    return TracingMiddleware(make_app(), runtime=runtime), runtime


def stock(ratio: float) -> tuple[OpenTelemetryMiddleware, TracerProvider]:
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    return OpenTelemetryMiddleware(make_app(), tracer_provider=provider), provider


def main() -> None:
    apps: dict[str, object] = {"bare": make_app()}
    closers = []
    for ratio in (1.0, 0.1, 0.0):
        app, runtime = ours(ratio)
        apps[f"ops_observe tracing, ratio {ratio}"] = app
        closers.append(runtime.shutdown)
        if ratio:
            stock_app, provider = stock(ratio)
            apps[f"opentelemetry-instrumentation-asgi, ratio {ratio}"] = stock_app
            closers.append(provider.shutdown)
    unsampled_parent = [(b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]
    try:
        results = measure(apps, path="/items/42")  # type: ignore[arg-type]
        with_parent = measure(apps, path="/items/42", headers=unsampled_parent)  # type: ignore[arg-type]
    finally:
        for close in closers:
            close()
    print(report("Tracing, GET /items/42 (200), no incoming trace context", results))
    print()
    print(report("Tracing, GET /items/42 (200), incoming unsampled `traceparent` (every app drops it)", with_parent))
    print()
    for ratio in (1.0, 0.1):
        base = results["bare"]
        mine = results[f"ops_observe tracing, ratio {ratio}"] - base
        theirs = results[f"opentelemetry-instrumentation-asgi, ratio {ratio}"] - base
        print(f"ratio {ratio}: ours adds {mine:.1f} µs, stock adds {theirs:.1f} µs ({mine / theirs:.0%} of stock)")


if __name__ == "__main__":
    main()
