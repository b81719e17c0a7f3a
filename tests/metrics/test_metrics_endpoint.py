"""The /metrics endpoint: formats, gzip, access rules, a separate port."""

from __future__ import annotations

import gzip
import socket
import urllib.error
import urllib.request

import pytest
from metrics_support import (
    NS,
    call,
    restore_logging,  # noqa: F401 - an autouse fixture
    run,
    scrape,
    value,
    wrap,
)
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

from ops_observe.types import Receive, Scope, Send

from services import free_port


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def _get(app: object, path: str = "/metrics", headers: dict[str, str] | None = None, method: str = "GET") -> object:
    import httpx

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, headers=headers)

    return run(go())


def test_text_format_by_default_and_openmetrics_on_request() -> None:
    app = wrap(hello)
    call(app, "/a")
    plain = _get(app)
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")  # type: ignore[attr-defined]
    om = _get(app, headers={"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")  # type: ignore[attr-defined]
    families = {f.name: f for f in openmetrics_families(om.text)}  # type: ignore[attr-defined]
    assert f"{NS}_http_requests" in families
    assert om.text.endswith("# EOF\n")  # type: ignore[attr-defined]


def test_gzip_when_accepted_and_not_otherwise() -> None:
    app = wrap(hello)
    raw = _get(app, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers  # type: ignore[attr-defined]
    import httpx

    async def go() -> bytes:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            async with client.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as response:
                assert response.headers["content-encoding"] == "gzip"
                return b"".join([chunk async for chunk in response.aiter_raw()])

    body = run(go())
    assert f"{NS}_build_info".encode() in gzip.decompress(body)
    off = wrap(hello, gzip=False)
    assert "content-encoding" not in _get(off, headers={"Accept-Encoding": "gzip"}).headers  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("allow", "token", "headers", "status"),
    [
        (["10.0.0.0/8"], "", {}, 200),
        (["192.168.0.0/16"], "", {}, 403),
        (["10.1.2.3"], "", {}, 200),
        ([], "s3cret", {"Authorization": "Bearer s3cret"}, 200),
        ([], "s3cret", {"Authorization": "Bearer wrong"}, 403),
        ([], "s3cret", {}, 403),
        (["10.0.0.0/8"], "s3cret", {"Authorization": "Bearer s3cret"}, 200),
        (["192.168.0.0/16"], "s3cret", {"Authorization": "Bearer s3cret"}, 403),
    ],
)
def test_access_rules(allow: list[str], token: str, headers: dict[str, str], status: int) -> None:
    app = wrap(hello, allow=allow, bearer_token=token)
    response = _get(app, headers=headers)
    assert response.status_code == status  # type: ignore[attr-defined]
    if status == 403:
        assert NS not in response.text  # type: ignore[attr-defined]


def test_only_get_and_head() -> None:
    app = wrap(hello)
    assert _get(app, method="POST").status_code == 405  # type: ignore[attr-defined]
    head = _get(app, method="HEAD")
    assert head.status_code == 200 and head.content == b""  # type: ignore[attr-defined]


def test_custom_path_and_disabled_endpoint() -> None:
    app = wrap(hello, path="/internal/prom")
    call(app, "/a")
    assert value(scrape(app, "/internal/prom"), f"{NS}_http_requests_total", method="GET", endpoint="<unmatched>",
                 status="200") == 1  # fmt: skip
    off = wrap(hello, enabled=False)
    assert _get(off).text == "hello"  # type: ignore[attr-defined]


def test_separate_port_with_lifespan() -> None:
    port = free_port()
    app = wrap(hello, port=port, host="127.0.0.1", bearer_token="t0k")
    assert _get(app).text == "hello"  # type: ignore[attr-defined]
    run(app.suite.startup())
    try:
        call(app, "/x")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer t0k"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        assert value(text, f"{NS}_http_requests_total", method="GET", endpoint="<unmatched>", status="200") == 2
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert denied.value.code == 403
        denied.value.close()
    finally:
        run(app.suite.shutdown())
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_serves_what_other_features_register_on_the_registry() -> None:
    from prometheus_client import Counter

    app = wrap(hello)
    Counter("svc_feature_probe", "a metric another feature registered", registry=app.suite.registry).inc(7)
    assert value(scrape(app), "svc_feature_probe_total") == 7


@pytest.mark.parametrize("exporter", ["console", "none"])
def test_trace_id_exemplars_with_the_tracing_middleware(exporter: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An exemplar names a trace that is exported; with no exporter there is none to name."""
    from ops_observe.settings import load_settings

    settings = {
        "service_name": "svc",
        "middleware": ["metrics", "tracing"],
        "tracing": {"exporter": exporter, "sample_ratio": 1.0},
    }
    import ops_observe

    app = ops_observe.wrap(hello, settings=load_settings(settings))
    call(app, "/x")
    if exporter == "none":
        om = _get(app, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert "trace_id" not in om.text  # type: ignore[attr-defined]
        return
    om = _get(app, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    bucket_lines = [
        line for line in om.text.splitlines() if line.startswith(f"{NS}_http_request_duration_seconds_bucket")
    ]  # type: ignore[attr-defined]
    exemplars = [line for line in bucket_lines if '# {trace_id="' in line]
    assert len(exemplars) == 1 and 'endpoint="<unmatched>"' in exemplars[0]
    # The plain text format has no exemplars.
    assert "trace_id" not in _get(app).text  # type: ignore[attr-defined]
    app.suite.state["tracing"].shutdown()  # the console exporter prints now, into the captured output
