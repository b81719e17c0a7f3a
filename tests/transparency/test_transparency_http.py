"""The same HTTP requests against real apps, unwrapped and wrapped: the same status, body, headers
(but the one ``x-correlation-id`` the wrapped app adds), under asyncio and trio."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import transparency_apps as apps
from compare import same_answer
from driver import call

import ops_observe

pytestmark = pytest.mark.anyio

CASES: dict[str, list[tuple[str, str, int, dict[str, Any]]]] = {
    "starlette_routes": [
        ("GET", "/items/7", 200, {"query": "q=a%20b"}),
        ("GET", "/users/ann/items/3", 200, {}),
        ("POST", "/echo", 201, {"body": b"hello body", "headers": {"content-type": "application/octet-stream"}}),
        ("GET", "/echo", 405, {}),  # 405
        ("GET", "/items/not-a-number", 404, {}),  # 404
        ("GET", "/items/7", 200, {"root_path": "/prefix"}),
    ],
    "starlette_mounts": [
        ("GET", "/app/where/1", 200, {}),
        ("GET", "/router/where/2", 200, {}),
        ("GET", "/router/items/5", 200, {}),
        ("GET", "/app/where/1", 200, {"root_path": "/prefix"}),
        ("GET", "/router/where/2", 200, {"root_path": "/prefix"}),
        ("GET", "/app/nowhere", 404, {}),
        ("GET", "/top", 200, {"root_path": "/prefix"}),
    ],
    "starlette_endpoints": [
        ("GET", "/hello", 200, {}),
        ("POST", "/hello", 202, {"body": b"x=1"}),
        ("DELETE", "/hello", 405, {}),  # 405 from the endpoint class
    ],
    "http_endpoint_class": [
        ("GET", "/anything/at/all", 200, {}),
        ("POST", "/posted", 202, {"body": b"payload"}),
        ("PUT", "/anything", 405, {}),
    ],
    "fastapi_app": [
        ("GET", "/items/4", 200, {"query": "limit=3", "headers": {"x-tenant": "acme"}}),
        ("GET", "/items/4", 422, {"query": "limit=nope"}),  # 422 from the dependency's validation
        ("GET", "/stream", 200, {}),
        ("POST", "/jobs", 200, {}),
        ("GET", "/openapi.json", 200, {}),
        ("GET", "/nowhere", 404, {}),
    ],
    "raw_asgi3": [
        ("GET", "/x/y", 200, {"query": "a=1"}),
        ("POST", "/post", 200, {"body": b"raw body"}),
        ("GET", "/missing", 404, {}),
    ],
    "raw_asgi2": [
        ("GET", "/x/y", 200, {}),
        ("POST", "/post", 200, {"body": b"raw body"}),
    ],
}

FLAT = [(kind, *case) for kind, cases in CASES.items() for case in cases]
IDS = [
    f"{kind}-{method}-{path}{'-root' if 'root_path' in kw else ''}{'-q' if 'query' in kw else ''}"
    for kind, method, path, _, kw in FLAT
]


@pytest.mark.parametrize(("kind", "method", "path", "status", "kwargs"), FLAT, ids=IDS)
async def test_same_answer(
    kind: str, method: str, path: str, status: int, kwargs: dict[str, Any], settings: dict[str, Any]
) -> None:
    make: Callable[[], Any] = getattr(apps, kind)
    interface = "asgi2" if kind == "raw_asgi2" else "asgi3"
    answer = await same_answer(make, settings, method, path, interface=interface, **kwargs)
    assert answer.status == status  # the case asks what it means to ask


async def test_the_background_task_runs_wrapped_too(settings: dict[str, Any]) -> None:
    plain: list[str] = []
    wrapped: list[str] = []
    first = await call(apps.fastapi_app(plain), "POST", "/jobs")
    second = await call(ops_observe.wrap(apps.fastapi_app(wrapped), settings=settings), "POST", "/jobs")
    assert (first.status, second.status) == (200, 200)
    assert plain == wrapped == ["done"]


async def test_the_stream_arrives_in_its_chunks(settings: dict[str, Any]) -> None:
    answer = await same_answer(apps.fastapi_app, settings, "GET", "/stream")
    assert answer.body == b"chunk 0\nchunk 1\nchunk 2\n"


DJANGO_CASES = [
    ("GET", "/items/9/", 200, {"query": "q=z"}),
    ("POST", "/echo/", 201, {"body": b"django body"}),
    ("GET", "/echo/", 405, {}),
    ("GET", "/nowhere/", 404, {}),
    ("GET", "/items/9/", 200, {"root_path": "/prefix"}),
]


@pytest.fixture
def django_factory() -> Iterator[Callable[[], Any]]:
    """A fresh Django ASGI handler per call, this folder's URLconf in force meanwhile."""
    made = apps.django_app()
    next(made)
    from django.core.asgi import get_asgi_application

    yield get_asgi_application
    made.close()


# Django's ASGI handler runs on asyncio only (asgiref's sync_to_async needs an asyncio loop).
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(
    ("method", "path", "status", "kwargs"),
    DJANGO_CASES,
    ids=[f"{m}-{p}{'-root' if 'root_path' in k else ''}" for m, p, _, k in DJANGO_CASES],
)
async def test_same_answer_django(
    method: str,
    path: str,
    status: int,
    kwargs: dict[str, Any],
    settings: dict[str, Any],
    django_factory: Callable[[], Any],
) -> None:
    answer = await same_answer(django_factory, settings, method, path, **kwargs)
    assert answer.status == status
