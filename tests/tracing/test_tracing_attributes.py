"""The server span's request attributes equal opentelemetry-instrumentation-asgi's, in every semconv mode."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.instrumentation._semconv import _StabilityMode
from opentelemetry.instrumentation.asgi import collect_request_attributes, set_status_code
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from ops_observe.tracing.attributes import RequestAttributes
from ops_observe.tracing.http import readable_scope

MODES = [_StabilityMode.DEFAULT, _StabilityMode.HTTP, _StabilityMode.HTTP_DUP]

_text = st.text(alphabet=st.sampled_from("aZ09./-_:@?#%+&=;[] \t~é"), max_size=12)
_hosts = st.one_of(
    st.sampled_from(["shop.test", "shop.test:8443", "127.0.0.1:80", "", "u:p@shop.test", "[::1]:8000", "a/b"]), _text
)
_queries = st.one_of(
    st.sampled_from([b"", b"page=2", b"sig=x&a=1", b"a=%C3%A9", b"Signature=1", b"x=s%69g", b"q=a+b", b"s\tig=1"]),
    _text.map(lambda s: s.encode()),
)
_user_agents = st.sampled_from(["curl/8.5", "Googlebot/2.1", "python-requests", "", "Mozilla/5.0 (Test)", "é"])


def _scope(
    host: str | None,
    user_agent: str | None,
    query: bytes,
    path: str,
    method: str,
    scheme: str,
    server: Any,
    client: Any,
    upper: bool,
    hosts: int,
) -> dict[str, Any]:
    headers: list[tuple[bytes, bytes]] = [(b"accept", b"*/*")]
    if host is not None:
        headers += [(b"Host" if upper else b"host", host.encode())] * hosts
    if user_agent is not None:
        headers.append((b"USER-AGENT" if upper else b"user-agent", user_agent.encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "query_string": query,
        "headers": headers,
        "server": server,
    }
    if client is not ...:
        scope["client"] = client
    return scope


_scopes = st.builds(
    _scope,
    host=st.one_of(st.none(), _hosts),
    user_agent=st.one_of(st.none(), _user_agents),
    query=_queries,
    path=st.one_of(st.sampled_from(["/items/42", "/", "", "/a?sig=1", "//x@y", "x@y", "/a\tb"]), _text),
    method=st.sampled_from(["GET", "POST", "PURGE", "get", " GET", ""]),
    scheme=st.sampled_from(["http", "https", "ws", ""]),
    server=st.sampled_from([("10.0.0.5", 8443), ("10.0.0.5", 80), ("h", "8000"), ("/tmp/s.sock", None), None]),
    client=st.sampled_from([("192.0.2.7", 51234), ("", 0), ("::1", "5000"), None, ...]),
    upper=st.booleans(),
    hosts=st.integers(min_value=1, max_value=2),
)


@settings(max_examples=400, deadline=None)
@given(raw=_scopes, mode=st.sampled_from(MODES))
@example(
    raw=_scope(
        "shop.test", "curl/8.5", b"", "/items/42", "GET", "http", ("10.0.0.5", 8000), ("192.0.2.7", 51234), False, 1
    ),
    mode=_StabilityMode.DEFAULT,
)
def test_the_attributes_are_the_stock_functions(raw: dict[str, Any], mode: _StabilityMode) -> None:
    scope = readable_scope(raw)
    try:
        stock = collect_request_attributes(scope, mode)
    except Exception as exc:  # the stock function's own failures (a server without a name) stay its own
        with pytest.raises(type(exc)):
            RequestAttributes(mode)(scope)
        return
    assert RequestAttributes(mode)(scope) == stock


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_a_plain_request_takes_the_fast_path_with_every_attribute(mode: _StabilityMode) -> None:
    scope = _scope(
        "shop.test:8443",
        "curl/8.5",
        b"page=2",
        "/items/42",
        "PURGE",
        "https",
        ("10.0.0.5", 8443),
        ("192.0.2.7", 5),
        False,
        1,
    )
    fast = RequestAttributes(mode)._plain(scope)
    assert fast is not None  # not handed to the stock function: the comparison is of our code
    assert fast == collect_request_attributes(scope, mode)
    assert len(fast) >= 10


@pytest.mark.parametrize(
    ("host", "query"), [("u:p@shop.test", b""), ("shop.test", b"sig=1"), ("shop.test", b"x=%2541"), ("[::1]:8000", b"")]
)
def test_what_the_stock_redaction_may_change_goes_to_the_stock_function(host: str, query: bytes) -> None:
    scope = _scope(host, None, query, "/a", "GET", "http", ("h", 80), None, False, 1)
    assert RequestAttributes(_StabilityMode.DEFAULT)._plain(scope) is None


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("status", [100, 200, 204, 302, 404, 499, 500, 503, 599, 99, 700])
def test_the_response_attributes_are_the_stock_set_status_codes(mode: _StabilityMode, status: int) -> None:
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("test")
    stock = tracer.start_span("stock", kind=SpanKind.SERVER)
    set_status_code(stock, status, None, mode)
    ours = RequestAttributes(mode)
    for _ in range(2):  # computed, then from the cache: the same
        attributes, code = ours.response(status)
        assert attributes == dict(stock.attributes or {})
        assert code is stock.status.status_code


@pytest.mark.parametrize("capture_all", ["", "true"])
@pytest.mark.parametrize("method", ["GET", "PURGE", "get", "QUERY"])
def test_the_method_follows_the_environment_as_the_stock_one_does(
    monkeypatch: pytest.MonkeyPatch, capture_all: str, method: str
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS", capture_all)
    scope = _scope("shop.test", None, b"", "/a", method, "http", ("h", 80), None, False, 1)
    for mode in MODES:
        assert RequestAttributes(mode)(scope) == collect_request_attributes(scope, mode)
