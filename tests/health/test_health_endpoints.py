"""The endpoints: liveness, readiness, diagnostics, Kubernetes aliases, content types, draining, guards."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import httpx
import pytest
from health_support import Lifespan, client, get, wrap
from hypothesis import HealthCheck as HypothesisHealthCheck
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_observe.health import HealthCheck
from ops_observe.health.runner import BoundCheck, HealthChecks
from ops_observe.health.service import HealthService
from ops_observe.settings import load_settings

OK_CHECK = {"plugin": "memory", "max_rss_mb": 1_000_000}
FAILING_CHECK = {"plugin": "memory", "max_rss_mb": 0.001}
WARNING_CHECK = {"plugin": "memory", "max_rss_mb": 1_000_000, "warn_rss_mb": 0.001}


def test_liveness_answers_identity_and_touches_no_check() -> None:
    app = wrap({"checks": {"bad": FAILING_CHECK}}, service_name="billing", version="1.2.3")
    response = get(app, "/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "pass", "service": "billing", "version": "1.2.3"}
    assert app.suite.state["health"].checks._cache == {}  # no check ran


def test_requests_outside_the_health_paths_reach_the_app() -> None:
    response = get(wrap(), "/health/other")
    assert response.text == "app"


@pytest.mark.parametrize(
    ("checks", "code", "status", "shown"),
    [
        ({}, 200, "pass", []),
        ({"ok": OK_CHECK}, 200, "pass", ["ok"]),
        ({"ok": OK_CHECK, "bad": FAILING_CHECK}, 503, "fail", ["ok", "bad"]),
        ({"ok": OK_CHECK, "soft": {**FAILING_CHECK, "critical": False}}, 200, "pass", ["ok"]),
        ({"ok": OK_CHECK, "warns": WARNING_CHECK}, 200, "warn", ["ok", "warns"]),
    ],
    ids=["no-checks", "pass", "critical-fails", "non-critical-fails", "warning"],
)
def test_readiness_is_decided_by_critical_checks(
    checks: dict[str, Any], code: int, status: str, shown: list[str]
) -> None:
    response = get(wrap({"checks": checks}), "/health/ready")
    assert response.status_code == code
    body = response.json()
    assert body["status"] == status
    assert list(body["checks"]) == shown
    for name in shown:
        assert {"status", "duration_ms", "critical", "plugin"} <= set(body["checks"][name])


def test_detailed_shows_every_check_and_the_system_facts() -> None:
    app = wrap(
        {"checks": {"ok": OK_CHECK, "soft": {**FAILING_CHECK, "critical": False}}},
        version="2.0",
        commit="abc123",
        build_date="2026-11-27",
        environment="staging",
    )
    response = get(app, "/health/detailed")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "warn"  # a failing non-critical check shows, without failing
    assert body["checks"]["soft"]["status"] == "fail"
    assert body["checks"]["soft"]["critical"] is False
    assert body["version"] == {
        "version": "2.0",
        "commit": "abc123",
        "build_date": "2026-11-27",
        "environment": "staging",
    }
    assert set(body["system"]) >= {"cpu_percent", "memory", "disk"}
    assert body["system"]["memory"]["total_gb"] > 0
    assert body["system"]["disk"]["total_gb"] > 0
    assert body["uptime"]["seconds"] >= 0 and body["uptime"]["human"].endswith("s")
    assert body["python"]["version"].count(".") == 2
    assert body["process"]["pid"] > 0 and body["process"]["rss_mb"] > 0


def test_health_json_is_answered_when_asked_for() -> None:
    app = wrap(
        {"checks": {"ok": OK_CHECK, "bad": FAILING_CHECK}}, service_name="billing", version="1.2", commit="c0ffee"
    )
    response = get(app, "/health/ready", headers={"accept": "application/health+json, application/json;q=0.5"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/health+json"
    body = response.json()
    assert body["status"] == "fail"
    assert (body["version"], body["releaseId"], body["serviceId"]) == ("1.2", "c0ffee", "billing")
    bad = body["checks"]["bad:responseTime"][0]
    assert bad["componentId"] == "bad" and bad["status"] == "fail" and bad["observedUnit"] == "ms"
    assert "output" in bad and bad["time"].endswith("Z")
    live = get(app, "/health", headers={"accept": "application/health+json"})
    assert live.headers["content-type"] == "application/health+json"
    assert live.json()["status"] == "pass"


@pytest.mark.parametrize(
    ("path", "code", "text"),
    [
        ("/livez", 200, "ok"),
        ("/livez?verbose", 200, "[+]ping ok\nlivez check passed\n"),
        ("/readyz", 503, "[+]ok ok\n[-]bad failed: reason withheld\n[+]shutdown ok\nreadyz check failed\n"),
        ("/readyz?exclude=bad", 200, "ok"),
        ("/readyz?verbose&exclude=bad", 200, "[+]ok ok\n[+]shutdown ok\nreadyz check passed\n"),
        (
            "/readyz?verbose&exclude=bad&exclude=nope",
            200,
            "[+]ok ok\n[+]shutdown ok\nwarn: some health checks cannot be excluded: no matches for nope\n"
            "readyz check passed\n",
        ),
    ],
)
def test_kubernetes_aliases(path: str, code: int, text: str) -> None:
    app = wrap({"checks": {"ok": OK_CHECK, "bad": FAILING_CHECK}})
    response = get(app, path)
    assert (response.status_code, response.text) == (code, text)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_exclude_works_on_the_json_readiness_too() -> None:
    app = wrap({"checks": {"ok": OK_CHECK, "bad": FAILING_CHECK}})
    response = get(app, "/health/ready?exclude=bad")
    assert response.status_code == 200
    assert list(response.json()["checks"]) == ["ok"]


def test_paths_are_configurable_and_aliases_can_be_turned_off() -> None:
    app = wrap({"path": "/status", "livez_path": "", "readyz_path": "/k8s/ready"})
    assert set(app.suite.endpoints) >= {"/status", "/status/ready", "/status/detailed", "/k8s/ready"}
    assert "/livez" not in app.suite.endpoints and "/health" not in app.suite.endpoints
    assert get(app, "/status/ready").status_code == 200
    assert get(app, "/livez").text == "app"


def test_disabled_serves_nothing() -> None:
    app = wrap({"enabled": False})
    assert not any("health" in p or p.endswith("z") for p in app.suite.endpoints)
    assert get(app, "/health").text == "app"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_refused(method: str) -> None:
    async def go() -> httpx.Response:
        async with client(wrap()) as c:
            return await c.request(method, "/health/ready")

    response = asyncio.run(go())
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_head_answers_without_a_body() -> None:
    async def go() -> httpx.Response:
        async with client(wrap()) as c:
            return await c.head("/health")

    response = asyncio.run(go())
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


# -- lifespan and draining ------------------------------------------------------------------------


def test_lifespan_passes_through_and_shutdown_makes_readiness_fail() -> None:
    app = wrap({"checks": {"ok": OK_CHECK}, "handle_sigterm": False})

    async def go() -> list[int]:
        lifespan = Lifespan(app)
        async with client(app) as c:
            await lifespan.start()
            codes = [(await c.get("/health/ready")).status_code]
            await lifespan.stop()
            ready = await c.get("/health/ready")
            codes += [ready.status_code, (await c.get("/health")).status_code, (await c.get("/readyz")).status_code]
            assert ready.json()["reason"] == "shutting down"
            return codes

    assert asyncio.run(go()) == [200, 503, 200, 503]
    # The app's own lifespan ran, untouched.
    assert app.app.events == ["lifespan.startup", "lifespan.shutdown"]  # type: ignore[attr-defined]


def _with_sigterm_recorder(body: Any) -> list[int]:
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        body(received)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return received


def test_sigterm_fails_readiness_and_is_handed_on_after_the_drain() -> None:
    app = wrap({"drain_seconds": 0.1})

    def scenario(received: list[int]) -> None:
        async def go() -> None:
            lifespan = Lifespan(app)
            async with client(app) as c:
                await lifespan.start()
                assert (await c.get("/health/ready")).status_code == 200
                signal.raise_signal(signal.SIGTERM)
                assert (await c.get("/health/ready")).status_code == 503
                assert (await c.get("/health")).status_code == 200  # liveness: nothing restarts the pod
                deadline = time.monotonic() + 5
                while not received and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                await lifespan.stop()

        asyncio.run(go())

    assert _with_sigterm_recorder(scenario) == [signal.SIGTERM]


def test_without_a_drain_sigterm_is_handed_on_at_once_and_the_handler_given_back() -> None:
    app = wrap()
    handlers: list[Any] = []

    def scenario(received: list[int]) -> None:
        async def go() -> None:
            lifespan = Lifespan(app)
            await lifespan.start()
            handlers.append(signal.getsignal(signal.SIGTERM))
            signal.raise_signal(signal.SIGTERM)
            assert received == [signal.SIGTERM]
            await lifespan.stop()
            handlers.append(signal.getsignal(signal.SIGTERM))

        asyncio.run(go())

    assert _with_sigterm_recorder(scenario) == [signal.SIGTERM]
    assert handlers[0] != handlers[1]  # ours while running, the previous one after shutdown
    assert app.suite.state["health"].draining


# -- the guard of /detailed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guard", "client_ip", "authorization", "code"),
    [
        ({}, "203.0.113.9", None, 200),
        ({"detailed_allow": ["10.0.0.0/8"]}, "10.1.2.3", None, 200),
        ({"detailed_allow": ["10.0.0.0/8"]}, "203.0.113.9", None, 403),
        ({"detailed_allow": ["10.0.0.0/8", "::1"]}, "::1", None, 200),
        ({"detailed_allow": ["10.0.0.0/8"]}, "::ffff:10.0.0.7", None, 200),
        ({"detailed_token": "s3cret-token"}, "203.0.113.9", "Bearer s3cret-token", 200),
        ({"detailed_token": "s3cret-token"}, "203.0.113.9", "bearer s3cret-token", 200),
        ({"detailed_token": "s3cret-token"}, "203.0.113.9", "Bearer s3cret-tokeN", 403),
        ({"detailed_token": "s3cret-token"}, "203.0.113.9", "Basic s3cret-token", 403),
        ({"detailed_token": "s3cret-token"}, "203.0.113.9", None, 403),
        ({"detailed_token": "t0ken", "detailed_allow": ["10.0.0.0/8"]}, "10.0.0.1", "Bearer t0ken", 200),
        ({"detailed_token": "t0ken", "detailed_allow": ["10.0.0.0/8"]}, "192.0.2.1", "Bearer t0ken", 403),
        ({"detailed_token": "t0ken", "detailed_allow": ["10.0.0.0/8"]}, "10.0.0.1", None, 403),
    ],
)
def test_detailed_guard(guard: dict[str, Any], client_ip: str, authorization: str | None, code: int) -> None:
    app = wrap(guard)
    headers = {"authorization": authorization} if authorization else {}

    async def go() -> httpx.Response:
        async with client(app, (client_ip, 4000)) as c:
            return await c.get("/health/detailed", headers=headers)

    response = asyncio.run(go())
    assert response.status_code == code
    if code == 403:
        assert "checks" not in response.json()
    # Readiness and liveness stay open: probes carry no token.
    assert get(app, "/health/ready").status_code == 200


def test_a_bad_network_is_a_settings_error() -> None:
    from ops_observe import SettingsError

    with pytest.raises(
        SettingsError, match=r"health\.detailed_allow: '10\.0\.0\.300/8' is not an IP address or CIDR network"
    ):
        load_settings({"health": {"detailed_allow": ["10.0.0.300/8"]}})


@settings(max_examples=60, deadline=None, suppress_health_check=[HypothesisHealthCheck.too_slow])
@given(
    query=st.binary(max_size=60),
    accept=st.binary(max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b),
    authorization=st.binary(max_size=60),
)
def test_any_request_gets_an_answer_never_a_crash(query: bytes, accept: bytes, authorization: bytes) -> None:
    # Raw ASGI: whatever the client sends in the query and headers, each endpoint answers.
    service = HealthService(
        load_settings({"health": {"detailed_token": "right-token"}}),
        HealthChecks([BoundCheck("ok", _Ok())], cache_seconds=60),
    )

    async def go() -> list[int]:
        codes = []
        for endpoint in (service.liveness, service.readiness, service.detailed, service.livez, service.readyz):
            sent: list[dict[str, Any]] = []

            async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
                sent.append(message)

            scope = {
                "type": "http",
                "method": "GET",
                "path": "/x",
                "query_string": query,
                "headers": [(b"accept", accept), (b"authorization", authorization)],
                "client": ("127.0.0.1", 1),
            }
            await endpoint(scope, _no_body, send)
            codes.append(sent[0]["status"])
            content_type = dict(sent[0]["headers"])[b"content-type"]
            if b"json" in content_type:
                json.loads(sent[1]["body"])
            else:
                sent[1]["body"].decode()
        return codes

    codes = asyncio.run(go())
    assert codes[0] == codes[1] == codes[3] == codes[4] == 200
    assert codes[2] in (200, 403)
    if b"right-token" not in authorization:
        assert codes[2] == 403


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class _Ok(HealthCheck):
    async def check(self) -> None:
        return None


# -- metrics ---------------------------------------------------------------------------------------


def test_check_results_become_metrics_on_the_apps_registry() -> None:
    app = wrap(
        {"checks": {"ok": OK_CHECK, "warns": WARNING_CHECK, "bad": {**FAILING_CHECK, "critical": False}}},
        namespace="shop",
    )
    registry = app.suite.registry
    assert registry.get_sample_value("shop_health_check_status", {"check": "ok"}) is None  # nothing ran yet
    get(app, "/health/detailed")
    assert registry.get_sample_value("shop_health_check_status", {"check": "ok"}) == 1.0
    assert registry.get_sample_value("shop_health_check_status", {"check": "warns"}) == 0.5
    assert registry.get_sample_value("shop_health_check_status", {"check": "bad"}) == 0.0
    duration = registry.get_sample_value("shop_health_check_duration_seconds", {"check": "ok"})
    assert duration is not None and 0 <= duration < 5
    # Two wrapped apps do not share health state or metrics.
    other = wrap({"checks": {"ok": OK_CHECK}}, namespace="shop")
    assert other.suite.registry.get_sample_value("shop_health_check_status", {"check": "ok"}) is None


def test_the_health_metrics_pass_promtool(promtool: str) -> None:
    import subprocess

    from prometheus_client import generate_latest

    app = wrap({"checks": {"ok": OK_CHECK, "bad": {**FAILING_CHECK, "critical": False}}}, namespace="shop")
    get(app, "/health/detailed")
    exposition = generate_latest(app.suite.registry)
    assert b"shop_health_check_status" in exposition
    done = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=30)
    problems = [line for line in (done.stdout + done.stderr).decode().splitlines() if "health" in line]
    assert problems == []
