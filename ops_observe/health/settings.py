"""Settings of the health endpoints and their checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ops_observe.schema import networks, non_empty, positive, setting, url_path


def _non_negative(value: float) -> None:
    if value < 0:
        raise ValueError("must be 0 or more")


@dataclass(frozen=True)
class CheckSettings:
    """``[ops_observe.health.checks.NAME]``: one check instance; the table name is its name."""

    plugin: str = setting(doc="Entry-point name in group `ops_observe.health_checks`.", check=non_empty)
    critical: bool = setting(
        True,
        doc="Critical checks decide readiness; others only show in the detailed view.",
    )
    timeout: float | None = setting(
        None,
        doc="Seconds this check may take; default: `health.timeout`.",
        check=positive,
    )
    options: Mapping[str, Any] = setting(
        doc="Every other key is passed to the check class as a keyword argument.",
        factory=dict,
        rest=True,
    )


@dataclass(frozen=True)
class HealthSettings:
    """``[ops_observe.health]``: liveness, readiness and diagnostics endpoints."""

    enabled: bool = setting(True, doc="Serve the health endpoints.")
    path: str = setting(
        "/health",
        doc="Liveness path; readiness at `<path>/ready`, diagnostics at `<path>/detailed`.",
        check=url_path,
    )
    timeout: float = setting(5.0, doc="Seconds each check may take before it fails.", check=positive)
    checks: Mapping[str, CheckSettings] = setting(doc="Check instances by name.", factory=dict)
    cache_seconds: float = setting(
        1.0,
        doc="Seconds a check result is reused by later probes; concurrent probes always share one run.",
        check=_non_negative,
    )
    livez_path: str | None = setting(
        "/livez",
        doc="Kubernetes-style liveness path; empty to disable.",
        check=url_path,
    )
    readyz_path: str | None = setting(
        "/readyz",
        doc="Kubernetes-style readiness path; empty to disable.",
        check=url_path,
    )
    detailed_allow: tuple[str, ...] = setting(
        (),
        doc="Client networks (CIDR) allowed to read `<path>/detailed`; empty: any. "
        "Both guards must pass when both are set.",
        check=networks,
    )
    detailed_token: str | None = setting(
        None,
        doc="Bearer token required to read `<path>/detailed`; empty: none.",
        secret=True,
    )
    disk_path: str = setting("/", doc="The file system whose usage `<path>/detailed` shows.", check=non_empty)
    drain_seconds: float = setting(
        0.0,
        doc="After SIGTERM, seconds readiness answers 503 before the server is told to stop, so load balancers drain.",
        check=_non_negative,
    )
    handle_sigterm: bool = setting(
        True,
        doc="Catch SIGTERM (chaining the server's handler) to fail readiness while draining.",
    )
