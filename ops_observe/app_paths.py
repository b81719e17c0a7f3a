"""Whether the wrapped app serves a path itself, so that the suite's endpoint does not shadow it.

Starlette and FastAPI routers and Django's URLconf can be asked; any other ASGI app cannot, and
the suite's endpoints are answered in front of it (``docs/architecture.md`` says so).
"""

from __future__ import annotations

from typing import Any

from ops_observe.routes import is_django_app

__all__ = ["app_serves"]

_MAX_DEPTH = 16


def app_serves(app: Any, path: str) -> bool:
    """True when ``app`` (Starlette, FastAPI, a Starlette router, or Django) has a route for ``path``.

    A route that matches the path for another method counts (the app owns the path); a mount of a
    plain ASGI app counts unless it is mounted at the root (a catch-all such as a static site).
    Never raises: an app that cannot be asked gives ``False``.
    """
    try:
        if is_django_app(app):
            return _django_serves(path)
        routes = _routes_of(app)
        scope = {"type": "http", "path": path, "root_path": "", "method": "GET", "headers": [], "query_string": b""}
        return routes is not None and _routes_serve(routes, scope, 0)
    except Exception:  # a router we cannot read must not stop wrap()
        return False


def _routes_of(app: Any) -> Any:
    for _ in range(_MAX_DEPTH):
        routes = getattr(app, "routes", None)
        if routes is not None and not callable(routes):
            return routes
        inner = getattr(app, "router", None) or getattr(app, "app", None)
        if inner is None or inner is app:
            return None
        app = inner
    return None


def _routes_serve(routes: Any, scope: dict[str, Any], depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    from starlette.routing import Match, Mount

    for route in routes:
        matches = getattr(route, "matches", None)
        if matches is None:
            continue
        match, child = matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            if route.routes:
                if _routes_serve(route.routes, {**scope, **child}, depth + 1):
                    return True
                continue
            if route.path in ("", "/"):
                continue
        return True
    return False


def _django_serves(path: str) -> bool:
    from django.urls import Resolver404, resolve  # type: ignore[import-untyped]

    try:
        resolve(path)
    except Resolver404:
        return False
    return True
