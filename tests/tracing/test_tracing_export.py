"""End to end: wrapped apps export Zipkin v2 spans to a loopback collector that validates each one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tracing_support import (  # noqa: F401 - collector_fixture and restore_logging are fixtures
    ZipkinCollector,
    by_name,
    collector_fixture,
    restore_logging,
    run_requests,
    starlette_app,
    tracing_settings,
    wrap,
)

from ops_observe import get_span_id, get_trace_id, trace_db_query, trace_external_call, trace_request

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_request_is_exported_as_a_valid_zipkin_server_span(collector: ZipkinCollector) -> None:
    app = wrap(tracing_settings(collector))
    (response,) = run_requests(app, ("/items/42?colour=red", {"headers": {"x-correlation-id": "order-1234"}}))
    assert response.status_code == 200
    (span,) = collector.wait_for(1)
    assert span["kind"] == "SERVER"
    assert span["name"].lower() == "get /items/{item_id}"  # the route template, never the raw path
    assert span["tags"]["http.route"] == "/items/{item_id}"
    assert span["tags"]["http.status_code"] == "200"
    assert span["tags"]["correlation_id"] == "order-1234"
    assert span["localEndpoint"]["serviceName"] == "shop"
    assert span["tags"]["service.version"] == "1.2.3"
    assert span["tags"]["deployment.environment"] == "test"
    assert "parentId" not in span


def test_an_incoming_traceparent_is_continued(collector: ZipkinCollector) -> None:
    app = wrap(tracing_settings(collector, sample_ratio=0.0))  # the sampled parent wins over the ratio
    run_requests(app, ("/items/1", {"headers": {"traceparent": TRACEPARENT}}))
    (span,) = collector.wait_for(1)
    assert span["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert span["parentId"] == "b7ad6b7169203331"


def test_an_unsampled_parent_is_honoured_but_a_failure_still_kept(collector: ZipkinCollector) -> None:
    app = wrap(tracing_settings(collector, sample_ratio=1.0))
    unsampled = TRACEPARENT[:-2] + "00"
    run_requests(
        app, ("/items/1", {"headers": {"traceparent": unsampled}}), ("/fail", {"headers": {"traceparent": unsampled}})
    )
    spans = collector.wait_for(1)
    assert [s["tags"]["http.status_code"] for s in spans] == ["500"]
    assert spans[0]["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert spans[0]["parentId"] == "b7ad6b7169203331"


def test_b3_propagation_by_setting(collector: ZipkinCollector) -> None:
    pytest.importorskip("opentelemetry.propagators.b3", reason="optional: opentelemetry-propagator-b3")
    app = wrap(tracing_settings(collector, propagators=["b3multi"]))
    headers = {
        "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124",
        "x-b3-spanid": "a2fb4a1d1a96d312",
        "x-b3-sampled": "1",
    }
    run_requests(app, ("/items/1", {"headers": headers}), ("/items/2", {"headers": {"traceparent": TRACEPARENT}}))
    spans = collector.wait_for(2)
    continued = [s for s in spans if s.get("parentId") == "a2fb4a1d1a96d312"]
    assert [s["traceId"] for s in continued] == ["463ac35c9f6413ad48485a3953bb6124"]
    # W3C is not configured, so its header starts nothing.
    assert all(s["traceId"] != "0af7651916cd43dd8448eb211c80319c" for s in spans)


def test_ratio_zero_exports_every_failed_request_and_no_successful_one(collector: ZipkinCollector) -> None:
    app = wrap(tracing_settings(collector, sample_ratio=0.0))
    ok = [(f"/items/{i}", {}) for i in range(20)]
    responses = run_requests(app, *ok, ("/fail", {}), ("/boom", {}), *ok)
    assert [r.status_code for r in responses].count(500) == 2
    spans = collector.wait_for(2)
    assert sorted(s["name"].lower() for s in spans) == ["get /boom", "get /fail"]
    boom = by_name(spans)["get /boom"]
    assert boom["tags"]["otel.status_code"] == "ERROR"
    assert "RuntimeError: boom" in boom["tags"]["error"]
    assert any('"exception.type": "RuntimeError"' in a["value"] for a in boom.get("annotations", [])), boom
    assert by_name(spans)["get /fail"]["tags"]["http.status_code"] == "500"
    assert all(s["kind"] == "SERVER" and "parentId" not in s for s in spans)


def test_ratio_one_exports_every_request(collector: ZipkinCollector) -> None:
    app = wrap(tracing_settings(collector, sample_ratio=1.0))
    run_requests(app, *[(f"/items/{i}", {}) for i in range(5)])
    assert len(collector.wait_for(5)) == 5


def _decorated_app() -> Any:
    @trace_db_query("SELECT", "users")
    def load_user(user_id: str) -> dict[str, str]:
        return {"id": user_id}

    @trace_external_call("stripe", "create_payment")
    async def charge(amount: int) -> str:
        return f"charged {amount}"

    @trace_request("checkout")
    async def checkout(request: Request) -> PlainTextResponse:
        user = load_user("u1")
        receipt = await charge(10)
        return PlainTextResponse(f"{user['id']} {receipt} {get_trace_id()} {get_span_id()}")

    return starlette_app([Route("/checkout", checkout)])


def test_decorators_make_child_spans_on_sync_and_async_functions(collector: ZipkinCollector) -> None:
    app = wrap(tracing_settings(collector), _decorated_app())
    (response,) = run_requests(app, ("/checkout", {}))
    trace_id, span_id = response.text.split()[3:]
    spans = by_name(collector.wait_for(4))
    server, checkout = spans["get /checkout"], spans["checkout"]
    db, stripe = spans["select users"], spans["stripe create_payment"]
    assert {s["traceId"] for s in spans.values()} == {server["traceId"]} == {trace_id}
    assert checkout["parentId"] == server["id"]
    assert checkout["id"] == span_id  # get_span_id() inside the function is its span
    assert db["parentId"] == stripe["parentId"] == checkout["id"]
    assert db["kind"] == stripe["kind"] == "CLIENT"
    assert db["tags"]["db.operation"] == "SELECT" and db["tags"]["db.sql.table"] == "users"
    assert stripe["tags"]["peer.service"] == "stripe"
    assert response.text.startswith("u1 charged 10 ")


def test_trace_ids_are_equal_in_spans_and_log_lines(collector: ZipkinCollector, tmp_path: Path) -> None:
    from ops_observe import get_logger

    log = get_logger("shop.checkout")

    async def handler(request: Request) -> PlainTextResponse:
        log.info("charging", amount=10)
        return PlainTextResponse("ok")

    sink = tmp_path / "app.log"
    settings = tracing_settings(collector)
    settings["logging"] = {"sink": str(sink)}
    app = wrap(settings, starlette_app([Route("/pay", handler)]))
    run_requests(app, ("/pay", {}))
    (span,) = collector.wait_for(1)
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    charging = [line for line in lines if line["message"] == "charging"]
    assert len(charging) == 1, lines
    assert charging[0]["trace_id"] == span["traceId"]
    assert charging[0]["span_id"] == span["id"]


def test_an_unsampled_failed_request_keeps_the_ids_its_log_lines_carry(
    collector: ZipkinCollector, tmp_path: Path
) -> None:
    from ops_observe import get_logger

    log = get_logger("shop.checkout")

    async def handler(request: Request) -> PlainTextResponse:
        log.info("about to fail")
        return PlainTextResponse("no", status_code=503)

    sink = tmp_path / "app.log"
    settings = tracing_settings(collector, sample_ratio=0.0)
    settings["logging"] = {"sink": str(sink)}
    app = wrap(settings, starlette_app([Route("/pay", handler)]))
    run_requests(app, ("/pay", {}))
    (span,) = collector.wait_for(1)
    (line,) = [json.loads(x) for x in sink.read_text().splitlines() if "about to fail" in x]
    assert (line["trace_id"], line["span_id"]) == (span["traceId"], span["id"])


def test_span_attributes_are_redacted_before_export(collector: ZipkinCollector) -> None:
    from ops_observe import add_span_attribute, add_span_event

    async def handler(request: Request) -> PlainTextResponse:
        add_span_attribute("customer.email", "bob@example.com")
        add_span_attribute("api_key", "key-xyz-not-hex")
        add_span_attribute("amount", 12)
        add_span_event("card.charged", {"card": "4111 1111 1111 1111", "note": "fine"})
        return PlainTextResponse("ok")

    app = wrap(tracing_settings(collector), starlette_app([Route("/pay", handler)]))
    run_requests(app, ("/pay?token=s3cr3t&page=2", {}))
    (span,) = collector.wait_for(1)
    text = json.dumps(span)
    # Secrets with non-hex characters: ids and the resource's random instance id are hex.
    for secret in ("bob@example.com", "key-xyz-not-hex", "4111 1111 1111 1111", "s3cr3t"):
        assert secret not in text
    assert span["tags"]["customer.email"] == "[REDACTED:email]"
    assert span["tags"]["amount"] == "12"
    assert "page=2" in span["tags"]["http.url"]


def test_sensitive_query_parameters_are_stripped_even_without_the_redactor(collector: ZipkinCollector) -> None:
    settings = tracing_settings(collector, sensitive_params=["session"])
    settings["logging"] = {"redaction": {"enabled": False}}
    app = wrap(settings)
    run_requests(app, ("/items/1?session=abc123&page=2", {}))
    (span,) = collector.wait_for(1)
    assert "abc123" not in json.dumps(span)
    assert "session=REDACTED&page=2" in span["tags"]["http.url"]


def test_the_suites_own_endpoints_and_excluded_paths_are_not_traced(collector: ZipkinCollector) -> None:
    app = wrap(tracing_settings(collector, exclude_paths=["/items/7"]))
    own = list(app.suite.endpoints)
    run_requests(app, *[(path, {}) for path in own], ("/items/7", {}), ("/items/1", {}))
    spans = collector.wait_for(1)
    assert [s["tags"]["http.target"] for s in spans] == ["/items/1"]


def test_message_spans_are_off_by_default_and_on_by_setting(collector: ZipkinCollector) -> None:
    run_requests(wrap(tracing_settings(collector)), ("/items/1", {}))
    assert len(collector.wait_for(1)) == 1
    run_requests(wrap(tracing_settings(collector, message_spans=True)), ("/items/2", {}))
    spans = collector.wait_for(3)
    assert any(s["name"].lower().endswith("http send") for s in spans), [s["name"] for s in spans]


def test_httpx_auto_instrumentation_adds_client_spans_when_enabled(collector: ZipkinCollector) -> None:
    import httpx

    instrumentation = pytest.importorskip(
        "opentelemetry.instrumentation.httpx", reason="optional: opentelemetry-instrumentation-httpx"
    )
    HTTPXClientInstrumentor = instrumentation.HTTPXClientInstrumentor

    async def call_out(request: Request) -> PlainTextResponse:
        async with httpx.AsyncClient() as client:
            answer = await client.post(collector.endpoint, content=b"[]", headers={"content-type": "application/json"})
        return PlainTextResponse(str(answer.status_code))

    try:
        app = wrap(tracing_settings(collector, instrument=["httpx"]), starlette_app([Route("/call", call_out)]))
        (response,) = run_requests(app, ("/call", {}))
    finally:
        HTTPXClientInstrumentor().uninstrument()
    assert response.text == "202"
    spans = collector.wait_for(2)
    (server,) = [s for s in spans if s["kind"] == "SERVER"]
    (client,) = [s for s in spans if s["kind"] == "CLIENT"]
    assert client["parentId"] == server["id"] and client["traceId"] == server["traceId"]
    assert client["name"].upper().startswith("POST")


def test_otlp_http_protobuf_export_to_a_loopback_receiver() -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter", reason="optional: ops-observe[otlp]")
    from tracing_support import OtlpReceiver

    receiver = OtlpReceiver()
    try:
        app = wrap(tracing_settings(exporter="otlp", otlp_endpoint=receiver.endpoint))
        run_requests(app, ("/items/5", {}))
        ((resource, span),) = receiver.spans(1)
    finally:
        receiver.close()
    assert receiver.content_types == ["application/x-protobuf"]
    assert span.name == "GET /items/{item_id}"
    attributes = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
    assert attributes["http.route"] == "/items/{item_id}"
    resource_attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert resource_attributes["service.name"] == "shop"
    assert resource_attributes["deployment.environment"] == "test"


def test_spans_still_queued_at_interpreter_exit_are_flushed(collector: ZipkinCollector, tmp_path: Path) -> None:
    """No lifespan shutdown at all: the atexit flush sends what the export thread had not sent yet."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "serve_once.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, httpx, ops_observe
            from starlette.applications import Starlette
            from starlette.responses import PlainTextResponse
            from starlette.routing import Route

            async def home(request):
                return PlainTextResponse("ok")

            settings = {{"service_name": "exiting", "logging": {{"sink": "stderr"}},
                        "tracing": {{"exporter": "zipkin", "zipkin_endpoint": "{collector.endpoint}",
                                    "schedule_delay": 600}}}}
            app = ops_observe.wrap(Starlette(routes=[Route("/", home)]), settings=settings)

            async def main():
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    assert (await client.get("/")).status_code == 200

            asyncio.run(main())
            """
        )
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=60, capture_output=True)
    (span,) = collector.wait_for(1)
    assert span["localEndpoint"]["serviceName"] == "exiting"


def test_with_tracing_outside_logging_the_access_log_line_carries_the_ids(
    collector: ZipkinCollector, tmp_path: Path
) -> None:
    sink = tmp_path / "app.log"
    settings = tracing_settings(collector)
    settings["logging"] = {"sink": str(sink)}
    settings["middleware"] = ["correlation", "tracing", "logging", "metrics"]
    run_requests(wrap(settings), ("/items/3", {}))
    (span,) = collector.wait_for(1)
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    (access,) = [line for line in lines if line.get("path") == "/items/3"]
    assert (access["trace_id"], access["span_id"]) == (span["traceId"], span["id"])


def test_two_uvicorn_workers_each_export_and_flush_at_lifespan_shutdown(
    collector: ZipkinCollector, tmp_path: Path
) -> None:
    """A real server: each worker builds its own provider; SIGTERM's lifespan shutdown flushes every span."""
    import signal
    import subprocess
    import sys

    import httpx

    from services import free_port, get_when_up

    settings = {
        "service_name": "workers",
        "logging": {"sink": "stderr", "level": "WARNING"},
        "tracing": {"exporter": "zipkin", "zipkin_endpoint": collector.endpoint, "schedule_delay": 600},
    }
    (tmp_path / "traced_app.py").write_text(
        "import ops_observe\n"
        "from starlette.applications import Starlette\n"
        "from starlette.responses import PlainTextResponse\n"
        "from starlette.routing import Route\n"
        "async def home(request):\n"
        "    return PlainTextResponse('ok')\n"
        f"app = ops_observe.wrap(Starlette(routes=[Route('/hello/{{name}}', home)]), settings={settings!r})\n"
    )
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "traced_app:app",
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        get_when_up(f"http://127.0.0.1:{port}/hello/warmup", process=server)
        for i in range(20):  # a fresh connection each time, so both workers get some
            assert httpx.get(f"http://127.0.0.1:{port}/hello/{i}", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    spans = collector.wait_for(21)
    assert len(spans) == 21
    assert {s["name"].lower() for s in spans} == {"get /hello/{name}"}
    assert {s["localEndpoint"]["serviceName"] for s in spans} == {"workers"}
    # Each worker process has its own provider (its own instance id); the OS decides how the
    # connections are shared, so both usually, but not necessarily, served some.
    assert 1 <= len({s["tags"]["service.instance.id"] for s in spans}) <= 2


@pytest.mark.parametrize("keep", [True, False])
def test_keep_error_children_exports_a_failed_unsampled_request_whole(collector: ZipkinCollector, keep: bool) -> None:
    @trace_db_query("UPDATE", "orders")
    def save(order_id: str) -> None:
        return None

    @trace_external_call("stripe", "refund")
    async def refund() -> None:
        raise RuntimeError("stripe is down")

    async def ok(request: Request) -> PlainTextResponse:
        save("o1")
        return PlainTextResponse("ok")

    async def failing(request: Request) -> PlainTextResponse:
        save("o2")
        await refund()
        return PlainTextResponse("unreachable")

    app = wrap(
        tracing_settings(collector, sample_ratio=0.0, keep_error_children=keep),
        starlette_app([Route("/ok", ok), Route("/refund", failing)]),
    )
    run_requests(app, ("/ok", {}), ("/refund", {}), ("/ok", {}))
    spans = by_name(collector.wait_for(3 if keep else 1))
    server = spans["get /refund"]
    assert server["tags"]["otel.status_code"] == "ERROR"
    if not keep:
        assert list(spans) == ["get /refund"]
        return
    assert set(spans) == {"get /refund", "update orders", "stripe refund"}
    assert {s["traceId"] for s in spans.values()} == {server["traceId"]}
    assert spans["update orders"]["parentId"] == spans["stripe refund"]["parentId"] == server["id"]
    assert spans["stripe refund"]["tags"]["otel.status_code"] == "ERROR"
