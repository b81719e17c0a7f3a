"""Installs the health feature into a wrapped app's suite."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Gauge

from ops_observe.health.runner import (
    FAIL,
    PASS,
    WARN,
    CheckResult,
    HealthChecks,
    build_checks,
)
from ops_observe.health.service import HealthService
from ops_observe.health.settings import HealthSettings
from ops_observe.suite import Suite

# The value of <ns>_health_check_status for each state; alerts fire on "< 1" (warn) or "== 0" (fail).
STATUS_VALUES = {PASS: 1.0, WARN: 0.5, FAIL: 0.0}

SETTINGS = HealthSettings
"""The ``[ops_observe.health]`` section."""


def install(suite: Suite) -> None:
    """Register the health endpoints and lifespan hooks of one wrapped app.

    The checks are built (and their options validated) here, so a bad check setting stops
    ``wrap()`` with a :class:`ops_observe.SettingsError` instead of failing on the first probe.
    The :class:`HealthService` is kept as ``suite.state["health"]``.
    """
    health = suite.settings.health
    if not health.enabled:
        return
    checks = HealthChecks(
        build_checks(suite.settings),
        cache_seconds=health.cache_seconds,
        observe=_metrics(suite),
    )
    service = HealthService(suite.settings, checks)
    suite.state["health"] = service
    base = health.path.rstrip("/")
    suite.add_endpoint(health.path, service.liveness, setting="health.path")
    suite.add_endpoint(f"{base}/ready", service.readiness, setting="health.path")
    suite.add_endpoint(f"{base}/detailed", service.detailed, setting="health.path")
    if health.livez_path:
        suite.add_endpoint(health.livez_path, service.livez, setting="health.livez_path")
    if health.readyz_path:
        suite.add_endpoint(health.readyz_path, service.readyz, setting="health.readyz_path")
    suite.on_startup(service.startup)
    suite.on_shutdown(service.shutdown)


def _metrics(suite: Suite) -> Callable[[CheckResult], None]:
    """The hook that turns each fresh check result into ``<ns>_health_check_status`` and its duration."""
    ns = suite.settings.metric_namespace
    status = Gauge(
        f"{ns}_health_check_status",
        "Last result of a health check: 1 pass, 0.5 warn, 0 fail.",
        ["check"],
        registry=suite.registry,
    )
    duration = Gauge(
        f"{ns}_health_check_duration_seconds",
        "Duration of the last run of a health check, in seconds.",
        ["check"],
        registry=suite.registry,
    )

    def observe(result: CheckResult) -> None:
        status.labels(result.name).set(STATUS_VALUES[result.status])
        duration.labels(result.name).set(result.duration_ms / 1000)

    return observe
