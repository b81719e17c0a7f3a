"""The same lifespan, unwrapped and wrapped: startup completes or fails alike (the app's own failure
message in the failed one), shutdown completes alike, and lifespan state reaches requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import transparency_apps as apps
from driver import Lifespan, call, lifespan

import ops_observe

pytestmark = pytest.mark.anyio


def outcome(run: Lifespan) -> str:
    """What a server makes of a lifespan: ``serving`` (startup complete, or the app raised before
    answering anything: it does not speak lifespan, and the ASGI spec has the server go on without
    it) or ``failed`` (``lifespan.startup.failed``, the server stops)."""
    if "lifespan.startup.failed" in run.types:
        return "failed"
    if "lifespan.startup.complete" in run.types or (run.raised is not None and not run.sent):
        return "serving"
    return f"unexpected: sent {run.sent}, raised {run.raised!r}"


SPEAKING = [apps.starlette_routes, apps.starlette_mounts, apps.starlette_endpoints, apps.fastapi_app, apps.raw_asgi3]


@pytest.mark.parametrize("make", SPEAKING, ids=[f.__name__ for f in SPEAKING])
async def test_startup_and_shutdown_complete_alike(make: Callable[[], Any], settings: dict[str, Any]) -> None:
    plain = await lifespan(make())
    observed = await lifespan(ops_observe.wrap(make(), settings=settings))
    assert plain.types == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert plain.raised is None
    assert observed.types == plain.types
    assert observed.raised is None, repr(observed.raised)


async def test_an_app_without_lifespan_still_serves(settings: dict[str, Any]) -> None:
    plain = await lifespan(apps.raw_asgi2(), interface="asgi2")
    observed = await lifespan(ops_observe.wrap(apps.raw_asgi2(), settings=settings))
    assert outcome(plain) == "serving" and plain.types == []
    assert outcome(observed) == "serving"
    assert observed.raised is None or not observed.sent, repr(observed.raised)


async def test_a_startup_failure_is_reported_alike(settings: dict[str, Any]) -> None:
    plain = await lifespan(apps.fastapi_failing_startup())
    observed = await lifespan(ops_observe.wrap(apps.fastapi_failing_startup(), settings=settings))
    assert outcome(plain) == "failed"
    assert apps.STARTUP_ERROR in plain.sent[-1]["message"]
    assert outcome(observed) == "failed", observed.sent
    failed = [m for m in observed.sent if m["type"] == "lifespan.startup.failed"]
    assert len(failed) == 1
    assert apps.STARTUP_ERROR in failed[0]["message"]
    assert "lifespan.startup.complete" not in observed.types
    assert type(observed.raised) is type(plain.raised)


async def test_a_failure_before_receive_is_not_swallowed(settings: dict[str, Any]) -> None:
    """The app raises before reading ``lifespan.startup``: unwrapped, the server gets the exception;
    wrapped, it must get the exception too (and a ``startup.failed`` naming it, if any), never a
    ``startup.complete`` that hides it."""
    plain = await lifespan(apps.starlette_failing_before_receive())
    observed = await lifespan(ops_observe.wrap(apps.starlette_failing_before_receive(), settings=settings))
    assert plain.types == [] and isinstance(plain.raised, RuntimeError)
    assert "lifespan.startup.complete" not in observed.types, observed.sent
    assert type(observed.raised) is type(plain.raised), repr(observed.raised)
    assert apps.STARTUP_ERROR in str(observed.raised)
    for message in observed.sent:
        assert message["type"] == "lifespan.startup.failed"
        assert apps.STARTUP_ERROR in message["message"]


async def test_lifespan_state_reaches_the_requests(settings: dict[str, Any]) -> None:
    answers: list[tuple[int, bytes]] = []

    async def ask(state: dict[str, Any]) -> None:
        response = await call(app, "GET", "/state", state=state)
        answers.append((response.status, response.body))

    app = apps.fastapi_app()
    plain = await lifespan(app, ask)
    app = ops_observe.wrap(apps.fastapi_app(), settings=settings)
    observed = await lifespan(app, ask)
    assert answers[0] == (200, b'{"x":1}')
    assert answers[1] == answers[0]
    assert observed.types == plain.types == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert observed.state == plain.state == {"x": 1}


# Django's ASGI handler runs on asyncio only (asgiref's sync_to_async needs an asyncio loop).
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_django_without_lifespan_still_serves(settings: dict[str, Any]) -> None:
    made = apps.django_app()
    app = next(made)
    try:
        plain = await lifespan(app)
        observed = await lifespan(ops_observe.wrap(app, settings=settings))
    finally:
        made.close()
    assert outcome(plain) == "serving" and plain.types == []
    assert outcome(observed) == "serving"
