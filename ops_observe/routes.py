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
* FastAPI's own router (recent versions; 0.165 is tested) sets ``scope["route"]`` only for its
  ``APIRoute`` objects: a plain Starlette ``Route`` in a FastAPI app (its ``/docs``,
  ``/openapi.json``, ``/docs/oauth2-redirect``, ``/redoc``, anything added with ``add_route``)
  and a ``Mount`` of a plain ASGI app leave only ``scope["endpoint"]``. That endpoint is looked up
  in the same route tree (every route's endpoint, every mount's app, by identity); an endpoint
  served by several routes is told apart by which of them matches the request. For a route of a
  router included with ``include_router(prefix=...)``, FastAPI keeps the original, unprefixed
  route in ``scope["route"]`` and the prefixed one in its request context (``scope["fastapi"]``),
  which is read first.
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


def route_template(scope: Scope, root_path: str | None = None, django: bool | None = None) -> str | None:
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
    mount = False
    if route is not None:
        known = _MOUNT_TYPES.get(type(route))  # _is_mount(route)'s cached answer, without its call
        if known is False and root_path is not None and "fastapi" not in scope:
            # The common case, _starlette_template's answer inline: a plain route, no mount crossed.
            path_format = getattr(route, "path_format", None)
            if type(path_format) is str and scope.get("root_path", "") == root_path:
                return path_format
        mount = _is_mount(route) if known is None else known
        if mount:
            endpoint = scope.get("endpoint")
            if endpoint is not None and getattr(route, "app", None) is not endpoint:
                # The mounted app's router did not record the route it went on to (a FastAPI app
                # mounted in a Starlette one, serving a plain Route): the endpoint is the current one.
                route = None
    if "fastapi" in scope:
        included = _fastapi_included_route(scope, route, scope.get("endpoint"))
        if included is not None:
            return _starlette_template(scope, included, root_path, _is_mount(included))
    if route is not None:
        return _starlette_template(scope, route, root_path, mount)
    endpoint = scope.get("endpoint")
    if endpoint is not None:
        router = scope.get("router")
        if router is not None:
            return _safe(_endpoint_template, scope, endpoint, router)
    if django is False or (django is None and "django.urls" not in sys.modules):
        return None
    return _safe(_django_template, scope)


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


def _safe(resolve: Any, *args: Any) -> str | None:
    try:
        result = resolve(*args)
    except Exception:  # a broken URLconf or an odd route object must not break the request being recorded
        return None
    return result if isinstance(result, str) else None


def _starlette_template(scope: Scope, route: Any, root_path: str | None, mount: bool) -> str | None:
    path_format = getattr(route, "path_format", None)
    if not isinstance(path_format, str):
        return None
    if mount and getattr(route, "routes", None):
        return None  # the request reached a mounted router, but none of its routes matched
    grown = scope.get("root_path", "")
    before = root_path if root_path is not None else scope.get("app_root_path", grown)
    if grown == before:
        return path_format  # no mount crossed: the common case costs one comparison
    # A mount was crossed. Its prefix in root_path holds raw values of any path parameters of the
    # mount, so prefer the templates of the router tree, computed once per top router.
    router = scope.get("router")
    if router is not None:
        index = _route_index(router)
        if id(route) not in index.templates:
            index = _route_index(router, rebuild=True)
        full = index.templates.get(id(route))
        if full is not None:
            return full
    prefix = grown[len(before) :] if grown.startswith(before) else ""
    if mount:
        return path_format
    return prefix + path_format


def _fastapi_included_route(scope: Scope, route: Any, endpoint: Any) -> Any:
    """The prefixed route of a router FastAPI included with ``include_router``, or ``None``.

    FastAPI (recent versions) keeps the route as declared (without the include prefix) in
    ``scope["route"]``, and the request's effective route (prefix included) in its own part of the
    scope. That context outlives the route it names when a mount is crossed further in, so it is
    used only while it is about the route (or the endpoint) the request ended at.
    """
    fastapi_scope = scope.get("fastapi")
    context = fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    if context is None:
        return None
    original = getattr(context, "original_route", None)
    if route is not None:
        if original is not route:
            return None
    elif endpoint is None or (
        getattr(original, "endpoint", None) is not endpoint and getattr(original, "app", None) is not endpoint
    ):
        return None
    effective = getattr(context, "starlette_route", None) or context
    return effective if isinstance(getattr(effective, "path_format", None), str) else None


def _endpoint_template(scope: Scope, endpoint: Any, router: Any) -> str | None:
    """The template of the route (or mount) of ``router``'s tree whose endpoint (or app) is ``endpoint``."""
    index = _route_index(router)
    candidates = index.endpoints.get(id(endpoint))
    if candidates is None:
        if id(endpoint) in index.misses:
            return None
        index = _route_index(router, rebuild=True)
        candidates = index.endpoints.get(id(endpoint))
        if candidates is None:
            index.miss(endpoint)
            return None
    if len(candidates) == 1:
        return candidates[0][1]
    # One endpoint behind several routes: the one that matches this request (FULL, or PARTIAL for
    # a 405) names it; several matching with different templates is ambiguous.
    found = {full for route, full in candidates if _matches(route, scope)}
    return found.pop() if len(found) == 1 else None


def _matches(route: Any, scope: Scope) -> bool:
    match, _ = route.matches(scope)
    return bool(getattr(match, "value", match) != 0)  # 0: starlette.routing.Match.NONE


_TABLE_ATTR = "_ops_observe_route_templates"
_MAX_MISSES = 256


class _RouteIndex:
    """The route tree of one top router: full templates by route, and routes by endpoint.

    Keys are ``id()`` of objects the index itself holds (the routes, their endpoints, and the
    remembered misses), so an id cannot be reused by another object while the index lives.
    """

    __slots__ = ("endpoints", "misses", "templates")

    def __init__(self) -> None:
        self.templates: dict[int, str | None] = {}
        """Full template (mount prefixes included) by ``id(route)``; ``None``: reachable twice, ambiguous."""
        self.endpoints: dict[int, list[tuple[Any, str | None]]] = {}
        """``(route, template)`` by ``id(endpoint)``; ``None`` for a mounted router (no route of it matched)."""
        self.misses: dict[int, Any] = {}
        """Endpoints found in no route even after a rebuild (a ``Host``'s app), kept so as not to rebuild again."""

    def miss(self, endpoint: Any) -> None:
        if len(self.misses) < _MAX_MISSES:
            self.misses[id(endpoint)] = endpoint


def _route_index(router: Any, rebuild: bool = False) -> _RouteIndex:
    """The index of ``router``'s tree, kept on the router object itself, so it lives and dies with it."""
    index = None if rebuild else getattr(router, _TABLE_ATTR, None)
    if not isinstance(index, _RouteIndex):
        index = _RouteIndex()
        _walk(getattr(router, "routes", ()), "", index, 0)
        try:
            setattr(router, _TABLE_ATTR, index)
        except AttributeError:  # a router with __slots__: recomputed each time it is needed
            pass
    return index


def _walk(routes: Any, prefix: str, index: _RouteIndex, depth: int) -> None:
    if depth > 16:  # a sub-app mounted inside itself
        return
    for route in routes:
        path_format = getattr(route, "path_format", None)
        if not isinstance(path_format, str):
            contexts = getattr(route, "effective_route_contexts", None)
            if callable(contexts):  # a router FastAPI included: its routes with the include prefix
                try:
                    effective = [getattr(c, "starlette_route", None) or c for c in contexts()]
                except Exception:  # FastAPI's internals moved: those routes stay unresolved
                    continue
                _walk(effective, prefix, index, depth + 1)
            continue
        key = id(route)
        full = prefix + path_format
        templates = index.templates
        templates[key] = None if key in templates and templates[key] != full else full
        mount = _is_mount(route)
        sub_routes = getattr(route, "routes", None) if mount else None
        target = getattr(route, "app", None) if mount else getattr(route, "endpoint", None)
        if target is not None:
            index.endpoints.setdefault(id(target), []).append((route, None if sub_routes else full))
        if mount:
            mount_prefix = path_format.removesuffix("/{path}")
            _walk(sub_routes or (), prefix + mount_prefix, index, depth + 1)


_MOUNT_TYPES: dict[type, bool] = {}


def _is_mount(route: Any) -> bool:
    """Whether ``route`` hands requests on to routes of its own (``Mount``, ``Host``), decided once per class."""
    cls = type(route)
    known = _MOUNT_TYPES.get(cls)
    if known is None:
        known = cls.__name__ == "Mount" or (hasattr(route, "routes") and hasattr(route, "app"))
        if len(_MOUNT_TYPES) < 256:
            _MOUNT_TYPES[cls] = known
    return known


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
    route: str = match.route  # "" for path(""), the root route
    return route if route.startswith("/") else "/" + route
