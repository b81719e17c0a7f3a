"""Correlation-ID middleware: ours against asgi-correlation-id, over the same bare Starlette app.

Run: ``python benchmarks/bench_correlation.py`` (or ``tox -e bench``).
"""

from __future__ import annotations

from asgi_correlation_id import CorrelationIdMiddleware as PeerMiddleware
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ops_observe.correlation.middleware import CorrelationIdMiddleware

from floor import FloorMiddleware
from harness import measure, report


def make_app() -> Starlette:
    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/", home)])


def main() -> None:
    apps = {
        "bare": make_app(),
        "ops_observe correlation": CorrelationIdMiddleware(make_app()),
        "asgi-correlation-id": PeerMiddleware(make_app()),
        "floor (a fresh id in a header, nothing else)": FloorMiddleware(make_app()),
    }
    print(report("Correlation ID, no incoming header (a fresh ID per request)", measure(apps)))
    incoming = [
        (b"x-request-id", b"0f8fad5b-d9cb-469f-a165-70867728950e"),
        (b"x-correlation-id", b"0f8fad5b-d9cb-469f-a165-70867728950e"),
    ]
    print()
    print(report("Correlation ID, valid incoming UUID", measure(apps, headers=incoming)))


if __name__ == "__main__":
    main()
