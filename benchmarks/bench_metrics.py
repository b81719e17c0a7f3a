"""HTTP metrics middleware: ours against starlette-exporter and prometheus-fastapi-instrumentator.

Each is measured over the same bare app (Starlette for starlette-exporter, FastAPI for
prometheus-fastapi-instrumentator, as each is meant to be used), on a route with a path
parameter, in one interleaved run. Target: our overhead at most a third of starlette-exporter's.

Run: ``cd benchmarks && python bench_metrics.py``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette_exporter import PrometheusMiddleware

import ops_observe

from floor import FloorMiddleware, floor_metrics
from harness import measure, report

SETTINGS = {"service_name": "bench", "middleware": ["metrics"]}
NO_MIDDLEWARE = {"service_name": "bench", "middleware": []}


def starlette_app() -> Starlette:
    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette()
    app.add_route("/items/{item_id}", item)
    return app


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


def floor_app() -> FloorMiddleware:
    """The least an HTTP metrics middleware can do: label children resolved once, one inc, one observe."""
    counter, histogram = floor_metrics()
    return FloorMiddleware(starlette_app(), request_id=False, counter=counter, histogram=histogram)


def main() -> None:
    logging.disable(logging.CRITICAL)  # other features' log lines are not what is measured
    exporter = starlette_app()
    exporter.add_middleware(PrometheusMiddleware, group_paths=True)
    instrumented = fastapi_app()
    Instrumentator(registry=CollectorRegistry()).instrument(instrumented)
    apps = {
        "bare": starlette_app(),
        "ops_observe wrap(), no middleware": ops_observe.wrap(starlette_app(), settings=NO_MIDDLEWARE),
        "ops_observe metrics": ops_observe.wrap(starlette_app(), settings=SETTINGS),
        "starlette-exporter": exporter,
        "floor (one counter inc, one histogram observe)": floor_app(),
        "bare FastAPI": fastapi_app(),
        "FastAPI + ops_observe metrics": ops_observe.wrap(fastapi_app(), settings=SETTINGS),
        "FastAPI + prometheus-fastapi-instrumentator": instrumented,
    }
    results = measure(apps, path="/items/42")
    baselines = [(name, "bare FastAPI") for name in apps if name.startswith("FastAPI") or name == "bare FastAPI"]
    print(report("HTTP metrics middleware, GET /items/42 (route with a path parameter)", results, baselines))
    ours = results["ops_observe metrics"] - results["bare"]
    peer = results["starlette-exporter"] - results["bare"]
    print()
    print(
        f"ops_observe overhead {ours:.1f} µs = {ours / peer:.0%} of starlette-exporter's {peer:.1f} µs (target <= 33%)"
    )


if __name__ == "__main__":
    main()
