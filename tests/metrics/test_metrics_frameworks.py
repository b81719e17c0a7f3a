"""Route templates and counts on FastAPI and Django apps."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from metrics_support import (
    BASE,
    NS,
    call,
    label_values,
    restore_logging,  # noqa: F401 - an autouse fixture
    samples,
    scrape,
    value,
    wrap,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles

import ops_observe
from ops_observe.metrics.middleware import UNMATCHED


def fastapi_app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/v1")

    @router.get("/items/{item_id}")
    def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @router.post("/items")
    def create_item() -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(router)
    sub = FastAPI()

    @sub.get("/reports/{report_id}")
    def report(report_id: str) -> str:
        return report_id

    app.mount("/admin", sub)
    return app


def test_fastapi_routers_mounts_404_and_validation() -> None:
    app = wrap(fastapi_app())
    statuses = call(
        app, "/v1/items/1", "/v1/items/2", "/v1/items/x", ("POST", "/v1/items"), "/admin/reports/r-9", "/missing",
        ("OPTIONS", "/v1/items/1"),
    )  # fmt: skip
    assert statuses == [200, 200, 422, 200, 200, 404, 405]
    text = scrape(app)
    total = f"{NS}_http_requests_total"
    assert value(text, total, method="GET", endpoint="/v1/items/{item_id}", status="200") == 2
    assert value(text, total, method="GET", endpoint="/v1/items/{item_id}", status="422") == 1
    assert value(text, total, method="POST", endpoint="/v1/items", status="200") == 1
    assert value(text, total, method="GET", endpoint="/admin/reports/{report_id}", status="200") == 1
    assert value(text, total, method="GET", endpoint=UNMATCHED, status="404") == 1
    assert value(text, total, method="OPTIONS", endpoint="/v1/items/{item_id}", status="405") == 1
    assert "/v1/items/1" not in label_values(text, total, "endpoint")


def fastapi_docs_app(static_dir: Path) -> FastAPI:
    """A FastAPI app with its own docs routes, plain Starlette routes and mounts, and included routers."""
    app = FastAPI()

    def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("plain")

    included = APIRouter()
    included.add_route("/plain", plain)

    @included.get("/api/{x}")
    def api(x: str) -> str:
        return x

    included.mount("/inner", Router([Route("/deep/{y}", plain)]))
    app.include_router(included, prefix="/v1")
    app.include_router(included, prefix="/v2")  # the same router twice: each request keeps its prefix
    app.add_route("/top", plain)
    app.add_route("/top2", plain)  # one endpoint behind two routes
    app.mount("/static", StaticFiles(directory=static_dir))
    app.mount("/sub", Router([Route("/s/{y}", plain)]))
    return app


FASTAPI_CASES = [
    # (method, path, status, endpoint label)
    ("GET", "/docs", 200, "/docs"),
    ("HEAD", "/docs", 200, "/docs"),
    ("POST", "/docs", 405, "/docs"),
    ("GET", "/openapi.json", 200, "/openapi.json"),
    ("GET", "/docs/oauth2-redirect", 200, "/docs/oauth2-redirect"),
    ("GET", "/redoc", 200, "/redoc"),
    ("GET", "/v1/plain", 200, "/v1/plain"),
    ("GET", "/v2/plain", 200, "/v2/plain"),
    ("GET", "/v1/api/7", 200, "/v1/api/{x}"),
    ("GET", "/v2/api/7", 200, "/v2/api/{x}"),
    ("GET", "/v1/inner/deep/3", 200, "/v1/inner/deep/{y}"),
    ("GET", "/top", 200, "/top"),
    ("GET", "/top2", 200, "/top2"),
    ("GET", "/static/a.txt", 200, "/static/{path}"),
    ("GET", "/sub/s/4", 200, "/sub/s/{y}"),
    ("GET", "/sub/nothing", 404, UNMATCHED),
    ("GET", "/nowhere", 404, UNMATCHED),
]


def test_fastapi_docs_plain_routes_mounts_and_included_routers(tmp_path: Path) -> None:
    """FastAPI's own /docs, /openapi.json... are plain Starlette routes its router does not record."""
    (tmp_path / "a.txt").write_text("a")
    log = tmp_path / "access.log"
    settings = {**BASE, "middleware": ["logging", "metrics"], "logging": {"sink": str(log)}}
    app = ops_observe.wrap(fastapi_docs_app(tmp_path), settings=settings)
    statuses = call(app, *[(method, path) for method, path, _, _ in FASTAPI_CASES])
    assert statuses == [status for _, _, status, _ in FASTAPI_CASES]
    text = scrape(app)
    total = f"{NS}_http_requests_total"
    expected: Counter[tuple[str, str, str]] = Counter((m, e, str(s)) for m, _, s, e in FASTAPI_CASES)
    found = {
        (labels["method"], labels["endpoint"], labels["status"]): v
        for (name, frozen), v in samples(text).items()
        if name == total and (labels := dict(frozen))["endpoint"] != "/metrics"
    }
    assert found == {key: float(n) for key, n in expected.items()}
    from ops_observe.logging.feature import uninstall

    uninstall()  # flushes the file sink
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    access = [(line["method"], line["path"], line.get("route")) for line in lines if line.get("kind") == "access"]
    assert access[: len(FASTAPI_CASES)] == [(m, p, None if e == UNMATCHED else e) for m, p, _, e in FASTAPI_CASES]


def test_fastapi_app_mounted_in_starlette(tmp_path: Path) -> None:
    """A FastAPI app under a Starlette Mount: its plain routes are found past the mount."""
    (tmp_path / "a.txt").write_text("a")
    outer = Starlette(routes=[Mount("/api", app=fastapi_docs_app(tmp_path))])
    app = wrap(outer)
    cases = [("/api/docs", "/api/docs"), ("/api/v2/api/1", "/api/v2/api/{x}"), ("/api/v1/plain", "/api/v1/plain"),
             ("/api/top2", "/api/top2"), ("/api/static/a.txt", "/api/static/{path}"), ("/api/nope", UNMATCHED)]  # fmt: skip
    statuses = call(app, *[path for path, _ in cases])
    assert statuses == [200, 200, 200, 200, 200, 404]
    text = scrape(app)
    endpoints = label_values(text, f"{NS}_http_requests_total", "endpoint") - {"/metrics"}
    assert endpoints == {endpoint for _, endpoint in cases}


@pytest.fixture
def django_app() -> Iterator[object]:
    import django
    from django.conf import settings as django_settings

    if not django_settings.configured:
        # Django is configured once per process; the same settings as tests/spine/test_app.py
        # (which configures only when nobody did), so that either test may run first.
        django_settings.configure(
            DEBUG=False, ROOT_URLCONF="django_urls", ALLOWED_HOSTS=["*"], SECRET_KEY="test-only", USE_TZ=True
        )
        django.setup()
    from django.core.asgi import get_asgi_application
    from django.test.utils import override_settings

    # Another test module may have configured Django first, with its own URLconf.
    with override_settings(ROOT_URLCONF="metrics_django_urls"):
        yield get_asgi_application()


def test_django_route_patterns(django_app: object) -> None:
    app = wrap(django_app)
    statuses = call(app, "/api/items/1/", "/api/items/2/", "/nowhere/", "/boom/", "/")
    assert statuses == [200, 200, 404, 500, 200]
    text = scrape(app)
    total = f"{NS}_http_requests_total"
    assert value(text, total, method="GET", endpoint="/api/items/<int:item_id>/", status="200") == 2
    assert value(text, total, method="GET", endpoint=UNMATCHED, status="404") == 1
    assert value(text, total, method="GET", endpoint="/boom/", status="500") == 1
    assert value(text, total, method="GET", endpoint="/", status="200") == 1  # path(""): the root route
    assert value(text, f"{NS}_http_response_size_bytes_sum", method="GET", endpoint="/api/items/<int:item_id>/",
                 status="200") == len(b"item 1") + len(b"item 2")  # fmt: skip


def test_setup_observability_in_place() -> None:
    from metrics_support import settings

    import ops_observe

    app = fastapi_app()
    ops_observe.setup_observability(app, settings=settings())
    call(app, "/v1/items/3", "/v1/items/4")
    total = f"{NS}_http_requests_total"
    assert value(scrape(app), total, method="GET", endpoint="/v1/items/{item_id}", status="200") == 2
