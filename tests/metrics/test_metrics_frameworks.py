"""Route templates and counts on FastAPI and Django apps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from metrics_support import (
    NS,
    call,
    label_values,
    restore_logging,  # noqa: F401 - an autouse fixture
    scrape,
    value,
    wrap,
)

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
    statuses = call(app, "/api/items/1/", "/api/items/2/", "/nowhere/", "/boom/")
    assert statuses == [200, 200, 404, 500]
    text = scrape(app)
    total = f"{NS}_http_requests_total"
    assert value(text, total, method="GET", endpoint="/api/items/<int:item_id>/", status="200") == 2
    assert value(text, total, method="GET", endpoint=UNMATCHED, status="404") == 1
    assert value(text, total, method="GET", endpoint="/boom/", status="500") == 1
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
