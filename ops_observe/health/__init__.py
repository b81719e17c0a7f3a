"""The health feature of ops_observe: liveness, readiness and diagnostics endpoints, pluggable checks.

A check is a class registered in the entry-point group ``ops_observe.health_checks``; subclass
:class:`HealthCheck` and raise :class:`ServiceUnavailable`, :class:`UnexpectedResult` or
:class:`ServiceWarning` from its ``check()`` method.
"""

from __future__ import annotations

from ops_observe.health.base import (
    HealthCheck,
    HealthCheckError,
    ServiceUnavailable,
    ServiceWarning,
    UnexpectedResult,
)

__all__ = [
    "HealthCheck",
    "HealthCheckError",
    "ServiceUnavailable",
    "ServiceWarning",
    "UnexpectedResult",
]
