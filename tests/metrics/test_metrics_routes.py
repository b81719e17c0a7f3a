"""``ops_observe.routes.route_template`` on its own: explicit names, Django detection, no exceptions."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from metrics_support import restore_logging  # noqa: F401 - an autouse fixture

from ops_observe.routes import _MOUNT_TYPES, SCOPE_KEY, is_django_app, route_template


class _Route:
    path_format = "/items/{item_id}"


def test_explicit_scope_key_wins() -> None:
    assert route_template({SCOPE_KEY: "/custom/{x}", "route": _Route()}) == "/custom/{x}"


def test_starlette_route_without_mount() -> None:
    assert route_template({"route": _Route(), "root_path": "/prefix"}, "/prefix") == "/items/{item_id}"


def test_a_plain_route_gives_the_same_template_before_and_after_its_class_is_known() -> None:
    class Plain:
        path_format = "/p/{x}"

    same = {"route": Plain(), "root_path": ""}
    crossed = {"route": Plain(), "root_path": "/mounted"}  # a mount's prefix added on the way
    first = [route_template(same, ""), route_template(crossed, "")]
    assert _MOUNT_TYPES[Plain] is False  # from now on the inline answer is taken
    again = [route_template(same, ""), route_template(crossed, "")]
    assert first == again == ["/p/{x}", "/mounted/p/{x}"]


def test_no_route_and_django_not_asked() -> None:
    assert route_template({"path": "/x", "root_path": ""}, "", django=False) is None


def test_is_django_app_follows_wrapped_apps() -> None:
    from django.core.handlers.asgi import ASGIHandler

    class Wrapper:
        def __init__(self, app: Any) -> None:
            self.app = app

    handler = ASGIHandler.__new__(ASGIHandler)  # no __init__: it would need configured settings
    assert is_django_app(Wrapper(Wrapper(handler)))
    assert not is_django_app(Wrapper(lambda: None))
    assert not is_django_app(object())


@given(path=st.text(max_size=50), root=st.text(max_size=10), route=st.none() | st.text(max_size=20))
def test_never_raises(path: str, root: str, route: str | None) -> None:
    scope: dict[str, Any] = {"path": path, "root_path": root}
    if route is not None:
        scope["route"] = type("R", (), {"path_format": route})()
    result = route_template(scope, "", django=True)
    assert result is None or isinstance(result, str)


class _CountingRouter:
    """A router whose route list counts how often it is read (each read is a walk of the tree)."""

    def __init__(self, routes: list[Any]) -> None:
        self._routes = routes
        self.reads = 0

    @property
    def routes(self) -> list[Any]:
        self.reads += 1
        return self._routes


def test_an_endpoint_found_in_no_route_is_remembered_not_walked_for_again() -> None:
    from starlette.routing import Route

    def endpoint(request: Any) -> None:
        raise AssertionError("never called")

    def stranger(request: Any) -> None:
        raise AssertionError("never called")

    router = _CountingRouter([Route("/a/{x}", endpoint)])
    scope: dict[str, Any] = {"type": "http", "path": "/a/1", "root_path": "", "router": router, "endpoint": endpoint}
    assert route_template(scope, "", django=False) == "/a/{x}"
    assert route_template({**scope, "endpoint": stranger}, "", django=False) is None
    reads = router.reads
    for _ in range(3):
        assert route_template({**scope, "endpoint": stranger}, "", django=False) is None
        assert route_template(scope, "", django=False) == "/a/{x}"
    assert router.reads == reads, "the tree is walked once per new endpoint, not per request"


@given(
    endpoint=st.none() | st.integers() | st.text(max_size=5),
    fastapi=st.none() | st.dictionaries(st.text(max_size=30), st.integers() | st.none(), max_size=2),
    router=st.none() | st.integers(),
)
def test_never_raises_on_odd_framework_keys(endpoint: object, fastapi: object, router: object) -> None:
    scope: dict[str, Any] = {"path": "/x", "root_path": "", "endpoint": endpoint, "router": router}
    if fastapi is not None:
        scope["fastapi"] = fastapi
        if isinstance(fastapi, dict):
            fastapi["effective_route_context"] = type("Ctx", (), {"original_route": None, "path_format": 3})()
    assert route_template(scope, "", django=False) is None
