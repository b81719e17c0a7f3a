"""The route template of a handled request, for metric labels, access logs and span names.

Stable API (the logging, metrics and tracing middlewares import it)::

    root_path = scope.get("root_path", "")       # before calling the app
    await app(scope, receive, send)
    template = route_template(scope, root_path)  # after: "/items/{item_id}", or None

``route_template(scope, root_path=None) -> str | None`` is called by a middleware *after* the app
has handled the request, with the same scope dict it passed in. It returns the matched route's
template, or ``None`` when no route matched (the caller then uses one bucket such as
``"<unmatched>"``, never the raw path, whose values are unbounded).

Where the template comes from:

* An explicit ``scope["ops_observe.route"]`` (a string) set by the app wins: the way for a raw
  ASGI app or a custom router to name its routes.
* Starlette and FastAPI: their router stores the matched route in ``scope["route"]`` in place.
  A route inside a mounted sub-app (``Mount``, ``app.mount()``) is prefixed with the mount path,
  taken from how ``scope["root_path"]`` grew compared with ``root_path`` (the value before the
  app ran; when not given, Starlette's ``app_root_path`` is used, which is that same value).
  A ``Mount`` around a plain ASGI app (static files) gives ``"/static/{path}"``; a request that
  entered a mounted router but matched none of its routes gives ``None``. The mount prefixes come
  from the route tree (computed once per top router and kept on it), so a mount path parameter
  stays a template (``"/t/{tenant}/users/{id}"``).
  A 405 (path matched, method did not) still gives the route's template.
* Django: ``django.urls.resolve()`` on the path, when Django is imported and configured (or
  when the caller says the app is Django: ``django=is_django_app(app)``, computed once), giving
  the route pattern with a leading slash (``"/items/<int:pk>/"``). Results are cached per path in
  a bounded cache, since resolving walks the URL patterns.

Limits: a middleware between the caller and the router that copies the scope
(``dict(scope)``) hides the route; such requests fall into the unmatched bucket.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

from ops_observe.types import Scope

SCOPE_KEY = "ops_observe.route"
"""Scope key an app may set to name the route of a request itself."""

__all__ = ["SCOPE_KEY", "is_django_app", "route_template"]


def route_template(scope: Scope, root_path: str | None = None, *, django: bool | None = None) -> str | None:
    """The template of the route that handled ``scope``, or ``None`` when none matched.

    Never raises: a failure to resolve gives ``None``.

    Args:
        scope: The scope dict handed to the app, after the app has handled the request.
        root_path: ``scope.get("root_path", "")`` as it was before the app ran; needed to put the
            mount prefix in front of a route of a mounted sub-app when the framework does not
            record it itself. ``None`` falls back to Starlette's ``app_root_path``.
        django: Whether to ask Django's resolver when the scope names no route: ``None`` asks
            whenever Django is imported and configured; a caller that knows its app (see
            :func:`is_django_app`) passes ``True`` or ``False``, so that a Starlette 404 in a
            process that also runs Django is not given a Django route.
    """
    explicit = scope.get(SCOPE_KEY)
    if explicit is not None:
        return str(explicit)
    route = scope.get("route")
    if route is not None:
        return _starlette_template(scope, route, root_path)
    if django is False or (django is None and "django.urls" not in sys.modules):
        return None
    try:
        return _django_template(scope)
    except Exception:  # a broken URLconf must not break the request being recorded
        return None


def is_django_app(app: object) -> bool:
    """Whether ``app``, or an app it wraps (followed through ``.app`` attributes), is Django's handler."""
    for _ in range(32):
        if type(app).__module__.startswith("django.") and type(app).__name__ == "ASGIHandler":
            return True
        inner = getattr(app, "app", None)
        if inner is None or inner is app:
            return False
        app = inner
    return False


def _starlette_template(scope: Scope, route: Any, root_path: str | None) -> str | None:
    path_format = getattr(route, "path_format", None)
    if not isinstance(path_format, str):
        return None
    if _is_mount(route) and getattr(route, "routes", None):
        return None  # the request reached a mounted router, but none of its routes matched
    grown = scope.get("root_path", "")
    before = root_path if root_path is not None else scope.get("app_root_path", grown)
    if grown == before:
        return path_format  # no mount crossed: the common case costs one comparison
    # A mount was crossed. Its prefix in root_path holds raw values of any path parameters of the
    # mount, so prefer the templates of the router tree, computed once per top router.
    router = scope.get("router")
    if router is not None:
        table = _mount_table(router)
        if id(route) not in table:
            table = _mount_table(router, rebuild=True)
        full = table.get(id(route))
        if full is not None:
            return full
    prefix = grown[len(before) :] if grown.startswith(before) else ""
    if _is_mount(route):
        return path_format
    return prefix + path_format


_TABLE_ATTR = "_ops_observe_route_templates"


def _mount_table(router: Any, rebuild: bool = False) -> dict[int, str | None]:
    """Full template of every route in ``router``'s tree by ``id(route)``, mount prefixes included.

    Kept on the router object itself, so it lives and dies with it. A route reachable twice (the
    same sub-app mounted at two paths) is ambiguous and maps to ``None``.
    """
    table: dict[int, str | None] | None = None if rebuild else getattr(router, _TABLE_ATTR, None)
    if table is None:
        table = {}
        _walk(getattr(router, "routes", ()), "", table, 0)
        try:
            setattr(router, _TABLE_ATTR, table)
        except AttributeError:  # a router with __slots__: recomputed each time a mount is crossed
            pass
    return table


def _walk(routes: Any, prefix: str, table: dict[int, str | None], depth: int) -> None:
    if depth > 16:  # a sub-app mounted inside itself
        return
    for route in routes:
        path_format = getattr(route, "path_format", None)
        if not isinstance(path_format, str):
            continue
        key = id(route)
        full = prefix + path_format
        table[key] = None if key in table and table[key] != full else full
        if _is_mount(route):
            mount_prefix = path_format.removesuffix("/{path}")
            _walk(getattr(route, "routes", ()), prefix + mount_prefix, table, depth + 1)


def _is_mount(route: Any) -> bool:
    return type(route).__name__ == "Mount" or (hasattr(route, "routes") and hasattr(route, "app"))


def _django_template(scope: Scope) -> str | None:
    from django.conf import settings  # type: ignore[import-untyped]

    if not settings.configured:
        return None
    path = scope.get("path", "")
    root_path = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return _django_resolve(path, getattr(settings, "ROOT_URLCONF", None))


@lru_cache(maxsize=2048)
def _django_resolve(path: str, urlconf: str | None) -> str | None:
    from django.urls import Resolver404, resolve  # type: ignore[import-untyped]

    try:
        match = resolve(path, urlconf)
    except Resolver404:
        return None
    route: str = match.route
    if not route:
        return None
    return route if route.startswith("/") else "/" + route
