"""Settings of the health endpoints and their checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ops_observe.schema import non_empty, positive, setting, url_path


@dataclass(frozen=True)
class CheckSettings:
    """``[ops_observe.health.checks.NAME]``: one check instance; the table name is its name."""

    plugin: str = setting(doc="Entry-point name in group `ops_observe.health_checks`.", check=non_empty)
    critical: bool = setting(True, doc="Critical checks decide readiness; others only show in the detailed view.")
    timeout: float | None = setting(None, doc="Seconds this check may take; default: `health.timeout`.", check=positive)
    options: Mapping[str, Any] = setting(
        doc="Every other key is passed to the check class as a keyword argument.", factory=dict, rest=True
    )


@dataclass(frozen=True)
class HealthSettings:
    """``[ops_observe.health]``: liveness, readiness and diagnostics endpoints."""

    enabled: bool = setting(True, doc="Serve the health endpoints.")
    path: str = setting("/health", doc="Liveness path; readiness at `<path>/ready`, diagnostics at `<path>/detailed`.", check=url_path)
    timeout: float = setting(5.0, doc="Seconds each check may take before it fails.", check=positive)
    checks: Mapping[str, CheckSettings] = setting(doc="Check instances by name.", factory=dict)
