"""What wrap() must leave alone beyond a single request: the root logger's level, the app's own
``/health`` and ``/metrics``, and an app wrapped twice (one suite, one correlation header)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import transparency_apps as apps
from compare import CORRELATION, same_answer
from driver import call

import ops_observe

pytestmark = pytest.mark.anyio

KINDS = [apps.starlette_routes, apps.fastapi_app, apps.http_endpoint_class, apps.raw_asgi3]


@pytest.mark.parametrize("level", [logging.WARNING, logging.ERROR, logging.DEBUG], ids=logging.getLevelName)
@pytest.mark.parametrize("make", KINDS, ids=[f.__name__ for f in KINDS])
async def test_wrap_leaves_the_root_logger_level(make: Callable[[], Any], level: int, settings: dict[str, Any]) -> None:
    root = logging.getLogger()
    root.setLevel(level)  # put back after the test by the _restore_logging fixture
    app = ops_observe.wrap(make(), settings=settings)
    assert logging.getLevelName(root.level) == logging.getLevelName(level)
    await call(app, "GET", "/items/1")
    assert logging.getLevelName(root.level) == logging.getLevelName(level)


async def test_the_root_level_changes_when_the_settings_ask(quiet: dict[str, Any]) -> None:
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    ops_observe.wrap(apps.raw_asgi3(), settings={**quiet, "logging": {**quiet["logging"], "root_level": "ERROR"}})
    assert logging.getLevelName(root.level) == "ERROR"


@pytest.mark.parametrize("make", KINDS, ids=[f.__name__ for f in KINDS])
async def test_wrapping_twice_is_wrapping_once(make: Callable[[], Any], settings: dict[str, Any]) -> None:
    wrapped = ops_observe.wrap(make(), settings=settings)
    once = await call(wrapped, "GET", "/items/1")
    twice = await call(ops_observe.wrap(ops_observe.wrap(make(), settings=settings)), "GET", "/items/1")
    assert len(twice.header(CORRELATION)) == 1, twice.headers
    assert (twice.status, twice.body) == (once.status, once.body)
    assert twice.headers_without(CORRELATION) == once.headers_without(CORRELATION)
    assert ops_observe.wrap(wrapped) is wrapped
    assert ops_observe.wrap(wrapped, settings=settings) is wrapped
    sent = await call(wrapped, "GET", "/items/1", headers={CORRELATION: "given-id-1"})
    assert sent.header(CORRELATION) == [b"given-id-1"]


OWN = [apps.starlette_own_endpoints, apps.fastapi_own_endpoints]


@pytest.mark.parametrize("path", ["/health", "/metrics"])
@pytest.mark.parametrize("make", OWN, ids=[f.__name__ for f in OWN])
async def test_the_apps_own_health_and_metrics_win(make: Callable[[], Any], path: str, quiet: dict[str, Any]) -> None:
    answer = await same_answer(make, quiet, "GET", path)
    assert answer.status == 200
    assert answer.body == f"the app's own {path}".encode()


@pytest.mark.parametrize("make", OWN, ids=[f.__name__ for f in OWN])
async def test_the_suites_other_endpoints_stay(make: Callable[[], Any], quiet: dict[str, Any]) -> None:
    """The suite yields only the paths the app serves: ``/health/ready`` is still the suite's."""
    response = await call(ops_observe.wrap(make(), settings=quiet), "GET", "/health/ready")
    assert response.status in (200, 503)
    assert b"the app's own" not in response.body
    assert response.header("content-type") == [b"application/json"]


# Django's ASGI handler runs on asyncio only (asgiref's sync_to_async needs an asyncio loop).
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("path", ["/health", "/metrics"])
async def test_djangos_own_health_and_metrics_win(path: str, quiet: dict[str, Any]) -> None:
    made = apps.django_app()
    next(made)
    try:
        from django.core.asgi import get_asgi_application

        answer = await same_answer(get_asgi_application, quiet, "GET", path)
    finally:
        made.close()
    assert answer.status == 200
    assert answer.body == f"the app's own {path}".encode()
