"""The metrics a wrapped app really exposes, for the consistency tests of the alert rules.

Nothing is listed by hand: a raw app is wrapped with every feature that exports metrics
(metrics, tracing, health checks), serves requests and a readiness probe, and then every metric
of the catalog (:data:`ops_observe.metrics.specs.SPECS`) is recorded once with a value for each
of its labels, so that the exposition shows each one's series and labels. What the rules may read
is what this page shows: catalog, health, tracing and process metrics alike.

The app runs in a subprocess (this file run as a script), once in a single process and once in
prometheus-client's multiprocess mode, which is process-wide and has metrics of its own (the
directory gauges, a ``pid`` label on ``process_*``). The settings cases the rules are checked at
(:data:`DEFAULT`, :data:`CUSTOMISED`, :data:`WITH_CHECKS`) are here too, shared by the tests.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import subprocess
import sys
import tempfile
from typing import Any

import httpx

import ops_observe
from ops_observe.alerts.check import TARGET_LABELS, Exposition
from ops_observe.alerts.promql import result_labels
from ops_observe.alerts.rules import Recording, RuleGroup
from ops_observe.metrics.specs import SPECS

NS = "ops_center"
CHECKS = ("db", "cache", "keycloak", "litellm")
"""Health checks of the app: tcp probes of a closed port (they fail fast and report a status)."""

DEFAULT: dict[str, Any] = {"service_name": "ops-center"}

CUSTOMISED: dict[str, Any] = {
    "service_name": "ops-center",
    "metrics": {"multiprocess_dir": "/run/ops-observe-metrics", "buckets": [0.05, 0.25, 1.0, 5.0]},
    "health": {"checks": {name: {"plugin": "tcp", "host": "127.0.0.1", "port": 1} for name in CHECKS}},
    "alerts": {
        "job": "ops-center",
        "matchers": {"namespace": "prod", "cluster": "eu-1"},
        "disabled": ["LowActiveUsers"],
        "rules": {
            "PostgreSQLDown": {"check": "db"},
            "RedisDown": {"check": "cache"},
            "HighAPIErrorRate": {"threshold": 0.02, "for": "10m", "severity": "critical", "labels": {"team": "api"}},
        },
        "slo": {"availability": 0.995, "latency_target": 0.95, "latency_threshold": 0.25, "routes": ["/", "/boom"]},
    },
}
"""Every option that changes an expression: job, matchers, per-route SLOs, checks, several workers."""

WITH_CHECKS: dict[str, Any] = {
    "service_name": "ops-center",
    "health": {"checks": {name: {"plugin": "tcp", "host": "127.0.0.1", "port": 1} for name in CHECKS}},
    "alerts": {"rules": {"PostgreSQLDown": {"check": "db"}, "RedisDown": {"check": "cache"}}},
}
"""The defaults, plus the health checks that turn the "down" alerts on."""


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    status = 500 if scope["path"] == "/boom" else 200
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wrapped(multiprocess_dir: str | None) -> Any:
    closed = _closed_port()  # nothing listens there once the socket is closed
    checks = {name: {"plugin": "tcp", "host": "127.0.0.1", "port": closed} for name in CHECKS}
    return ops_observe.wrap(
        _app,
        settings={
            "service_name": "ops-center",
            "middleware": ["correlation", "tracing", "metrics"],
            "tracing": {"exporter": "none"},
            "metrics": {"multiprocess_dir": multiprocess_dir},
            "health": {"timeout": 1.0, "checks": checks},
        },
    )


def _record_every_metric(catalog: Any) -> None:
    """One value for every metric of the catalog, each label given a value (the spec says which)."""
    for spec in SPECS:
        child = getattr(catalog, spec.name).labels(**{label: "x" for label in spec.labels})
        if spec.kind == "counter":
            child.inc()
        elif spec.kind == "gauge":
            child.set(1)
        else:
            child.observe(0.1)


async def _scrape(multiprocess_dir: str | None) -> str:
    app = _wrapped(multiprocess_dir)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        for path in ("/", "/boom", "/health/ready"):
            await client.get(path)
        _record_every_metric(app.suite.state["metrics"])
        response = await client.get("/metrics")
    response.raise_for_status()
    return response.text


@functools.cache
def exposition_text(multiprocess: bool = False) -> str:
    """The wrapped app's ``/metrics`` page, single process or multiprocess (built once per session)."""
    with tempfile.TemporaryDirectory(prefix="ops-observe-alerts-mp-") as directory:
        args = [directory] if multiprocess else []
        result = subprocess.run(
            [sys.executable, __file__, *args], capture_output=True, text=True, timeout=120, check=False
        )
    assert result.returncode == 0, result.stderr
    return result.stdout


def exposition(multiprocess: bool = False) -> Exposition:
    """The wrapped app's exposition, parsed as `ops-observe alerts check` parses a live one."""
    return Exposition.parse(exposition_text(multiprocess))


def labels_resolver(groups: list[RuleGroup], matchers: frozenset[str] = frozenset(), multiprocess: bool = False) -> Any:
    """``labels_of(metric)`` for :func:`~ops_observe.alerts.promql.result_labels`: the exposed labels plus
    the scrape's target labels; a recorded series has the labels its recording rules produce."""
    exposed = exposition(multiprocess)
    recordings: dict[str, list[Recording]] = {}
    for group in groups:
        for rule in group.rules:
            if isinstance(rule, Recording):
                recordings.setdefault(rule.record, []).append(rule)

    def labels_of(metric: str) -> frozenset[str]:
        if metric in recordings:
            return frozenset().union(*(result_labels(r.expr, labels_of) | set(r.labels) for r in recordings[metric]))
        return (exposed.labels(metric) or frozenset()) | TARGET_LABELS | matchers

    return labels_of


if __name__ == "__main__":
    sys.stdout.write(asyncio.run(_scrape(sys.argv[1] if len(sys.argv) > 1 else None)))
