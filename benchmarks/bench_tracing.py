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

from ops_observe import trace_db_query, trace_external_call
from ops_observe.settings import load_settings
from ops_observe.tracing.middleware import TracingMiddleware
from ops_observe.tracing.provider import TracingRuntime, build_runtime

from harness import measure, report


class DropExporter(SpanExporter):
    """Accepts every batch and throws it away."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def load_user() -> str:
    return "u1"


def load_orders() -> list[str]:
    return ["o1"]


def quote() -> int:
    return 42


TRACED = (trace_db_query("SELECT", "users")(load_user), trace_db_query("SELECT", "orders")(load_orders))
TRACED_QUOTE = trace_external_call("pricing", "quote")(quote)


def make_app(traced: bool = True) -> Starlette:
    """``/items/{item_id}``, and ``/work``, which calls three functions (decorated when ``traced``)."""
    user, orders = TRACED if traced else (load_user, load_orders)
    price = TRACED_QUOTE if traced else quote

    async def item(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def work(request: object) -> PlainTextResponse:
        return PlainTextResponse(f"{user()} {orders()} {price()}")

    return Starlette(routes=[Route("/items/{item_id}", item), Route("/work", work)])


def ours(ratio: float, keep_error_children: bool = False) -> tuple[TracingMiddleware, TracingRuntime]:
    settings = load_settings({"service_name": "bench", "tracing": {"exporter": "console", "sample_ratio": ratio}})
    runtime = build_runtime(settings, exporter=DropExporter())
    middleware = TracingMiddleware(make_app(), runtime=runtime, keep_error_children=keep_error_children)
    return middleware, runtime


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
    children: dict[str, object] = {"bare": make_app(traced=False)}
    for ratio in (0.0, 0.1):
        for keep in (False, True):
            app, runtime = ours(ratio, keep)
            children[f"ops_observe tracing, ratio {ratio}" + (", keep_error_children" if keep else "")] = app
            closers.append(runtime.shutdown)
    unsampled_parent = [(b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]
    try:
        results = measure(apps, path="/items/42")  # type: ignore[arg-type]
        with_parent = measure(apps, path="/items/42", headers=unsampled_parent)  # type: ignore[arg-type]
        with_children = measure(children, path="/work")  # type: ignore[arg-type]
    finally:
        for close in closers:
            close()
    print(report("Tracing, GET /items/42 (200), no incoming trace context", results))
    print()
    print(report("Tracing, GET /items/42 (200), incoming unsampled `traceparent` (every app drops it)", with_parent))
    print()
    print(report("Tracing, GET /work (200) making 3 decorated child spans, no incoming context", with_children))
    print()
    for ratio in (1.0, 0.1):
        base = results["bare"]
        mine = results[f"ops_observe tracing, ratio {ratio}"] - base
        theirs = results[f"opentelemetry-instrumentation-asgi, ratio {ratio}"] - base
        print(f"ratio {ratio}: ours adds {mine:.1f} µs, stock adds {theirs:.1f} µs ({mine / theirs:.0%} of stock)")


if __name__ == "__main__":
    main()
