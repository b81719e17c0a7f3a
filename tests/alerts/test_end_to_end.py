"""End to end: the demo, a real Prometheus with the exported rules, a real Alertmanager, a webhook.

The demo runs as ``ops-observe serve`` with a Redis of the test's own as its ``cache`` check; the
rules are the export of every pack at these settings, with ``for`` shortened through
``[ops_observe.alerts.rules.X]`` and ``job`` set to the scrape job. Errors from ``/boom`` must
fire HighAPIErrorRate and CriticalAPIErrorRate, a stopped Redis RedisDown; each is seen through
Prometheus's API and at the Alertmanager's webhook, with its labels and annotations, and then
resolved.

The error-rate rules read 5-minute windows (no setting shortens them), so the error ratio does not
fall when the errors stop, only when the window slides past them: minutes. It falls at once
when healthy traffic outweighs the errors in the window, as in production after a fix, so the
test resolves them that way: a few errors, then two hundred times as many good requests.
RedisDown resolves as soon as Redis is back (a scrape reruns the health checks).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from stack import Stack, serve_demo

from ops_observe.alerts import export
from ops_observe.settings import load_settings

from services import RedisServer, free_port, need

# Each wait is bounded (stack.wait: 45 s); a test waits for firing and resolution at both ends.
pytestmark = pytest.mark.timeout(300)

JOB = "ops-center-demo"
NS = "ops_center"
ERRORS = 10  # /boom requests that break the error-rate rules
DILUTION = 200  # good requests per error that bring the 5-minute error ratio under 1 % again

SETTINGS = """\
[ops_observe]
service_name = "ops-center"
middleware = ["correlation", "logging", "metrics"]

[ops_observe.logging]
level = "WARNING"

[ops_observe.health]
timeout = 1.0
cache_seconds = 0.5

[ops_observe.health.checks.cache]
plugin = "redis"
url = "{redis_url}"

[ops_observe.alerts]
job = "{job}"

[ops_observe.alerts.rules.HighAPIErrorRate]
for = "0s"

[ops_observe.alerts.rules.CriticalAPIErrorRate]
for = "0s"

[ops_observe.alerts.rules.RedisDown]
for = "1s"
labels = {{ team = "platform" }}
"""


@dataclass
class Demo:
    """The running demo, its Redis and the stack watching it."""

    stack: Stack
    redis: RedisServer
    url: str
    rules: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    redis_binary = shutil.which("redis-server")
    need(redis_binary, "redis-server is not installed")
    assert redis_binary is not None
    workdir = tmp_path_factory.mktemp("e2e")
    redis = RedisServer(redis_binary)  # the test's own: the machine's Redis on 6379 is never touched
    try:
        settings_file = workdir / "ops_observe.toml"
        settings_file.write_text(SETTINGS.format(redis_url=redis.url, job=JOB))
        rules = export.render(load_settings(str(settings_file)))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        stack = Stack(workdir, {JOB: f"127.0.0.1:{port}"}, rules)
        try:
            stack.add(serve_demo(workdir, settings_file, port))
            # Every series the error-rate rules read exists before the first scrape, so that
            # Prometheus sees each later request as an increase.
            _send(url, "/items/1", 5)
            _send(url, "/boom", 1)
            stack.start()
            stack.wait_for_samples(f'up{{job="{JOB}"}} == 1')
            yield Demo(stack, redis, url, rules)
        finally:
            stack.stop()
    finally:
        redis.stop()


def _send(url: str, path: str, count: int, *, threads: int = 1) -> None:
    # uvicorn closes the connection after an app raised (/boom): one connection per request there.
    headers = {"Connection": "close"} if path == "/boom" else {}

    def run(n: int) -> None:
        with httpx.Client(base_url=url, timeout=10, headers=headers) as client:
            for _ in range(n):
                client.get(path)

    if threads == 1:
        run(count)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, [count // threads + (i < count % threads) for i in range(threads)]))


def _firing_at_prometheus(demo: Demo, name: str) -> dict[str, Any]:
    alerts = demo.stack.wait(lambda: demo.stack.alerts(name), what=f"{name} firing in /api/v1/alerts")
    assert len(alerts) == 1, alerts
    return alerts[0]


def _resolved_at_prometheus(demo: Demo, name: str) -> None:
    def gone() -> bool:
        return not demo.stack.alerts(name, "firing") and not demo.stack.alerts(name, "pending")

    demo.stack.wait(gone, what=f"{name} no longer active in /api/v1/alerts")


def _at_webhook(demo: Demo, name: str, status: str) -> dict[str, Any]:
    webhook = demo.stack.webhook
    assert webhook is not None
    alerts = demo.stack.wait(lambda: webhook.alerts(name, status), what=f"{name} {status} at the webhook")
    return alerts[-1]


def _assert_annotated(alert: dict[str, Any], name: str) -> None:
    annotations = alert["annotations"]
    assert annotations["summary"] and annotations["description"]
    assert annotations["runbook_url"].endswith(f"docs/alerts.md#{name.lower()}")
    assert "{{" not in annotations["summary"] + annotations["description"]  # every template was expanded


def test_every_exported_group_loads_into_prometheus(demo: Demo) -> None:
    exported = [group["name"] for group in yaml.safe_load(demo.rules)["groups"]]
    assert {"ops_observe.api", "ops_observe.infrastructure"} <= set(exported)

    def loaded() -> list[str] | None:
        groups = demo.stack.api("rules")["groups"]
        evaluated = all(rule.get("health") == "ok" for group in groups for rule in group["rules"])
        return [group["name"] for group in groups] if evaluated else None

    assert sorted(demo.stack.wait(loaded, what="every rule evaluated without error")) == sorted(exported)


def test_errors_from_boom_fire_the_error_rate_alerts_then_resolve(demo: Demo) -> None:
    _send(demo.url, "/boom", ERRORS)
    for name, severity in (("HighAPIErrorRate", "warning"), ("CriticalAPIErrorRate", "critical")):
        alert = _firing_at_prometheus(demo, name)
        assert alert["labels"] == {"alertname": name, "severity": severity, "job": JOB}
        assert float(alert["value"]) > 0.05
        _assert_annotated(alert, name)
        posted = _at_webhook(demo, name, "firing")
        assert posted["labels"] == alert["labels"]
        assert posted["annotations"] == alert["annotations"]

    # The 5-minute window still holds the errors; enough healthy traffic brings the ratio down.
    _send(demo.url, "/items/1", ERRORS * DILUTION, threads=4)
    for name in ("HighAPIErrorRate", "CriticalAPIErrorRate"):
        _resolved_at_prometheus(demo, name)
        resolved = _at_webhook(demo, name, "resolved")
        assert resolved["labels"]["alertname"] == name
        assert resolved["endsAt"] >= resolved["startsAt"]


def test_a_stopped_redis_fires_redis_down_then_resolves_when_it_is_back(demo: Demo) -> None:
    name = "RedisDown"
    ratio = f'{NS}_health_check_status{{job="{JOB}", check="cache"}}'
    demo.stack.wait(lambda: demo.stack.query(f"{ratio} == 1"), what="the cache check passing")
    demo.redis.stop()
    try:
        # Nobody probes /health: the scrapes alone rerun the check and set the status to 0.
        alert = _firing_at_prometheus(demo, name)
        assert alert["labels"] == {
            "alertname": name,
            "severity": "critical",
            "job": JOB,
            "instance": alert["labels"]["instance"],
            "check": "cache",
            "team": "platform",
        }
        _assert_annotated(alert, name)
        assert "cache" in alert["annotations"]["summary"]
        posted = _at_webhook(demo, name, "firing")
        assert posted["labels"] == alert["labels"]
        assert posted["status"] == "firing"
    finally:
        demo.redis.start()
    _resolved_at_prometheus(demo, name)
    resolved = _at_webhook(demo, name, "resolved")
    assert resolved["labels"]["check"] == "cache"
